package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/cache"
)

// fakeRunner stands in for containers: each RUN's last argument (the shell script) names
// what it does, and the runner writes its effect into the upper dir directly. It counts
// executions and records when each ran.
type fakeRunner struct {
	mu    sync.Mutex
	runs  []string
	spans map[string][2]time.Time
	delay time.Duration
}

func (r *fakeRunner) Run(ctx context.Context, req RunRequest) error {
	script := req.Args[len(req.Args)-1]
	start := time.Now()
	defer func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.runs = append(r.runs, script)
		if r.spans == nil {
			r.spans = map[string][2]time.Time{}
		}
		r.spans[script] = [2]time.Time{start, time.Now()}
	}()
	if r.delay > 0 {
		select {
		case <-time.After(r.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fmt.Fprintf(req.Output, "running %s\n", script)
	mountSource := func(p string) string {
		for _, m := range req.Mounts {
			if rel, err := filepath.Rel(m.Target, p); err == nil && !strings.HasPrefix(rel, "..") {
				return filepath.Join(m.Source, rel)
			}
		}
		return ""
	}
	switch {
	case strings.HasPrefix(script, "cat-mount "): // cat-mount PATH: print a mounted file
		p := strings.Fields(script)[1]
		for _, m := range req.Mounts {
			if m.Secret != nil && m.Target == p {
				fmt.Fprintf(req.Output, "content: %s\n", m.Secret.Data)
				return nil
			}
		}
		b, err := os.ReadFile(mountSource(p))
		if err != nil {
			return err
		}
		fmt.Fprintf(req.Output, "content: %s\n", b)
		return nil
	case strings.HasPrefix(script, "copy-mount "): // copy-mount PATH DEST: copy a mounted file into the layer
		f := strings.Fields(script)
		b, err := os.ReadFile(mountSource(f[1]))
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(req.Upper, f[2]), b, 0o644)
	case strings.HasPrefix(script, "append-mount "): // append-mount PATH TEXT: write into a mount
		f := strings.Fields(script)
		file, err := os.OpenFile(mountSource(f[1]), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer file.Close()
		_, err = file.WriteString(f[2])
		return err
	case strings.HasPrefix(script, "write "): // write PATH CONTENT
		parts := strings.SplitN(script, " ", 3)
		p := filepath.Join(req.Upper, parts[1])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(parts[2]+"|"+strings.Join(req.Env, ",")), 0o644)
	case strings.HasPrefix(script, "fail"):
		return &ExitError{Code: 3}
	case strings.HasPrefix(script, "exit "): // exit N: the runtime's status N
		n, _ := strconv.Atoi(strings.Fields(script)[1])
		return &ExitError{Code: n}
	}
	return nil // a command that changes nothing
}

func (r *fakeRunner) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs)
}

func TestRunStepsAndCache(t *testing.T) {
	f := newFixture(t)
	r := &fakeRunner{}
	withRunner := func(args map[string]string) func(*Options) {
		return func(o *Options) { o.Runner, o.BuildArgs = r, args }
	}
	bf := "FROM base\nARG USED=1\nRUN write /out/a hello\nRUN nothing\nCOPY a /a\nRUN write /out/b after-copy\n"
	f.write(map[string]string{"a": "1"})
	img, _, err := f.build(bf, withRunner(nil))
	if err != nil {
		t.Fatal(err)
	}
	if r.count() != 3 {
		t.Fatalf("cold build ran %d steps, want 3", r.count())
	}
	files := f.files(img)
	if !strings.HasPrefix(files["/out/a"], "0 0644 0:0 hello|USED=1") {
		t.Errorf("/out/a = %q: RUN must see build args in its env", files["/out/a"])
	}
	if n := len(img.Config.History); n != 1+5 { // ARG has its entry, as in BuildKit
		t.Errorf("history %d entries", n)
	}
	for _, h := range img.Config.History {
		if h.CreatedBy == "RUN |1 USED=1 /bin/sh -c nothing # buildkit" && !h.EmptyLayer {
			t.Error("a RUN that changes nothing must be an empty layer")
		}
	}

	_, ev, err := f.build(bf, withRunner(nil))
	if err != nil || r.count() != 3 {
		t.Fatalf("no-op rebuild ran steps again (%d runs): %v", r.count(), err)
	}
	for name, k := range ev.kinds() {
		if strings.HasPrefix(name, "[") && !strings.Contains(name, "] FROM ") && k != EventCached {
			t.Errorf("no-op rebuild: %s not cached", name)
		}
	}

	f.write(map[string]string{"a": "2"}) // only the step after the COPY runs again
	if _, _, err := f.build(bf, withRunner(nil)); err != nil || r.count() != 4 {
		t.Fatalf("after editing a: %d runs, %v", r.count(), err)
	}
	if _, _, err := f.build(bf, withRunner(map[string]string{"UNDECLARED": "x"})); err != nil || r.count() != 4 {
		t.Fatalf("an undeclared build arg must not miss the cache: %d runs, %v", r.count(), err)
	}
	if _, _, err := f.build(bf, withRunner(map[string]string{"USED": "2"})); err != nil || r.count() != 7 {
		t.Fatalf("a declared build arg must miss every RUN after it: %d runs, %v", r.count(), err)
	}
}

