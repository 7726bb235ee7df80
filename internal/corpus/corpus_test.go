package corpus

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedCorpusIsGenerated fails when testdata/malicious differs from what the case
// definitions produce: run `go generate ./internal/corpus` and commit the result.
func TestCommittedCorpusIsGenerated(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "malicious")
	want, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if _, ok := want[e.Name()]; !ok {
			t.Errorf("%s: no case produces it; run go generate ./internal/corpus", e.Name())
		}
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%v; run go generate ./internal/corpus", err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s differs from its definition; run go generate ./internal/corpus", name)
		}
	}
}

func TestCaseNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Cases() {
		if seen[c.Name] || c.Name == "" || c.Doc == "" || c.Expect == "" {
			t.Errorf("case %q: duplicate name or missing doc/outcome", c.Name)
		}
		seen[c.Name] = true
	}
}
