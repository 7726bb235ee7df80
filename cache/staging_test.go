package cache

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// stageChild opens the store, stages a file, prints the staging dir and waits on stdin
// until it is killed.
func stageChild(string) error {
	s, err := Open(os.Getenv(childRoot))
	if err != nil {
		return err
	}
	d, err := s.TempDir("run-")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d, "secret-0"), []byte("plaintext"), 0o600); err != nil {
		return err
	}
	fmt.Println(d)
	_, _ = os.Stdin.Read(make([]byte, 1))
	return s.Close()
}

// startStager starts a child that holds a staging dir; it returns the process and the dir.
func startStager(t *testing.T, root string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=stage:0", childRoot+"="+root)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child printed no staging dir: %v", err)
	}
	return cmd, strings.TrimSpace(line)
}

// A SIGKILLed process's staging goes at the next Open of any process, even while other
// processes hold the store; a live process's staging stays.
func TestOpenSweepsDeadOwnersStaging(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	holder, err := Open(root) // keeps the store busy: no "nobody holds it" shortcut
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	mine, err := holder.TempDir("mine-")
	if err != nil {
		t.Fatal(err)
	}
	killed, dead := startStager(t, root)
	_, live := startStager(t, root)
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = killed.Wait()
	if !exists(dead) {
		t.Fatalf("staging %s vanished before any Open", dead)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if exists(dead) || exists(filepath.Dir(dead)) {
		t.Errorf("staging of the killed process survives Open: %s", dead)
	}
	for _, d := range []string{live, mine} {
		if !exists(filepath.Join(d)) {
			t.Errorf("live staging %s removed", d)
		}
	}
	ents, _ := os.ReadDir(s.tmpRoot())
	if len(ents) != 4 { // dir + lock each for holder and the live child; s staged nothing
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("tmp/ holds %v, want 2 owners with their locks", names)
	}
}

// Close removes what its Store staged.
func TestCloseRemovesOwnStaging(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TempDir("x-"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 0 {
		t.Fatalf("tmp/ after Close: %v", ents)
	}
}

// A dead owner's staging with something still mounted in it stays until it is unmounted:
// removing through a mount could reach what the mount shows.
func TestSweepSkipsStagingWithMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	root := filepath.Join(t.TempDir(), "root")
	killed, dead := startStager(t, root)
	_ = killed.Process.Signal(syscall.SIGKILL)
	_ = killed.Wait()
	mnt := filepath.Join(dead, "rootfs")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	if err := os.WriteFile(filepath.Join(mnt, "shown"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !exists(filepath.Join(mnt, "shown")) {
		t.Fatal("sweep removed files through a mount")
	}
	if err := syscall.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	s, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if exists(dead) {
		t.Fatal("unmounted dead staging kept")
	}
}
