package build

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/tools/txtar"
)

// FuzzParsePlan feeds arbitrary Buildfiles through Parse and Plan: neither may panic, and
// every failure must be an error.
func FuzzParsePlan(f *testing.F) {
	files, _ := filepath.Glob("testdata/plan/*.txtar")
	for _, file := range files {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, af := range ar.Files {
			if af.Name == "Buildfile" {
				f.Add(af.Data)
			}
		}
	}
	f.Add([]byte("FROM base\nRUN --mount=type=cache,target=/x echo hi\nCOPY --from=0 / /\n"))
	res := testResolver(f)
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644); err != nil {
		f.Fatal(err)
	}
	bctx, err := OpenContext(dir, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("Buildfile", bytes.NewReader(data))
		if err != nil {
			return
		}
		g, err := Plan(context.Background(), file, PlanOptions{Resolver: res, Context: bctx})
		if err != nil {
			return
		}
		if g.Target == nil {
			t.Fatal("plan succeeded without a target stage")
		}
		for _, v := range g.Vertices {
			if len(v.Key) != len("sha256:")+64 {
				t.Fatalf("vertex %q has malformed key %q", v.Name, v.Key)
			}
		}
	})
}

// FuzzIgnoreSelect feeds .dockerignore patterns, a COPY source and a symlink target through
// selection over an in-memory context: whatever they are, no selected entry may read an
// ignored path, and every path read must be a clean path inside the context.
func FuzzIgnoreSelect(f *testing.F) {
	f.Add("secret.txt", "alias", "secret.txt")
	f.Add("secret.txt", "linkdir/secret.txt", ".")
	f.Add("d\n!d/keep", "fz/*", "d")
	f.Add("**/*.key\n!a.key", ".", "../d/a.key")
	f.Add("*", "fz", "/ctx/d")
	f.Fuzz(func(t *testing.T, patterns, source, target string) {
		fsys := fstest.MapFS{
			"secret.txt": {Data: []byte("s")}, "ok.txt": {Data: []byte("o")},
			"a.key": {Data: []byte("k")}, "d/a.key": {Data: []byte("k")}, "d/keep": {Data: []byte("p")},
			"d/sub/x": {Data: []byte("x")}, "alias": {Data: []byte("secret.txt"), Mode: fs.ModeSymlink},
			"linkdir": {Data: []byte("."), Mode: fs.ModeSymlink}, "d/up": {Data: []byte(".."), Mode: fs.ModeSymlink},
			"fz": {Data: []byte(target), Mode: fs.ModeSymlink},
		}
		c, err := newContext(fsys, "/ctx", strings.Split(patterns, "\n"), nil)
		if err != nil {
			return
		}
		sel, err := c.Select(context.Background(), []string{source})
		if err != nil {
			return
		}
		for _, r := range sel.roots {
			for _, e := range r.entries {
				if !fs.ValidPath(e.src) {
					t.Fatalf("entry %q read from %q, not a path inside the context", e.rel, e.src)
				}
				if ig, _ := c.pm.MatchesOrParentMatches(e.src); ig && !e.mode.IsDir() {
					t.Fatalf("source %q with ignore %q selected ignored %q (as %q)", source, patterns, e.src, path.Join(r.name, e.rel))
				}
			}
		}
	})
}
