package container

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/containerd/console"

	"github.com/kiln-build/kiln/runtime"
)

// ownTerminal is the pty a detached monitor gives a -t container for one run: the runtime gets
// the slave as its stdio (and relays it to the container's own pty), the monitor keeps the
// master, copies its output to the log and the attach clients, and writes their input to it.
type ownTerminal struct {
	master console.Console
	slave  *os.File
	copied chan struct{} // closed once the output copy ended
}

// drainGrace bounds the wait for a run's last output once it has exited.
const drainGrace = 2 * time.Second

// openTerminal makes the run's pty and points spec's stdio at its slave.
func (m *monitor) openTerminal(spec *runtime.Spec, log io.Writer) (*ownTerminal, error) {
	master, path, err := console.NewPty()
	if err != nil {
		return nil, fmt.Errorf("container %s: pty: %w", m.c.ShortID(), err)
	}
	// O_NOCTTY: the monitor leads its session and must not make the pty its own terminal.
	slave, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("container %s: pty: %w", m.c.ShortID(), err)
	}
	t := &ownTerminal{master: master, slave: slave, copied: make(chan struct{})}
	// Raw: the runtime relays bytes; the line discipline (echo, ^C) is the container's own pty's.
	if sc, err := console.ConsoleFromFile(slave); err == nil {
		err = sc.SetRaw()
		if err == nil {
			err = master.Resize(m.hub.termSize())
		}
		if err != nil {
			t.close()
			return nil, fmt.Errorf("container %s: pty: %w", m.c.ShortID(), err)
		}
	}
	spec.Stdin, spec.Stdout, spec.Stderr = slave, slave, slave
	out := io.MultiWriter(log, m.hub.writer(frameStdout))
	go func() {
		io.Copy(out, master) //nolint:errcheck // ends with EIO once the runtime, the last slave holder, exits
		close(t.copied)
	}()
	return t, nil
}

// started drops the monitor's slave: the runtime holds it now, and its exit ends the output.
func (t *ownTerminal) started() { t.slave.Close() }

// drain waits for the run's last output to be copied.
func (t *ownTerminal) drain() {
	select {
	case <-t.copied:
	case <-time.After(drainGrace):
		t.master.Close() // something the runtime started holds the slave still
		<-t.copied
	}
}

func (t *ownTerminal) close() {
	t.master.Close()
	t.slave.Close()
}
