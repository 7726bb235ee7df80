package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testimage"
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

// A cp into a stopped container holds it: a start, an rm or a second cp meanwhile is refused. SIGKILLed
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
	if r := kiln(t, root, nil, "rm", "s"); r.code != 1 || !strings.Contains(r.stderr, "kiln cp") {
		t.Errorf("rm during a cp into the container: exit %d %s", r.code, r.stderr)
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

// -L copies what SRC_PATH's own symlink names, resolved inside the container (never the host's
// same-named file), under the link's name; -a keeps the source's ids, else (docker's documented
// behaviour) copies into the container are root's and copies to the host the caller's; tar
// streams carry and apply their entries' ids.
func TestCpFollowLinkAndArchive(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	canary := fmt.Sprintf("kiln-cpl-canary-%d", os.Getpid())
	if err := os.WriteFile("/"+canary, []byte("HOST\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove("/" + canary) })
	ok(t, root, "run", "-d", "--name", "c", "busybox", "sh", "-c",
		"echo T > /target && ln -s /target /lnk && echo CONTAINER > /"+canary+" && ln -s /"+canary+" /abs && ln -s ../../../../"+canary+" /rel && "+
			"echo O > /own && mkdir /od && echo F > /od/f && chown 1234:1234 /own /od && ln -s /od /odl && touch /ready && exec sleep 300")
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "c") })
	waitFor(t, "the container's files", func() bool { return kiln(t, root, nil, "exec", "c", "test", "-e", "/ready").code == 0 })
	out := t.TempDir()
	owner := func(p string) string {
		fi, err := os.Lstat(p)
		if err != nil {
			return err.Error()
		}
		st := fi.Sys().(*syscall.Stat_t)
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}

	// Container to host.
	ok(t, root, "cp", "-L", "c:/lnk", filepath.Join(out, "got"))
	if fi, err := os.Lstat(filepath.Join(out, "got")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("cp -L of a symlink: %v %v, want a regular file", fi, err)
	}
	ok(t, root, "cp", "--follow-link", "c:/lnk", out+"/")
	if b, _ := os.ReadFile(filepath.Join(out, "lnk")); string(b) != "T\n" {
		t.Errorf("cp -L into a directory: lnk holds %q, want the target's T", b)
	}
	for _, l := range []string{"/abs", "/rel"} {
		dst := filepath.Join(out, "esc")
		ok(t, root, "cp", "-L", "c:"+l, dst)
		if b, _ := os.ReadFile(dst); string(b) != "CONTAINER\n" {
			t.Errorf("cp -L c:%s read %q, want the container's file", l, b)
		}
		os.Remove(dst)
	}
	ok(t, root, "cp", "c:/odl/.", filepath.Join(out, "ld")) // SRC/. follows its symlink without -L, as docker's
	if b, _ := os.ReadFile(filepath.Join(out, "ld", "f")); string(b) != "F\n" {
		t.Errorf("cp of a linked directory's contents: ld/f holds %q", b)
	}
	r := ok(t, root, "cp", "-L", "c:/lnk", "-")
	tr := tar.NewReader(strings.NewReader(r.stdout))
	if h, err := tr.Next(); err != nil || h.Name != "lnk" || h.Typeflag != tar.TypeReg || h.Size != 2 {
		t.Errorf("cp -L to -: %+v %v, want lnk, a 2-byte file", h, err)
	}
	me := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	ok(t, root, "cp", "c:/own", filepath.Join(out, "own"))
	ok(t, root, "cp", "c:/od", filepath.Join(out, "od"))
	ok(t, root, "cp", "-a", "c:/own", filepath.Join(out, "own-a"))
	ok(t, root, "cp", "--archive", "c:/od", filepath.Join(out, "od-a"))
	for p, want := range map[string]string{"own": me, "od": me, "own-a": "1234:1234", "od-a": "1234:1234"} {
		if got := owner(filepath.Join(out, p)); got != want {
			t.Errorf("copied to the host, %s is %s's, want %s's", p, got, want)
		}
	}
	r = ok(t, root, "cp", "c:/own", "-")
	tr = tar.NewReader(strings.NewReader(r.stdout))
	if h, err := tr.Next(); err != nil || h.Uid != 1234 || h.Gid != 1234 {
		t.Errorf("cp to - without -a: %+v %v, want the source's 1234:1234", h, err)
	}

	// Host to container.
	hf, hl := filepath.Join(out, "hf"), filepath.Join(out, "hl")
	os.WriteFile(hf, []byte("H\n"), 0o644)
	if err := os.Lchown(hf, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hf, hl); err != nil {
		t.Fatal(err)
	}
	ok(t, root, "cp", hf, "c:/in")
	ok(t, root, "cp", "-a", hf, "c:/in-a")
	ok(t, root, "cp", hl, "c:/in-link")
	ok(t, root, "cp", "-L", hl, "c:/in-followed")
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "in-tar", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg, Uid: 4321, Gid: 4322})
	tw.Write([]byte("T"))
	tw.Close()
	if r := kiln(t, root, &tb, "cp", "-", "c:/"); r.code != 0 {
		t.Fatalf("cp - c:/: exit %d %s", r.code, r.stderr)
	}
	r = ok(t, root, "exec", "c", "sh", "-c", "stat -c '%n %u:%g %F' /in /in-a /in-link /in-followed /in-tar")
	want := "/in 0:0 regular file\n/in-a 1234:1234 regular file\n/in-link 0:0 symbolic link\n/in-followed 0:0 regular file\n/in-tar 4321:4322 regular file\n"
	if r.stdout != want {
		t.Errorf("copied into the container:\n%s\nwant\n%s", r.stdout, want)
	}
}

