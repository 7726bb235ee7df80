package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/registry"
	"github.com/kiln-build/kiln/runtime"
)

// exitKilnError is docker's exit code for failures of the tool itself, as opposed to the
// container process's own exit code.
const exitKilnError = 125

type runOptions struct {
	rm, interactive, tty, readOnly bool
	detach                         bool
	createOnly                     bool // kiln create: make the container, start nothing
	name, workdir, user, hostname  string
	restart                        string
	entrypoint                     *string
	network, ip                    string
	networkAliases                 []string
	publish                        []string
	pull                           string
	memory                         string
	cpus                           float64
	pidsLimit                      int64
	env, envFiles                  []string
	volumes, mounts, tmpfs         []string
	capAdd, capDrop, securityOpts  []string
	host                           hostFlags
	volumesFrom                    []string
	health                         container.HealthFlags
}

func newRunCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	var entrypoint string
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in a new container",
		Long: "Run IMAGE's entrypoint and command (or COMMAND) in an isolated container: its own mount, PID,\n" +
			"UTS, IPC and cgroup namespaces, docker's default capabilities and seccomp profile, through crun\n" +
			"or runc. The network is a bridge (an address on kiln0, 10.89.0.0/24, with outbound NAT; -p publishes\n" +
			"ports, -P every exposed one) unless --network host, none or a network of kiln network create (whose\n" +
			"members find each other by name, --network-alias and short id). --pid host and --ipc host share\n" +
			"those namespaces with the host, --privileged gives up the isolation of capabilities, seccomp,\n" +
			"/proc, /sys and devices (root only). The exit code is the process's own;\n" +
			"125 means kiln itself failed, 126 the command cannot be executed, 127 it was not found.",
		Example: "  kiln run --rm hello\n  kiln run -d --name web --restart=on-failure:3 app\n  kiln run -d -it --name box busybox sh; kiln attach box\n" +
			"  kiln run -d --init -P --label tier=web --stop-timeout 30 app\n" +
			"  kiln run --rm --ulimit nofile=1024:2048 --add-host db:10.0.0.5 --dns 9.9.9.9 busybox cat /etc/hosts\n  kiln run --rm -it busybox sh\n  kiln run --rm -v $PWD:/data:ro --memory 64m busybox ls /data",
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("entrypoint") {
				o.entrypoint = &entrypoint
			}
			code, err := runContainer(cmd, g, o, args[0], args[1:])
			var ce exitCodeError
			var ue usageError
			if errors.As(err, &ce) || errors.As(err, &ue) {
				return err
			}
			if err != nil {
				return failure(exitKilnError, err)
			}
			if code != 0 {
				return exitCodeError{code: code}
			}
			return nil
		},
	}
	f := c.Flags()
	platformFlag(c)
	f.SetInterspersed(false) // flags after IMAGE belong to the container's command
	f.BoolVar(&o.rm, "rm", false, "remove the container when it exits")
	f.BoolVar(&o.createOnly, createOnlyFlag, false, "")
	_ = f.MarkHidden(createOnlyFlag)
	f.BoolVarP(&o.detach, "detach", "d", false, "run in the background under a monitor process and print the container id (with -i/-t the monitor keeps the stdin or terminal for kiln attach)")
	f.StringVar(&o.restart, "restart", "no", "restart policy: no, on-failure[:max-retries], always or unless-stopped")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "keep standard input open")
	f.BoolVarP(&o.tty, "tty", "t", false, "allocate a pseudo-terminal")
	f.BoolVar(&o.readOnly, "read-only", false, "mount the container's root filesystem read-only")
	f.StringVar(&o.name, "name", "", "name the container")
	f.StringVarP(&o.workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&o.user, "user", "u", "", "user[:group] (names or ids) to run as")
	f.StringVar(&o.hostname, "hostname", "", "container hostname")
	f.StringVar(&entrypoint, "entrypoint", "", "override the image's ENTRYPOINT (\"\" clears it)")
	f.StringVar(&o.pull, "pull", "missing", "pull the image: missing (when not in the store), always or never")
	f.StringVar(&o.network, "network", "", "network: bridge (the default as root: kiln0 with NAT), slirp4netns (the default rootless: a user-mode network), host, none (loopback only) or a network of kiln network create")
	f.StringArrayVar(&o.networkAliases, "network-alias", nil, "another name the container's network members find it by (user-defined networks)")
	f.StringVar(&o.ip, "ip", "", "the container's IPv4 address on its user-defined network")
	f.StringArrayVarP(&o.publish, "publish", "p", nil, "publish a port: [IP:][HOST-PORT:]CONTAINER-PORT[/tcp|udp] (bridge network; no HOST-PORT: a random one)")
	f.StringVarP(&o.memory, "memory", "m", "", "memory limit, e.g. 64m or 1g")
	f.Float64Var(&o.cpus, "cpus", 0, "CPU limit in cores, e.g. 0.5")
	f.Int64Var(&o.pidsLimit, "pids-limit", 0, "maximum number of processes (0 = unlimited)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set KEY=VALUE (KEY alone copies it from kiln's environment)")
	f.StringArrayVar(&o.envFiles, "env-file", nil, "read KEY=VALUE lines from a file")
	f.StringArrayVarP(&o.volumes, "volume", "v", nil, "bind mount HOST-PATH:CONTAINER-PATH[:ro], mount a volume NAME:CONTAINER-PATH[:ro] (made when missing), or an anonymous volume at CONTAINER-PATH")
	f.StringArrayVar(&o.mounts, "mount", nil, "mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,volume-nocopy]")
	f.StringArrayVar(&o.tmpfs, "tmpfs", nil, "mount a tmpfs at PATH[:OPTIONS]")
	f.StringArrayVar(&o.capAdd, "cap-add", nil, "add a capability (or ALL)")
	f.StringArrayVar(&o.capDrop, "cap-drop", nil, "drop a capability (or ALL)")
	f.StringArrayVar(&o.securityOpts, "security-opt", nil, "seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false], apparmor=unconfined, label=disable")
	o.host.register(f)
	f.StringArrayVar(&o.volumesFrom, "volumes-from", nil, "mount the volumes and binds of CONTAINER[:ro|rw]")
	addHealthFlags(f, &o.health)
	return c
}

