package container

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/containerd/console"
)

// An attach connection is the control socket's "attach" request, its reply line, and then
// frames both ways: a kind byte and a 4-byte big-endian length before each payload.
const (
	frameStdin  byte = 0 // client → monitor: input for the container
	frameStdout byte = 1 // monitor → client: the container's stdout (a tty's whole output)
	frameStderr byte = 2 // monitor → client: the container's stderr
	frameExit   byte = 3 // monitor → client: the container exited; payload: its code, 4 bytes
	frameResize byte = 4 // client → monitor: the terminal's size, rows and columns, 2 bytes each
	frameError  byte = 5 // monitor → client: why the monitor ends this connection
)

// maxFrame bounds one frame's payload, so a bad peer cannot make the other allocate without end.
const maxFrame = 1 << 20

// attachLimit is how far one attach client may fall behind the container's output before the
// monitor disconnects it: the container never waits for a client, and no client's backlog grows
// without bound. Other clients and the log are unaffected.
const attachLimit = 4 << 20

// errTooSlow is what a disconnected slow client is told.
var errTooSlow = fmt.Errorf("this attach client fell %d KiB behind the container's output and was disconnected; the container runs on", attachLimit>>10)

func frame(kind byte, data []byte) []byte {
	b := make([]byte, 5+len(data))
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:5], uint32(len(data)))
	copy(b[5:], data)
	return b
}

// afterLine is the stream past the JSON line dec has read from r: frames follow its newline.
func afterLine(dec *json.Decoder, r io.Reader) (io.Reader, error) {
	rest := io.MultiReader(dec.Buffered(), r)
	var nl [1]byte
	if _, err := io.ReadFull(rest, nl[:]); err != nil {
		return nil, err
	}
	if nl[0] != '\n' {
		return nil, errors.New("attach: the peer does not speak kiln's attach protocol")
	}
	return rest, nil
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("attach frame of %d bytes: the peer is not a kiln monitor or client", n)
	}
	data := make([]byte, n)
	_, err := io.ReadFull(r, data)
	return head[0], data, err
}

// hub is a monitor's attach clients: the container's output goes to every one of them, input
// comes from any.
type hub struct {
	mu      sync.Mutex
	clients map[*attachClient]struct{}
	running bool            // a run is under way: clients may join
	held    chan struct{}   // non-nil while the first run waits for a client, closed when one joins
	input   io.Writer       // where clients' input goes (a pty master or a stdin pipe); nil: dropped
	term    console.Console // the running container's pty master; nil without a tty
	size    console.WinSize // the last size a client asked for, kept for the next run's pty
	writers sync.WaitGroup  // the clients' writers, waited for before the monitor exits
}

func newHub() *hub {
	return &hub{clients: map[*attachClient]struct{}{}, size: console.WinSize{Height: 24, Width: 80}}
}

// started opens the hub for a run; term is its pty master (nil without a tty), input where
// clients' input goes.
func (h *hub) started(term console.Console, input io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running, h.term, h.input = true, term, input
}

// hold lets clients join before the first run, their input going to input (nil: dropped); the
// channel is closed when the first one has joined.
func (h *hub) hold(input io.Writer) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held, h.input = make(chan struct{}), input
	return h.held
}

// termSize is the size for the next run's pty.
func (h *hub) termSize() console.WinSize {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.size
}

// exited tells every client the run's exit code and lets them go: docker's attach ends with
// the container's first exit, restart policy or not.
func (h *hub) exited(code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running, h.term, h.input = false, nil, nil
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	for c := range h.clients {
		c.finish(frame(frameExit, b[:]))
		delete(h.clients, c)
	}
}

// writer is one output stream of the container, fanned out to the clients.
func (h *hub) writer(kind byte) io.Writer { return hubWriter{h, kind} }

type hubWriter struct {
	h    *hub
	kind byte
}

// Write never blocks on a client: a client too far behind is disconnected.
func (w hubWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	if len(w.h.clients) == 0 {
		return len(p), nil
	}
	f := frame(w.kind, p)
	for c := range w.h.clients {
		if !c.push(f) {
			delete(w.h.clients, c)
			c.finish(frame(frameError, []byte(errTooSlow.Error())))
		}
	}
	return len(p), nil
}

