package container

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
)

// DefaultDetachKeys is docker's ctrl-p ctrl-q.
var DefaultDetachKeys = []byte{16, 17}

// ErrDetached ends an attach whose client typed the detach keys; the container runs on. Its text
// is docker's.
var ErrDetached = errors.New("read escape sequence")

// ParseDetachKeys reads docker's --detach-keys: a comma list of single characters and
// ctrl-<x> names (x one of a-z @ [ \ ] ^ _).
func ParseDetachKeys(v string) ([]byte, error) {
	var keys []byte
	for _, k := range strings.Split(v, ",") {
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case len(k) == 6 && strings.HasPrefix(k, "ctrl-") && k[5] >= 'a' && k[5] <= 'z':
			keys = append(keys, k[5]-'a'+1)
		case len(k) == 6 && strings.HasPrefix(k, "ctrl-") && strings.IndexByte("@[\\]^_", k[5]) >= 0:
			keys = append(keys, k[5]-'@')
		default:
			return nil, fmt.Errorf("invalid detach keys (%s) provided: use single characters or ctrl-<a-z, @, [, \\, ], ^, _>, separated by commas", v)
		}
	}
	return keys, nil
}

// TermSize is a client terminal's size.
type TermSize struct{ Rows, Cols uint16 }

// AttachOptions are one attach client's side.
type AttachOptions struct {
	Stdin          io.Reader // nil: attach no input (--no-stdin, or a container without -i)
	Stdout, Stderr io.Writer // a tty container's whole output goes to Stdout
	// DetachKeys, typed on Stdin, end the attach with ErrDetached; nil: no keys detach.
	DetachKeys []byte
	Resize     <-chan TermSize // the client terminal's sizes, for a tty container; may be nil
	// Held says the monitor holds the container's first start for this client (Spawn with
	// hold): it is not running yet, and the client must not wait for it to be.
	Held bool
}

// Attach connects to the running container's monitor and streams until the container exits
// (returning its exit code), the client detaches (ErrDetached) or ctx ends. Leaving never
// stops the container.
func (c *Container) Attach(ctx context.Context, o AttachOptions) (int, error) {
	st, err := c.State()
	if err != nil {
		return 0, err
	}
	switch {
	case o.Held:
	case st.Status == StatusRestarting && !st.MonitorLost:
		return 0, errors.New("cannot attach to a restarting container, wait until it is running")
	case !st.Running():
		return 0, errors.New("cannot attach to a stopped container, start it first")
	case st.Paused:
		return 0, errors.New("cannot attach to a paused container, unpause it first")
	}
	var conn net.Conn
	err = inDir(c.dir, func(dir string) error {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "unix", filepath.Join(dir, controlSocket))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("attach %s: its monitor does not answer: %w", c.ShortID(), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(request{Op: "attach", Stdin: o.Stdin != nil}); err != nil {
		return 0, fmt.Errorf("attach %s: %w", c.ShortID(), err)
	}
	dec := json.NewDecoder(conn)
	var rep reply
	if err := dec.Decode(&rep); err != nil {
		return 0, c.attachEnded(ctx, err)
	}
	if rep.Error != "" {
		return 0, errors.New(rep.Error)
	}
	frames, err := afterLine(dec, conn)
	if err != nil {
		return 0, c.attachEnded(ctx, err)
	}
	w := &frameWriter{w: conn}
	detached := make(chan struct{})
	if o.Stdin != nil {
		go sendInput(w, o.Stdin, o.DetachKeys, detached)
	}
	if o.Resize != nil {
		go func() {
			for sz := range o.Resize {
				var b [4]byte
				binary.BigEndian.PutUint16(b[:], sz.Rows)
				binary.BigEndian.PutUint16(b[2:], sz.Cols)
				if w.write(frameResize, b[:]) != nil {
					return
				}
			}
		}()
	}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := receive(frames, o.Stdout, o.Stderr)
		done <- result{code, err}
	}()
	select {
	case <-detached:
		return 0, ErrDetached
	case res := <-done:
		if res.err != nil {
			return 0, c.attachEnded(ctx, res.err)
		}
		return res.code, nil
	}
}

// attachEnded explains a connection that ended without an exit code.
func (c *Container) attachEnded(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var me monitorError
	if errors.As(err, &me) {
		return err
	}
	return fmt.Errorf("attach %s: the monitor closed the connection: %w", c.ShortID(), err)
}

// monitorError is a reason the monitor sent before closing the connection.
type monitorError string

func (e monitorError) Error() string { return string(e) }

// receive writes the container's output until its exit frame.
func receive(r io.Reader, stdout, stderr io.Writer) (int, error) {
	for {
		kind, data, err := readFrame(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		switch kind {
		case frameStdout:
			if stdout != nil {
				stdout.Write(data) //nolint:errcheck // a closed output is the user's choice; keep the stream going
			}
		case frameStderr:
			if stderr != nil {
				stderr.Write(data) //nolint:errcheck // as stdout
			}
		case frameExit:
			if len(data) != 4 {
				return 0, fmt.Errorf("bad exit frame of %d bytes", len(data))
			}
			return int(int32(binary.BigEndian.Uint32(data))), nil
		case frameError:
			return 0, monitorError(data)
		}
	}
}

// sendInput sends stdin to the monitor until it ends (the container keeps its stdin open, as
// docker's for a container not run with the client attached) or the detach keys are typed.
func sendInput(w *frameWriter, in io.Reader, keys []byte, detached chan<- struct{}) {
	d := detacher{keys: keys}
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			out, hit := d.feed(buf[:n])
			if len(out) > 0 && w.write(frameStdin, out) != nil {
				return
			}
			if hit {
				close(detached)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// detacher finds the detach keys in the input; a partial match is held back until the next
// byte shows whether it was the sequence (then it is swallowed) or input (then it is sent).
type detacher struct {
	keys    []byte
	matched int
}

// feed returns what of chunk (and of what was held back) is input, and whether the keys were typed.
func (d *detacher) feed(chunk []byte) ([]byte, bool) {
	if len(d.keys) == 0 {
		return chunk, false
	}
	var out bytes.Buffer
	for _, b := range chunk {
		if b != d.keys[d.matched] && d.matched > 0 {
			out.Write(d.keys[:d.matched])
			d.matched = 0
		}
		if b == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				return out.Bytes(), true
			}
			continue
		}
		out.WriteByte(b)
	}
	return out.Bytes(), false
}

// frameWriter writes whole frames from several goroutines (input, resizes).
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) write(kind byte, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.w.Write(frame(kind, data))
	return err
}
