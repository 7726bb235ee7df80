package runtime

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestWriteConfigHostAccess(t *testing.T) {
	s, rootfs := configFixture(t)
	s.Privileged, s.HostPID, s.HostIPC = true, true, true
	s.Ulimits = []Ulimit{{Name: "nofile", Soft: 10, Hard: 20}, {Name: "core", Soft: RlimitInfinity, Hard: RlimitInfinity}}
	s.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
	s.Resources = Resources{Memory: 32 << 20, MemorySwap: -1, CpusetCPUs: "0"}
	s.GroupAdd = []string{"daemon", "4321"}
	_, haveTini := exec.LookPath(InitBinary)
	s.Init = haveTini == nil
	cfg, err := WriteConfig(s, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Linux
	if l.Seccomp != nil || l.MaskedPaths != nil || l.ReadonlyPaths != nil {
		t.Errorf("--privileged keeps seccomp %v, masked %v, read-only %v", l.Seccomp != nil, l.MaskedPaths, l.ReadonlyPaths)
	}
	if cfg.Process.NoNewPrivileges {
		t.Errorf("--privileged keeps no_new_privs")
	}
	if got := cfg.Process.Capabilities.Bounding; !slices.Equal(got, boundingCaps()) {
		t.Errorf("--privileged caps %v, want kiln's bounding set", got)
	}
	if !slices.ContainsFunc(l.Resources.Devices, func(d specs.LinuxDeviceCgroup) bool { return d.Allow && d.Type == "" && d.Access == "rwm" }) || len(l.Devices) == 0 {
		t.Errorf("--privileged: devices %d, rules %+v", len(l.Devices), l.Resources.Devices)
	}
	for _, ns := range l.Namespaces {
		if ns.Type == specs.PIDNamespace || ns.Type == specs.IPCNamespace {
			t.Errorf("--pid/--ipc host keeps namespace %s", ns.Type)
		}
	}
	if !slices.Contains(cfg.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 20}) ||
		!slices.Contains(cfg.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: RlimitInfinity, Hard: RlimitInfinity}) || len(cfg.Process.Rlimits) != 2 {
		t.Errorf("rlimits %+v", cfg.Process.Rlimits)
	}
	if l.Sysctl["net.ipv4.ip_forward"] != "1" || *l.Resources.Memory.Swap != -1 || l.Resources.CPU.Cpus != "0" {
		t.Errorf("sysctl %v, swap %d, cpuset %+v", l.Sysctl, *l.Resources.Memory.Swap, l.Resources.CPU)
	}
	if g := cfg.Process.User.AdditionalGids; !slices.Contains(g, 1) || !slices.Contains(g, 4321) {
		t.Errorf("--group-add daemon 4321: gids %v", g)
	}
	shm := cfg.Mounts[slices.IndexFunc(cfg.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/shm" })]
	if shm.Type != "bind" || shm.Source != "/dev/shm" {
		t.Errorf("--ipc host: /dev/shm %+v", shm)
	}
	if s.Init {
		if !slices.Equal(cfg.Process.Args, []string{"/dev/init", "-s", "--", "sh"}) ||
			!slices.ContainsFunc(cfg.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/init" && slices.Contains(m.Options, "ro") }) {
			t.Errorf("--init: args %v", cfg.Process.Args)
		}
	}

	s, rootfs = configFixture(t)
	s.Privileged, s.Seccomp, s.SeccompProfile = true, SeccompProfileFile, writeProfile(t)
	if cfg, err = WriteConfig(s, rootfs); err != nil || cfg.Linux.Seccomp == nil {
		t.Errorf("--privileged with an explicit seccomp profile must apply it: %v", err)
	}

	s, rootfs = configFixture(t)
	s.ShmSize = 3 << 20
	cfg, err = WriteConfig(s, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	shm = cfg.Mounts[slices.IndexFunc(cfg.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/shm" })]
	if !slices.Contains(shm.Options, "size=3072k") || slices.Contains(shm.Options, "size=65536k") {
		t.Errorf("--shm-size 3m: %v", shm.Options)
	}
}

func TestDNSApply(t *testing.T) {
	base := []byte("# host\nnameserver 10.0.0.1\nsearch corp\noptions rotate\nsortlist 10.0.0.0\n")
	got := string(DNS{Servers: []netip.Addr{netip.MustParseAddr("9.9.9.9")}}.apply(base))
	if got != "# host\nsearch corp\noptions rotate\nsortlist 10.0.0.0\nnameserver 9.9.9.9\n" {
		t.Errorf("--dns: %q", got)
	}
	got = string(DNS{Search: []string{"."}, Options: []string{"ndots:2", "edns0"}}.apply(base))
	if got != "# host\nnameserver 10.0.0.1\nsortlist 10.0.0.0\noptions ndots:2 edns0\n" {
		t.Errorf("--dns-search . --dns-option: %q", got)
	}
}

func TestCheckHostAccess(t *testing.T) {
	for _, tc := range []struct {
		s    Spec
		want string
	}{
		{Spec{HostAccess: HostAccess{Privileged: true}}, ""},
		{Spec{HostAccess: HostAccess{Privileged: true}, rootless: true}, "--privileged needs root"},
		{Spec{HostAccess: HostAccess{Devices: []Device{{Host: "/dev/fuse"}}}, rootless: true}, "--device needs root"},
		{Spec{Resources: Resources{MemorySwap: -1}, rootless: true}, "--memory-swap needs --memory"},
		{Spec{Resources: Resources{MemorySwap: 1 << 30}}, "--memory-swap needs --memory"},
		{Spec{Resources: Resources{Memory: 2 << 30, MemorySwap: 1 << 30}}, "must be at least --memory"},
		{Spec{Resources: Resources{CpusetCPUs: "0-"}}, "invalid --cpuset-cpus"},
		{Spec{HostAccess: HostAccess{HostIPC: true, ShmSize: 1 << 20}}, "--ipc host"},
		{Spec{HostAccess: HostAccess{ExtraHosts: []HostEntry{{Name: "gw", Gateway: true}}}, Network: NetworkNone}, "host-gateway needs"},
		{Spec{HostAccess: HostAccess{ExtraHosts: []HostEntry{{Name: "gw", Gateway: true}}}, Network: NetworkBridge}, ""},
		{Spec{HostAccess: HostAccess{Sysctls: map[string]string{"kernel.panic": "1"}}}, "not allowed"},
		{Spec{HostAccess: HostAccess{Sysctls: map[string]string{"fs.mqueue.msg_max": "20"}}}, ""},
	} {
		err := checkHostAccess(tc.s)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.s.HostAccess, err, tc.want)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]Device{
		"/dev/fuse":           {Host: "/dev/fuse"},
		"/dev/fuse:r":         {Host: "/dev/fuse", Permissions: "r"},
		"/dev/fuse:/dev/f":    {Host: "/dev/fuse", Container: "/dev/f"},
		"/dev/fuse:/dev/f:rw": {Host: "/dev/fuse", Container: "/dev/f", Permissions: "rw"},
	} {
		if got, err := ParseDevice(in); err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"fuse", "/dev/fuse:dev/f", "/dev/fuse:/dev/f:rwx", "/dev/fuse:/dev/f:rr", "/a:/b:r:x"} {
		if _, err := ParseDevice(bad); err == nil || !strings.Contains(err.Error(), "--device") {
			t.Errorf("ParseDevice(%q): %v", bad, err)
		}
	}
}

// writeProfile writes a minimal docker-format seccomp profile.
func writeProfile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(p, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// swapAccounting reads both cgroup layouts: v1's memory hierarchy and v2's unified files.
func TestSwapAccounting(t *testing.T) {
	mk := func(files ...string) string {
		root := t.TempDir()
		for _, f := range files {
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	for _, tc := range []struct {
		files   []string
		unified bool
		want    bool
	}{
		{[]string{"memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes"}, false, true},
		{[]string{"memory/memory.limit_in_bytes"}, false, false},
		{[]string{"system.slice/memory.max", "system.slice/memory.swap.max"}, true, true},
		{[]string{"system.slice/memory.max"}, true, false},
		{[]string{"system.slice/cpu.max"}, true, true}, // no memory controller to ask
	} {
		if got := swapAccounting(mk(tc.files...), tc.unified); got != tc.want {
			t.Errorf("%v (unified %v): %v, want %v", tc.files, tc.unified, got, tc.want)
		}
	}
}

func TestCheckCpusetMems(t *testing.T) {
	online := filepath.Join(t.TempDir(), "online")
	if err := os.WriteFile(online, []byte("0-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]string{"0": "", "0-1": "", "1": "", "2": "memory node 2 is not available (available: 0 1)", "x": "use a list such as 0-1"} {
		err := checkCpusetMems(v, online)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("checkCpusetMems(%q) = %v, want %q", v, err, want)
		}
	}
	if err := checkCpusetMems("0", filepath.Join(t.TempDir(), "none")); err != nil { // no NUMA: node 0 alone
		t.Errorf("node 0 without a node list: %v", err)
	}
	if err := checkCpusetMems("1", filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("node 1 accepted without a node list")
	}
}
