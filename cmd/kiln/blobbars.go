package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"

	"github.com/kiln-build/kiln/registry"
)

// blobBars draws one progress bar per blob on a terminal, redrawn in place (docker pull
// style); at most every 100 ms so that fast transfers do not flood the terminal.
type blobBars struct {
	mu    sync.Mutex
	w     io.Writer
	verb  string
	order []string
	state map[string]string
	drawn int
	last  time.Time
}

func newBlobBars(w io.Writer, verb string) registry.ProgressFunc {
	b := &blobBars{w: w, verb: verb, state: map[string]string{}}
	return b.handle
}

func (b *blobBars) handle(e registry.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := shortDigest(e.Digest.Hex)
	if _, ok := b.state[id]; !ok {
		b.order = append(b.order, id)
	}
	switch e.Kind {
	case registry.EventStart, registry.EventProgress:
		b.state[id] = bar(b.verb, e.Complete, e.Total)
	case registry.EventDone:
		b.state[id] = b.verb + " complete"
	case registry.EventExists:
		b.state[id] = "Already exists"
	case registry.EventRetry:
		b.state[id] = "Retrying"
	}
	if e.Kind == registry.EventProgress && time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	if b.drawn > 0 {
		fmt.Fprintf(b.w, "\x1b[%dA", b.drawn) // back to the first bar
	}
	for _, id := range b.order {
		fmt.Fprintf(b.w, "\x1b[2K%s: %s\n", id, b.state[id])
	}
	b.drawn = len(b.order)
}

// bar renders "Pulling [=====>     ] 12.3MB/45.6MB".
func bar(verb string, done, total int64) string {
	if total <= 0 {
		return fmt.Sprintf("%s %s", verb, units.HumanSize(float64(done)))
	}
	const width = 30
	n := int(float64(width) * float64(done) / float64(total))
	n = min(max(n, 0), width)
	arrow := strings.Repeat("=", n)
	if n < width {
		arrow += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("%s [%s] %s/%s", verb, arrow, units.HumanSize(float64(done)), units.HumanSize(float64(total)))
}
