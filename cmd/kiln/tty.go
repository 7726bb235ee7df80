package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kiln-build/kiln/build"
)

// ttyLogLines is how many lines of a running step's output the live view shows.
const ttyLogLines = 6

// ttyStep is one line of the live view.
type ttyStep struct {
	name    string
	state   build.EventKind
	start   time.Time
	elapsed time.Duration
	tail    []string
	open    bool // the last tail line has not ended yet: the next chunk continues it
}

// appendLog adds a chunk of output to the tail; a line cut where a read ended continues
// with the next chunk instead of showing as two lines.
func (st *ttyStep) appendLog(data string) {
	if data == "" {
		return
	}
	parts := strings.Split(data, "\n")
	if st.open && len(st.tail) > 0 {
		st.tail[len(st.tail)-1] += parts[0]
		parts = parts[1:]
	}
	st.open = !strings.HasSuffix(data, "\n")
	if !st.open {
		parts = parts[:len(parts)-1] // what follows the last newline: nothing
	}
	st.tail = append(st.tail, parts...)
	if len(st.tail) > ttyLogLines {
		st.tail = st.tail[len(st.tail)-ttyLogLines:]
	}
}

// ttyView redraws the whole view in place on every event (BuildKit-style), using ANSI
// cursor movement; finished steps keep their final line.
type ttyView struct {
	w       io.Writer
	start   time.Time
	steps   map[int]*ttyStep
	order   []int
	warns   []string
	summary string // the cache line, drawn last
	height  int
}

func newTTYReporter(w io.Writer) build.Reporter {
	v := &ttyView{w: w, start: time.Now(), steps: map[int]*ttyStep{}}
	return v.handle
}

func (v *ttyView) handle(e build.Event) {
	if e.Kind == build.EventCheck {
		e.Kind, e.Data = build.EventWarning, []byte(e.Check.String())
	}
	if e.Kind == build.EventExplain {
		e.Kind, e.Data = build.EventWarning, []byte(fmt.Sprintf("%s: cache miss: %s", e.Name, e.Data))
	}
	if e.Kind == build.EventCacheSummary {
		v.summary = cacheLine(e.Cache)
		v.draw()
		return
	}
	if e.Kind == build.EventWarning {
		v.warns = append(v.warns, string(e.Data))
		v.draw()
		return
	}
	st, ok := v.steps[e.Index]
	if !ok {
		st = &ttyStep{name: e.Name, start: e.Time}
		v.steps[e.Index] = st
		v.order = append(v.order, e.Index)
	}
	switch e.Kind {
	case build.EventLog:
		st.appendLog(string(e.Data))
	case build.EventStarted:
	default:
		st.state, st.elapsed = e.Kind, e.Duration
		if e.Kind == build.EventFailed {
			st.tail = append(st.tail, "ERROR: "+firstLine(e.Err))
		} else {
			st.tail = nil
		}
	}
	v.draw()
}

func (v *ttyView) draw() {
	var b strings.Builder
	if v.height > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.height)
	}
	lines := []string{fmt.Sprintf("[+] Building %.1fs (%d steps)", time.Since(v.start).Seconds(), len(v.order))}
	for _, i := range v.order {
		st := v.steps[i]
		switch st.state {
		case build.EventCached:
			lines = append(lines, fmt.Sprintf(" => CACHED %s", st.name))
		case build.EventDone:
			lines = append(lines, fmt.Sprintf(" => %s  %.1fs", st.name, st.elapsed.Seconds()))
		case build.EventFailed:
			lines = append(lines, fmt.Sprintf(" => ERROR %s  %.1fs", st.name, st.elapsed.Seconds()))
		default:
			lines = append(lines, fmt.Sprintf(" => %s  %.1fs", st.name, time.Since(st.start).Seconds()))
		}
		for _, t := range st.tail {
			lines = append(lines, " => => "+t)
		}
	}
	for _, w := range v.warns {
		lines = append(lines, "WARNING: "+w)
	}
	if v.summary != "" {
		lines = append(lines, v.summary)
	}
	for _, l := range lines {
		b.WriteString("\x1b[2K" + l + "\n")
	}
	// Clear lines left over from a taller previous frame.
	for i := len(lines); i < v.height; i++ {
		b.WriteString("\x1b[2K\n")
	}
	if v.height > len(lines) {
		fmt.Fprintf(&b, "\x1b[%dA", v.height-len(lines))
	}
	v.height = len(lines)
	io.WriteString(v.w, b.String())
}
