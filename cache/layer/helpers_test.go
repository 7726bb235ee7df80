package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// tarEntry describes one entry of a hand-made test tar.
type tarEntry struct {
	name, link, body string
	typ              byte
	mode             int64
}

// makeTar builds an uncompressed tar from entries, in order.
func makeTar(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// snapshotTree describes every path under dir: type, mode, owner, size, content hash,
// link target, xattrs (user.* and security.capability) and whether it is a 0/0 device.
func snapshotTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:8])
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					desc += " linked-to " + first
				} else {
					inodes[st.Ino] = rel
				}
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case fi.Mode()&fs.ModeDevice != 0:
			desc += fmt.Sprintf(" dev %d", st.Rdev)
		}
		for _, x := range []string{"user.x", "security.capability", "trusted.overlay.opaque"} {
			buf := make([]byte, 256)
			if n, err := unix.Lgetxattr(p, x, buf); err == nil {
				desc += fmt.Sprintf(" %s=%q", x, buf[:n])
			}
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffTrees reports the differences between two snapshotTree results.
func diffTrees(want, got map[string]string) string {
	var lines []string
	for k, v := range want {
		if got[k] != v {
			lines = append(lines, fmt.Sprintf("%s:\n  want %s\n  got  %s", k, v, got[k]))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			lines = append(lines, fmt.Sprintf("%s: unexpected %s", k, v))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// packDir packs upper with Diff into an uncompressed tar.
func packDir(t testing.TB, upper string, opts WriteOptions) ([]byte, Packed) {
	t.Helper()
	var buf bytes.Buffer
	p, err := Pack(context.Background(), &buf, Uncompressed, 0, opts, func(w *Writer) error {
		return Diff(context.Background(), upper, w)
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), p
}

func mustApply(t testing.TB, data []byte, dir string, mode WhiteoutMode) {
	t.Helper()
	if _, err := Apply(context.Background(), bytes.NewReader(data), dir, ApplyOptions{Whiteouts: mode}); err != nil {
		t.Fatal(err)
	}
}

func putFile(t testing.TB, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// unix.Chmod takes the octal bits as written (0o4755 is setuid); os.Chmod would need
	// os.ModeSetuid and silently drop them.
	if err := unix.Chmod(p, uint32(mode)&0o7777); err != nil {
		t.Fatal(err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readAll(t testing.TB, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
