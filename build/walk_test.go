package build

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestWalkOrderAndErrors: the parallel walk lists what a sequential depth-first walk lists,
// in the same order (the selection digest depends on it), with .dockerignore applied; and of
// two bad entries it always reports the first in walk order, whichever goroutine meets which.
func TestWalkOrderAndErrors(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"z": "z", "a/link": "->../z", "a.txt": "t", "a-b/c": "c", "a0": "0"}
	for d := range 12 {
		for f := range 5 {
			files[fmt.Sprintf("d%02d/s%d/f%d", d, f%2, f)] = "x"
		}
	}
	files["d03/s1/skip.log"] = "ignored"
	files["d07/keep/f"] = "y"
	writeTree(t, dir, files)
	ignore := []string{"**/*.log", "d05", "d07", "!d07/keep"}
	c, err := OpenContext(dir, ignore, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if c.hidden(filepath.ToSlash(rel), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		want = append(want, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The stat cache keeps its entries in this order, to meet them one after another.
	if !slices.IsSortedFunc(want, cmpWalk) {
		t.Errorf("cmpWalk does not order %v as the walk does", want)
	}
	for range 20 {
		sel, err := c.Select(context.Background(), []string{"."})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range sel.roots[0].entries {
			got = append(got, e.rel)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("walk listed\n%v\nwant\n%v", got, want)
		}
	}
	for _, p := range []string{"d02/s0/fifo", "d10/s1/fifo"} {
		if err := syscall.Mkfifo(filepath.Join(dir, p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		_, err := c.Select(context.Background(), []string{"."})
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "d02/s0/fifo")) {
			t.Fatalf("Select over two fifos: %v, want the first (d02/s0/fifo)", err)
		}
	}
	if err := os.Remove(filepath.Join(dir, "d02/s0/fifo")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Select(ctx, []string{"."}); err == nil {
		t.Error("a cancelled walk succeeded")
	}
}