// runContainer creates a container and runs it in the foreground (returning its exit code) or,
// with -d, under a detached monitor (printing its id).
func runContainer(cmd *cobra.Command, g *globalOptions, o *runOptions, ref string, args []string) (int, error) {
	attach, err := o.host.attachSet(o.interactive)
	if err != nil {
		return 0, usageError{err}
	}
	if o.detach && len(o.host.attach) > 0 {
		return 0, usageError{errors.New("conflicting options: -a and -d: a detached container attaches no streams")}
	}
	if err := checkCidfile(o.host.cidfile); err != nil {
		return 0, err
	}
	cfg, err := o.containerConfig(cmd, g, ref, args)
	if err != nil {
		return 0, err
	}
	cs, err := container.Open(g.storeRoot())
	if err != nil {
		return 0, err
	}
	c, err := cs.Create(cmd.Context(), cfg)
	if err != nil {
		return 0, err
	}
	if o.host.cidfile != "" {
		if err := writeCidfile(o.host.cidfile, c.ID); err != nil {
			return 0, err
		}
	}
	if o.createOnly {
		fmt.Fprintln(cmd.OutOrStdout(), c.ID)
		return 0, nil
	}
	if o.detach {
		// As docker: a command that cannot run at all fails `run -d` with its 126 or 127 (a CommandError).
		if err := cs.Spawn(cmd.Context(), c, monitorArgv(g, c.ID), false); err != nil {
			return 0, err
		}
		fmt.Fprintln(cmd.OutOrStdout(), c.ID)
		return 0, nil
	}
	var streams container.Streams
	if attach.stdout {
		streams.Stdout = cmd.OutOrStdout()
	}
	if attach.stderr {
		streams.Stderr = cmd.ErrOrStderr()
	}
	if attach.stdin {
		streams.Stdin = cmd.InOrStdin()
	}
	rt, err := g.containerRuntime(cmd)
	if err != nil {
		return 0, err
	}
	code, runErr := cs.Supervise(cmd.Context(), rt, c, streams)
	if o.rm {
		if err := cs.Remove(context.WithoutCancel(cmd.Context()), rt, c, true); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("remove container %s: %w", c.ShortID(), err))
		} else if err := cs.RemoveAnonymousVolumes(context.WithoutCancel(cmd.Context()), c); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return code, runErr
}

// userModeNetwork says whether the rootless default, the user-mode network, works here; when it
// does not, it notes on w that what (the container, RUN steps) uses the host network, and why.
func userModeNetwork(w io.Writer, what string) bool {
	if _, err := runtime.UserModeNetwork(); err != nil {
		fmt.Fprintf(w, "kiln: note: %s uses the host network, since %v\n", what, err)
		return false
	}
	return true
}

