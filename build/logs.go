package build

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// tailLines is how much of a failed step's output its error repeats.
const tailLines = 20

// logWriter forwards a step's output as progress events and keeps its tail for errors.
type logWriter struct {
	s     *solver
	index int
	name  string
	mu    sync.Mutex
	last  []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.s.report(Event{Kind: EventLog, Index: w.index, Name: w.name, Time: time.Now(), Data: append([]byte(nil), p...)})
	w.mu.Lock()
	w.last = append(w.last, p...)
	if len(w.last) > 64<<10 {
		w.last = w.last[len(w.last)-32<<10:]
	}
	w.mu.Unlock()
	return len(p), nil
}

// tail renders the last lines of output for an error message ("" when there was none).
func (w *logWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(bytes.ToValidUTF8(w.last, nil)), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return "\n  " + strings.Join(lines, "\n  ")
}
