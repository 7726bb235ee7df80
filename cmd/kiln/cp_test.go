package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cp both ways, with tar streams, and a hostile container: its symlinks to / and ../.. resolve
// in the container's root, so the host's same-named files are never read or written.
func TestCp(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	canary := fmt.Sprintf("kiln-cp-canary-%d", os.Getpid())
	hostCanary := filepath.Join("/", canary)
	if err := os.WriteFile(hostCanary, []byte("HOST\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range []string{"", "-in", "-tar", "-stopped-in", "-stopped-up", "-stopped-tar"} {
			os.Remove(hostCanary + s)
		}
	})
	// The second start (after the cp into the stopped container) finds its files made.
	ok(t, root, "run", "-d", "--name", "c", "busybox", "sh", "-c",
		"test -e /ready || { ln -s / /evil && ln -s ../../../.. /up && echo CONTAINER > /"+canary+" && mkdir -p /d/sub && echo x > /d/sub/f && touch /ready; }; exec sleep 300")
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "c") })
	waitFor(t, "the container's files", func() bool { return kiln(t, root, nil, "exec", "c", "test", "-e", "/ready").code == 0 })

	out := t.TempDir()
	for _, src := range []string{"/evil/" + canary, "/up/" + canary, "/evil/../" + canary} {
		dst := filepath.Join(out, "got")
		ok(t, root, "cp", "c:"+src, dst)
		if b, _ := os.ReadFile(dst); string(b) != "CONTAINER\n" {
			t.Errorf("cp c:%s read %q, want the container's file", src, b)
		}
		os.Remove(dst)
	}
	ok(t, root, "cp", "c:/evil", filepath.Join(out, "link"))
	if l, err := os.Readlink(filepath.Join(out, "link")); err != nil || l != "/" {
		t.Errorf("cp of a symlink: %q %v, want the link itself", l, err)
	}

	in := filepath.Join(t.TempDir(), "in")
	os.WriteFile(in, []byte("IN\n"), 0o644)
	ok(t, root, "cp", in, "c:/evil/"+canary+"-in")
	if _, err := os.Stat(hostCanary + "-in"); err == nil {
		t.Fatal("cp into the container through its symlink to / wrote the host's /")
	}
	if r := ok(t, root, "exec", "c", "cat", "/"+canary+"-in"); r.stdout != "IN\n" {
		t.Errorf("copied-in file: %q", r.stdout)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "evil/" + canary + "-tar", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("TAR"))
	tw.Close()
	if r := kiln(t, root, &tb, "cp", "-", "c:/"); r.code != 0 {
		t.Fatalf("cp - c:/: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(hostCanary + "-tar"); err == nil {
		t.Fatal("a tar entry through the container's symlink to / wrote the host's /")
	}

	ok(t, root, "cp", "c:/d", filepath.Join(out, "d"))
	ok(t, root, "cp", "c:/d/.", filepath.Join(out, "d2"))
	for _, p := range []string{"d/sub/f", "d2/sub/f"} {
		if b, _ := os.ReadFile(filepath.Join(out, p)); string(b) != "x\n" {
			t.Errorf("%s: %q", p, b)
		}
	}
	r := ok(t, root, "cp", "c:/d/sub/f", "-")
	tr := tar.NewReader(strings.NewReader(r.stdout))
	if h, err := tr.Next(); err != nil || h.Name != "f" || h.Size != 2 {
		t.Errorf("cp to -: %+v %v", h, err)
	}

	ok(t, root, "stop", "-t", "0", "c")
	ok(t, root, "cp", "c:/up/"+canary, filepath.Join(out, "stopped"))
	if b, _ := os.ReadFile(filepath.Join(out, "stopped")); string(b) != "CONTAINER\n" {
		t.Errorf("cp from a stopped container read %q", b)
	}

	// Into the stopped container: its own upper dir, confined as when it runs.
	ok(t, root, "cp", in, "c:/evil/"+canary+"-stopped-in")
	ok(t, root, "cp", in, "c:/up/"+canary+"-stopped-up")
	tb.Reset()
	tw = tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "evil/" + canary + "-stopped-tar", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("TAR"))
	tw.Close()
	if r := kiln(t, root, &tb, "cp", "-", "c:/"); r.code != 0 {
		t.Fatalf("cp - c:/ into a stopped container: exit %d %s", r.code, r.stderr)
	}
	for _, s := range []string{"-stopped-in", "-stopped-up", "-stopped-tar"} {
		if _, err := os.Stat(hostCanary + s); err == nil {
			t.Errorf("cp into the stopped container through its symlinks wrote the host's %s", hostCanary+s)
		}
	}
	if n := containerMounts(root); n != 0 {
		t.Errorf("cp into a stopped container left %d mounts", n)
	}
	if r := kiln(t, root, nil, "cp", in, "c:/nodir/x"); r.code != 1 || !strings.Contains(r.stderr, "/nodir") {
		t.Errorf("cp into a missing directory of a stopped container: exit %d %s", r.code, r.stderr)
	}
	ok(t, root, "start", "c")
	want := "IN\nIN\nTAR"
	var got string
	waitFor(t, "the files copied in while stopped", func() bool {
		r := kiln(t, root, nil, "exec", "c", "cat", "/"+canary+"-stopped-in", "/"+canary+"-stopped-up", "/"+canary+"-stopped-tar")
		got = r.stdout
		return r.code == 0
	})
	if got != want {
		t.Errorf("files copied in while stopped read %q, want %q", got, want)
	}

	// Into a created, never started container.
	ok(t, root, "create", "--name", "new", "busybox", "cat", "/made")
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "new") })
	made := filepath.Join(t.TempDir(), "made")
	os.WriteFile(made, []byte("MADE\n"), 0o644)
	ok(t, root, "cp", made, "new:/made")
	if r := ok(t, root, "start", "-a", "new"); r.stdout != "MADE\n" {
		t.Errorf("start -a after cp into a created container printed %q", r.stdout)
	}
	for _, args := range [][]string{{"cp", "a", "b"}, {"cp", "c:/a", "c:/b"}, {"cp", "c:", "x"}} {
		if r := kiln(t, root, nil, args...); r.code != 2 {
			t.Errorf("kiln %v: exit %d, want 2", args, r.code)
		}
	}
}

