package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/build"
)

// TestPlainProgressKeepsLinesWhole: RUN output arriving in chunks that end mid-line prints
// each line once and whole; an unfinished last line is printed when its step ends.
func TestPlainProgressKeepsLinesWhole(t *testing.T) {
	var out bytes.Buffer
	r := plainReporter(&out)
	t0 := time.Unix(100, 0)
	r(build.Event{Kind: build.EventStarted, Index: 2, Name: "[2/2] RUN x", Time: t0})
	for _, chunk := range []string{"hel", "lo\nwor", "ld\n", "\n", "tail"} {
		r(build.Event{Kind: build.EventLog, Index: 2, Data: []byte(chunk), Time: t0})
	}
	r(build.Event{Kind: build.EventDone, Index: 2, Duration: time.Second})
	want := "#2 [2/2] RUN x\n#2 0.000 hello\n#2 0.000 world\n#2 0.000 \n#2 0.000 tail\n#2 DONE 1.0s\n"
	if out.String() != want {
		t.Errorf("plain output:\n%q\nwant:\n%q", out.String(), want)
	}
}

// TestTTYProgressKeepsLinesWhole: the live view's tail joins a line cut between chunks.
func TestTTYProgressKeepsLinesWhole(t *testing.T) {
	v := &ttyView{w: io.Discard, start: time.Now(), steps: map[int]*ttyStep{}}
	for _, chunk := range []string{"hel", "lo\nwor", "ld\n", "a\nb\n", "c"} {
		v.handle(build.Event{Kind: build.EventLog, Index: 2, Data: []byte(chunk), Time: time.Now()})
	}
	if got, want := strings.Join(v.steps[2].tail, "|"), "hello|world|a|b|c"; got != want {
		t.Errorf("tail %q, want %q", got, want)
	}
}

// TestJSONNotesAreJSONLines: with --progress=json the build's other messages become JSON
// lines too, a line split over writes is one note, and a bar's \r redraws keep the last state.
func TestJSONNotesAreJSONLines(t *testing.T) {
	var out bytes.Buffer
	w := noteWriter(progressJSON, &out)
	for _, s := range []string{"writing image sha256:ab", "c in 0.1s\nnaming to x:latest\n", "pull 10%\rpull 100%\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	var notes []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev eventJSON
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Kind != "note" {
			t.Fatalf("not a JSON note line: %q (%v)", l, err)
		}
		notes = append(notes, ev.Data)
	}
	if want := []string{"writing image sha256:abc in 0.1s", "naming to x:latest", "pull 100%"}; strings.Join(notes, "|") != strings.Join(want, "|") {
		t.Errorf("notes %q, want %q", notes, want)
	}
	if noteWriter(progressPlain, &out) != &out {
		t.Error("plain progress must write notes as they are")
	}
}

// TestBuildProgressJSONOnly: kiln build --progress=json writes nothing but JSON lines.
func TestBuildProgressJSONOnly(t *testing.T) {
	root, ctxDir := t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	r := ok(t, root, "build", "--progress=json", "-t", "j", ctxDir)
	kinds := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var ev eventJSON
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Errorf("not a JSON line: %q", l)
		}
		kinds[ev.Kind] = true
	}
	if !kinds["note"] || !kinds["done"] {
		t.Errorf("kinds %v, want steps and notes:\n%s", kinds, r.stderr)
	}
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY missing /m\n"})
	r = kiln(t, root, nil, "build", "--progress=json", ctxDir)
	var last eventJSON
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Errorf("failed build: not a JSON line: %q", l)
		}
	}
	if r.code != 1 || last.Kind != "error" || !strings.Contains(last.Error, `"missing" not found`) {
		t.Errorf("failed build: exit %d, last line %+v", r.code, last)
	}
}
