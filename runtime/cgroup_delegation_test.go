package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeUser is the uid that owns the delegated part of the fake cgroup trees (root owns the rest).
const fakeUser = 4242

// cgroupNode is one dir of a fake cgroup v2 tree.
type cgroupNode struct {
	controllers, subtree, procs string
	user                        bool // owned by fakeUser (dir, cgroup.procs, cgroup.subtree_control)
}

// fakeCgroupTree writes a cgroupfs-like tree: each node's dir with its cgroup.controllers,
// cgroup.subtree_control and cgroup.procs; the root gets cgroup.controllers unless v1.
func fakeCgroupTree(t *testing.T, v1 bool, nodes map[string]cgroupNode) string {
	t.Helper()
	root := t.TempDir()
	if !v1 {
		if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpuset cpu io memory hugetlb pids rdma misc\n"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	for p, n := range nodes {
		dir := filepath.Join(root, p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"cgroup.controllers": n.controllers, "cgroup.subtree_control": n.subtree, "cgroup.procs": n.procs} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if n.user {
			for _, f := range []string{dir, filepath.Join(dir, "cgroup.procs"), filepath.Join(dir, "cgroup.subtree_control")} {
				if err := os.Lchown(f, fakeUser, fakeUser); err != nil {
					t.Skipf("the fake cgroup trees give their delegated part to uid %d, which needs root: %v", fakeUser, err)
				}
			}
		}
	}
	return root
}

// systemdTree is a v2 host as systemd lays it out for uid 1000, with user@1000.service delegated
// (controllers ctls) and kiln in app.slice/kiln.scope, or deeper below app.slice.
func systemdTree(ctls string, extra map[string]cgroupNode) map[string]cgroupNode {
	const user = "user.slice/user-1000.slice/user@1000.service"
	all := "cpuset cpu io memory pids"
	nodes := map[string]cgroupNode{
		"user.slice":                                 {controllers: all, subtree: "cpu memory pids"},
		"user.slice/user-1000.slice":                 {controllers: "cpu memory pids", subtree: ctls},
		"user.slice/user-1000.slice/session-3.scope": {controllers: "", procs: "812\n813\n"},
		user:                           {controllers: ctls, subtree: ctls, user: true},
		user + "/init.scope":           {controllers: ctls, procs: "1200\n", user: true},
		user + "/app.slice":            {controllers: ctls, subtree: "pids", user: true},
		user + "/app.slice/kiln.scope": {controllers: "pids", procs: "4000\n4001\n", user: true},
	}
	for p, n := range extra {
		nodes[p] = n
	}
	return nodes
}

