package runtime

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/testimage"
)

// validateConfig checks what crun and runc require of a config.json, plus kiln's own promises.
func validateConfig(t *testing.T, cfg *specs.Spec) {
	t.Helper()
	if cfg.Version == "" || cfg.Process == nil || cfg.Root == nil || cfg.Linux == nil {
		t.Fatalf("config misses required fields: %+v", cfg)
	}
	p := cfg.Process
	if len(p.Args) == 0 || !path.IsAbs(p.Cwd) || !slices.ContainsFunc(p.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		t.Errorf("bad process: args %v cwd %q env %v", p.Args, p.Cwd, p.Env)
	}
	for _, c := range slices.Concat(p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted) {
		if !slices.Contains(allCaps, c) {
			t.Errorf("invalid capability %q", c)
		}
	}
	var hard unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &hard)
	for _, r := range p.Rlimits {
		if r.Type == "RLIMIT_NOFILE" && (r.Hard > hard.Max || r.Soft > r.Hard) {
			t.Errorf("RLIMIT_NOFILE %d/%d exceeds kiln's hard limit %d", r.Soft, r.Hard, hard.Max)
		}
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range cfg.Linux.Namespaces {
		if seen[ns.Type] {
			t.Errorf("namespace %s twice", ns.Type)
		}
		seen[ns.Type] = true
	}
	for _, want := range []specs.LinuxNamespaceType{specs.MountNamespace, specs.PIDNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.CgroupNamespace} {
		if !seen[want] {
			t.Errorf("namespace %s missing", want)
		}
	}
	for _, m := range cfg.Mounts {
		if !path.IsAbs(m.Destination) || m.Type == "" || m.Source == "" {
			t.Errorf("bad mount %+v", m)
		}
		if m.Type == "bind" {
			if _, err := os.Stat(m.Source); err != nil {
				t.Errorf("bind source: %v", err)
			}
		}
	}
}

func configFixture(t *testing.T) (Spec, string) {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	testimage.BusyboxRootfs(t, rootfs)
	return Spec{ID: "cfg1", BundleDir: dir, Args: []string{"sh"}}, rootfs
}

