package runtime

import (
	"context"
	"errors"
	"testing"
	"time"
)

// SIGTERM ends the shell but not the child it waits for, and the runtime waited on as long as
// that child lived: the SIGKILL after the grace goes to the whole process group.
func TestExecCancelEndsWaitForChildren(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		s := testSpec(t, rt, state, "sleep", "30")
		startContainer(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := execIn(ctx, t, state, s.ID, ExecSpec{Args: []string{"sh", "-c", "echo x; sleep 21; echo y"}, StopGrace: 100 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
			t.Errorf("cancelled exec: %v after %v", err, time.Since(start))
		}
	})
}
