package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/testimage"
)

// requireContainers skips unless this process can run containers (root, an OCI runtime).
func requireContainers(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: containers mount overlayfs and create namespaces")
	}
	testimage.RequireBusybox(t)
}

// busyboxRoot returns a store root holding the in-process busybox image as "busybox".
func busyboxRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	s, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	desc, err := s.WriteImage(context.Background(), testimage.Busybox(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := cache.ParseName("busybox")
	if err := s.Tag(context.Background(), n, desc); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestRunExitCodesAndOptions(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"run", "--rm", "busybox", "sh", "-c", "exit 7"}, 7, ""},
		{[]string{"run", "--rm", "busybox", "no-such-command"}, 127, ""},
		{[]string{"run", "--rm", "--pull=never", "no-such-image"}, 125, ""},
		{[]string{"run", "--rm", "--memory", "1x", "busybox", "true"}, 125, ""},
		{[]string{"run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "--hostname", "box", "busybox",
			"sh", "-c", "echo $A $(pwd) $(id -u) $(hostname)"}, 0, "1 /tmp 65534 box"},
		{[]string{"run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net"}, 0, "lo"},
		{[]string{"run", "--rm", "--entrypoint", "/bin/echo", "busybox", "hi"}, 0, "hi"},
		{[]string{"run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c",
			"touch /scratch/x && echo ok && ! touch /x 2>/dev/null"}, 0, "ok"},
	} {
		r := kiln(t, root, nil, tc.args...)
		if r.code != tc.code || strings.TrimSpace(r.stdout) != tc.out {
			t.Errorf("kiln %s: exit %d, stdout %q; want %d, %q\nstderr: %s", strings.Join(tc.args, " "), r.code, r.stdout, tc.code, tc.out, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(root + "/containers"); len(ents) != 0 {
		t.Errorf("--rm left %d container dirs", len(ents))
	}
}

func TestBuildWithRunAndRunIt(t *testing.T) {
	requireContainers(t)
	root, ctxDir := busyboxRoot(t), t.TempDir()
	writeTree(t, ctxDir, map[string]string{
		"Buildfile": "FROM busybox\nRUN echo built > /built && rm /etc/group\nCOPY msg /msg\nRUN cat /msg >> /built\nCMD [\"cat\", \"/built\"]\n",
		"msg":       "from the context\n",
	})
	ok(t, root, "build", "--progress=plain", "-t", "app", ctxDir)
	r := ok(t, root, "run", "--rm", "app")
	if r.stdout != "built\nfrom the context\n" {
		t.Errorf("run app: %q", r.stdout)
	}
	if r := kiln(t, root, nil, "run", "--rm", "app", "ls", "/etc/group"); r.code == 0 {
		t.Error("a file deleted by RUN is still in the image")
	}
	again := ok(t, root, "build", "--progress=plain", "-t", "app", ctxDir)
	if n := strings.Count(again.stderr, "CACHED"); n != 3 {
		t.Errorf("rebuild: %d CACHED steps, want 3:\n%s", n, again.stderr)
	}
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\nRUN echo out; exit 4\n"})
	r = kiln(t, root, nil, "build", "--progress=plain", ctxDir)
	if r.code != 1 || !strings.Contains(r.stderr, "exit code 4") || !strings.Contains(r.stderr, "Buildfile:2") {
		t.Errorf("failing RUN: exit %d\n%s", r.code, r.stderr)
	}
}

func TestCheckReproducible(t *testing.T) {
	requireContainers(t)
	root, ctxDir := busyboxRoot(t), t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\nCOPY f /f\nRUN cp /f /g\n", "f": "x"})
	r := ok(t, root, "build", "--check-reproducible", "-t", "repro", ctxDir)
	if !strings.Contains(r.stderr, "reproducible: both builds gave") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /id\n"})
	r = kiln(t, root, nil, "build", "--check-reproducible", "-t", "notrepro", ctxDir)
	if r.code != 1 || !strings.Contains(r.stderr, "layer 2: /id (content)") {
		t.Errorf("a RUN writing random data: exit %d\n%s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "inspect", "notrepro"); r.code == 0 {
		t.Error("an irreproducible build was tagged")
	}
}

func TestInspectContainerOrImage(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "--name", "done", "busybox", "true")
	var info []map[string]any
	if err := json.Unmarshal([]byte(ok(t, root, "inspect", "done", "busybox").stdout), &info); err != nil || len(info) != 2 {
		t.Fatalf("inspect: %v %v", err, info)
	}
	if _, ok := info[0]["State"]; !ok {
		t.Errorf("container inspect lacks State: %v", info[0])
	}
	if _, ok := info[1]["RootFS"]; !ok {
		t.Errorf("image inspect lacks RootFS: %v", info[1])
	}
	if r := kiln(t, root, nil, "inspect", "nothing"); r.code != 1 || !strings.Contains(r.stderr, "no such container, image or volume: nothing") {
		t.Errorf("inspect nothing: %d %s", r.code, r.stderr)
	}
}

// TestBuildBindMountHidesIgnoredFiles runs #10.4's case in real containers: through a
// RUN --mount=type=bind of the context, an ignored file is absent, also behind a symlink,
// while the rest of the context is there.
func TestBuildBindMountHidesIgnoredFiles(t *testing.T) {
	requireContainers(t)
	root, ctxDir := busyboxRoot(t), t.TempDir()
	writeTree(t, ctxDir, map[string]string{".dockerignore": "secret.txt\n", "secret.txt": "s3cret", "ok.txt": "fine"})
	if err := os.Symlink(".", filepath.Join(ctxDir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	bf := "FROM busybox\nRUN --mount=type=bind,target=/ctx cat /ctx/linkdir/ok.txt > /ok && " +
		"! cat /ctx/secret.txt && ! cat /ctx/linkdir/secret.txt && ! ls /ctx | grep secret\nCMD [\"cat\", \"/ok\"]\n"
	writeTree(t, ctxDir, map[string]string{"Buildfile": bf})
	ok(t, root, "build", "--progress=plain", "-t", "bound", ctxDir)
	if r := ok(t, root, "run", "--rm", "bound"); strings.TrimSpace(r.stdout) != "fine" {
		t.Errorf("the bind lacked ok.txt: %q", r.stdout)
	}
}

// A command the runtime cannot execute fails `run` (foreground and -d) and `exec` with docker's
// 127, and the reason is said once, as kiln's own error: the runtime's raw line (it shares the
// container's stderr) is not printed beside it, nor recorded in the logs. A working directory
// that cannot be made is named as the container sees it, not by its place in the store.
func TestRuntimeErrorsAreKilns(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	check := func(what string, r result, code int, want string) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != code || len(lines) != 1 || !strings.HasPrefix(lines[0], "kiln: ") || !strings.Contains(lines[0], want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and one kiln: line with %q", what, r.code, r.stderr, code, want)
		}
		if strings.Contains(r.stderr, root) {
			t.Errorf("%s: the error shows the store's path: %s", what, r.stderr)
		}
	}
	check("run", kiln(t, root, nil, "run", "--rm", "busybox", "no-such-command"), 127, `exec: "no-such-command"`)
	check("run -d", kiln(t, root, nil, "run", "-d", "--name", "gone", "busybox", "no-such-command"), 127, `exec: "no-such-command"`)
	if r := kiln(t, root, nil, "logs", "gone"); strings.Contains(r.stdout+r.stderr, "failed") {
		t.Errorf("the runtime's error went into the container's logs: %q %q", r.stdout, r.stderr)
	}
	check("-w through a file", kiln(t, root, nil, "run", "--rm", "-w", "/etc/passwd", "busybox", "true"), 125, "/etc/passwd")
	if r := kiln(t, root, nil, "run", "-d", "--name", "up", "busybox", "sleep", "60"); r.code != 0 {
		t.Fatalf("run -d: %d %s", r.code, r.stderr)
	}
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "up") })
	check("exec", kiln(t, root, nil, "exec", "up", "no-such-command"), 127, `exec: "no-such-command"`)
	// A container that prints a line like the runtime's keeps it.
	if r := kiln(t, root, nil, "run", "--rm", "busybox", "sh", "-c", "echo 'runc: mine' >&2; exit 3"); r.code != 3 || r.stderr != "runc: mine\n" {
		t.Errorf("container's own runc-like line: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestNoNewPrivileges: as docker and BuildKit, setuid binaries may raise privileges in a container
// and a RUN step unless --security-opt no-new-privileges asks otherwise.
func TestNoNewPrivileges(t *testing.T) {
	requireContainers(t)
	root, ctxDir := busyboxRoot(t), t.TempDir()
	status := []string{"busybox", "grep", "NoNewPrivs", "/proc/self/status"}
	for _, tc := range []struct {
		opts []string
		code int
		out  string
	}{
		{nil, 0, "NoNewPrivs:\t0"},
		{[]string{"--security-opt", "no-new-privileges"}, 0, "NoNewPrivs:\t1"},
		{[]string{"--security-opt", "no-new-privileges:true"}, 0, "NoNewPrivs:\t1"},
		{[]string{"--security-opt", "no-new-privileges=false"}, 0, "NoNewPrivs:\t0"},
		{[]string{"--security-opt", "apparmor=unconfined", "--security-opt", "label=disable"}, 0, "NoNewPrivs:\t0"},
		{[]string{"--security-opt", "no-new-privileges=maybe"}, 125, ""},
		{[]string{"--security-opt", "apparmor=docker-default"}, 125, ""},
		{[]string{"--security-opt", "bogus"}, 125, ""},
	} {
		args := append(append([]string{"run", "--rm"}, tc.opts...), status...)
		r := kiln(t, root, nil, args...)
		if r.code != tc.code || strings.TrimSpace(r.stdout) != tc.out {
			t.Errorf("kiln %s: exit %d, stdout %q; want %d, %q\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, tc.code, tc.out, r.stderr)
		}
		if tc.code != 0 && !strings.Contains(r.stderr, "--security-opt") {
			t.Errorf("kiln %s: the error does not name the flag: %s", strings.Join(args, " "), r.stderr)
		}
	}
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\nUSER nobody\nRUN grep NoNewPrivs /proc/self/status > /tmp/nnp\n"})
	ok(t, root, "build", "--progress=plain", "-t", "nnp", ctxDir)
	if r := ok(t, root, "run", "--rm", "nnp", "cat", "/tmp/nnp"); strings.TrimSpace(r.stdout) != "NoNewPrivs:\t0" {
		t.Errorf("a RUN step ran with %q, want BuildKit's NoNewPrivs 0", r.stdout)
	}
}
