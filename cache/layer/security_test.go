package layer

import (
	"archive/tar"
	"bytes"
	"io"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sandbox is a target dir next to a sentinel dir holding a "host" file; a safe Apply into
// the target never changes the sentinel.
type sandbox struct {
	target, outside, hostFile string
}

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	base := t.TempDir()
	sb := sandbox{target: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	sb.hostFile = filepath.Join(sb.outside, "passwd")
	must(t, os.Mkdir(sb.target, 0o755))
	putFile(t, sb.hostFile, "root:x:0:0\n", 0o644)
	return sb
}

// check fails if anything outside the target changed.
func (sb sandbox) check(t testing.TB, before map[string]string) {
	t.Helper()
	if d := diffTrees(before, snapshotTree(t, sb.outside)); d != "" {
		t.Fatalf("Apply changed files outside its dir:\n%s", d)
	}
}

func TestApplyConfinement(t *testing.T) {
	cases := []struct {
		name    string
		entries []tarEntry
	}{
		{"dotdot", []tarEntry{{name: "../outside/passwd", typ: tar.TypeReg, body: "pwned"}}},
		{"deep dotdot", []tarEntry{{name: "a/../../../outside/new", typ: tar.TypeReg, body: "pwned"}}},
		{"absolute", []tarEntry{{name: "/outside/passwd", typ: tar.TypeReg, body: "pwned"}}},
		{"through symlink to /", []tarEntry{
			{name: "escape", typ: tar.TypeSymlink, link: "/"},
			{name: "escape/outside/passwd", typ: tar.TypeReg, body: "pwned"}}},
		{"through relative symlink", []tarEntry{
			{name: "up", typ: tar.TypeSymlink, link: "../outside"},
			{name: "up/passwd", typ: tar.TypeReg, body: "pwned"},
			{name: "up/new", typ: tar.TypeReg, body: "pwned"}}},
		{"symlink chain", []tarEntry{
			{name: "a", typ: tar.TypeSymlink, link: "b"},
			{name: "b", typ: tar.TypeSymlink, link: "../outside"},
			{name: "a/passwd", typ: tar.TypeReg, body: "pwned"}}},
		{"dir through symlink", []tarEntry{
			{name: "up", typ: tar.TypeSymlink, link: "../outside"},
			{name: "up/sub/", typ: tar.TypeDir, mode: 0o777}}},
		{"hardlink to host file", []tarEntry{
			{name: "pw", typ: tar.TypeLink, link: "../outside/passwd"}}},
		{"hardlink via symlink", []tarEntry{
			{name: "up", typ: tar.TypeSymlink, link: "../outside"},
			{name: "pw", typ: tar.TypeLink, link: "up/passwd"},
			{name: "pw", typ: tar.TypeReg, body: "pwned"}}},
		{"hardlink to symlink out, then write", []tarEntry{
			{name: "s", typ: tar.TypeSymlink, link: "../outside/passwd"},
			{name: "h", typ: tar.TypeLink, link: "s"},
			{name: "h", typ: tar.TypeReg, body: "pwned"}}},
		{"overwrite symlink to outside", []tarEntry{
			{name: "pw", typ: tar.TypeSymlink, link: "../outside/passwd"},
			{name: "pw", typ: tar.TypeReg, body: "pwned", mode: 0o777}}},
		{"chmod through symlink", []tarEntry{
			{name: "pw", typ: tar.TypeSymlink, link: "../outside/passwd", mode: 0o777}}},
		{"whiteout escape", []tarEntry{{name: "../outside/.wh.passwd", typ: tar.TypeReg}}},
		{"whiteout through symlink", []tarEntry{
			{name: "up", typ: tar.TypeSymlink, link: "../outside"},
			{name: "up/.wh.passwd", typ: tar.TypeReg}}},
		{"absolute symlink to the host dir", []tarEntry{
			{name: "host", typ: tar.TypeSymlink, link: "$OUTSIDE"},
			{name: "host/passwd", typ: tar.TypeReg, body: "pwned"},
			{name: "host/new/", typ: tar.TypeDir, mode: 0o777}}},
		{"hardlink through absolute symlink", []tarEntry{
			{name: "host", typ: tar.TypeSymlink, link: "$OUTSIDE"},
			{name: "pw", typ: tar.TypeLink, link: "host/passwd"},
			{name: "pw", typ: tar.TypeReg, body: "pwned"}}},
		{"whiteout through absolute symlink", []tarEntry{
			{name: "host", typ: tar.TypeSymlink, link: "$OUTSIDE"},
			{name: "host/.wh.passwd", typ: tar.TypeReg},
			{name: "host/.wh..wh..opq", typ: tar.TypeReg}}},
		{"opaque through symlink", []tarEntry{
			{name: "up", typ: tar.TypeSymlink, link: "../outside"},
			{name: "up/.wh..wh..opq", typ: tar.TypeReg}}},
	}
	for _, tc := range cases {
		for _, mode := range []WhiteoutMode{OverlayWhiteouts, DeleteWhiteouts} {
			t.Run(tc.name, func(t *testing.T) {
				sb := newSandbox(t)
				before := snapshotTree(t, sb.outside)
				entries := append([]tarEntry(nil), tc.entries...)
				for i := range entries {
					entries[i].link = strings.ReplaceAll(entries[i].link, "$OUTSIDE", sb.outside)
				}
				data := makeTar(t, entries)
				_, err := Apply(context.Background(), bytes.NewReader(data), sb.target, ApplyOptions{Whiteouts: mode})
				sb.check(t, before)
				t.Logf("mode %d: %v", mode, err)
			})
		}
	}
}

func FuzzApply(f *testing.F) {
	f.Add(makeTar(f, []tarEntry{{name: "a/b", typ: tar.TypeReg, body: "x"}, {name: "l", typ: tar.TypeSymlink, link: "/"}}))
	f.Add(makeTar(f, []tarEntry{{name: "up", typ: tar.TypeSymlink, link: "../outside"}, {name: "up/x", typ: tar.TypeReg, body: "x"}}))
	f.Add(makeTar(f, []tarEntry{{name: "h", typ: tar.TypeLink, link: "../outside/passwd"}, {name: "d/.wh..wh..opq", typ: tar.TypeReg}}))
	f.Add(makeTar(f, []tarEntry{{name: "d/", typ: tar.TypeDir}, {name: "d/.wh.x", typ: tar.TypeReg}, {name: "f", typ: tar.TypeFifo}}))
	sb := newSandbox(f) // one per worker: a fresh temp dir per input would dominate the run time
	f.Add(makeTar(f, []tarEntry{{name: "host", typ: tar.TypeSymlink, link: sb.outside}, {name: "host/passwd", typ: tar.TypeReg, body: "x"},
		{name: "pw", typ: tar.TypeLink, link: "host/passwd"}}))
	before := snapshotTree(f, sb.outside)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mode := range []WhiteoutMode{OverlayWhiteouts, DeleteWhiteouts} {
			must(t, os.RemoveAll(sb.target))
			must(t, os.Mkdir(sb.target, 0o755))
			_, _ = Apply(context.Background(), bytes.NewReader(data), sb.target, ApplyOptions{Whiteouts: mode})
			sb.check(t, before)
		}
	})
}