// containerConfig resolves the image and the flags into the container's fixed configuration.
func (o *runOptions) containerConfig(cmd *cobra.Command, g *globalOptions, ref string, args []string) (container.Config, error) {
	var cfg container.Config
	restart, err := container.ParseRestartPolicy(o.restart)
	if err != nil {
		return cfg, err
	}
	if err := o.checkDetach(restart); err != nil {
		return cfg, err
	}
	if o.network == "" && g.rootless() {
		o.network = "host"
		if userModeNetwork(cmd.ErrOrStderr(), "this rootless container") {
			o.network = "slirp4netns"
		}
	}
	spec, err := o.spec()
	if err != nil {
		return cfg, err
	}
	if err := o.host.apply(&spec); err != nil {
		return cfg, usageError{err}
	}
	s, err := g.openStore()
	if err != nil {
		return cfg, err
	}
	defer s.Close()
	policy, err := registry.ParsePullPolicy(o.pull)
	if err != nil {
		return cfg, err
	}
	res, err := g.resolver(s, policy, cmd.ErrOrStderr())
	if err != nil {
		return cfg, err
	}
	img, err := res.Resolve(cmd.Context(), ref)
	if err != nil {
		return cfg, err
	}
	icfg, err := container.FromImage(cmd.Context(), s, img, &spec, container.ImageOverrides{Entrypoint: o.entrypoint, Args: args})
	if err != nil {
		return cfg, fmt.Errorf("image %s: %w", ref, err)
	}
	vols, err := o.containerVolumes(g, &spec, icfg.Volumes)
	if err != nil {
		return cfg, err
	}
	digest, err := img.Digest()
	if err != nil {
		return cfg, fmt.Errorf("image %s: %w", ref, err)
	}
	health, err := container.ResolveHealth(img, o.health)
	if err != nil {
		return cfg, fmt.Errorf("image %s: %w", ref, err)
	}
	exposed := slices.Sorted(maps.Keys(icfg.ExposedPorts))
	exposed = slices.Compact(slices.Sorted(slices.Values(append(exposed, o.host.exposed...))))
	if spec.Ports, err = o.publishAll(exposed, spec); err != nil {
		return cfg, err
	}
	spec.Volatile = o.rm // its upper dir goes with it
	cfg = container.Config{Name: o.name, Image: ref, ImageDigest: digest, Args: spec.Args, Restart: restart,
		Command: &container.Command{Entrypoint: icfg.Entrypoint, Cmd: icfg.Cmd}, AutoRemove: o.rm, OpenStdin: o.interactive,
		StopSignal: icfg.StopSignal, Exposed: exposed, Spec: spec, Volumes: vols, Healthcheck: health,
		CreateCommand: createCommand(cmd, ref, args), CreateDir: workDir()}
	o.host.config(&cfg, icfg.Labels)
	cs, err := g.openContainers()
	if err != nil {
		return cfg, err
	}
	return cfg, o.userNetwork(cs, &cfg)
}

// publishAll is -P: the image's EXPOSE and --expose ports on random host ports.
func (o *runOptions) publishAll(exposed []string, spec runtime.Spec) ([]runtime.PortMapping, error) {
	if !o.host.publishAll {
		exposed = nil
	}
	if len(exposed) > 0 && spec.Network != runtime.NetworkBridge && spec.Network != runtime.NetworkSlirp {
		return nil, fmt.Errorf("-P needs --network bridge (or slirp4netns, rootless): with --network %s there is no container address to forward to", o.network)
	}
	return container.PublishAll(exposed, spec.Ports)
}

// checkDetach refuses flag combinations docker refuses.
func (o *runOptions) checkDetach(policy container.RestartPolicy) error {
	if o.rm && policy.Name != container.RestartNo {
		return errors.New("conflicting options: --restart and --rm: a container that restarts cannot also be removed when it exits")
	}
	return nil
}