// Rootless, cp into a stopped container mounts the user's own overlay, confined as root's, and
// ownership maps as docker documents: the container's root, the calling user on the host.
func TestCpRootlessStopped(t *testing.T) {
	r := newRootless(t)
	ctxDir := t.TempDir()
	os.Chmod(ctxDir, 0o755)
	copyExecutable(t, testimage.BusyboxPath, filepath.Join(ctxDir, "busybox"))
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY busybox /bin/busybox\n" +
		"RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox mkdir -p /tmp /etc && /bin/busybox --install -s /bin && ln -s / /evil && echo O > /own && chown 1234:1234 /own\"]\n"})
	os.Chmod(filepath.Join(ctxDir, "Buildfile"), 0o644)
	r.ok("build", "--progress=plain", "--network", "none", "-t", "bb", ctxDir)
	canary := fmt.Sprintf("/kiln-cp-rootless-%d", os.Getpid())
	t.Cleanup(func() { os.Remove(canary) })
	r.ok("run", "--network", "none", "--name", "c", "bb", "sh", "-c", "cat "+canary+" 2>/dev/null && stat -c %u:%g "+canary+"; true")

	out := filepath.Join(r.home, "out")
	os.Mkdir(out, 0o755)
	os.Chown(out, r.uid, r.gid)
	in := filepath.Join(out, "in")
	os.WriteFile(in, []byte("IN\n"), 0o644)
	os.Chown(in, r.uid, r.gid)
	r.ok("cp", in, "c:/evil"+canary)
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("a rootless cp into the stopped container through its symlink to / wrote the host's /")
	}
	r.ok("cp", "c:/own", filepath.Join(out, "own"))
	r.ok("cp", "-a", "c:/own", filepath.Join(out, "own-a"))
	ids := func(p string) [2]uint32 {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return [2]uint32{st.Uid, st.Gid}
	}
	if got := ids(filepath.Join(out, "own")); got != [2]uint32{uint32(r.uid), uint32(r.gid)} {
		t.Errorf("copied to the host without -a: %v, want the user's %d:%d", got, r.uid, r.gid)
	}
	if got := ids(filepath.Join(out, "own-a")); got == [2]uint32{uint32(r.uid), uint32(r.gid)} {
		t.Errorf("copied to the host with -a: %v, want the source's (a subordinate id)", got)
	}
	if res := r.ok("start", "-a", "c"); res.stdout != "IN\n0:0\n" {
		t.Errorf("the copied-in file, seen by the container: %q, want IN owned by its root", res.stdout)
	}
}
