package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// ptyClient is a kiln command whose terminal is a pty the test types into and reads.
type ptyClient struct {
	t      *testing.T
	master console.Console
	slave  *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	exited chan int
}

// onPty runs kiln ARGS with a fresh pty as its controlling terminal and stdio.
func onPty(t *testing.T, root string, args ...string) *ptyClient {
	t.Helper()
	master, path, err := console.NewPty()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	slave, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyClient{t: t, master: master, slave: slave, exited: make(chan int, 1)}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), signalExecEnv+"=1", "KILN_ROOT="+root)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		p.cmd.Wait()
		p.exited <- p.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		master.Close()
		slave.Close()
	})
	return p
}

func (p *ptyClient) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *ptyClient) typeIn(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.master, s); err != nil {
		p.t.Fatal(err)
	}
}

// waitOut polls the terminal for want, typing retype (if any) on every round.
func (p *ptyClient) waitOut(want, retype string) {
	p.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(p.output(), want); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q on the terminal:\n%q", want, p.output())
		}
		if retype != "" {
			p.typeIn(retype)
		}
	}
}

func (p *ptyClient) exitCode() int {
	p.t.Helper()
	select {
	case code := <-p.exited:
		return code
	case <-time.After(20 * time.Second):
		p.t.Fatalf("kiln %v did not exit:\n%q", p.cmd.Args[1:], p.output())
		return -1
	}
}

// canonical reports whether the client's terminal is back in cooked mode.
func (p *ptyClient) canonical() bool {
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	return err == nil && tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ECHO != 0
}

func TestAttachTTY(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "box", "later") })
	ok(t, root, "run", "-d", "-it", "--name", "box", "busybox", "sh")

	a := onPty(t, root, "attach", "box")
	a.typeIn("echo hi-$((1+2))\n")
	a.waitOut("hi-3", "")
	if err := a.master.Resize(console.WinSize{Height: 37, Width: 99}); err != nil {
		t.Fatal(err)
	}
	a.waitOut("37 99", "stty size\n") // SIGWINCH → kiln attach → the monitor's pty → the container's
	a.typeIn("\x10\x11")
	if code := a.exitCode(); code != 1 {
		t.Fatalf("detach: exit %d\n%q", code, a.output())
	}
	a.waitOut("read escape sequence", "") // the pty may still hold the last output when kiln has exited
	if !a.canonical() {
		t.Error("the terminal was left in raw mode after detaching")
	}
	if in := inspectOne(t, root, "box"); !in.State.Running {
		t.Fatalf("detached container: %+v", in.State)
	}

	// SIGTERM and SIGKILL of a client leave the container and its monitor as they were.
	b := onPty(t, root, "attach", "box")
	b.typeIn("echo b-$((2*4))\n")
	b.waitOut("b-8", "")
	b.cmd.Process.Signal(syscall.SIGTERM)
	if code := b.exitCode(); code != 128+int(syscall.SIGTERM) || !b.canonical() {
		t.Errorf("SIGTERM of attach: exit %d, terminal restored %v", code, b.canonical())
	}
	k := onPty(t, root, "attach", "box")
	k.typeIn("echo k-$((3*3))\n")
	k.waitOut("k-9", "")
	k.cmd.Process.Kill()
	k.exitCode()
	if in := inspectOne(t, root, "box"); !in.State.Running {
		t.Fatalf("after its clients were killed: %+v", in.State)
	}

	c := onPty(t, root, "container", "attach", "box")
	c.typeIn("echo c-$((5+5)); exit 3\n")
	if code := c.exitCode(); code != 3 || !strings.Contains(c.output(), "c-10") {
		t.Errorf("exit 3 while attached: exit %d\n%q", code, c.output())
	}
	if st := psRows(t, root)["box"].Status; !strings.HasPrefix(st, "Exited (3)") {
		t.Errorf("after exit 3: %q", st)
	}
	if logs := ok(t, root, "logs", "box").stdout; !strings.Contains(logs, "hi-3") || !strings.Contains(logs, "c-10") {
		t.Errorf("a tty container's logs: %q", logs)
	}

	// docker's start -ai: a detached start, then attach.
	ok(t, root, "create", "-it", "--name", "later", "busybox", "sh")
	s := onPty(t, root, "start", "-ai", "later")
	s.waitOut("s-8", "echo s-$((4+4))\n") // retyped: a starting shell's line editor may drop what came first
	s.typeIn("exit 6\n")
	if code := s.exitCode(); code != 6 || !strings.Contains(s.output(), "s-8") {
		t.Errorf("start -ai: exit %d\n%q", code, s.output())
	}
}