func FuzzDecompress(f *testing.F) {
	data := makeTar(f, []tarEntry{{name: "f", typ: tar.TypeReg, body: "x"}})
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		var buf bytes.Buffer
		w, _ := compressor(&buf, c, 0)
		_, _ = w.Write(data)
		_ = w.Close()
		f.Add(buf.Bytes())
	}
	// One encoder of each kind per worker, reset for every input: making them costs far more
	// than a small input's round trip.
	type resetter interface {
		io.WriteCloser
		Reset(io.Writer)
	}
	encoders := map[Compression]resetter{}
	for _, c := range []Compression{Gzip, Zstd} {
		w, err := compressor(io.Discard, c, 0)
		must(f, err)
		encoders[c] = w.(resetter)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		drain(t, data)
		if len(data) > 64<<10 {
			return // the round trip needs no big inputs
		}
		for _, c := range []Compression{Gzip, Zstd} {
			var buf bytes.Buffer
			w := encoders[c]
			w.Reset(&buf)
			_, err := w.Write(data)
			must(t, err)
			must(t, w.Close())
			rc, err := Decompress(&buf)
			must(t, err)
			if got := readAll(t, rc); !bytes.Equal(got, data) {
				t.Fatalf("%s round trip: got %d bytes, want %d", c, len(got), len(data))
			}
		}
	})
}

