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

func TestRunTerminal(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
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
		if err := pty.Resize(console.WinSize{Height: 33, Width: 101}); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		copied := make(chan struct{})
		go func() { io.Copy(&out, pty); close(copied) }()

		s := testSpec(t, rt, state, "sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; echo TERM=$TERM; readlink /proc/self/fd/1")
		s.Terminal = true
		s.Stdin, s.Stdout, s.Stderr = slave, slave, slave
		os.MkdirAll(s.Upper, 0o755)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := rtOf(s).Run(ctx, s)
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
		for _, want := range []string{"is-a-tty\n", "TERM=xterm\n", "/dev/pts/0\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("terminal output %q lacks %q", got, want)
			}
		}
	})
}
