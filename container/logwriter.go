package container

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Log sizes docker's json-file driver would use with max-size=10m, max-file=2.
const (
	DefaultLogMaxSize  = 10 << 20
	DefaultLogMaxFiles = 2
	maxLogLine         = 16 << 10 // longer lines are split, as docker does
)

// logEntry is one line of log.json, docker's json-file format.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// LogWriter appends json-lines entries to a log file and rotates it by size: path, path.1, …
type LogWriter struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	size     int64
	maxSize  int64
	maxFiles int
}

// OpenLog opens (appending) the log at path; maxSize ≤ 0 and maxFiles < 1 take the defaults.
func OpenLog(path string, maxSize int64, maxFiles int) (*LogWriter, error) {
	if maxSize <= 0 {
		maxSize = DefaultLogMaxSize
	}
	if maxFiles < 1 {
		maxFiles = DefaultLogMaxFiles
	}
	l := &LogWriter{path: path, maxSize: maxSize, maxFiles: maxFiles}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *LogWriter) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open container log: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// write appends one entry with a single write, rotating first when it would not fit.
func (l *LogWriter) write(stream string, msg []byte) error {
	line, err := json.Marshal(logEntry{Log: string(msg), Stream: stream, Time: time.Now().UTC()})
	if err != nil {
		return err
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return os.ErrClosed
	}
	if l.size > 0 && l.size+int64(len(line)) > l.maxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	return err
}

// rotate shifts path.N-1 → path.N … path → path.1 and starts an empty path.
func (l *LogWriter) rotate() error {
	l.f.Close()
	l.f = nil
	if l.maxFiles == 1 {
		if err := os.Truncate(l.path, 0); err != nil {
			return fmt.Errorf("rotate container log: %w", err)
		}
		return l.open()
	}
	for i := l.maxFiles - 1; i >= 1; i-- {
		from := l.path
		if i > 1 {
			from = fmt.Sprintf("%s.%d", l.path, i-1)
		}
		if err := os.Rename(from, fmt.Sprintf("%s.%d", l.path, i)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotate container log: %w", err)
		}
	}
	return l.open()
}

// Close closes the file; streams must be closed (flushed) first.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Stream returns a writer whose lines become entries of the named stream ("stdout", "stderr").
// Its Close writes a last line that had no newline.
func (l *LogWriter) Stream(name string) io.WriteCloser { return &streamWriter{l: l, name: name} }

// streamWriter cuts a byte stream into lines; a stream's writes come from one goroutine.
type streamWriter struct {
	l    *LogWriter
	name string
	buf  []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := indexNewline(w.buf)
		if i < 0 {
			break
		}
		if err := w.l.write(w.name, w.buf[:i+1]); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
	w.buf = append([]byte(nil), w.buf...) // do not pin the caller's large buffers
	return len(p), nil
}

// indexNewline finds the end of the next entry: a newline, or the split point of a long line.
func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
		if i+1 == maxLogLine {
			return i
		}
	}
	return -1
}

func (w *streamWriter) Close() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.l.write(w.name, w.buf)
	w.buf = nil
	return err
}
