package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// forEachRuntime runs f against every OCI runtime that works on this host.
func forEachRuntime(t *testing.T, f func(t *testing.T, rt, state string)) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			state := t.TempDir()
			requireRuntime(t, rt, state)
			f(t, rt, state)
		})
	}
}

func TestRunSecurity(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		cases := []struct {
			name   string
			mutate func(*Spec)
			script string
			want   string
		}{
			{"default caps", nil, "grep CapEff /proc/self/status", "CapEff:\t00000000a80425fb\n"},
			{"cap-drop all", func(s *Spec) { s.CapDrop = []string{"ALL"} }, "grep CapEff /proc/self/status", "CapEff:\t0000000000000000\n"},
			{"cap-add net_admin", func(s *Spec) { s.CapAdd = []string{"NET_ADMIN"} }, "grep CapEff /proc/self/status", "CapEff:\t00000000a80435fb\n"},
			{"seccomp default", nil, "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status", "NoNewPrivs:\t1\nSeccomp:\t2\n"},
			{"seccomp unconfined", func(s *Spec) { s.Seccomp, s.NewPrivileges = SeccompUnconfined, true },
				"grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status", "NoNewPrivs:\t0\nSeccomp:\t0\n"},
			{"masked timer_list", nil, "wc -c < /proc/timer_list", "0\n"},
			{"ro /proc/sys", nil, "(echo 1 > /proc/sys/kernel/cad_pid) 2>/dev/null || echo denied", "denied\n"},
			{"ro sysfs", nil, "touch /sys/x 2>/dev/null || echo denied", "denied\n"},
			{"devices", nil, "ls /dev | tr '\\n' ' '", "console core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero "},
			{"nofile", nil, "ulimit -n", ""},
			{"hosts", nil, "grep -c localhost /etc/hosts", "2\n"},
			{"host network", func(s *Spec) { s.Network = NetworkHost }, "test -e /sys/class/net/lo && ls /sys/class/net | wc -l", ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := testSpec(t, rt, state, "sh", "-c", c.script)
				if c.mutate != nil {
					c.mutate(&s)
				}
				st, out := run(t, s)
				if st != 0 {
					t.Fatalf("status %d: %s", st, out)
				}
				switch c.name {
				case "nofile":
					if out != "1048576\n" && out != "20000\n" {
						t.Errorf("nofile %q", out)
					}
				case "host network":
					if out == "1\n" {
						t.Errorf("host network shows only lo")
					}
				case "devices":
					if !strings.Contains(out, "null") || strings.Contains(out, "sda") {
						t.Errorf("devices %q", out)
					}
				default:
					if out != c.want {
						t.Errorf("got %q, want %q", out, c.want)
					}
				}
			})
		}
	})
}

func TestRunMounts(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		rw, ro := t.TempDir(), t.TempDir()
		os.WriteFile(filepath.Join(ro, "in"), []byte("hello\n"), 0o644)
		s := testSpec(t, rt, state, "sh", "-c", `echo data > /rw/out && cat /ro/in && ! touch /ro/x 2>/dev/null &&
			grep -q ' /scratch tmpfs ' /proc/mounts && echo t > /scratch/t && mkdir -p /made && touch /made/file`)
		s.Mounts = []Mount{
			{Type: Bind, Source: rw, Target: "/rw"},
			{Type: Bind, Source: ro, Target: "/deep/ro", ReadOnly: true},
			{Type: Tmpfs, Target: "/scratch"},
		}
		s.Mounts[1].Target = "/ro"
		st, out := run(t, s)
		if st != 0 || out != "hello\n" {
			t.Fatalf("status %d output %q", st, out)
		}
		if data, _ := os.ReadFile(filepath.Join(rw, "out")); string(data) != "data\n" {
			t.Errorf("rw bind: host sees %q", data)
		}
		// The upper dir holds the process's changes only: no mount stubs (/proc, /rw, /etc/hosts...).
		var got []string
		filepath.Walk(s.Upper, func(p string, _ os.FileInfo, _ error) error {
			if rel, _ := filepath.Rel(s.Upper, p); rel != "." {
				got = append(got, rel)
			}
			return nil
		})
		if strings.Join(got, ",") != "made,made/file" {
			t.Errorf("upper dir holds %v, want only made/file", got)
		}
		if _, err := os.Stat(filepath.Join(s.BundleDir, "rootfs")); !os.IsNotExist(err) {
			t.Errorf("rootfs mountpoint left behind: %v", err)
		}
	})
}

func TestRunReadOnlyRootfs(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		s := testSpec(t, rt, state, "sh", "-c", "touch /x 2>/dev/null && echo wrote; touch /tmp/y 2>/dev/null && echo wrote tmp; echo done")
		s.ReadOnlyRootfs = true
		if st, out := run(t, s); st != 0 || out != "done\n" {
			t.Fatalf("status %d output %q", st, out)
		}
	})
}

func TestRunEnvAndCwd(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		s := testSpec(t, rt, state, "sh", "-c", "echo $FOO $HOME $PATH; pwd")
		s.Env, s.Cwd, s.User = []string{"FOO=bar"}, "/new/dir", "user"
		want := "bar /home/user " + strings.TrimPrefix(DefaultPath, "PATH=") + "\n/new/dir\n"
		if st, out := run(t, s); st != 0 || out != want {
			t.Fatalf("status %d output %q, want %q", st, out, want)
		}
	})
}
