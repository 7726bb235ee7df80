package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-build/kiln/internal/passwd"
)

// idPattern is what crun and runc accept as a container id, and a safe cgroup/file name.
var idPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// WriteConfig generates the OCI runtime config for s over the prepared rootfs directory, writes it
// with the generated /etc files into s.BundleDir and returns it (also for tests and `kiln inspect`).
// It resolves the user and creates the working directory and mount points inside rootfs.
func WriteConfig(s Spec, rootfs string) (*specs.Spec, error) {
	cfg, err := generateConfig(s, rootfs)
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("encode config.json: %w", err)
	}
	name := filepath.Join(s.BundleDir, "config.json")
	if len(s.SecretEnv) > 0 {
		// The process's environment is in config.json: keep it on the in-memory tmpfs, which
		// teardown and Cleanup unmount, and let the runtime find it through the bundle.
		if s.stateDir == "" {
			return nil, errors.New("a secret environment variable needs a started container (its config stays in memory)")
		}
		mem := filepath.Join(filesDir(s.stateDir, s.ID), "config.json")
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err := os.Symlink(mem, name); err != nil {
			return nil, err
		}
		name = mem
	}
	if err := writeRunFile(name, data); err != nil {
		return nil, err
	}
	return cfg, nil
}

// generateConfig builds the config with docker's defaults; it writes only the /etc files.
func generateConfig(s Spec, rootfs string) (*specs.Spec, error) {
	if err := checkSpec(s); err != nil {
		return nil, err
	}
	if err := checkSystemDirs(rootfs); err != nil {
		return nil, err
	}
	proc, err := process(s, rootfs)
	if err != nil {
		return nil, err
	}
	hostname := s.Hostname
	if hostname == "" {
		hostname = defaultHostname(s)
	}
	mounts, err := allMounts(s, rootfs, hostname)
	if err != nil {
		return nil, err
	}
	cfg := &specs.Spec{
		Version:  specs.Version,
		Process:  proc,
		Root:     &specs.Root{Path: rootfs, Readonly: s.ReadOnlyRootfs},
		Hostname: hostname,
		Mounts:   mounts,
	}
	if cfg.Linux, err = linuxConfig(s); err != nil {
		return nil, err
	}
	if s.Privileged && s.Seccomp == SeccompDefault {
		return cfg, nil // docker's --privileged: no syscall filter unless one is asked for
	}
	if cfg.Linux.Seccomp, err = seccompConfig(s, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkSpec rejects specs the runtime would fail on later with a less helpful message.
func checkSpec(s Spec) error {
	if !idPattern.MatchString(s.ID) {
		return fmt.Errorf("container id %q: use letters, digits, '_', '.' and '-' (max 128), starting with a letter or digit", s.ID)
	}
	if len(s.Args) == 0 {
		return fmt.Errorf("container %s: no command given", s.ID)
	}
	if s.BundleDir == "" {
		return fmt.Errorf("container %s: no bundle dir given", s.ID)
	}
	if s.Cwd != "" && !path.IsAbs(s.Cwd) {
		return fmt.Errorf("working directory %q: must be an absolute path", s.Cwd)
	}
	return nil
}

func defaultHostname(s Spec) string {
	if s.Network == NetworkHost {
		if h, err := os.Hostname(); err == nil {
			return h
		}
	}
	if len(s.ID) > 12 {
		return s.ID[:12]
	}
	return s.ID
}

// process builds the OCI process: argv, environment, user, capabilities and rlimits.
func process(s Spec, rootfs string) (*specs.Process, error) {
	u, err := resolveUser(rootfs, s.User)
	if err != nil && s.User == "" {
		return nil, fmt.Errorf("container user: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", s.User, err)
	}
	cwd := s.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := pathrs.MkdirAll(rootfs, cwd, 0o755); err != nil {
		return nil, fmt.Errorf("create working directory %s: %w", cwd, inRootfs{rootfs, err})
	}
	capAdd := s.CapAdd
	if s.Privileged {
		capAdd = []string{"ALL"}
	}
	caps, err := capabilities(capAdd, s.CapDrop)
	if err != nil {
		return nil, err
	}
	if u.AdditionalGids, err = addGroups(rootfs, u.AdditionalGids, s.GroupAdd); err != nil {
		return nil, err
	}
	args := s.Args
	if s.Init {
		args = initArgs(s)
	}
	return &specs.Process{
		Terminal:        s.Terminal,
		User:            u.User,
		Args:            args,
		Env:             processEnv(append(slices.Clip(s.Env), s.SecretEnv...), u.Home, s.Terminal),
		Cwd:             cwd,
		Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		Rlimits:         rlimits(s.Ulimits),
		NoNewPrivileges: !s.NewPrivileges && !s.Privileged, // privileged: setuid binaries work, as in docker
	}, nil
}

// initArgs runs the command under tini, as docker's --init: "--" ends tini's own flags. Without
// its own PID namespace tini is not pid 1, so it registers as the subreaper (-s) instead.
func initArgs(s Spec) []string {
	args := []string{initPath}
	if s.HostPID {
		args = append(args, "-s")
	}
	return append(append(args, "--"), s.Args...)
}

// addGroups appends --group-add groups (names resolved in the rootfs's /etc/group, or ids).
func addGroups(rootfs string, gids []uint32, add []string) ([]uint32, error) {
	if len(add) == 0 {
		return gids, nil
	}
	data, err := readAccountFile(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	groups := passwd.ParseGroups(data)
	for _, g := range add {
		grp, err := passwd.LookupGroup(groups, g)
		if err != nil {
			return nil, fmt.Errorf("--group-add %s: %w", g, err)
		}
		if !slices.Contains(gids, grp.GID) {
			gids = append(gids, grp.GID)
		}
	}
	return gids, nil
}

// processEnv adds docker's PATH, HOME and TERM defaults to variables the caller did not set.
func processEnv(env []string, home string, terminal bool) []string {
	out := append([]string(nil), env...)
	has := func(key string) bool {
		for _, e := range env {
			if strings.HasPrefix(e, key+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		out = append(out, DefaultPath)
	}
	if !has("HOME") {
		out = append(out, "HOME="+home)
	}
	if terminal && !has("TERM") {
		out = append(out, "TERM=xterm")
	}
	return out
}

// allMounts orders docker's default mounts, the /etc files and the caller's mounts.
func allMounts(s Spec, rootfs, hostname string) ([]specs.Mount, error) {
	etc, err := etcMounts(s, hostname)
	if err != nil {
		return nil, err
	}
	user, err := userMounts(rootfs, s.Mounts)
	if err != nil {
		return nil, err
	}
	mounts := defaultMounts()
	if s.rootless && !idMapped("/proc/self/gid_map", 5) { // a single-id map: devpts refuses gid=5 (tty)
		for i, m := range mounts {
			if m.Type == "devpts" {
				mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "gid=5" })
			}
		}
	}
	if s.rootless && s.Network == NetworkHost {
		// sysfs mounts only in a network namespace the user namespace owns: bind the host's, read-only.
		for i, m := range mounts {
			if m.Type == "sysfs" {
				mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			}
		}
	}
	mounts, err = hostAccessMounts(s, mounts)
	if err != nil {
		return nil, err
	}
	mounts = append(mounts, etc...)
	return append(mounts, user...), nil
}

// hostAccessMounts adjusts docker's default mounts for --shm-size, --ipc host and --privileged,
// and adds the init binary.
func hostAccessMounts(s Spec, mounts []specs.Mount) ([]specs.Mount, error) {
	if s.HostIPC && s.rootless {
		if _, err := os.Stat("/dev/mqueue"); err != nil { // the host has none: neither has the container
			mounts = slices.DeleteFunc(mounts, func(m specs.Mount) bool { return m.Type == "mqueue" })
		}
	}
	for i, m := range mounts {
		switch {
		case m.Destination == "/dev/shm" && s.HostIPC:
			mounts[i] = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
		case m.Destination == "/dev/shm" && s.ShmSize > 0:
			mounts[i].Options = append(slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return strings.HasPrefix(o, "size=") }),
				fmt.Sprintf("size=%dk", (s.ShmSize+1023)/1024))
		case m.Type == "proc" && s.HostPID && s.rootless:
			// procfs of the host's PID namespace mounts only where its user namespace is owner:
			// bind the host's, as podman does.
			mounts[i] = specs.Mount{Destination: "/proc", Type: "bind", Source: "/proc", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
		case m.Type == "mqueue" && s.HostIPC && s.rootless: // the same for the host's IPC namespace
			mounts[i] = specs.Mount{Destination: "/dev/mqueue", Type: "bind", Source: "/dev/mqueue", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
		case s.Privileged && (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && m.Type != "bind":
			mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
		}
	}
	if s.Init {
		bin, err := exec.LookPath(InitBinary)
		if err != nil {
			return nil, fmt.Errorf("--init: %s is not installed: install Debian's tini package", InitBinary)
		}
		mounts = append(mounts, specs.Mount{Destination: initPath, Type: "bind", Source: bin, Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	return mounts, nil
}

// inRootfs words an error about a path in the container's root as the container sees it: the
// bundle's place in the store means nothing to the user (nor should an image learn it).
type inRootfs struct {
	rootfs string
	err    error
}

func (e inRootfs) Error() string {
	return strings.ReplaceAll(e.err.Error(), strings.TrimSuffix(e.rootfs, "/"), "")
}

func (e inRootfs) Unwrap() error { return e.err }