// start -ai holds the start until it is attached, as docker attaches before it starts: a
// container that exits at once shows its output, piped input reaches its first read, and a
// command that cannot run says why with docker's 127.
func TestStartAttachBeforeStart(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "quick", "reader", "bad") })
	ok(t, root, "create", "-i", "--name", "quick", "busybox", "echo", "at-once")
	if r := kiln(t, root, nil, "start", "-ai", "quick"); r.code != 0 || r.stdout != "at-once\n" {
		t.Errorf("start -ai of a container that exits at once: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	ok(t, root, "create", "-i", "--name", "reader", "busybox", "sh", "-c", "read a; echo got $a; exit 3")
	if r := kiln(t, root, strings.NewReader("early\n"), "start", "-ai", "reader"); r.code != 3 || r.stdout != "got early\n" {
		t.Errorf("start -ai with piped input: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	ok(t, root, "create", "-i", "--name", "bad", "busybox", "nosuchcmd")
	if r := kiln(t, root, nil, "start", "-ai", "bad"); r.code != 127 || !strings.Contains(r.stderr, "nosuchcmd") {
		t.Errorf("start -ai of a command that does not exist: exit %d, %s", r.code, r.stderr)
	}
	if st := inspectOne(t, root, "quick").State; st.Status != "exited" || st.ExitCode != 0 {
		t.Errorf("after start -ai: %+v", st)
	}
}

func TestAttachStdinSignalsAndErrors(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "reader", "term", "trapper") })
	ok(t, root, "run", "-d", "-i", "--name", "reader", "busybox", "sh", "-c", "read a; echo got $a; read b; echo got $b >&2; exit 4")
	r := kiln(t, root, strings.NewReader("one\ntwo\n"), "attach", "reader")
	if r.code != 4 || r.stdout != "got one\n" || r.stderr != "got two\n" {
		t.Errorf("attach with piped stdin: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := kiln(t, root, nil, "attach", "reader"); r.code != 1 || !strings.Contains(r.stderr, "cannot attach to a stopped container, start it first") {
		t.Errorf("attach to a stopped container: exit %d, %s", r.code, r.stderr)
	}

	ok(t, root, "run", "-d", "-it", "--name", "term", "busybox", "sh")
	if r := kiln(t, root, strings.NewReader("x\n"), "attach", "term"); r.code != 1 || !strings.Contains(r.stderr, "the input device is not a TTY") {
		t.Errorf("piped stdin to a tty container: exit %d, %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "attach", "--detach-keys", "ctrl-1", "--no-stdin", "term"); r.code != 1 || !strings.Contains(r.stderr, "invalid detach keys (ctrl-1) provided") {
		t.Errorf("bad --detach-keys: exit %d, %s", r.code, r.stderr)
	}
	ok(t, root, "rm", "-f", "term")

	// --sig-proxy (the default without -t): SIGTERM to kiln attach goes to the container.
	ok(t, root, "run", "-d", "-i", "--name", "trapper", "busybox", "sh", "-c", `trap "echo got-term; exit 7" TERM; while :; do echo tick; sleep 0.1; done`)
	var out lockedOutput
	cmd := exec.Command(os.Args[0], "attach", "trapper")
	cmd.Env = append(os.Environ(), signalExecEnv+"=1", "KILN_ROOT="+root)
	stdin, _ := cmd.StdinPipe()
	defer stdin.Close()
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "attach to stream", func() bool { return strings.Contains(out.String(), "tick") })
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 7 || !strings.Contains(out.String(), "got-term") {
		t.Errorf("sig-proxy: exit %d, output %q", code, out.String())
	}
}

// lockedOutput is a child's output, read while it runs.
type lockedOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
