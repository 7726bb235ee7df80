package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// snapshotCount is how many unpacked layers the store holds.
func snapshotCount(t *testing.T, root string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Containers are GC roots: rmi of their image fails as docker's does, rmi -f untags but
// prune keeps the data for a running, a stopped and a restarted detached container, and
// only `kiln rm` lets it go (issue 11's data-loss bug).
func TestContainersAreGCRoots(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	id := strings.TrimSpace(ok(t, root, "run", "-d", "--name", "s", "busybox", "sleep", "300").stdout)
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "s") })
	imageID := strings.TrimPrefix(imageRows(t, root)[0].ID, "sha256:")
	r := kiln(t, root, nil, "rmi", "busybox")
	want := `conflict: unable to remove repository reference "busybox" (must force) - container ` + id[:12] + ` is using its referenced image ` + imageID[:12]
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("rmi of a used image: exit %d\n%s\nwant %s", r.code, r.stderr, want)
	}
	if rows := imageRows(t, root); len(rows) != 1 {
		t.Fatalf("failed rmi changed the images: %+v", rows)
	}
	ok(t, root, "prune", "--all")
	ok(t, root, "exec", "s", "ls", "/bin/busybox") // running
	if r := ok(t, root, "rmi", "-f", "busybox"); !strings.Contains(r.stdout, "Untagged: busybox:latest") {
		t.Fatalf("rmi -f: %s", r.stdout)
	}
	if rows := imageRows(t, root); len(rows) != 0 {
		t.Fatalf("rmi -f left %+v", rows)
	}
	ok(t, root, "prune", "--all")
	ok(t, root, "exec", "s", "ls", "/bin/busybox")
	ok(t, root, "stop", "-t", "0", "s")
	ok(t, root, "prune", "--all") // stopped
	ok(t, root, "start", "s")
	ok(t, root, "exec", "s", "ls", "/bin/busybox")
	if snapshotCount(t, root) == 0 {
		t.Fatal("no snapshots left under a living container")
	}
	ok(t, root, "rm", "-f", "s")
	ok(t, root, "prune", "--all")
	if n := snapshotCount(t, root); n != 0 {
		t.Errorf("%d snapshots left after the container and its image are gone", n)
	}
}

// A foreground `run --rm` in progress keeps its image through rmi -f and prune.
func TestForegroundRunIsGCRoot(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	gate := t.TempDir()
	cmd := exec.Command(os.Args[0], "run", "--rm", "--name", "fg", "-v", gate+":/gate", "busybox", "sh", "-c",
		"touch /gate/up; while [ ! -e /gate/go ]; do sleep 0.05; done; /bin/busybox true && echo survived")
	cmd.Env = append(os.Environ(), execEnv+"=1", "KILN_ROOT="+root)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck // already exited when the test passes
	waitFor(t, "the container to start", func() bool { _, err := os.Stat(filepath.Join(gate, "up")); return err == nil })
	ok(t, root, "rmi", "-f", "busybox")
	ok(t, root, "prune", "--all")
	if err := os.WriteFile(filepath.Join(gate, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil || out.String() != "survived\n" {
		t.Fatalf("foreground run after rmi -f and prune: %v\nstdout %q\nstderr %s", err, out.String(), errb.String())
	}
	ok(t, root, "prune", "--all")
	if n := snapshotCount(t, root); n != 0 {
		t.Errorf("%d snapshots left after the --rm container ended", n)
	}
}
