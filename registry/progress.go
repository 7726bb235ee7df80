package registry

import (
	"io"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// EventKind says what happened to one blob.
type EventKind int

const (
	// EventStart: the blob begins to move.
	EventStart EventKind = iota
	// EventProgress: Complete of Total bytes moved so far.
	EventProgress
	// EventDone: the blob was transferred and verified.
	EventDone
	// EventExists: the destination had the blob already; nothing moved.
	EventExists
	// EventRetry: a transfer failed and starts again.
	EventRetry
)

// String names the kind as progress output shows it.
func (k EventKind) String() string {
	return [...]string{"start", "progress", "done", "exists", "retry"}[k]
}

// Event reports progress of one layer or config blob of a pull or push.
type Event struct {
	Ref      string  // the remote reference being pulled or pushed
	Digest   v1.Hash // the blob
	Kind     EventKind
	Complete int64 // bytes moved so far
	Total    int64 // blob size, 0 when unknown
}

// ProgressFunc receives events; it is called from several goroutines at once.
type ProgressFunc func(Event)

// reporter sends events for one operation; a nil func makes it a no-op.
type reporter struct {
	f   ProgressFunc
	ref string
}

func (r reporter) send(h v1.Hash, k EventKind, complete, total int64) {
	if r.f != nil {
		r.f(Event{Ref: r.ref, Digest: h, Kind: k, Complete: complete, Total: total})
	}
}

// countingReader reports bytes read at most every 1 MiB, to keep callbacks cheap.
type countingReader struct {
	r     io.Reader
	rep   reporter
	h     v1.Hash
	total int64
	n     atomic.Int64
	last  int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	done := c.n.Add(int64(n))
	if done-c.last >= 1<<20 {
		c.last = done
		c.rep.send(c.h, EventProgress, done, c.total)
	}
	return n, err
}
