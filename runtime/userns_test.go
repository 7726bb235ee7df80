package runtime

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadRootlessMaps(t *testing.T) {
	dir := t.TempDir()
	u := &user.User{Username: "alice", Uid: "1000", Gid: "1001"}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sub := write("subuid", "bob:200000:65536\nalice:100000:65536\n")
	sg := write("subgid", "1000:300000:1000\n") // by uid, as shadow allows
	m, err := ReadRootlessMaps(u, sub, sg)
	if err != nil {
		t.Fatal(err)
	}
	want := RootlessMaps{
		UIDs: []IDRange{{0, 1000, 1}, {1, 100000, 65536}},
		GIDs: []IDRange{{0, 1001, 1}, {1, 300000, 1000}},
	}
	if len(m.UIDs) != 2 || m.UIDs[1] != want.UIDs[1] || m.GIDs[1] != want.GIDs[1] || m.UIDs[0] != want.UIDs[0] || m.GIDs[0] != want.GIDs[0] || m.Warning != "" {
		t.Errorf("maps %+v, want %+v", m, want)
	}

	m, err = ReadRootlessMaps(u, write("none", "bob:200000:65536\n"), filepath.Join(dir, "missing"))
	if err != nil || len(m.UIDs) != 1 || !strings.Contains(m.Warning, "usermod --add-subuids") {
		t.Errorf("no ranges: %+v, %v; want the single-id map and a warning naming the fix", m, err)
	}
	if _, err := ReadRootlessMaps(u, write("bad", "alice:x:1\n"), sg); err == nil {
		t.Error("a malformed line is accepted")
	}
}

func TestRootlessStateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a dir owned by someone else")
	}
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	dir, err := RootlessStateDir(0)
	if err != nil || dir != filepath.Join(xdg, "kiln") {
		t.Fatalf("dir %q, %v", dir, err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode())
	}
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if _, err := RootlessStateDir(0); err == nil || !strings.Contains(err.Error(), "not a directory of yours") {
		t.Errorf("a runtime dir owned by another user: %v", err)
	}
	os.Chown(dir, 0, 0)
	os.Chmod(dir, 0o777)
	if _, err := RootlessStateDir(0); err == nil {
		t.Error("a world-writable runtime dir is accepted")
	}
}

func TestIsolationResolve(t *testing.T) {
	if _, err := ParseIsolation("jail"); err == nil || !strings.Contains(err.Error(), "auto, oci, rootless or chroot") {
		t.Errorf("an unknown rung: %v", err)
	}
	// Root in an unprivileged container: mounts refused, chroot allowed; and with neither.
	inPod := isolationProbe{Mounts: "unshare a mount namespace: operation not permitted"}
	if got, err := chooseAsRoot(IsolationAuto, inPod); err != nil || got != IsolationChroot {
		t.Errorf("auto in a pod: %v, %v", got, err)
	}
	if _, err := chooseAsRoot(IsolationOCI, inPod); err == nil || !strings.Contains(err.Error(), "operation not permitted") {
		t.Errorf("oci in a pod: %v, want the probe's reason", err)
	}
	noChroot := inPod
	noChroot.Chroot = "chroot: operation not permitted"
	if _, err := chooseAsRoot(IsolationAuto, noChroot); err == nil || !strings.Contains(err.Error(), "CAP_SYS_CHROOT") {
		t.Errorf("auto with neither: %v, want one error naming CAP_SYS_CHROOT", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("checks the choices of root")
	}
	if got, err := IsolationAuto.Resolve(); err != nil || got != IsolationOCI {
		t.Errorf("auto as root: %v, %v", got, err)
	}
	if got, err := IsolationChroot.Resolve(); err != nil || got != IsolationChroot {
		t.Errorf("chroot as root: %v, %v", got, err)
	}
	if _, err := IsolationRootless.Resolve(); err == nil {
		t.Error("rootless as root on the host resolves")
	}
}

func TestCheckRootless(t *testing.T) {
	s := Spec{rootless: true, Network: NetworkNone}
	if err := checkRootless(&s); err != nil || s.cgroupParent != "" {
		t.Fatal(err, s.cgroupParent)
	}
	s.Resources.PidsLimit = 10
	parent, perr := hostRootlessCgroup(cgroupNeeds(s.Resources))
	if err := checkRootless(&s); (err == nil) != (perr == nil) || s.cgroupParent != parent {
		t.Errorf("pids limit rootless: %v, parent %q; the host says %q, %v", err, s.cgroupParent, parent, perr)
	} else if err != nil && !strings.Contains(err.Error(), "cgroup") {
		t.Errorf("pids limit rootless: %v", err)
	}
	s.Resources.PidsLimit, s.Network = 0, NetworkBridge
	if err := checkRootless(&s); err == nil || !strings.Contains(err.Error(), "--network host") {
		t.Errorf("bridge rootless: %v", err)
	}
}
