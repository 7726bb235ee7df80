package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseHostFlags(t *testing.T) {
	u, err := ParseUlimit("nofile=1024:2048")
	if err != nil || u != (Ulimit{Name: "nofile", Soft: 1024, Hard: 2048}) {
		t.Errorf("nofile=1024:2048 = %+v, %v", u, err)
	}
	if u, err := ParseUlimit("core=-1"); err != nil || u.Soft != -1 || u.Hard != -1 {
		t.Errorf("core=-1 = %+v, %v", u, err)
	}
	h, err := ParseAddHost("db:10.0.0.5")
	if err != nil || h.Name != "db" || h.IP.String() != "10.0.0.5" {
		t.Errorf("db:10.0.0.5 = %+v, %v", h, err)
	}
	if h, err := ParseAddHost("v6:[::1]"); err != nil || h.IP.String() != "::1" {
		t.Errorf("v6:[::1] = %+v, %v", h, err)
	}
	if h, err := ParseAddHost("v6=fd00::2"); err != nil || h.IP.String() != "fd00::2" {
		t.Errorf("v6=fd00::2 = %+v, %v", h, err)
	}
	if n, err := ParseSize("128m"); err != nil || n != 128<<20 {
		t.Errorf("128m = %d, %v", n, err)
	}
	for _, bad := range []string{"nofile", "bogus=1", "nofile=x"} {
		if _, err := ParseUlimit(bad); err == nil {
			t.Errorf("ParseUlimit(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"db", "db:", ":1.2.3.4", "db:notanip", "db:host-gateway", "a b:1.2.3.4"} {
		if _, err := ParseAddHost(bad); err == nil {
			t.Errorf("ParseAddHost(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "0", "-1", "lots"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestWriteConfigHostFlags(t *testing.T) {
	s, rootfs := configFixture(t)
	h, _ := ParseAddHost("db:10.0.0.5")
	s.ExtraHosts = []HostEntry{h}
	s.Ulimits = []Ulimit{{Name: "nofile", Soft: 100, Hard: 200}, {Name: "core", Soft: -1, Hard: -1}}
	s.ShmSize = 128 << 20
	cfg, err := WriteConfig(s, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	validateConfig(t, cfg)
	want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}, {Type: "RLIMIT_CORE", Soft: unix.RLIM_INFINITY, Hard: unix.RLIM_INFINITY}}
	if !slices.Equal(cfg.Process.Rlimits, want) {
		t.Errorf("rlimits %+v, want %+v", cfg.Process.Rlimits, want)
	}
	for _, m := range cfg.Mounts {
		if m.Destination == "/dev/shm" && !slices.Equal(m.Options, []string{"nosuid", "noexec", "nodev", "mode=1777", "size=134217728"}) {
			t.Errorf("/dev/shm options %v", m.Options)
		}
	}
	hosts, err := os.ReadFile(filepath.Join(s.BundleDir, "hosts"))
	if err != nil || !strings.HasSuffix(string(hosts), "\n10.0.0.5\tdb\n") || !strings.HasPrefix(string(hosts), "127.0.0.1") {
		t.Errorf("/etc/hosts = %q, %v", hosts, err)
	}
	s.Ulimits = []Ulimit{{Name: "nofile", Soft: 300, Hard: 200}}
	if _, err := WriteConfig(s, rootfs); err == nil || !strings.Contains(err.Error(), "soft limit") {
		t.Errorf("soft above hard: %v", err)
	}
}
