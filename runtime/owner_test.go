package runtime

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOwnerZombieIsDead: an exited but unreaped owner no longer protects its container.
func TestOwnerZombieIsDead(t *testing.T) {
	cmd := exec.Command("sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	defer cmd.Wait() //nolint:errcheck // reaped at the end on purpose
	o := owner{PID: cmd.Process.Pid, Start: procStart(cmd.Process.Pid)}
	if !o.alive() {
		t.Fatal("a running owner reads as dead")
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(o.PID) + "/stat")
		if err == nil && strings.Contains(string(data), ") Z ") {
			if o.alive() {
				t.Fatal("a zombie owner reads as alive")
			}
			return
		}
	}
	t.Fatal("the child never became a zombie")
}
