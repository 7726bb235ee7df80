package build

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// tailLines is how much of a failed step's output its error repeats.
const tailLines = 20

// logWriter forwards a step's output as progress events and keeps its tail for errors.
type logWriter struct {
	e      *env     // the step's: events go out under its vertex
	file   *os.File // the step's whole output, when SolveOptions.LogDir is set
	redact [][]byte // secret values, replaced in output before it goes anywhere
	mu     sync.Mutex
	last   []byte
}

// openLog starts the log file of a step; its name is the step's cache key, so the log of
// the run that made a cached layer can be found again.
func (w *logWriter) openLog(dir, key string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, strings.TrimPrefix(key, "sha256:")+".log"))
	if err != nil {
		return fmt.Errorf("step log: %w", err)
	}
	w.file = f
	return nil
}

func (w *logWriter) close() {
	if w.file != nil {
		_ = w.file.Close()
	}
}

func (w *logWriter) Write(p []byte) (int, error) {
	n := len(p)
	for _, sec := range w.redact {
		if len(sec) >= 3 { // shorter values would mangle unrelated output
			p = bytes.ReplaceAll(p, sec, []byte("****"))
		}
	}
	w.e.report(Event{Kind: EventLog, Time: time.Now(), Data: append([]byte(nil), p...)})
	w.mu.Lock()
	if w.file != nil {
		_, _ = w.file.Write(p) // a full disk must not fail the step; the tail is still kept
	}
	w.last = append(w.last, p...)
	if len(w.last) > 64<<10 {
		w.last = w.last[len(w.last)-32<<10:]
	}
	w.mu.Unlock()
	return n, nil
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
