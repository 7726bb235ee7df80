package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// otherUser creates an unprivileged user for the test and returns a command prefix that runs
// as it; it skips without root or without useradd and setpriv.
func otherUser(t *testing.T) []string {
	as, _ := otherUserIDs(t)
	return as
}

// otherUserIDs is otherUser that also returns the user.
func otherUserIDs(t *testing.T) ([]string, *user.User) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a second user and switching to it needs root")
	}
	for _, tool := range []string{"useradd", "userdel", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	name := fmt.Sprintf("kilnt%d", os.Getpid()%100000)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/bin/false", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups", "--"}, u
}

// openDir makes a temp dir that every user may enter, unlike t.TempDir's 0700 ones, so that
// only the store's own modes stand between another user and its content.
func openDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "kiln-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// Another local user cannot reach a setuid binary (or anything) inside an unpacked layer.
func TestSnapshotUnreachableByOtherUsers(t *testing.T) {
	as := otherUser(t)
	run := func(args ...string) ([]byte, error) {
		return exec.Command(as[0], append(as[1:], args...)...).CombinedOutput()
	}
	// Control: the user can stat and run things where the modes allow it.
	if out, err := run("stat", "/bin/sh"); err != nil {
		t.Fatalf("control: the test user cannot stat /bin/sh: %v: %s", err, out)
	}
	s, err := Open(filepath.Join(openDir(t), "root"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	blob, diffID := gzipLayer(t, map[string]string{"bin/": "", "bin/tool": "#!/bin/sh\necho escaped\n"})
	dir, err := s.Snapshot(context.Background(), diffID, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil })
	if err != nil {
		t.Fatal(err)
	}
	tool := filepath.Join(dir, "bin", "tool")
	if err := os.Chmod(tool, 0o4755); err != nil {
		t.Fatal(err)
	}
	if out, err := run("stat", tool); err == nil {
		t.Errorf("another user can stat %s:\n%s", tool, out)
	}
	if out, err := run(tool); err == nil || strings.Contains(string(out), "escaped") {
		t.Errorf("another user can run %s: %v\n%s", tool, err, out)
	}
	// The same holds for staging (RUN upper dirs) and everything else the store keeps.
	staging, err := s.TempDir("run-")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{staging, s.blobDir(), s.recordDir(), s.lockDir()} {
		if out, err := run("ls", p); err == nil {
			t.Errorf("another user can list %s:\n%s", p, out)
		}
	}
}

// A store an older kiln made with 0755 directories is closed again by Open.
func TestOpenRepairsOpenModes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range s.layoutDirs() {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range s.layoutDirs() {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v after Open, want 0700", d, fi.Mode().Perm())
		}
	}
}

// openChild opens and closes the store, as any kiln command does.
func openChild(string) error {
	s, err := Open(os.Getenv(childRoot))
	if err != nil {
		return err
	}
	return s.Close()
}

// A non-root user's own store (rootless kiln) is theirs alone: owned by them, 0700.
func TestUserStoreIsTheirs(t *testing.T) {
	as, u := otherUserIDs(t)
	dir := openDir(t)
	// The test binary lives in a 0700 build dir: give the user a copy.
	exe := filepath.Join(dir, "cache.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(home, ".local", "share", "kiln")
	cmd := exec.Command(as[0], append(as[1:], exe, "-test.run=^$")...)
	cmd.Env = append(os.Environ(), childEnv+"=open:0", childRoot+"="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("open as %s: %v: %s", u.Username, err, out)
	}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: owner %d mode %v, want %d and 0700", root, st.Uid, fi.Mode().Perm(), uid)
	}
	if parent, err := os.Stat(filepath.Dir(root)); err != nil || parent.Mode().Perm() != 0o755 {
		t.Errorf("parents of the store are not left at the usual 0755: %v %v", parent.Mode(), err)
	}
}
