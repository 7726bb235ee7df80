package main

import (
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testregistry"
)

func TestPushPullAndBuildFromRegistry(t *testing.T) {
	addr := testregistry.Start(t)
	src := busyboxRoot(t)
	ref := addr + "/team/busybox:1"
	pushed := ok(t, src, "push", "busybox", ref)
	digest := strings.Fields(pushed.stdout)[2]

	dst := t.TempDir()
	ok(t, dst, "pull", ref)
	rows := imageRows(t, dst)
	if len(rows) != 1 || rows[0].Digest != digest {
		t.Fatalf("pulled %+v, want digest %s", rows, digest)
	}
	again := ok(t, dst, "pull", ref)
	if strings.Contains(again.stderr, "Pulling") {
		t.Errorf("second pull fetched blobs again:\n%s", again.stderr)
	}

	fresh, ctxDir := t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM " + ref + "\nCOPY f /f\n", "f": "x"})
	ok(t, fresh, "build", "-q", "-t", addr+"/team/derived:1", "--push", ctxDir)
	if r := kiln(t, fresh, nil, "build", "--pull=never", "-q", ctxDir); r.code != 0 {
		t.Errorf("--pull=never with the base in the store: %s", r.stderr)
	}
	if r := kiln(t, t.TempDir(), nil, "build", "--pull=never", "-q", ctxDir); r.code != 1 {
		t.Errorf("--pull=never without the base: exit %d", r.code)
	}
	if r := kiln(t, t.TempDir(), nil, "pull", addr+"/team/nothere:1"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("pull of a missing image: exit %d %q", r.code, r.stderr)
	}
}

// TestBuildCacheThroughRegistry: a CI machine exports its cache, a fresh one imports it and
// builds with every step cached.
func TestBuildCacheThroughRegistry(t *testing.T) {
	addr := testregistry.Start(t)
	ctxDir := t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY a /a\nCOPY b /b\nENV X=1\n", "a": "A", "b": "B"})
	cacheRef := addr + "/team/app:buildcache"
	first := ok(t, t.TempDir(), "build", "--progress=plain", "--cache-to", "type=registry,ref="+cacheRef, "-t", "app", ctxDir)
	if !strings.Contains(first.stderr, "exported 2 cache records") {
		t.Fatalf("export:\n%s", first.stderr)
	}
	fresh := t.TempDir()
	second := ok(t, fresh, "build", "--progress=plain", "--cache-from", cacheRef, "-t", "app", ctxDir)
	if n := strings.Count(second.stderr, "CACHED"); n != 2 {
		t.Errorf("build with --cache-from: %d CACHED steps, want 2:\n%s", n, second.stderr)
	}
	if rows := imageRows(t, fresh); len(rows) != 1 || rows[0].Repository != "app" {
		t.Errorf("the cache image must not stay tagged: %+v", rows)
	}
	r := ok(t, t.TempDir(), "build", "--progress=plain", "--cache-from", addr+"/team/none:x", ctxDir)
	if !strings.Contains(r.stderr, "WARNING: --cache-from") {
		t.Errorf("a missing cache must only warn:\n%s", r.stderr)
	}
}
