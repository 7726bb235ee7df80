package container

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newTestContainer makes a container record in a fresh store, without running anything.
func newTestContainer(t *testing.T, name string) (*Store, *Container) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Create(context.Background(), Config{Name: name, Image: "busybox", Args: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestLogsRoundTripSplitsStreamsAndTails(t *testing.T) {
	_, c := newTestContainer(t, "")
	l, err := OpenLog(c.LogPath(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, errw := l.Stream("stdout"), l.Stream("stderr")
	fmt.Fprint(out, "one\ntw")
	fmt.Fprint(errw, "oops\n")
	fmt.Fprint(out, "o\nthree")
	out.Close()
	errw.Close()
	l.Close()
	for _, tc := range []struct {
		tail           int
		stdout, stderr string
	}{{-1, "one\ntwo\nthree", "oops\n"}, {2, "two\nthree", ""}, {0, "", ""}} {
		var o, e bytes.Buffer
		if err := c.Logs(context.Background(), LogOptions{Tail: tc.tail}, &o, &e); err != nil {
			t.Fatal(err)
		}
		if o.String() != tc.stdout || e.String() != tc.stderr {
			t.Errorf("tail %d: stdout %q stderr %q", tc.tail, o.String(), e.String())
		}
	}
	var o bytes.Buffer
	c.Logs(context.Background(), LogOptions{Tail: 1, Timestamps: true}, &o, &o)
	if ts, rest, _ := strings.Cut(o.String(), " "); rest != "three" || !strings.HasPrefix(ts, time.Now().UTC().Format("2006-")) {
		t.Errorf("timestamps: %q", o.String())
	}
}

func TestLogRotationKeepsTwoFilesUnderTheCap(t *testing.T) {
	_, c := newTestContainer(t, "")
	l, err := OpenLog(c.LogPath(), 4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	w := l.Stream("stdout")
	for i := range 1000 {
		fmt.Fprintf(w, "line %04d\n", i)
	}
	l.Close()
	for _, p := range []string{c.LogPath(), c.LogPath() + ".1"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() > 4096 {
			t.Fatalf("%s: %v, %v", p, fi, err)
		}
	}
	if _, err := os.Stat(c.LogPath() + ".2"); err == nil {
		t.Error("a third log file exists")
	}
	var o bytes.Buffer
	c.Logs(context.Background(), LogOptions{Tail: -1}, &o, &o)
	lines := strings.Split(strings.TrimSpace(o.String()), "\n")
	if lines[len(lines)-1] != "line 0999" || len(lines) < 50 {
		t.Errorf("after rotation: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	for i := 1; i < len(lines); i++ {
		if lines[i] <= lines[i-1] {
			t.Fatalf("out of order: %q after %q", lines[i], lines[i-1])
		}
	}
}

func TestLongLinesAreSplit(t *testing.T) {
	_, c := newTestContainer(t, "")
	l, _ := OpenLog(c.LogPath(), 0, 0)
	w := l.Stream("stdout")
	w.Write(bytes.Repeat([]byte("x"), 40<<10))
	w.Close()
	l.Close()
	data, _ := os.ReadFile(c.LogPath())
	if n := bytes.Count(data, []byte("\n")); n != 3 {
		t.Errorf("a 40 KiB line became %d entries, want 3", n)
	}
}

func TestStoreNamesAndLookup(t *testing.T) {
	s, web := newTestContainer(t, "web")
	ctx := context.Background()
	_, err := s.Create(ctx, Config{Name: "web"})
	var nc *NameConflictError
	if !errorsAs(err, &nc) || nc.ID != web.ID || !strings.Contains(err.Error(), `"/web" is already in use by container `+web.ID) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := s.Create(ctx, Config{Name: "bad name"}); err == nil {
		t.Error("a name with a space was accepted")
	}
	other, err := s.Create(ctx, Config{})
	if err != nil || other.Name == "" || len(other.ID) != 64 {
		t.Fatalf("default name: %+v, %v", other, err)
	}
	for _, ref := range []string{web.ID, "web", "/web", web.ID[:12], web.ID[:3]} {
		if got, err := s.Get(ref); err != nil || got.ID != web.ID {
			t.Errorf("Get(%q) = %v, %v", ref, got, err)
		}
	}
	if _, err := s.Get("nope"); err == nil || err.Error() != "No such container: nope" {
		t.Errorf("Get(nope): %v", err)
	}
	if _, err := s.Get(""); err == nil {
		t.Error(`Get("") found a container`)
	}
	list, _ := s.List()
	if len(list) != 2 || list[0].ID != other.ID {
		t.Errorf("List not newest first: %v", list)
	}
	if ents, _ := filepath.Glob(filepath.Join(s.dir, ".*-*")); len(ents) != 0 {
		t.Errorf("temporary dirs left: %v", ents)
	}
}

func TestAmbiguousPrefix(t *testing.T) {
	s, _ := newTestContainer(t, "first")
	ctx := context.Background()
	// Enough containers that two share a first hex digit.
	for range 17 {
		if _, err := s.Create(ctx, Config{}); err != nil {
			t.Fatal(err)
		}
	}
	list, _ := s.List()
	seen := map[byte]bool{}
	for _, c := range list {
		if seen[c.ID[0]] {
			if _, err := s.Get(c.ID[:1]); err == nil || !strings.Contains(err.Error(), "multiple containers") {
				t.Errorf("ambiguous prefix %q: %v", c.ID[:1], err)
			}
			return
		}
		seen[c.ID[0]] = true
	}
	t.Fatal("no shared prefix among 18 ids")
}

func TestConcurrentCreatesOfOneNameHaveOneWinner(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := s.Create(context.Background(), Config{Name: "dup"})
			errs <- err
		}()
	}
	wins := 0
	for range n {
		err := <-errs
		var nc *NameConflictError
		switch {
		case err == nil:
			wins++
		case !errorsAs(err, &nc):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if list, _ := s.List(); wins != 1 || len(list) != 1 {
		t.Errorf("%d creates won, %d containers exist; want 1", wins, len(list))
	}
}

// --since and --until keep the lines written in their window, before --tail counts.
func TestLogsSinceUntil(t *testing.T) {
	_, c := newTestContainer(t, "")
	base := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	var data []byte
	for i, line := range []string{"a\n", "b\n", "c\n"} {
		raw, _ := json.Marshal(logEntry{Log: line, Stream: "stdout", Time: base.Add(time.Duration(i) * time.Hour)})
		data = append(append(data, raw...), '\n')
	}
	if err := os.WriteFile(c.LogPath(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    LogOptions
		want string
	}{
		{LogOptions{Tail: -1, Since: base.Add(time.Hour)}, "b\nc\n"},
		{LogOptions{Tail: -1, Until: base.Add(time.Hour)}, "a\nb\n"},
		{LogOptions{Tail: 1, Until: base.Add(time.Hour)}, "b\n"},
		{LogOptions{Tail: -1, Since: base.Add(time.Minute), Until: base.Add(90 * time.Minute)}, "b\n"},
	} {
		var o bytes.Buffer
		if err := c.Logs(context.Background(), tc.o, &o, &o); err != nil || o.String() != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc.o, o.String(), err, tc.want)
		}
	}
}