// spec turns the flags into a runtime spec, failing on malformed values before any work.
func (o *runOptions) spec() (runtime.Spec, error) {
	sp := runtime.Spec{User: o.user, Cwd: o.workdir, Hostname: o.hostname, ReadOnlyRootfs: o.readOnly,
		Terminal: o.tty, CapAdd: o.capAdd, CapDrop: o.capDrop}
	fileEnv, err := readEnvFiles(o.envFiles)
	if err != nil {
		return sp, err
	}
	var flagEnv []string
	for _, e := range o.env {
		v, err := envEntry(e)
		if err != nil {
			return sp, fmt.Errorf("-e: %w", err)
		}
		if v != "" {
			flagEnv = append(flagEnv, v)
		}
	}
	sp.Env = container.MergeEnv(fileEnv, flagEnv)
	if o.workdir != "" && !strings.HasPrefix(o.workdir, "/") {
		return sp, fmt.Errorf("invalid -w %q: the working directory must be absolute", o.workdir)
	}
	switch o.network {
	case "host":
		sp.Network = runtime.NetworkHost
	case "bridge", "":
		sp.Network = runtime.NetworkBridge
	case "none":
		sp.Network = runtime.NetworkNone
	case "slirp4netns":
		sp.Network = runtime.NetworkSlirp
	default:
		sp.Network = runtime.NetworkBridge // a user-defined network: userNetwork finds its bridge
	}
	for _, v := range o.publish {
		p, err := parsePublish(v)
		if err != nil {
			return sp, err
		}
		sp.Ports = append(sp.Ports, p)
	}
	if len(sp.Ports) > 0 && sp.Network != runtime.NetworkBridge && sp.Network != runtime.NetworkSlirp {
		return sp, fmt.Errorf("-p needs --network bridge (or slirp4netns, rootless): with --network %s there is no container address to forward to", o.network)
	}
	if sp.Resources.Memory, err = parseMemory("--memory", o.memory); err != nil {
		return sp, err
	}
	if o.cpus < 0 || o.pidsLimit < 0 {
		return sp, errors.New("--cpus and --pids-limit must not be negative")
	}
	sp.Resources.CPUs, sp.Resources.PidsLimit = o.cpus, o.pidsLimit
	if sp.Mounts, err = o.runtimeMounts(); err != nil {
		return sp, err
	}
	return sp, o.security(&sp)
}

// runtimeMounts parses -v, --mount and --tmpfs.
func (o *runOptions) runtimeMounts() ([]runtime.Mount, error) {
	flags, err := o.mountFlags()
	if err != nil {
		return nil, err
	}
	var out []runtime.Mount
	for _, m := range flags {
		if m.volume {
			continue // see containerVolumes
		}
		rm := runtime.Mount{Type: runtime.Bind, Source: m.source, Target: m.target, ReadOnly: m.readOnly, Options: m.options}
		if m.tmpfs {
			rm.Type = runtime.Tmpfs
		}
		out = append(out, rm)
	}
	return out, nil
}

// mountFlags parses -v, --mount and --tmpfs in order.
func (o *runOptions) mountFlags() ([]mountFlag, error) {
	var flags []mountFlag
	for _, list := range []struct {
		vals  []string
		parse func(string) (mountFlag, error)
	}{{o.volumes, parseVolume}, {o.mounts, parseMount}, {o.tmpfs, parseTmpfs}} {
		for _, v := range list.vals {
			m, err := list.parse(v)
			if err != nil {
				return nil, err
			}
			flags = append(flags, m)
		}
	}
	return flags, nil
}

// security applies docker's --security-opt values: seccomp=unconfined|PROFILE.json,
// no-new-privileges[=true|false], and the unconfined forms of confinements kiln never applies
// (apparmor=unconfined, label=disable). docker's older KEY:VALUE spelling is read too.
func (o *runOptions) security(sp *runtime.Spec) error {
	sp.NewPrivileges = true // docker's default: setuid binaries such as sudo and ping work
	for _, opt := range o.securityOpts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, _ = strings.Cut(opt, ":")
		}
		switch {
		case k == "no-new-privileges":
			on, err := strconv.ParseBool(cmp.Or(v, "true"))
			if err != nil {
				return fmt.Errorf("invalid --security-opt %q: no-new-privileges takes true or false", opt)
			}
			sp.NewPrivileges = !on
		case k == "seccomp" && v == "unconfined":
			sp.Seccomp = runtime.SeccompUnconfined
		case k == "seccomp" && v != "":
			if _, err := os.Stat(v); err != nil {
				return fmt.Errorf("--security-opt seccomp=%s: %w", v, err)
			}
			sp.Seccomp, sp.SeccompProfile = runtime.SeccompProfileFile, v
		case k == "apparmor" && v == "unconfined", k == "label" && v == "disable":
			// kiln loads no AppArmor profile and sets no SELinux label: already unconfined
		case k == "apparmor", k == "label":
			return fmt.Errorf("invalid --security-opt %q: kiln applies no AppArmor profile or SELinux label (only %s=%s is accepted)", opt, k, map[string]string{"apparmor": "unconfined", "label": "disable"}[k])
		default:
			return fmt.Errorf("invalid --security-opt %q: use seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false], apparmor=unconfined or label=disable", opt)
		}
	}
	return nil
}
