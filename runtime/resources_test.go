package runtime

import (
	"strings"
	"testing"
)

func TestRunResources(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		t.Run("memory limit kills", func(t *testing.T) {
			s := testSpec(t, rt, state, "dd", "if=/dev/zero", "of=/big/x", "bs=1M", "count=200")
			s.Resources.Memory = 32 << 20
			s.Mounts = []Mount{{Type: Tmpfs, Target: "/big", Options: []string{"size=300m"}}}
			st, out := run(t, s)
			if st != 137 {
				t.Errorf("status %d, want 137 (OOM kill); output:\n%s", st, out)
			}
		})
		t.Run("memory within limit", func(t *testing.T) {
			s := testSpec(t, rt, state, "dd", "if=/dev/zero", "of=/big/x", "bs=1M", "count=8")
			s.Resources.Memory = 32 << 20
			s.Mounts = []Mount{{Type: Tmpfs, Target: "/big"}}
			if st, out := run(t, s); st != 0 {
				t.Errorf("status %d; output:\n%s", st, out)
			}
		})
		t.Run("pids limit stops a fork bomb", func(t *testing.T) {
			// No pipeline: the shell itself could not fork its parts once the limit is reached.
			s := testSpec(t, rt, state, "sh", "-c", "i=0; while test $i -lt 40; do sleep 3 & i=$((i+1)); done")
			s.Resources.PidsLimit = 10
			st, out := run(t, s)
			if !strings.Contains(out, "can't fork") {
				t.Errorf("status %d output %q, want forks refused", st, out)
			}
		})
		t.Run("cpu quota", func(t *testing.T) {
			s := testSpec(t, rt, state, "sh", "-c",
				"cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max")
			s.Resources.CPUs = 0.5
			if st, out := run(t, s); st != 0 || out != "50000\n" {
				t.Errorf("status %d quota %q, want 50000", st, out)
			}
		})
	})
}
