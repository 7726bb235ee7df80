package main

import (
	"strings"
	"testing"
)

// An image whose /etc/passwd is a FIFO fails the next RUN step and `kiln run` (with or without
// -u) with an error naming the file; kiln used to block in open(2) forever (issue 10.3).
func TestFifoPasswdFailsFast(t *testing.T) {
	requireContainers(t)
	root, ctxDir := busyboxRoot(t), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\nRUN rm -f /etc/passwd && mkfifo /etc/passwd\n"})
	ok(t, root, "build", "--progress=plain", "-t", "fifo", ctxDir)
	for _, args := range [][]string{
		{"run", "--rm", "--network", "none", "fifo", "true"},
		{"run", "--rm", "--network", "none", "-u", "nobody", "fifo", "true"},
		{"run", "--rm", "--network", "none", "-u", "1000:1000", "fifo", "true"},
	} {
		r := kiln(t, root, nil, args...)
		if r.code != exitKilnError || !strings.Contains(r.stderr, "/etc/passwd in the image is a FIFO") {
			t.Errorf("kiln %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM fifo\nRUN true\n"})
	r := kiln(t, root, nil, "build", "--progress=plain", ctxDir)
	if r.code == 0 || !strings.Contains(r.stderr, "Buildfile:2") || !strings.Contains(r.stderr, "/etc/passwd in the image is a FIFO") {
		t.Errorf("RUN over a FIFO /etc/passwd: exit %d, stderr %q", r.code, r.stderr)
	}
}