func TestRunFailureKeepsEarlierSteps(t *testing.T) {
	f := newFixture(t)
	r := &fakeRunner{}
	n, _ := cache.ParseName("failing")
	_, _, err := f.build("FROM base\nRUN write /x ok\nRUN fail now\n", func(o *Options) {
		o.Runner, o.Tags = r, []cache.Name{n}
	})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || !strings.Contains(err.Error(), "Buildfile:3") || !strings.Contains(err.Error(), "running fail now") {
		t.Fatalf("error %v: want exit code 3, the line and the output tail", err)
	}
	if _, _, err := f.store.Lookup("failing"); err == nil {
		t.Error("a failed build was tagged")
	}
	_, ev, _ := f.build("FROM base\nRUN write /x ok\nRUN fail now\n", func(o *Options) { o.Runner = r })
	if ev.kinds()["[2/3] RUN write /x ok"] != EventCached {
		t.Errorf("the step before the failure was not cached: %v", ev.kinds())
	}
}

// TestIndependentStagesOverlap proves stages without dependencies run at the same time.
func TestIndependentStagesOverlap(t *testing.T) {
	f := newFixture(t)
	r := &fakeRunner{delay: 200 * time.Millisecond}
	_, _, err := f.build(`FROM base AS a
RUN write /a a
FROM base AS b
RUN write /b b
FROM base AS c
RUN write /c c
FROM scratch
COPY --from=a /a /a
COPY --from=b /b /b
COPY --from=c /c /c
`, func(o *Options) { o.Runner, o.Jobs = r, 3 })
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := r.spans["write /a a"], r.spans["write /b b"], r.spans["write /c c"]
	overlap := func(x, y [2]time.Time) bool { return x[0].Before(y[1]) && y[0].Before(x[1]) }
	if !overlap(a, b) || !overlap(b, c) || !overlap(a, c) {
		t.Errorf("independent stages ran one after another: %v %v %v", a, b, c)
	}
}

// TestRunNotFoundSaysWhatToDo: a RUN whose command the runtime cannot find or execute
// (127, 126) fails at its line saying what to check.
func TestRunNotFoundSaysWhatToDo(t *testing.T) {
	f := newFixture(t)
	for code, want := range map[string]string{"127": "the command was not found; check its path", "126": "cannot be executed", "3": "exit code 3"} {
		_, _, err := f.build("FROM base\nRUN exit "+code+"\n", func(o *Options) { o.Runner = &fakeRunner{} })
		if err == nil || !strings.Contains(err.Error(), "Buildfile:2: RUN") || !strings.Contains(err.Error(), want) {
			t.Errorf("exit %s: %v, want %q", code, err, want)
		}
	}
}

func TestNoCacheFilter(t *testing.T) {
	f := newFixture(t)
	r := &fakeRunner{}
	bf := "FROM base AS deps\nRUN write /d d\nFROM base\nCOPY --from=deps /d /d\nRUN write /f f\n"
	opts := func(filter ...string) func(*Options) {
		return func(o *Options) { o.Runner, o.NoCacheFor = r, filter }
	}
	if _, _, err := f.build(bf, opts()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.build(bf, opts("1")); err != nil || r.count() != 3 {
		t.Fatalf("--no-cache-filter=1 ran %d steps in total, want 3: %v", r.count(), err)
	}
	if _, _, err := f.build(bf, opts("nope")); err == nil || !strings.Contains(err.Error(), `no stage "nope"`) {
		t.Errorf("unknown stage: %v", err)
	}
}
