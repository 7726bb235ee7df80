package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/runtime"
)

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string]string{"ctrl-p,ctrl-q": "\x10\x11", "a,b": "ab", "ctrl-@,ctrl-_,ctrl-[": "\x00\x1f\x1b", "ctrl-x,x": "\x18x"} {
		got, err := ParseDetachKeys(in)
		if err != nil || string(got) != want {
			t.Errorf("ParseDetachKeys(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ctrl-", "ctrl-1", "ab", "ctrl-p,", "shift-a"} {
		if _, err := ParseDetachKeys(bad); err == nil || !strings.Contains(err.Error(), "invalid detach keys") {
			t.Errorf("ParseDetachKeys(%q): %v", bad, err)
		}
	}
}

func TestDetacherHoldsPartialMatches(t *testing.T) {
	d := detacher{keys: []byte{16, 17}}
	var sent []byte
	for _, chunk := range []string{"ab\x10", "c\x10", "\x10", "\x11tail"} {
		out, hit := d.feed([]byte(chunk))
		sent = append(sent, out...)
		if hit {
			break
		}
	}
	if string(sent) != "ab\x10c\x10" {
		t.Errorf("sent %q: a ctrl-p that was input must pass, the keys must not", sent)
	}
	if _, hit := (&detacher{}).feed([]byte{16, 17}); hit {
		t.Error("no keys detached")
	}
}

// lockedBuffer collects a stream that tests read while it is written.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitText polls until get() contains want.
func waitText(t *testing.T, what string, get func() string, want string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(get(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q in %q", what, want, get())
		}
	}
}

// superviseDetached runs c as a detached monitor does, in the background.
func superviseDetached(t *testing.T, s *Store, c *Container) <-chan int {
	t.Helper()
	done, ended := make(chan int, 1), make(chan struct{})
	rt := testRuntime(t)
	go func() {
		defer close(ended)
		code, err := s.Supervise(context.Background(), rt, c, Streams{Detached: true})
		if err != nil {
			t.Errorf("Supervise: %v", err)
		}
		done <- code
	}()
	t.Cleanup(func() {
		s.Stop(context.Background(), rt, c, 0) //nolint:errcheck // stopped already, normally
		<-ended
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, _ := c.State(); st.Pid > 0 {
			return done
		}
		if time.Now().After(deadline) {
			t.Fatal("no pid recorded")
		}
	}
}

type attachResult struct {
	code int
	err  error
}

func attach(c *Container, o AttachOptions) <-chan attachResult {
	res := make(chan attachResult, 1)
	go func() {
		code, err := c.Attach(context.Background(), o)
		res <- attachResult{code, err}
	}()
	return res
}

func awaitAttach(t *testing.T, res <-chan attachResult) attachResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("attach did not end")
		return attachResult{}
	}
}

func TestAttachTerminalDetachAndExit(t *testing.T) {
	args := []string{"sh"}
	s, c := newRunnableWith(t, Config{Args: args, OpenStdin: true, Spec: runtime.Spec{Args: args, Terminal: true}})
	exited := superviseDetached(t, s, c)

	in, inW := io.Pipe()
	var out lockedBuffer
	sizes := make(chan TermSize, 1)
	sizes <- TermSize{Rows: 41, Cols: 103}
	res := attach(c, AttachOptions{Stdin: in, Stdout: &out, DetachKeys: DefaultDetachKeys, Resize: sizes})
	io.WriteString(inW, "stty size; echo m-$((2+3))\n")
	waitText(t, "a command typed into sh", out.String, "m-5")
	waitText(t, "the pty's size", out.String, "41 103")
	io.WriteString(inW, "\x10\x11")
	if r := awaitAttach(t, res); !errors.Is(r.err, ErrDetached) {
		t.Fatalf("detach keys: %d, %v", r.code, r.err)
	}
	if st, _ := c.State(); st.Status != StatusRunning {
		t.Fatalf("after detaching: %+v", st)
	}

	in2, inW2 := io.Pipe()
	var out2 lockedBuffer
	res = attach(c, AttachOptions{Stdin: in2, Stdout: &out2, DetachKeys: DefaultDetachKeys})
	io.WriteString(inW2, "echo again-$((1+1)); exit 3\n")
	if r := awaitAttach(t, res); r.err != nil || r.code != 3 {
		t.Fatalf("exit 3 while attached: %d, %v", r.code, r.err)
	}
	if !strings.Contains(out2.String(), "again-2") {
		t.Errorf("second client's output %q", out2.String())
	}
	if code := <-exited; code != 3 {
		t.Errorf("Supervise = %d", code)
	}
	var logs bytes.Buffer
	c.Logs(context.Background(), LogOptions{Tail: -1}, &logs, &logs)
	if !strings.Contains(logs.String(), "m-5") || !strings.Contains(logs.String(), "again-2") {
		t.Errorf("a tty container's log: %q", logs.String())
	}
	if _, err := c.Attach(context.Background(), AttachOptions{}); err == nil || err.Error() != "cannot attach to a stopped container, start it first" {
		t.Errorf("attach to a stopped container: %v", err)
	}
}

func TestAttachTwoClientsStdinPipe(t *testing.T) {
	args := []string{"sh", "-c", `while read l; do echo "got $l"; echo "err $l" >&2; [ "$l" = quit ] && exit 5; done`}
	s, c := newRunnableWith(t, Config{Args: args, OpenStdin: true, Spec: runtime.Spec{Args: args}})
	superviseDetached(t, s, c)
	inA, inWA := io.Pipe()
	inB, inWB := io.Pipe()
	var outA, outB, errB lockedBuffer
	resA := attach(c, AttachOptions{Stdin: inA, Stdout: &outA})
	resB := attach(c, AttachOptions{Stdin: inB, Stdout: &outB, Stderr: &errB})
	io.WriteString(inWA, "from-a\n")
	waitText(t, "A's own line", outA.String, "got from-a")
	io.WriteString(inWB, "from-b\n") // B is attached once its input is taken
	waitText(t, "B's line at A", outA.String, "got from-b")
	waitText(t, "B's line at B", outB.String, "got from-b")
	waitText(t, "B's stderr", errB.String, "err from-b")
	io.WriteString(inWA, "quit\n")
	for _, res := range []<-chan attachResult{resA, resB} {
		if r := awaitAttach(t, res); r.err != nil || r.code != 5 {
			t.Errorf("client at the exit: %d, %v", r.code, r.err)
		}
	}
}

// A client that reads nothing is disconnected; the container's output never waits for it.
func TestAttachSlowClientIsDropped(t *testing.T) {
	args := []string{"sh", "-c", "read x; head -c 24000000 /dev/zero; echo done"}
	s, c := newRunnableWith(t, Config{Args: args, OpenStdin: true, Spec: runtime.Spec{Args: args}})
	exited := superviseDetached(t, s, c)
	var conn net.Conn
	err := inDir(c.dir, func(dir string) error {
		var err error
		conn, err = net.Dial("unix", filepath.Join(dir, controlSocket))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	json.NewEncoder(conn).Encode(request{Op: "attach", Stdin: true})
	conn.Write(frame(frameStdin, []byte("go\n")))
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the container waited for a client that reads nothing")
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	if err != nil || n >= 24000000 {
		t.Errorf("the slow client got %d bytes (%v): it should have been cut off, its connection closed", n, err)
	}
}
