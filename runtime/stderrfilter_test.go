package runtime

import (
	"bytes"
	"testing"
)

// The runtime's own failure line is held back and dropped when the runtime failed; the
// container's lines pass through as written, and a look-alike the container wrote survives.
func TestOwnLinesFilter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		failed bool
		want   string
	}{
		{"runtime failure", []string{"runc run failed: unable to start container process: exec: \"x\"\n"}, true, ""},
		{"split writes", []string{"ru", "nc run fa", "iled: boom\n"}, true, ""},
		{"exec failure", []string{"exec failed: unable to start container process: boom\n"}, true, ""},
		{"container output", []string{"hello\n", "runtime error\n", "partial"}, false, "hello\nruntime error\npartial"},
		{"look-alike kept", []string{"a\n", "runc: not mine\n", "b\n"}, false, "a\nb\nrunc: not mine\n"},
		{"mid-line prefix", []string{"x runc: y\n"}, true, "x runc: y\n"},
		{"one write, many lines", []string{"out\nrunc run failed: boom\n"}, true, "out\n"},
	} {
		var buf bytes.Buffer
		r := &ociRunner{name: "runc 1.1.5+ds1"}
		io := stdio{Stderr: &buf}
		f := r.filterStderr(&io)
		for _, w := range tc.writes {
			if n, err := io.Stderr.Write([]byte(w)); err != nil || n != len(w) {
				t.Fatalf("%s: Write = %d, %v", tc.name, n, err)
			}
		}
		f.finish(tc.failed)
		if buf.String() != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, buf.String(), tc.want)
		}
	}
	var both bytes.Buffer
	shared := stdio{Stdout: &both, Stderr: &both}
	if (&ociRunner{name: "runc"}).filterStderr(&shared); shared.Stdout != shared.Stderr {
		t.Error("one writer for both streams must stay one (one pipe, in order)")
	}
	if (&ociRunner{name: "runc"}).filterStderr(&stdio{Terminal: true}) != nil {
		t.Error("a terminal's output is the runtime's console: no filter")
	}
}
