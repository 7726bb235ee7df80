// Package archtest enforces the direction of dependencies between kiln's packages:
// cmd → build → {cache, runtime}, cmd → registry → cache, and nothing reaching back up.
// Every package of the module needs a rule, so a new package cannot slip by unchecked.
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/kiln-build/kiln/"

// anything lets a package import every package of kiln (only the CLI, the top of the flow).
var anything = []string{"*"}

// allowed lists, per package, which of kiln's packages it may import besides internal/*.
// The "internal/" entry is the rule for every package under internal/.
var allowed = map[string][]string{
	"cache/layer": {},
	"cache":       {"cache/layer"},
	"runtime":     {},
	"registry":    {"cache", "cache/layer"},
	"build":       {"build/sbom", "cache", "cache/layer", "runtime"},
	"build/sbom":  {"cache/layer"}, // an image's files in, an SPDX document out: no store, no runtime
	"container":   {"cache", "cache/layer", "runtime", "registry"},
	"cmd/kiln":    anything,
	"internal/":   {},
}

func TestDependencyDirection(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := packages(t, root)
	if len(pkgs) < len(allowed) {
		t.Fatalf("found only %d packages under %s: %v", len(pkgs), root, pkgs)
	}
	for pkg, files := range pkgs {
		ok, found := rule(pkg)
		if !found {
			t.Errorf("package %s has no rule in internal/archtest: add which of kiln's packages it may import", pkg)
			continue
		}
		for _, f := range files {
			for _, imp := range imports(t, f) {
				dep, ours := strings.CutPrefix(imp, module)
				if !ours || strings.HasPrefix(dep, "internal/") || slices.Contains(ok, dep) || slices.Equal(ok, anything) {
					continue
				}
				t.Errorf("%s imports %s: %s may only import %v of kiln's packages", rel(root, f), dep, pkg, ok)
			}
		}
	}
}

// TestRuleCoversPackages pins the rule lookup itself, so the walk above cannot pass vacuously.
func TestRuleCoversPackages(t *testing.T) {
	for pkg, want := range map[string]bool{"build": true, "internal/atomicfile": true, "cmd/kiln": true, "newpkg": false, "build/sub": false} {
		if _, got := rule(pkg); got != want {
			t.Errorf("rule(%q) found = %v, want %v", pkg, got, want)
		}
	}
}

// rule finds a package's allowance: its own entry, or the internal/ entry for internal packages.
func rule(pkg string) ([]string, bool) {
	if ok, found := allowed[pkg]; found {
		return ok, true
	}
	if strings.HasPrefix(pkg, "internal/") {
		return allowed["internal/"], true
	}
	return nil, false
}

// packages maps each directory holding non-test Go files to those files (tests may use test
// helpers from anywhere below cmd, so they are not checked).
func packages(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(rel(root, filepath.Dir(p)))
		out[pkg] = append(out[pkg], p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
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

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return r
}