// join serves one attach connection until the client leaves or the run ends; r is the
// connection's unread input, stdin whether the client's input goes to the container.
func (h *hub) join(conn net.Conn, dec *json.Decoder, stdin bool, refuse error) {
	reply := func(err error) []byte {
		var rep reply
		if err != nil {
			rep.Error = err.Error()
		}
		b, _ := json.Marshal(rep)
		return append(b, '\n')
	}
	h.mu.Lock()
	if refuse == nil && !h.running && h.held == nil {
		refuse = errors.New("cannot attach to a stopped container, start it first")
	}
	if refuse != nil {
		h.mu.Unlock()
		conn.Write(reply(refuse)) //nolint:errcheck // the client may have given up
		conn.Close()
		return
	}
	r, err := afterLine(dec, conn)
	if err != nil {
		h.mu.Unlock()
		conn.Close()
		return
	}
	c := &attachClient{conn: conn, wake: make(chan struct{}, 1)}
	c.push(reply(nil)) // the reply line comes before any frame
	h.clients[c] = struct{}{}
	h.writers.Add(1)
	if h.held != nil {
		close(h.held)
		h.held = nil
	}
	h.mu.Unlock()
	go func() {
		defer h.writers.Done()
		c.writeLoop()
	}()
	h.readInput(c, r, stdin)
}

// readInput takes the client's frames until it disconnects (detaches, is killed), which
// removes it from the hub and nothing else.
func (h *hub) readInput(c *attachClient, r io.Reader, stdin bool) {
	defer h.leave(c)
	for {
		kind, data, err := readFrame(r)
		if err != nil {
			return
		}
		switch kind {
		case frameStdin:
			h.mu.Lock()
			in := h.input
			h.mu.Unlock()
			if stdin && in != nil {
				in.Write(data) //nolint:errcheck // a run that ended takes no input; the client learns of the exit
			}
		case frameResize:
			if len(data) == 4 {
				h.resize(console.WinSize{Height: binary.BigEndian.Uint16(data), Width: binary.BigEndian.Uint16(data[2:])})
			}
		}
	}
}

// resize sets the running pty's size (the runtime passes it on to the container's terminal)
// and keeps it for the next run.
func (h *hub) resize(ws console.WinSize) {
	if ws.Height == 0 || ws.Width == 0 {
		return
	}
	h.mu.Lock()
	h.size = ws
	term := h.term
	h.mu.Unlock()
	if term != nil {
		term.Resize(ws) //nolint:errcheck // a pty closing as its run ends
	}
}

func (h *hub) leave(c *attachClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		c.finish(nil)
	}
}

// closeAll disconnects every client and waits until each has its last frame (the exit code),
// or the write deadline passed: the monitor is ending, and its exit would cut them off.
func (h *hub) closeAll() {
	h.mu.Lock()
	h.running = false
	for c := range h.clients {
		delete(h.clients, c)
		c.finish(nil)
	}
	h.mu.Unlock()
	h.writers.Wait()
}

// attachClient is one connection's outgoing queue, written by its own goroutine, bounded by
// attachLimit.
type attachClient struct {
	conn    net.Conn
	mu      sync.Mutex
	queue   [][]byte
	queued  int
	closing bool // no more frames: write what is queued, then close
	wake    chan struct{}
}

// push queues b; false when the client is too far behind to take it.
func (c *attachClient) push(b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return true
	}
	if c.queued+len(b) > attachLimit {
		return false
	}
	c.queue, c.queued = append(c.queue, b), c.queued+len(b)
	c.signal()
	return true
}

// finish ends the connection after last (nil: nothing more); a client dropped for slowness
// loses its backlog, and a client that reads nothing at all is cut off after a grace period.
func (c *attachClient) finish(last []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	if last != nil && last[0] == frameError {
		c.queue, c.queued = nil, 0
	}
	if last != nil {
		c.queue = append(c.queue, last)
	}
	c.closing = true
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // bounds the last writes
	c.signal()
}

func (c *attachClient) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *attachClient) writeLoop() {
	defer c.conn.Close()
	for {
		c.mu.Lock()
		q, closing := c.queue, c.closing
		c.queue, c.queued = nil, 0
		c.mu.Unlock()
		for _, b := range q {
			if _, err := c.conn.Write(b); err != nil {
				return
			}
		}
		if closing {
			return
		}
		<-c.wake
	}
}
