package container

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// LogOptions selects what Logs prints.
type LogOptions struct {
	Follow     bool // keep printing new lines until the container stops or ctx ends
	Tail       int  // print only the last Tail lines first; < 0 prints all
	Timestamps bool // prefix each line with its RFC 3339 time
	// Since and Until, when set, keep only lines written from Since and up to Until (docker's --since, --until).
	Since, Until time.Time
}

// keep reports whether e is inside the Since/Until window.
func (o LogOptions) keep(e logEntry) bool {
	return (o.Since.IsZero() || !e.Time.Before(o.Since)) && (o.Until.IsZero() || !e.Time.After(o.Until))
}

// followPoll is how often a follower looks for new lines.
const followPoll = 50 * time.Millisecond

// Logs prints the container's log: stdout entries to stdout, stderr entries to stderr.
func (c *Container) Logs(ctx context.Context, o LogOptions, stdout, stderr io.Writer) error {
	p := logPrinter{o: o, stdout: stdout, stderr: stderr}
	// Open the current file before reading the rotated ones, so a follower misses nothing.
	cur, err := os.Open(c.LogPath())
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read logs: %w", err)
	}
	var entries []logEntry
	for i := DefaultLogMaxFiles - 1; i >= 1; i-- {
		data, err := os.ReadFile(fmt.Sprintf("%s.%d", c.LogPath(), i))
		if err == nil {
			entries = appendEntries(entries, data)
		}
	}
	var pending []byte
	if cur != nil {
		defer func() { cur.Close() }()
		data, err := io.ReadAll(cur)
		if err != nil {
			return fmt.Errorf("read logs: %w", err)
		}
		pending = completeLines(&data)
		entries = appendEntries(entries, data)
	}
	entries = slices.DeleteFunc(entries, func(e logEntry) bool { return !o.keep(e) })
	if o.Tail >= 0 && len(entries) > o.Tail {
		entries = entries[len(entries)-o.Tail:]
	}
	if err := p.print(entries); err != nil || !o.Follow {
		return err
	}
	return c.follow(ctx, &p, &cur, pending)
}

// follow prints new entries as they are written, across rotations, until the container is no
// longer running and its log is drained.
func (c *Container) follow(ctx context.Context, p *logPrinter, cur **os.File, pending []byte) error {
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		st, err := c.State()
		if err != nil {
			return err
		}
		// A container that was just created may be about to start: wait for it a while.
		starting := st.Status == StatusCreated && time.Since(c.Created) < time.Minute
		done := !st.Running() && !starting
		if pending, err = c.drain(p, cur, pending); err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// drain prints what was appended to the open file, then switches to a new file after rotation.
func (c *Container) drain(p *logPrinter, cur **os.File, pending []byte) ([]byte, error) {
	for {
		if *cur != nil {
			data, err := io.ReadAll(*cur)
			if err != nil {
				return pending, fmt.Errorf("follow logs: %w", err)
			}
			data = append(pending, data...)
			pending = completeLines(&data)
			if err := p.print(appendEntries(nil, data)); err != nil {
				return pending, err
			}
		}
		next, err := os.Open(c.LogPath())
		if err != nil {
			return pending, nil // not created yet (or being rotated): try again later
		}
		if *cur != nil && sameFile(*cur, next) {
			next.Close()
			return pending, nil
		}
		if *cur != nil {
			(*cur).Close()
		}
		*cur, pending = next, nil
	}
}

func sameFile(a, b *os.File) bool {
	ai, err1 := a.Stat()
	bi, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

// completeLines cuts a trailing partial line off *data and returns it.
func completeLines(data *[]byte) []byte {
	i := bytes.LastIndexByte(*data, '\n')
	rest := append([]byte(nil), (*data)[i+1:]...)
	*data = (*data)[:i+1]
	return rest
}

// appendEntries decodes json lines, skipping torn or foreign ones.
func appendEntries(out []logEntry, data []byte) []logEntry {
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e logEntry
		if len(line) > 0 && json.Unmarshal(line, &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// logPrinter writes entries the way docker logs does.
type logPrinter struct {
	o              LogOptions
	stdout, stderr io.Writer
}

func (p *logPrinter) print(entries []logEntry) error {
	for _, e := range entries {
		if !p.o.keep(e) {
			continue
		}
		w := p.stdout
		if e.Stream == "stderr" {
			w = p.stderr
		}
		msg := e.Log
		if p.o.Timestamps {
			msg = e.Time.Format(time.RFC3339Nano) + " " + msg
		}
		if _, err := io.WriteString(w, msg); err != nil {
			return err
		}
	}
	return nil
}
