// Package archtest enforces the direction of dependencies between kiln's packages:
// cmd → build → {cache, runtime}, cmd → registry → cache, and nothing reaching back up.
package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/kiln-build/kiln/"

// allowed lists, per package, which of kiln's packages it may import (internal/* always).
var allowed = map[string][]string{
	"cache/layer": {},
	"cache":       {"cache/layer"},
	"runtime":     {},
	"registry":    {"cache", "cache/layer"},
	"build":       {"cache", "cache/layer", "runtime"},
	"container":   {"cache", "cache/layer", "runtime", "registry"},
}

func TestDependencyDirection(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for pkg, ok := range allowed {
		files, _ := filepath.Glob(filepath.Join(root, pkg, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue // tests may use test helpers from anywhere below cmd
			}
			for _, imp := range imports(t, f) {
				dep, ours := strings.CutPrefix(imp, module)
				if !ours || strings.HasPrefix(dep, "internal/") || contains(ok, dep) {
					continue
				}
				t.Errorf("%s imports %s: %s may only import %v of kiln's packages", rel(root, f), dep, pkg, ok)
			}
		}
	}
}

func imports(t *testing.T, file string) []string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), file, src, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range f.Imports {
		out = append(out, strings.Trim(s.Path.Value, `"`))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return r
}
