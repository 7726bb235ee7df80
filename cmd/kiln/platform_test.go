package main

import (
	"strings"
	"testing"

	"github.com/kiln-build/kiln/build"
)

// TestPlatformFlag: build, run and pull accept --platform for the host platform and refuse
// any other with the host-only message before doing any work.
func TestPlatformFlag(t *testing.T) {
	root, ctxDir := t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	ok(t, root, "build", "--platform", build.HostPlatform, "-t", "p", ctxDir)
	other := "linux/s390x"
	if build.HostPlatform == other {
		other = "linux/arm64"
	}
	for _, args := range [][]string{
		{"build", "--platform", other, ctxDir},
		{"pull", "--platform", other, "localhost:1/x"},
		{"run", "--platform", other, "--rm", "p", "/a"},
	} {
		r := kiln(t, root, nil, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "kiln builds for the host platform ("+build.HostPlatform+") only") {
			t.Errorf("kiln %v: exit %d, %q", args, r.code, r.stderr)
		}
	}
}
