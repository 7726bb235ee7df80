package main

import (
	"strings"
	"testing"
)

// The grouped forms are the top-level verbs under docker's names, flags included.
func TestGroupedVerbs(t *testing.T) {
	root := t.TempDir()
	tagRandomImage(t, root, "app")
	if a, b := ok(t, root, "images").stdout, ok(t, root, "image", "ls").stdout; a != b || !strings.Contains(a, "app") {
		t.Fatalf("image ls %q differs from images %q", b, a)
	}
	ok(t, root, "image", "tag", "app", "app:v2")
	if r := ok(t, root, "image", "list"); !strings.Contains(r.stdout, "v2") {
		t.Fatalf("image list: %q", r.stdout)
	}
	if r := ok(t, root, "image", "inspect", "app:v2"); !strings.Contains(r.stdout, `"RepoTags"`) {
		t.Fatalf("image inspect: %s", r.stdout)
	}
	ok(t, root, "image", "rm", "app:v2")
	if a, b := ok(t, root, "ps", "-a").stdout, ok(t, root, "container", "ls", "-a").stdout; a != b {
		t.Fatalf("container ls -a %q differs from ps -a %q", b, a)
	}
	for _, args := range [][]string{{"image"}, {"container"}, {"builder"}, {"image", "rm", "--help"}, {"container", "stop", "--help"}} {
		if r := ok(t, root, args...); !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("kiln %s: no help: %q", strings.Join(args, " "), r.stdout)
		}
	}
	if r := kiln(t, root, nil, "image", "rm"); r.code != 2 || !strings.Contains(r.stderr, `"kiln image rm" requires`) {
		t.Errorf("image rm without args: exit %d, %s", r.code, r.stderr)
	}
}
