package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/build"
)

// progressMode is how build progress is shown.
type progressMode string

const (
	progressAuto  progressMode = "auto"
	progressPlain progressMode = "plain"
	progressJSON  progressMode = "json"
	progressTTY   progressMode = "tty"
	progressQuiet progressMode = "quiet"
)

func parseProgress(s string) (progressMode, error) {
	switch m := progressMode(s); m {
	case progressAuto, progressPlain, progressJSON, progressTTY, progressQuiet:
		return m, nil
	}
	return "", usageError{fmt.Errorf("invalid --progress=%s: use auto, plain, tty, json or quiet", s)}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// newReporter renders build events to w in the chosen mode.
func newReporter(mode progressMode, w io.Writer) build.Reporter {
	switch mode {
	case progressQuiet:
		return func(e build.Event) {
			if e.Kind == build.EventFailed {
				fmt.Fprintf(w, "#%d %s ERROR: %v\n", e.Index, e.Name, e.Err)
			}
		}
	case progressJSON:
		enc := json.NewEncoder(w)
		return func(e build.Event) { _ = enc.Encode(jsonEvent(e)) }
	case progressTTY, progressAuto:
		if isTerminal(w) {
			return newTTYReporter(w)
		}
	}
	return plainReporter(w)
}

type eventJSON struct {
	Time     time.Time  `json:"time"`
	Kind     string     `json:"kind"`
	Step     int        `json:"step,omitempty"`
	Name     string     `json:"name,omitempty"`
	Duration float64    `json:"duration,omitempty"`
	Data     string     `json:"data,omitempty"`
	Error    string     `json:"error,omitempty"`
	Cache    *cacheJSON `json:"cache,omitempty"`
	Check    *checkJSON `json:"check,omitempty"`
}

// checkJSON is a build.Check in JSON progress.
type checkJSON struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
	URL     string `json:"url,omitempty"`
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
}

// cacheJSON is a build.CacheSummary in JSON progress.
type cacheJSON struct {
	Cached      int     `json:"cached"`
	Run         int     `json:"run"`
	PulledBytes int64   `json:"pulledBytes"`
	SavedSecs   float64 `json:"savedSeconds"`
}

func jsonEvent(e build.Event) eventJSON {
	out := eventJSON{Time: e.Time, Kind: e.Kind.String(), Step: e.Index, Name: e.Name,
		Duration: e.Duration.Seconds(), Data: string(e.Data)}
	if e.Err != nil {
		out.Error = e.Err.Error()
	}
	if c := e.Cache; c != nil {
		out.Cache = &cacheJSON{Cached: c.Cached, Run: c.Run, PulledBytes: c.Pulled, SavedSecs: c.Saved.Seconds()}
	}
	if c := e.Check; c != nil {
		out.Check = &checkJSON{Rule: c.Rule, Message: c.Message, URL: c.URL, File: c.File, Line: c.Line}
		out.Data = c.String()
	}
	return out
}

// plainReporter prints docker-like lines: "#3 [2/4] COPY a /a", "#3 CACHED", "#3 DONE 0.1s".
// A RUN's output arrives in read-sized chunks: a line is printed once it is complete (or
// when its step ends), never split where a chunk happened to end.
func plainReporter(w io.Writer) build.Reporter {
	started := map[int]time.Time{}
	partial := map[int]*pendingLine{}
	flush := func(i int) {
		if p := partial[i]; p != nil {
			fmt.Fprintf(w, "#%d %.3f %s\n", i, p.at.Sub(started[i]).Seconds(), p.text)
			delete(partial, i)
		}
	}
	return func(e build.Event) {
		switch e.Kind {
		case build.EventStarted:
			started[e.Index] = e.Time
			fmt.Fprintf(w, "#%d %s\n", e.Index, e.Name)
		case build.EventCached:
			flush(e.Index)
			if len(e.Data) > 0 {
				fmt.Fprintf(w, "#%d CACHED %s\n", e.Index, e.Data)
			} else {
				fmt.Fprintf(w, "#%d CACHED\n", e.Index)
			}
		case build.EventDone:
			flush(e.Index)
			fmt.Fprintf(w, "#%d DONE %.1fs\n", e.Index, e.Duration.Seconds())
		case build.EventFailed:
			flush(e.Index)
			fmt.Fprintf(w, "#%d ERROR: %v\n", e.Index, firstLine(e.Err))
		case build.EventLog:
			data := string(e.Data)
			for data != "" {
				chunk, rest, complete := strings.Cut(data, "\n")
				data = rest
				p := partial[e.Index]
				if p == nil {
					p = &pendingLine{at: e.Time}
					partial[e.Index] = p
				}
				p.text += chunk
				if complete {
					flush(e.Index)
				}
			}
		case build.EventWarning:
			fmt.Fprintf(w, "WARNING: %s\n", e.Data)
		case build.EventCheck:
			fmt.Fprintf(w, "WARNING: %s\n", e.Check)
		case build.EventExplain:
			fmt.Fprintf(w, "#%d cache miss: %s\n", e.Index, e.Data)
		case build.EventCacheSummary:
			fmt.Fprintln(w, cacheLine(e.Cache))
		}
	}
}