// An export whose reader goes away (SIGPIPE), or that is SIGKILLed while it holds the stopped
// container's filesystem mounted, leaves no mount behind for good: the first winds down itself,
// and `kiln rm` unmounts what the killed one left, then removes the container.
func TestExportInterruptedLeavesNoMount(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "--name", "big", "busybox", "sh", "-c", "head -c 8000000 /dev/zero > /big")
	mounted := func() int { return containerMounts(root) }
	// The reader reads a little and leaves.
	cmd := exec.Command("sh", "-c", `"$0" export big | head -c 1000 >/dev/null`, os.Args[0])
	cmd.Env = append(os.Environ(), execEnv+"=1", "KILN_ROOT="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export | head: %v %s", err, out)
	}
	if n := mounted(); n != 0 {
		t.Fatalf("an export cut short by its reader left %d mounts", n)
	}
	// Killed while it blocks on a pipe nobody reads.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	exp := exec.Command(os.Args[0], "export", "big")
	exp.Env, exp.Stdout = append(os.Environ(), execEnv+"=1", "KILN_ROOT="+root), pw
	if err := exp.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	for deadline := time.Now().Add(20 * time.Second); mounted() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the export never mounted the container's filesystem")
		}
	}
	exp.Process.Kill() //nolint:errcheck // it is blocked writing
	exp.Wait()         //nolint:errcheck // killed
	if n := mounted(); n == 0 {
		t.Fatal("the killed export left no mount: the test proves nothing")
	}
	if r := kiln(t, root, nil, "rm", "big"); r.code != 0 {
		t.Fatalf("rm after a killed export: %d %s", r.code, r.stderr)
	}
	if n := mounted(); n != 0 {
		t.Errorf("rm left %d mounts", n)
	}
	if ents, _ := os.ReadDir(root + "/containers"); len(ents) != 0 {
		t.Errorf("rm left %d entries in containers/", len(ents))
	}
}

// containerMounts counts the mounts under root's containers.
func containerMounts(root string) int {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Count(string(data), root+"/containers/")
}

// A cp into a stopped container holds it: a start or a second cp meanwhile is refused. SIGKILLed
// while it holds the container's own upper dir mounted, it leaves a mount that the next start
// unmounts before mounting that upper dir itself.
func TestCpStoppedInterrupted(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "--name", "s", "busybox", "true")
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "s") })
	views := func() int {
		data, _ := os.ReadFile("/proc/self/mountinfo")
		return strings.Count(string(data), "/.cp-")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cp := exec.Command(os.Args[0], "cp", "-", "s:/") // blocks reading a tar nobody writes
	cp.Env, cp.Stdin = append(os.Environ(), execEnv+"=1", "KILN_ROOT="+root), pr
	if err := cp.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	waitFor(t, "the cp to mount the stopped container", func() bool { return views() == 1 })
	if r := kiln(t, root, nil, "start", "s"); r.code != 1 || !strings.Contains(r.stderr, "busy") {
		t.Errorf("start during a cp into the stopped container: exit %d %s", r.code, r.stderr)
	}
	if r := kiln(t, root, strings.NewReader(""), "cp", "-", "s:/"); r.code != 1 || !strings.Contains(r.stderr, "busy") {
		t.Errorf("a second cp into the container: exit %d %s", r.code, r.stderr)
	}
	cp.Process.Kill() //nolint:errcheck // it is blocked reading
	cp.Wait()         //nolint:errcheck // killed
	if views() != 1 {
		t.Fatal("the killed cp left no mount: the test proves nothing")
	}
	ok(t, root, "start", "-a", "s")
	if n := views(); n != 0 {
		t.Errorf("start left %d mounts of the killed cp", n)
	}
}
