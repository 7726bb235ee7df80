package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, o := range []Options{{}, {Perm: 0o600, NoSync: true}, {TmpDir: t.TempDir()}} {
		if err := Write(p, []byte("data"), o); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		want := o.Perm
		if want == 0 {
			want = 0o644
		}
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%+v: %v %v", o, fi.Mode(), err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
	if err := Write(filepath.Join(dir, "missing", "f"), nil, Options{}); err == nil {
		t.Error("write into a missing dir succeeded")
	}
}

func TestWriteNoReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := Write(p, []byte("first"), Options{NoReplace: true}); err != nil {
		t.Fatal(err)
	}
	err := Write(p, []byte("second"), Options{NoReplace: true})
	if !errors.Is(err, os.ErrExist) {
		t.Fatalf("second write: %v, want os.ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "first" {
		t.Errorf("file holds %q after a refused write", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}

func TestSyncFS(t *testing.T) {
	dir := t.TempDir()
	if err := SyncFS(dir); err != nil {
		t.Fatal(err)
	}
	if err := SyncFS(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SyncFS of a missing path: %v, want os.ErrNotExist", err)
	}
}