// pendingLine is the start of a line of step output whose end has not arrived yet.
type pendingLine struct {
	at   time.Time // when its first byte arrived
	text string
}

// noteWriter is where a build's other messages go (pulls, pushes, "writing image …"): stderr
// as it is, or, with --progress=json, one JSON line {"kind":"note","data":…} per line, so
// that stream holds nothing but JSON.
func noteWriter(mode progressMode, w io.Writer) io.Writer {
	if mode != progressJSON {
		return w
	}
	return &jsonNotes{enc: json.NewEncoder(w)}
}

type jsonNotes struct {
	mu      sync.Mutex
	enc     *json.Encoder
	partial string
}

func (j *jsonNotes) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	data := j.partial + string(p)
	for {
		line, rest, ok := strings.Cut(data, "\n")
		if !ok {
			break
		}
		data = rest
		// Progress bars redraw with \r: only the last state of a line is news.
		if i := strings.LastIndexByte(strings.TrimRight(line, "\r"), '\r'); i >= 0 {
			line = line[i+1:]
		}
		if line = strings.TrimRight(line, "\r"); line != "" {
			if err := j.enc.Encode(eventJSON{Time: time.Now(), Kind: "note", Data: line}); err != nil {
				return 0, err
			}
		}
	}
	j.partial = data
	return len(p), nil
}

// checkCollector keeps a build's checks for the summary; --check-reproducible plans twice,
// so each check is reported and counted once.
type checkCollector struct {
	seen   map[string]bool
	checks []build.Check
}

func (c *checkCollector) wrap(report build.Reporter) build.Reporter {
	return func(e build.Event) {
		if e.Kind == build.EventCheck {
			if c.seen[e.Check.String()] {
				return
			}
			c.seen[e.Check.String()] = true
			c.checks = append(c.checks, *e.Check)
		}
		report(e)
	}
}

// checkSummary ends a build's output with its build checks, as docker's "N warnings found".
func checkSummary(w io.Writer, checks []build.Check) {
	if len(checks) == 0 {
		return
	}
	fmt.Fprintf(w, "%s found (kiln build --check shows each with its source):\n", plural(len(checks), "warning"))
	checks = slices.Clone(checks)
	slices.SortStableFunc(checks, func(a, b build.Check) int { return a.Line - b.Line })
	for _, c := range checks {
		fmt.Fprintf(w, " - %s: %s: %s\n", c.Location(), c.Rule, c.Message)
	}
}

// printChecks is `kiln build --check`'s report, in docker build --check's layout: each rule
// with its URL, what is wrong, and the lines of the Buildfile it is about.
func printChecks(w io.Writer, checks []build.Check) {
	verb := "have"
	if len(checks) == 1 {
		verb = "has"
	}
	fmt.Fprintf(w, "Check complete, %s %s been found!\n", plural(len(checks), "warning"), verb)
	for _, c := range checks {
		fmt.Fprintf(w, "\nWARNING: %s", c.Rule)
		if c.URL != "" {
			fmt.Fprintf(w, " - %s", c.URL)
		}
		fmt.Fprintf(w, "\n%s\n%s\n", c.Message, c.Location())
		if len(c.Source) == 0 {
			continue
		}
		fmt.Fprintln(w, "--------------------")
		for i, l := range c.Source {
			fmt.Fprintf(w, " %3d | >>> %s\n", c.Line+i, l)
		}
		fmt.Fprintln(w, "--------------------")
	}
}

// cacheLine is the last progress line: what the cache did.
func cacheLine(c *build.CacheSummary) string {
	return fmt.Sprintf("cache: %d steps cached, %d run, %s pulled, %.1fs saved",
		c.Cached, c.Run, units.HumanSize(float64(c.Pulled)), c.Saved.Seconds())
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
