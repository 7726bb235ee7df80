package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPickRunner(t *testing.T) {
	requireRoot(t)
	state := t.TempDir()
	var debug bytes.Buffer
	r, err := pickRunner(context.Background(), state, "", &debug)
	if err != nil {
		t.Skipf("no working runtime: %v", err)
	}
	crunWorks := false
	if path, err := exec.LookPath("crun"); err == nil {
		cr, info, _ := runnerFor(path, state)
		crunWorks = probe(context.Background(), cr, info, state) == ""
	}
	switch {
	case crunWorks && !strings.HasPrefix(r.name, "crun"):
		t.Errorf("crun works but auto picked %s", r.name)
	case !crunWorks && strings.HasPrefix(r.name, "crun"):
		t.Errorf("auto picked crun although its probe failed")
	case !crunWorks && !strings.Contains(debug.String(), "crun"):
		t.Errorf("falling back from crun must say why in debug output, got %q", debug.String())
	}
	// Versions and verdicts are cached on disk, keyed by binary and boot.
	entries, _ := os.ReadDir(filepath.Join(state, "probe"))
	if len(entries) == 0 {
		t.Errorf("no probe verdict cached")
	}
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(state, "probe", e.Name()))
		var info runtimeInfo
		if err := json.Unmarshal(data, &info); err != nil || info.Version == "" || !info.Probed {
			t.Errorf("bad record %q: %v", data, err)
		}
	}
	if _, err := pickRunner(context.Background(), state, "no-such-runtime", nil); err == nil {
		t.Error("want an error for a missing runtime")
	}
}

// A warm start asks the runtime binary nothing: the choice and version come from the disk cache.
func TestPickRunnerWarmExecsNothing(t *testing.T) {
	requireRoot(t)
	state := t.TempDir()
	if _, err := pickRunner(context.Background(), state, "", nil); err != nil {
		t.Skipf("no working runtime: %v", err)
	}
	// A PATH whose crun and runc are the real ones behind wrappers that record every call.
	bin, calls := t.TempDir(), filepath.Join(t.TempDir(), "calls")
	for _, name := range []string{"crun", "runc"} {
		real, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		os.Symlink(real, filepath.Join(bin, name+".real"))
		script := "#!/bin/sh\necho \"$0 $*\" >> " + calls + "\nexec " + filepath.Join(bin, name+".real") + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	if _, err := pickRunner(context.Background(), state, "", nil); err != nil {
		t.Fatal(err)
	}
	os.Remove(calls)
	if _, err := pickRunner(context.Background(), state, "", nil); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(calls); err == nil {
		t.Errorf("a warm pick ran the runtime:\n%s", data)
	}
}

// A warm Run execs the OCI runtime once, for the container: no --version, no state polling.
// Each Runtime is new, as in a new kiln process: what it knows comes from the disk cache.
func TestWarmRunExecsRuntimeOnce(t *testing.T) {
	state := t.TempDir()
	requireRuntime(t, "runc", state)
	real, _ := exec.LookPath("runc")
	bin, calls := t.TempDir(), filepath.Join(t.TempDir(), "calls")
	script := "#!/bin/sh\necho \"$*\" >> " + calls + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "runc"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		rt, err := New(Options{StateDir: state, Runtime: filepath.Join(bin, "runc")})
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(calls)
		s := testSpec(t, "runc", state, "true")
		os.MkdirAll(s.Upper, 0o755)
		if st, err := rt.Run(context.Background(), s); err != nil || st != 0 {
			t.Fatalf("run %d: status %d, %v", i, st, err)
		}
	}
	data, _ := os.ReadFile(calls)
	if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], " run ") {
		t.Errorf("a warm run execed the runtime %d times:\n%s", len(lines), data)
	}
}
