package build

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

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