// drain reads what Decompress makes of arbitrary bytes, which must not panic.
func drain(t *testing.T, data []byte) {
	rc, err := Decompress(bytes.NewReader(data))
	if err != nil {
		return
	}
	defer rc.Close()
	buf := make([]byte, 64<<10)
	for range 256 { // bound the work: a tiny input may inflate enormously
		if _, err := rc.Read(buf); err != nil {
			return
		}
	}
}

// TestApplyResolvesLinksInRoot checks container semantics for symlinked parents: an
// absolute or climbing link resolves inside dir (var/run -> /run means dir/run), as docker
// and containerd unpack it, rather than failing or escaping.
func TestApplyResolvesLinksInRoot(t *testing.T) {
	sb := newSandbox(t)
	before := snapshotTree(t, sb.outside)
	data := makeTar(t, []tarEntry{
		{name: "run/", typ: tar.TypeDir, mode: 0o755},
		{name: "usr/lib/", typ: tar.TypeDir, mode: 0o755},
		{name: "var/", typ: tar.TypeDir, mode: 0o755},
		{name: "var/run", typ: tar.TypeSymlink, link: "/run"},
		{name: "lib", typ: tar.TypeSymlink, link: "../../../../usr/lib"},
		{name: "var/run/pid", typ: tar.TypeReg, body: "1"},
		{name: "lib/libc.so", typ: tar.TypeReg, body: "elf"},
		{name: "pid.link", typ: tar.TypeLink, link: "var/run/pid"},
		{name: "var/run/gone", typ: tar.TypeReg, body: "x"},
		{name: "var/run/.wh.gone", typ: tar.TypeReg},
	})
	mustApply(t, data, sb.target, DeleteWhiteouts)
	sb.check(t, before)
	got := snapshotTree(t, sb.target)
	for _, p := range []string{"run/pid", "usr/lib/libc.so", "pid.link"} {
		if !strings.HasPrefix(got[p], "-") {
			t.Errorf("%s: want a file, got %q", p, got[p])
		}
	}
	if _, ok := got["run/gone"]; ok {
		t.Error("whiteout through var/run did not delete run/gone")
	}
	if !strings.Contains(got["pid.link"], "linked-to") && !strings.Contains(got["run/pid"], "linked-to") {
		t.Errorf("pid.link is not a hard link of run/pid: %q %q", got["pid.link"], got["run/pid"])
	}
}

// FuzzApplyEntries fuzzes well-formed tars whose names and link targets come from the input
// (lines of "type|name|link", $OUTSIDE standing for the sentinel's host path), which reaches
// path resolution far more often than mutating raw tar bytes.
func FuzzApplyEntries(f *testing.F) {
	f.Add("l|a|$OUTSIDE\nf|a/passwd|\nh|b|a/passwd")
	f.Add("l|a|/\nl|a/b|../../..\nd|a/b/c|\nf|a/b/c/d|")
	f.Add("d|x|\nf|x/.wh..wh..opq|\nl|x/y|..\nf|x/y/.wh.outside|")
	f.Add("l|s|../outside/passwd\nh|t|s\nf|t|\nf|s|")
	sb := newSandbox(f)
	before := snapshotTree(f, sb.outside)
	types := map[string]byte{"f": tar.TypeReg, "d": tar.TypeDir, "l": tar.TypeSymlink, "h": tar.TypeLink, "p": tar.TypeFifo}
	f.Fuzz(func(t *testing.T, spec string) {
		var entries []tarEntry
		for i, line := range strings.Split(spec, "\n") {
			fields := strings.SplitN(line, "|", 3)
			if i == 16 || len(fields) != 3 || types[fields[0]] == 0 {
				break
			}
			entries = append(entries, tarEntry{name: fields[1], typ: types[fields[0]], body: "pwned",
				link: strings.ReplaceAll(fields[2], "$OUTSIDE", sb.outside)})
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range entries {
			hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o777}
			if e.typ == tar.TypeReg {
				hdr.Size = int64(len(e.body))
			}
			if tw.WriteHeader(hdr) != nil {
				return
			}
			_, _ = tw.Write([]byte(e.body))
		}
		_ = tw.Close()
		for _, mode := range []WhiteoutMode{OverlayWhiteouts, DeleteWhiteouts} {
			must(t, os.RemoveAll(sb.target))
			must(t, os.Mkdir(sb.target, 0o755))
			_, _ = Apply(context.Background(), bytes.NewReader(buf.Bytes()), sb.target, ApplyOptions{Whiteouts: mode})
			sb.check(t, before)
		}
	})
}
