package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChrootBuildEqualsOCI builds the same context with the chroot rung (RUN in place in a
// materialized tree, layers diffed by walking it) and the oci rung (overlay upper dirs): the
// same SOURCE_DATE_EPOCH gives the same image, byte for byte (ownership, an opaque dir and
// deletions included).
func TestChrootBuildEqualsOCI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the chroot and oci rungs")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	ctxDir := t.TempDir()
	busyboxContext(t, ctxDir)
	// Device nodes and /etc files stay out of the layers, as the other rung's mounts do; the
	// /etc the first step makes (the oci rung made it for its mount stubs: mkdir -p finds it
	// and it is pruned) is not in that step's layer either.
	writeTree(t, ctxDir, map[string]string{"Buildfile": readFile(t, filepath.Join(ctxDir, "Buildfile")) +
		"RUN echo quiet > /dev/null && test -c /dev/null && cat /etc/resolv.conf /etc/hosts > /dev/null && echo host >> /etc/hosts\n" +
		"RUN rm /bin/sync && echo changed > /owned && ln /owned /owned.link && mkdir -p /etc/app && echo x > /etc/app/conf\n"})

	chroot := t.TempDir()
	b := ok(t, chroot, "--isolation=chroot", "--debug", "build", "--progress=plain", "-t", "bb", "--iidfile", filepath.Join(chroot, "iid"), ctxDir)
	if !strings.Contains(b.stderr, "isolation: chroot") {
		t.Errorf("the build does not say its isolation:\n%s", b.stderr)
	}
	oci := t.TempDir()
	ok(t, oci, "--isolation=oci", "build", "--progress=plain", "-t", "bb", "--iidfile", filepath.Join(oci, "iid"), ctxDir)
	a, _ := os.ReadFile(filepath.Join(chroot, "iid"))
	o, _ := os.ReadFile(filepath.Join(oci, "iid"))
	if len(a) == 0 || !bytes.Equal(a, o) {
		t.Errorf("chroot-built image %q, oci-built image %q: want the same\nchroot layers:\n%s\noci layers:\n%s", a, o,
			ok(t, chroot, "history", "--no-trunc", "bb").stdout, ok(t, oci, "history", "--no-trunc", "bb").stdout)
	}
	// kiln run needs namespaces: a clear refusal, not a weaker container, and no record left.
	for _, args := range [][]string{{"run", "--rm", "bb", "true"}, {"run", "-d", "bb", "true"}, {"create", "bb"}} {
		res := kiln(t, chroot, nil, append([]string{"--isolation=chroot"}, args...)...)
		if res.code != 125 || !strings.Contains(res.stderr, "chroot isolation") {
			t.Errorf("%v under chroot: exit %d\n%s", args, res.code, res.stderr)
		}
	}
	if ps := ok(t, chroot, "ps", "-a", "-q").stdout; ps != "" {
		t.Errorf("refused runs left containers:\n%s", ps)
	}
	// So does a RUN that needs a mount.
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM bb\nRUN --mount=type=tmpfs,target=/scratch true\n"})
	res := kiln(t, chroot, nil, "--isolation=chroot", "build", "--progress=plain", ctxDir)
	if res.code == 0 || !strings.Contains(res.stderr, "chroot isolation cannot mount") {
		t.Errorf("RUN --mount under chroot: exit %d\n%s", res.code, res.stderr)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
