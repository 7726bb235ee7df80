package layer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiffTreeRacy changes a file within the timestamp granularity of its index record: same
// size, and (as the kernel's coarse clock can make them) the same times. Its content hash
// still shows the change.
func TestDiffTreeRacy(t *testing.T) {
	root := t.TempDir()
	putFile(t, filepath.Join(root, "f"), "aaaa", 0o644)
	idx, err := IndexTree(t.Context(), root)
	must(t, err)
	if idx.entries["f"].sum == "" {
		t.Fatal("a file written just before the index has no content hash")
	}
	must(t, os.WriteFile(filepath.Join(root, "f"), []byte("bbbb"), 0o644))
	now, err := lstatTree(filepath.Join(root, "f"))
	must(t, err)
	old := idx.entries["f"]
	now.sum = old.sum
	idx.entries["f"] = now // the times the second write left, as if within the same tick
	var buf bytes.Buffer
	p, err := Pack(t.Context(), &buf, Uncompressed, 0, WriteOptions{}, func(w *Writer) error { return DiffTree(t.Context(), idx, w) })
	must(t, err)
	if p.Empty || !strings.Contains(tarListing(t, buf.Bytes()), "0 f ") {
		t.Fatalf("the racy change is not in the layer:\n%s", tarListing(t, buf.Bytes()))
	}
}

// BenchmarkDiffTreeUnchanged is the chroot rung's cost per RUN step over a materialized tree
// the step does not change: the index before and the walk after, over 5,000 files.
func BenchmarkDiffTreeUnchanged(b *testing.B) {
	root := b.TempDir()
	for i := range 5000 {
		putFile(b, filepath.Join(root, fmt.Sprintf("d%02d/f%04d", i%50, i)), "content", 0o644)
	}
	b.ResetTimer()
	for b.Loop() {
		idx, err := IndexTree(b.Context(), root)
		must(b, err)
		var buf bytes.Buffer
		w := NewWriter(&buf, WriteOptions{})
		must(b, DiffTree(b.Context(), idx, w))
		if w.Entries() != 0 {
			b.Fatalf("%d entries for no change", w.Entries())
		}
	}
}
