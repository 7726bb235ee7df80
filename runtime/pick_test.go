package runtime

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPickRunner(t *testing.T) {
	requireRoot(t)
	state := t.TempDir()
	probeCache.Clear() // probe afresh, so the on-disk cache gets written
	var debug bytes.Buffer
	r, err := pickRunner(context.Background(), state, "", &debug)
	if err != nil {
		t.Skipf("no working runtime: %v", err)
	}
	crunWorks := false
	if path, err := exec.LookPath("crun"); err == nil {
		cr, _ := runnerFor(path, state)
		crunWorks = probe(context.Background(), cr, state) == ""
	}
	switch {
	case crunWorks && !strings.HasPrefix(r.Name(), "crun"):
		t.Errorf("crun works but auto picked %s", r.Name())
	case !crunWorks && strings.HasPrefix(r.Name(), "crun"):
		t.Errorf("auto picked crun although its probe failed")
	case !crunWorks && !strings.Contains(debug.String(), "crun"):
		t.Errorf("falling back from crun must say why in debug output, got %q", debug.String())
	}
	// The verdicts are cached on disk, keyed by runtime and boot.
	entries, _ := os.ReadDir(filepath.Join(state, "probe"))
	if len(entries) == 0 {
		t.Errorf("no probe verdict cached")
	}
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(state, "probe", e.Name()))
		if s := string(data); s != "ok\n" && !strings.HasPrefix(s, "fail: ") {
			t.Errorf("bad verdict %q", s)
		}
	}
	if _, err := pickRunner(context.Background(), state, "no-such-runtime", nil); err == nil {
		t.Error("want an error for a missing runtime")
	}
}