func TestWriteConfigDefaults(t *testing.T) {
	s, rootfs := configFixture(t)
	cfg, err := WriteConfig(s, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	validateConfig(t, cfg)
	data, err := os.ReadFile(filepath.Join(s.BundleDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk specs.Spec
	if err := json.Unmarshal(data, &onDisk); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if len(onDisk.Mounts) != len(cfg.Mounts) || onDisk.Hostname != "cfg1" {
		t.Errorf("config.json differs from the returned config")
	}
	if len(cfg.Process.Capabilities.Bounding) != 14 || !cfg.Process.NoNewPrivileges {
		t.Errorf("want docker's 14 capabilities and no_new_privs, got %v", cfg.Process.Capabilities.Bounding)
	}
	if cfg.Linux.Seccomp == nil || cfg.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("want docker's default seccomp profile")
	}
	if !slices.Contains(cfg.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(cfg.Linux.ReadonlyPaths, "/proc/sysrq-trigger") {
		t.Errorf("masked/readonly paths missing")
	}
	if !slices.ContainsFunc(cfg.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace }) {
		t.Errorf("NetworkNone must get its own network namespace")
	}
}

func TestWriteConfigOptions(t *testing.T) {
	s, rootfs := configFixture(t)
	src := t.TempDir()
	s.Network = NetworkHost
	s.Resources = Resources{Memory: 32 << 20, CPUs: 1.5, PidsLimit: 64}
	s.CapAdd, s.CapDrop = []string{"net_admin"}, []string{"ALL"}
	s.Seccomp = SeccompUnconfined
	s.Cwd = "/work/dir"
	s.Mounts = []Mount{{Type: Bind, Source: src, Target: "/src", ReadOnly: true}, {Type: Tmpfs, Target: "/scratch", Options: []string{"size=1m"}}}
	cfg, err := WriteConfig(s, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	validateConfig(t, cfg)
	r := cfg.Linux.Resources
	if *r.Memory.Limit != 32<<20 || *r.Memory.Swap != 32<<20 || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.Pids.Limit != 64 {
		t.Errorf("resources %+v", r)
	}
	if got := cfg.Process.Capabilities.Bounding; !slices.Equal(got, []string{"CAP_NET_ADMIN"}) {
		t.Errorf("caps %v, want only CAP_NET_ADMIN", got)
	}
	if cfg.Linux.Seccomp != nil {
		t.Errorf("unconfined must have no seccomp filter")
	}
	if slices.ContainsFunc(cfg.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace }) {
		t.Errorf("NetworkHost must share the host's network namespace")
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "work/dir")); err != nil || !fi.IsDir() {
		t.Errorf("cwd not created: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "scratch")); err != nil || !fi.IsDir() {
		t.Errorf("tmpfs target not created: %v", err)
	}
}

func TestWriteConfigErrors(t *testing.T) {
	cases := map[string]func(*Spec){
		"bad id":          func(s *Spec) { s.ID = "../x" },
		"no args":         func(s *Spec) { s.Args = nil },
		"relative cwd":    func(s *Spec) { s.Cwd = "work" },
		"unknown user":    func(s *Spec) { s.User = "alice" },
		"unknown group":   func(s *Spec) { s.User = "user:wheel" },
		"unknown cap":     func(s *Spec) { s.CapAdd = []string{"CAP_FLY"} },
		"missing source":  func(s *Spec) { s.Mounts = []Mount{{Type: Bind, Source: "/no/such/dir", Target: "/x"}} },
		"relative target": func(s *Spec) { s.Mounts = []Mount{{Type: Tmpfs, Target: "x"}} },
		"missing profile": func(s *Spec) { s.Seccomp, s.SeccompProfile = SeccompProfileFile, "/no/such.json" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			s, rootfs := configFixture(t)
			mutate(&s)
			if _, err := WriteConfig(s, rootfs); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

// Mount targets and the working directory must be created inside the rootfs even when the image
// holds symlinks pointing out of it.
func TestWriteConfigConfinesSymlinks(t *testing.T) {
	s, rootfs := configFixture(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/../../../../"+outside+"/passwd", filepath.Join(rootfs, "etc/passwd2")); err != nil {
		t.Fatal(err)
	}
	s.Cwd = "/escape/work"
	s.Mounts = []Mount{{Type: Tmpfs, Target: "/escape/tmp"}}
	// A dangling symlink is refused; with its target present inside the rootfs, it is followed there.
	if _, err := WriteConfig(s, rootfs); err == nil {
		t.Error("want an error for a dangling symlink on the working directory path")
	}
	if err := os.MkdirAll(filepath.Join(rootfs, outside), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteConfig(s, rootfs); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("created %d entries outside the rootfs", len(entries))
	}
	for _, p := range []string{"work", "tmp"} {
		if _, err := os.Stat(filepath.Join(rootfs, outside, p)); err != nil {
			t.Errorf("%s should be created at the symlink's target inside the rootfs: %v", p, err)
		}
	}
}

func TestCapabilities(t *testing.T) {
	cases := []struct {
		add, drop []string
		want      int
		has, not  string
	}{
		{nil, nil, 14, "CAP_CHOWN", "CAP_SYS_ADMIN"},
		{[]string{"SYS_ADMIN"}, nil, 15, "CAP_SYS_ADMIN", ""},
		{nil, []string{"chown", "CAP_KILL"}, 12, "CAP_SETUID", "CAP_KILL"},
		{[]string{"CHOWN"}, []string{"ALL"}, 1, "CAP_CHOWN", "CAP_KILL"},
		{[]string{"ALL"}, []string{"NET_RAW"}, len(boundingCaps()) - 1, "CAP_SYS_ADMIN", "CAP_NET_RAW"},
	}
	for _, c := range cases {
		got, err := capabilities(c.add, c.drop)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want || !slices.Contains(got, c.has) || (c.not != "" && slices.Contains(got, c.not)) {
			t.Errorf("add %v drop %v: got %v", c.add, c.drop, got)
		}
	}
}
