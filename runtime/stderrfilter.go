package runtime

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// ownLines passes a container's stderr through, holding back the lines in which the OCI runtime
// reports its own failure ("runc run failed: ...", "crun: ..."): the runtime shares the
// container's stderr, and kiln reports that failure itself, once, as a kiln error (StartError,
// CommandError) with the message from the runtime's log. finish decides: dropped when the
// runtime did fail, written after all when it did not (the container printed such a line itself).
type ownLines struct {
	w        io.Writer
	prefixes [][]byte

	mu   sync.Mutex
	line []byte // the start of the current line while it may still be the runtime's
	held []byte // whole lines of the runtime's, awaiting finish
	mid  bool   // the current line did not start with a runtime prefix: it passes through
}

// filterStderr wraps io.Stderr (not a terminal's: runc writes to the console then) for one run of r.
func (r *ociRunner) filterStderr(io *stdio) *ownLines {
	if io.Stderr == nil || io.Terminal {
		return nil
	}
	prog := r.name // "runc 1.1.5": the program prints its base name only
	if i := strings.IndexByte(prog, ' '); i > 0 {
		prog = prog[:i]
	}
	// runc 1.1 prints "runc run failed: ..." for run and a bare "exec failed: ..." for exec.
	f := &ownLines{w: io.Stderr, prefixes: [][]byte{[]byte(prog + ": "), []byte(prog + " run failed: "),
		[]byte(prog + " exec failed: "), []byte(prog + " create failed: "), []byte("exec failed: ")}}
	if io.Stdout == io.Stderr {
		io.Stdout = f // one stream stays one pipe (exec.Cmd shares it), in the order written
	}
	io.Stderr = f
	return f
}

func (f *ownLines) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		nl := bytes.IndexByte(p, '\n')
		chunk := p
		if nl >= 0 {
			chunk = p[:nl+1]
		}
		p = p[len(chunk):]
		if f.mid {
			if _, err := f.w.Write(chunk); err != nil {
				return n - len(p) - len(chunk), err
			}
			f.mid = nl < 0
			continue
		}
		f.line = append(f.line, chunk...)
		switch {
		case !f.mayBeOwn(f.line):
			out := f.line
			f.line, f.mid = nil, nl < 0
			if _, err := f.w.Write(out); err != nil {
				return n - len(p), err
			}
		case nl >= 0:
			f.held, f.line = append(f.held, f.line...), nil
		}
	}
	return n, nil
}

// mayBeOwn says whether line starts (or may yet start) with one of the runtime's prefixes.
func (f *ownLines) mayBeOwn(line []byte) bool {
	for _, p := range f.prefixes {
		k := min(len(line), len(p))
		if bytes.Equal(line[:k], p[:k]) {
			return true
		}
	}
	return false
}

// finish ends the run: the held lines go when the runtime failed, else they are written now.
func (f *ownLines) finish(runtimeFailed bool) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.line
	if !runtimeFailed {
		out = append(f.held, out...)
	}
	f.held, f.line = nil, nil
	if len(out) > 0 {
		f.w.Write(out) //nolint:errcheck // the container's stream: nowhere to report to
	}
}