func TestRootlessCgroup(t *testing.T) {
	const (
		user      = "/user.slice/user-1000.slice/user@1000.service"
		kilnScope = "0::" + user + "/app.slice/kiln.scope\n"
	)
	all := []cgroupNeed{{"cpu", []string{"--cpus"}}, {"memory", []string{"--memory"}}, {"pids", []string{"--pids-limit"}}}
	for _, tc := range []struct {
		name  string
		v1    bool
		nodes map[string]cgroupNode
		self  string
		needs []cgroupNeed
		want  string   // the parent of the containers' cgroups, or "" for an error
		errs  []string // what the error says
	}{
		{
			name:  "v1",
			v1:    true,
			nodes: map[string]cgroupNode{"memory/user.slice": {}},
			self:  "4:memory:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/session-3.scope\n0::/user.slice/user-1000.slice/session-3.scope\n",
			needs: []cgroupNeed{{"memory", []string{"--memory"}}},
			errs:  []string{"--memory needs cgroup v2 when kiln runs without root: this host uses cgroup v1 (boot with systemd.unified_cgroup_hierarchy=1)"},
		},
		{
			name:  "v1 without a unified line, two flags",
			v1:    true,
			self:  "4:memory:/user.slice\n",
			needs: []cgroupNeed{{"memory", []string{"--memory"}}, {"pids", []string{"--pids-limit"}}},
			errs:  []string{"--memory and --pids-limit need cgroup v2 when kiln runs without root: this host uses cgroup v1"},
		},
		{
			name:  "v2 delegated with all controllers",
			nodes: systemdTree("cpu memory pids", nil),
			self:  kilnScope,
			needs: all,
			want:  user + "/app.slice/kiln",
		},
		{
			name:  "v2 missing the memory controller",
			nodes: systemdTree("cpu pids", nil),
			self:  kilnScope,
			needs: all,
			errs: []string{"--cpus, --memory and --pids-limit need the memory controller, which is not delegated to you",
				"your cgroup subtree " + user + " has cpu pids", "/etc/systemd/system/user@.service.d/delegate.conf",
				"Delegate=cpu memory pids", "systemctl daemon-reload", "log in again"},
		},
		{
			name:  "v2 with no controllers delegated",
			nodes: systemdTree("", nil),
			self:  kilnScope,
			needs: []cgroupNeed{{"memory", []string{"--memory"}}, {"pids", []string{"--pids-limit"}}},
			errs:  []string{"--memory and --pids-limit need the memory and pids controllers, which are not delegated to you", "has none"},
		},
		{
			name:  "v2 missing cpuset names it in Delegate=",
			nodes: systemdTree("cpu memory pids", nil),
			self:  kilnScope,
			needs: []cgroupNeed{{"cpuset", []string{"--cpuset-cpus"}}},
			errs:  []string{"--cpuset-cpus needs the cpuset controller", "Delegate=cpu cpuset memory pids"},
		},
		{
			name:  "v2 not owned: a login session's scope",
			nodes: systemdTree("cpu memory pids", nil),
			self:  "0::/user.slice/user-1000.slice/session-3.scope\n",
			needs: all,
			errs: []string{"need a cgroup v2 subtree delegated to you", "kiln's cgroup /user.slice/user-1000.slice/session-3.scope sits in /user.slice/user-1000.slice, which is not yours",
				"systemd-run --user --scope kiln", "runs user@1000.service"},
		},
		{
			name: "v2 not owned: a slice of root's inside the user's subtree",
			nodes: systemdTree("cpu memory pids", map[string]cgroupNode{
				"user.slice/user-1000.slice/user@1000.service/app.slice":            {controllers: "cpu memory pids", subtree: "pids"},
				"user.slice/user-1000.slice/user@1000.service/app.slice/kiln.scope": {procs: "4000\n", user: true},
			}),
			self:  kilnScope,
			needs: all,
			errs:  []string{"sits in " + user + "/app.slice, which is not yours"},
		},
		{
			name: "nested cgroup path",
			nodes: systemdTree("cpu memory pids", map[string]cgroupNode{
				"user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice":                   {controllers: "memory pids", subtree: "memory", user: true},
				"user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1.scope": {procs: "5000\n", user: true},
			}),
			self:  "0::" + user + "/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1.scope\n",
			needs: all,
			want:  user + "/app.slice/app-org.gnome.Terminal.slice/kiln",
		},
		{
			name: "nested cgroup path: the missing controller is named at the top of the subtree",
			nodes: systemdTree("memory pids", map[string]cgroupNode{
				"user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice":                   {controllers: "memory pids", user: true},
				"user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1.scope": {procs: "5000\n", user: true},
			}),
			self:  "0::" + user + "/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1.scope\n",
			needs: all,
			errs:  []string{"need the cpu controller", "your cgroup subtree " + user + " has memory pids"},
		},
		{
			name: "v2 delegated but the parent holds processes",
			nodes: systemdTree("cpu memory pids", map[string]cgroupNode{
				"user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope":     {controllers: "cpu memory pids", procs: "6000\n6001\n", user: true},
				"user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope/sub": {procs: "6002\n", user: true},
			}),
			self:  "0::" + user + "/app.slice/run-1.scope/sub\n",
			needs: []cgroupNeed{{"memory", []string{"--memory"}}},
			errs:  []string{"--memory needs the memory controller in " + user + "/app.slice/run-1.scope, which holds 2 processes", "systemd-run --user --scope"},
		},
		{
			name:  "v2 in the root of its cgroup namespace",
			nodes: systemdTree("cpu memory pids", nil),
			self:  "0::/\n",
			needs: all,
			errs:  []string{"kiln is in the root cgroup", "systemd-run --user --scope"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeCgroupTree(t, tc.v1, tc.nodes)
			got, err := rootlessCgroup(cgroupHost{Root: root, Self: tc.self, UID: fakeUser, HostUID: 1000}, tc.needs)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			t.Log(err)
			for _, w := range tc.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}

func TestCgroupNeeds(t *testing.T) {
	if n := cgroupNeeds(Resources{}); n != nil {
		t.Errorf("no limits: %v", n)
	}
	n := cgroupNeeds(Resources{Memory: 1 << 20, MemorySwap: -1, CPUs: 1, CpusetCPUs: "0", PidsLimit: 5})
	var ctls []string
	for _, c := range n {
		ctls = append(ctls, c.Controller)
	}
	if strings.Join(ctls, " ") != "cpu cpuset memory pids" || flagsOf(n) != "--cpus, --cpuset-cpus, --memory, --memory-swap and --pids-limit need" {
		t.Errorf("needs %v (%q)", ctls, flagsOf(n))
	}
}

// On this host, kiln's own cgroup decides: a v1 (or hybrid) host refuses with the v1 message.
func TestHostRootlessCgroup(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	needs := []cgroupNeed{{"pids", []string{"--pids-limit"}}}
	got, err := hostRootlessCgroup(needs)
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		if err == nil || err.Error() != errCgroupV1(needs).Error() {
			t.Errorf("cgroup v1 host: %q, %v", got, err)
		}
		return
	}
	if err == nil && !strings.HasSuffix(got, "/kiln") {
		t.Errorf("cgroup v2 host: %q", got)
	}
}

// A rootless container's config carries its cgroup and limits only with a delegated parent, and
// never device rules (a user namespace cannot load cgroup v2's device filter).
func TestCgroupRootlessConfig(t *testing.T) {
	s := Spec{ID: "c1", rootless: true, Network: NetworkNone, Resources: Resources{Memory: 32 << 20, PidsLimit: 64}}
	l, err := linuxConfig(s)
	if err != nil || l.CgroupsPath != "" || l.Resources != nil {
		t.Fatalf("no delegated parent: %+v, %v", l, err)
	}
	s.cgroupParent = "/user.slice/user-1000.slice/user@1000.service/app.slice/kiln"
	l, err = linuxConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	if l.CgroupsPath != s.cgroupParent+"/c1" || l.Resources == nil || *l.Resources.Memory.Limit != 32<<20 || *l.Resources.Pids.Limit != 64 || l.Resources.Devices != nil {
		t.Errorf("delegated: path %q resources %+v", l.CgroupsPath, l.Resources)
	}
}

// Cleanup sweeps dead runs' cgroups where kiln puts them: root's /kiln, and on v2 the rootless
// place beside kiln's own cgroup.
func TestCgroupParentsOf(t *testing.T) {
	const self = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/kiln.scope\n"
	got := cgroupParentsOf(true, self)
	want := []string{"/sys/fs/cgroup/kiln", "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/kiln"}
	if !slices.Equal(got, want) {
		t.Errorf("v2: %q, want %q", got, want)
	}
	if got := cgroupParentsOf(true, "0::/init.scope\n"); !slices.Equal(got, want[:1]) {
		t.Errorf("v2 in a top-level cgroup: %q", got)
	}
	got = cgroupParentsOf(false, "4:memory:/user.slice\n3:cpu,cpuacct:/\n1:name=systemd:/user.slice/session-3.scope\n")
	want = []string{"/sys/fs/cgroup/memory/user.slice/kiln", "/sys/fs/cgroup/cpu/kiln", "/sys/fs/cgroup/systemd/user.slice/session-3.scope/kiln"}
	if !slices.Equal(got, want) {
		t.Errorf("v1: %q, want %q", got, want)
	}
}

// The same judgement over a real cgroup2 mount (this host's hybrid /sys/fs/cgroup/unified, or
// /sys/fs/cgroup on a v2 host): a subtree chowned as systemd's Delegate= does, with what the
// kernel itself reports as controllers and owners.
func TestRootlessCgroupRealCgroupfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating and chowning cgroups needs root")
	}
	var root string
	for _, m := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(m, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			root = m
			break
		}
	}
	if root == "" {
		t.Skip("no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified")
	}
	base := fmt.Sprintf("kiln-cgtest-%d", os.Getpid())
	for _, d := range []string{base, base + "/a", base + "/a/b"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(filepath.Join(root, d)) })
	}
	for _, d := range []string{base, base + "/a"} {
		for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control"} {
			if err := os.Lchown(filepath.Join(root, d, f), fakeUser, fakeUser); err != nil {
				t.Fatal(err)
			}
		}
	}
	h := cgroupHost{Root: root, Self: "0::/" + base + "/a/b\n", UID: fakeUser, HostUID: fakeUser}
	got, err := rootlessCgroup(h, []cgroupNeed{{"pids", []string{"--pids-limit"}}})
	top, _ := os.ReadFile(filepath.Join(root, base, "cgroup.controllers"))
	if slices.Contains(strings.Fields(string(top)), "pids") {
		if err != nil || got != "/"+base+"/a/kiln" {
			t.Errorf("pids delegated to /%s: %q, %v", base, got, err)
		}
	} else if err == nil || !strings.Contains(err.Error(), "the pids controller, which is not delegated to you: your cgroup subtree /"+base+" has") {
		t.Errorf("pids not delegated to /%s (it has %q): %q, %v", base, top, got, err)
	}
	h.UID = fakeUser + 1
	if _, err := rootlessCgroup(h, []cgroupNeed{{"pids", []string{"--pids-limit"}}}); err == nil || !strings.Contains(err.Error(), "which is not yours") {
		t.Errorf("another user's subtree: %v", err)
	}
}
