package main

import (
	"strings"
	"testing"
)

// wait, rename, port, top and diff on real containers, with docker's output and exit codes.
func TestContainerVerbs(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "-d", "--name", "three", "busybox", "sh", "-c", "exit 3")
	if r := ok(t, root, "wait", "three"); r.stdout != "3\n" {
		t.Fatalf("wait: %q", r.stdout)
	}
	if r := kiln(t, root, nil, "wait", "nope"); r.code != 1 || !strings.Contains(r.stderr, "No such container: nope") {
		t.Fatalf("wait of a missing container: exit %d %s", r.code, r.stderr)
	}

	ok(t, root, "run", "-d", "--name", "w", "busybox", "sh", "-c",
		"rm /bin/ls && mkdir /newdir && echo hi > /newdir/f && touch /ready && exec sleep 300")
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "w2") })
	waitFor(t, "the container's changes", func() bool { return strings.Contains(kiln(t, root, nil, "diff", "w").stdout, "A /ready") })
	diff := ok(t, root, "container", "diff", "w").stdout
	for _, want := range []string{"C /bin\n", "D /bin/ls\n", "A /newdir\n", "A /newdir/f\n"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	top := ok(t, root, "top", "w").stdout
	lines := strings.Split(strings.TrimSpace(top), "\n")
	if !strings.HasPrefix(lines[0], "UID") || len(lines) != 2 || !strings.Contains(lines[1], "sleep 300") {
		t.Fatalf("top: want the header and the sleep only:\n%s", top)
	}
	if r := ok(t, root, "top", "w", "-o", "pid,comm"); !strings.Contains(r.stdout, "sleep") || strings.Contains(r.stdout, "UID") {
		t.Fatalf("top with ps options:\n%s", r.stdout)
	}
	if r := ok(t, root, "port", "w"); r.stdout != "" {
		t.Fatalf("port of a container without published ports: %q", r.stdout)
	}
	if r := kiln(t, root, nil, "port", "w", "80"); r.code != 1 || !strings.Contains(r.stderr, "no public port '80/tcp' published for w") {
		t.Fatalf("port 80: exit %d %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "rename", "w", "three"); r.code != 1 || !strings.Contains(r.stderr, `"/three" is already in use`) {
		t.Fatalf("rename to a taken name: exit %d %s", r.code, r.stderr)
	}
	ok(t, root, "rename", "w", "w2")
	if rows := psRows(t, root); rows["w2"].Status == "" || rows["w"].Status != "" {
		t.Fatalf("after rename: %+v", rows)
	}
	ok(t, root, "exec", "w2", "true")
	ok(t, root, "stop", "-t", "0", "w2")
	if r := kiln(t, root, nil, "top", "w2"); r.code != 1 || !strings.Contains(r.stderr, "is not running") {
		t.Fatalf("top of a stopped container: exit %d %s", r.code, r.stderr)
	}
	if r := ok(t, root, "wait", "w2"); r.stdout != "137\n" && r.stdout != "143\n" {
		t.Fatalf("wait of a stopped container: %q", r.stdout)
	}
	if !strings.Contains(ok(t, root, "diff", "w2").stdout, "D /bin/ls\n") {
		t.Error("diff of a stopped container lost its changes")
	}
}

// create makes a container that runs only at start, with run's flags.
func TestCreateThenStart(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	id := strings.TrimSpace(ok(t, root, "create", "--name", "later", "-e", "V=5", "busybox", "sh", "-c", "echo v=$V; exit $V").stdout)
	if len(id) != 64 {
		t.Fatalf("create printed %q", id)
	}
	if st := inspectOne(t, root, "later").State; st.Status != "created" || st.Pid != 0 {
		t.Fatalf("created container: %+v", st)
	}
	if rows := psRows(t, root); rows["later"].Status != "Created" {
		t.Fatalf("ps -a: %+v", rows["later"])
	}
	ok(t, root, "start", "later")
	if r := ok(t, root, "wait", "later"); r.stdout != "5\n" {
		t.Fatalf("wait: %q", r.stdout)
	}
	if r := ok(t, root, "logs", "later"); r.stdout != "v=5\n" {
		t.Errorf("logs: %q", r.stdout)
	}
	if r := kiln(t, root, nil, "create", "--name", "later", "busybox"); r.code != 125 || !strings.Contains(r.stderr, "already in use") {
		t.Errorf("create with a taken name: exit %d %s", r.code, r.stderr)
	}
}
