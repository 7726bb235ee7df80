package runtime

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containerd/console"
)

func TestExecTerminal(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		s := testSpec(t, rt, state, "sleep", "30")
		startContainer(t, s)
		pty, slavePath, err := console.NewPty()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		defer pty.Close()
		slave, err := os.OpenFile(slavePath, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer slave.Close()
		var out bytes.Buffer
		copied := make(chan struct{})
		go func() { io.Copy(&out, pty); close(copied) }()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := execIn(ctx, t, state, s.ID, ExecSpec{Args: []string{"sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; echo TERM=$TERM"},
			Terminal: true, Stdin: slave, Stdout: slave, Stderr: slave})
		if err != nil || st != 0 {
			t.Fatalf("status %d: %v", st, err)
		}
		slave.Close()
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
			pty.Close()
			<-copied
		}
		got := strings.ReplaceAll(out.String(), "\r", "")
		for _, want := range []string{"is-a-tty\n", "TERM=xterm\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("terminal output %q lacks %q", got, want)
			}
		}
	})
}
