package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
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
	if err := writeRunFile(filepath.Join(s.BundleDir, "config.json"), data); err != nil {
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
		Linux:    linuxConfig(s),
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
	caps, err := capabilities(s.CapAdd, s.CapDrop)
	if err != nil {
		return nil, err
	}
	return &specs.Process{
		Terminal:        s.Terminal,
		User:            u.User,
		Args:            s.Args,
		Env:             processEnv(s.Env, u.Home, s.Terminal),
		Cwd:             cwd,
		Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		Rlimits:         rlimits(),
		NoNewPrivileges: !s.NewPrivileges,
	}, nil
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
	etc, err := etcMounts(s.BundleDir, hostname, s.Network, s.ip, s.ReadOnlyRootfs)
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
	mounts = append(mounts, etc...)
	return append(mounts, user...), nil
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
