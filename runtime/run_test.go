package runtime

import (
	"strings"
	"testing"
)

func TestRunBasics(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			state := t.TempDir()
			requireRuntime(t, rt, state)
			cases := []struct {
				name string
				args []string
				want ExitStatus
				out  string
			}{
				{"true", []string{"true"}, 0, ""},
				{"exit 3", []string{"sh", "-c", "exit 3"}, 3, ""},
				{"pid 1", []string{"sh", "-c", "echo $$"}, 0, "1\n"},
				{"not found", []string{"no-such-command"}, 127, ""},
				{"not executable", []string{"/etc/passwd"}, 126, ""},
				{"child killed by signal", []string{"sh", "-c", "sleep 100 & kill -9 $!; wait $!"}, 137, ""},
				{"hostname", []string{"hostname"}, 0, "box\n"},
				{"only lo", []string{"sh", "-c", "ls /sys/class/net"}, 0, "lo\n"},
				{"sysrq read-only", []string{"sh", "-c", "echo h > /proc/sysrq-trigger"}, 1, ""},
				{"cannot mount", []string{"mount", "-t", "tmpfs", "none", "/tmp"}, 1, "mount: permission denied (are you root?)\n"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					s := testSpec(t, rt, state, c.args...)
					s.Hostname = "box"
					st, out := run(t, s)
					if st != c.want {
						t.Errorf("exit status %d, want %d; output:\n%s", st, c.want, out)
					}
					if c.out != "" && out != c.out {
						t.Errorf("output %q, want %q", out, c.out)
					}
				})
			}
		})
	}
}

func TestRunUser(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			state := t.TempDir()
			requireRuntime(t, rt, state)
			for user, want := range map[string]string{
				"":            "uid=0(root) gid=0(root)",
				"user":        "uid=1000(user) gid=1000(user)",
				"1000":        "uid=1000(user) gid=1000(user)",
				"1000:1":      "uid=1000(user) gid=1(daemon)",
				"nobody:user": "uid=65534(nobody) gid=1000(user)",
				"4242:4343":   "uid=4242 gid=4343",
			} {
				s := testSpec(t, rt, state, "id")
				s.User = user
				st, out := run(t, s)
				if st != 0 || !strings.HasPrefix(out, want) {
					t.Errorf("user %q: status %d, output %q, want prefix %q", user, st, out, want)
				}
			}
		})
	}
}
