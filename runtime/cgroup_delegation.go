package runtime

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// cgroupNeed is one cgroup v2 controller a rootless container's limits need, with the flags
// that asked for it (for messages).
type cgroupNeed struct {
	Controller string
	Flags      []string
}

// cgroupNeeds lists the controllers r's limits need, in a stable order; nil = no cgroup needed.
func cgroupNeeds(r Resources) []cgroupNeed {
	var out []cgroupNeed
	add := func(ctl string, flags ...string) {
		if len(flags) > 0 {
			out = append(out, cgroupNeed{ctl, flags})
		}
	}
	add("cpu", append(flagIf(r.CPUs > 0, "--cpus"), flagIf(r.CPUShares > 0, "--cpu-shares")...)...)
	add("cpuset", append(flagIf(r.CpusetCPUs != "", "--cpuset-cpus"), flagIf(r.CpusetMems != "", "--cpuset-mems")...)...)
	add("memory", append(flagIf(r.Memory > 0, "--memory"), flagIf(r.MemorySwap != 0, "--memory-swap")...)...)
	add("pids", flagIf(r.PidsLimit > 0, "--pids-limit")...)
	return out
}

func flagIf(cond bool, flag string) []string {
	if cond {
		return []string{flag}
	}
	return nil
}

// flagsOf names the flags of needs for a message: "--memory needs", "--memory and --cpus need".
func flagsOf(needs []cgroupNeed) string {
	var flags []string
	for _, n := range needs {
		flags = append(flags, n.Flags...)
	}
	verb := " needs"
	if len(flags) > 1 {
		verb = " need"
	}
	if len(flags) > 2 {
		return strings.Join(flags[:len(flags)-1], ", ") + " and " + flags[len(flags)-1] + verb
	}
	return strings.Join(flags, " and ") + verb
}

// delegateFix is the systemd change that delegates ctls (and the usual three) to every user.
func delegateFix(ctls ...string) string {
	set := []string{"cpu", "memory", "pids"}
	for _, c := range ctls {
		if !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	slices.Sort(set)
	return fmt.Sprintf("as root, write a drop-in /etc/systemd/system/user@.service.d/delegate.conf with \"[Service]\" and "+
		"\"Delegate=%s\", run `systemctl daemon-reload`, and log in again", strings.Join(set, " "))
}

// errCgroupV1 is the refusal on a host whose controllers are on cgroup v1 hierarchies, where
// only root may create cgroups.
func errCgroupV1(needs []cgroupNeed) error {
	return fmt.Errorf("%s cgroup v2 when kiln runs without root: this host uses cgroup v1 (boot with systemd.unified_cgroup_hierarchy=1)", flagsOf(needs))
}

// hostRootlessCgroup is rootlessCgroup for this process on this host: the cgroup2 mount at
// /sys/fs/cgroup (statfs says cgroup2, not a v1/hybrid tmpfs) and /proc/self/cgroup.
func hostRootlessCgroup(needs []cgroupNeed) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return "", errCgroupV1(needs)
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("%s a cgroup: read kiln's own cgroup: %w", flagsOf(needs), err)
	}
	return rootlessCgroup(cgroupHost{Root: "/sys/fs/cgroup", Self: string(self), UID: os.Geteuid(), HostUID: hostUID()}, needs)
}

// cgroupHost is what rootlessCgroup judges from (tests pass fake trees).
type cgroupHost struct {
	Root    string // the cgroup v2 mount, /sys/fs/cgroup
	Self    string // this process's /proc/self/cgroup
	UID     int    // who must own the delegated cgroups, as this process sees ids (0 in kiln's user namespace)
	HostUID int    // the same user on the host, for messages
}

// rootlessCgroup finds where an unprivileged kiln may put its containers' cgroups so that the
// controllers in needs work, judged only from h. It returns the absolute cgroup
// path (relative to root, as OCI's cgroupsPath takes it) of the dir that holds them: "kiln"
// under the parent of kiln's own cgroup, as runc places a relative path itself. Kiln's own
// cgroup holds processes (kiln, often its shell), and cgroup v2 enables controllers only in
// cgroups without processes; its parent (a systemd slice) has none. That parent must be the
// user's (a systemd user@UID.service subtree is, with Delegate=), since moving the container's
// init there from kiln's cgroup needs write access to the common ancestor's cgroup.procs; each
// controller must reach it from the top of the user's subtree (what systemd delegated), and
// runc or crun enable it on the way down, which needs every level without processes.
func rootlessCgroup(h cgroupHost, needs []cgroupNeed) (string, error) {
	root, uid := h.Root, h.UID
	own, ok := unifiedCgroup(h.Self)
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil || !ok {
		return "", errCgroupV1(needs)
	}
	want := flagsOf(needs) + " a cgroup v2 subtree delegated to you when kiln runs without root"
	session := fmt.Sprintf("start kiln inside your systemd user instance's subtree, e.g. `systemd-run --user --scope kiln ...` "+
		"(a login through systemd-logind runs user@%d.service)", h.HostUID)
	if own == "/" {
		return "", fmt.Errorf("%s, and kiln is in the root cgroup (of the host or of its cgroup namespace), which has no parent to hold containers: %s", want, session)
	}
	parent := path.Dir(own)
	dir := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	if o, err := cgroupOwner(dir(parent), uid); err != nil {
		return "", fmt.Errorf("%s: %w", want, err)
	} else if o != "" {
		return "", fmt.Errorf("%s, and kiln's cgroup %s sits in %s, which %s: %s", want, own, parent, o, session)
	}
	// top is the highest cgroup of the user's subtree above kiln: what was delegated to them.
	top := parent
	for top != "/" {
		if o, err := cgroupOwner(dir(path.Dir(top)), uid); err != nil || o != "" {
			break
		}
		top = path.Dir(top)
	}
	var levels []string // from top down to parent
	for p := parent; ; p = path.Dir(p) {
		levels = append([]string{p}, levels...)
		if p == top {
			break
		}
	}
	delegated := readWords(dir(top), "cgroup.controllers")
	var missing []string
	for _, n := range needs {
		if !slices.Contains(delegated, n.Controller) {
			missing = append(missing, n.Controller)
		}
	}
	if len(missing) > 0 {
		have := strings.Join(delegated, " ")
		if have == "" {
			have = "none"
		}
		what := "the " + strings.Join(missing, " and ") + " controller, which is"
		if len(missing) > 1 {
			what = "the " + strings.Join(missing, " and ") + " controllers, which are"
		}
		return "", fmt.Errorf("%s %s not delegated to you: your cgroup subtree %s has %s (its cgroup.controllers): %s",
			flagsOf(needs), what, top, have, delegateFix(missing...))
	}
	for _, l := range levels {
		enabled := readWords(dir(l), "cgroup.subtree_control")
		for _, n := range needs {
			if slices.Contains(enabled, n.Controller) {
				continue
			}
			if procs := readWords(dir(l), "cgroup.procs"); len(procs) > 0 {
				return "", fmt.Errorf("%s the %s controller in %s, which holds %d processes and so cannot enable it (cgroup v2 enables controllers only in cgroups without processes of their own): start kiln in a scope of its own, e.g. `systemd-run --user --scope kiln ...`",
					flagsOf(needs), n.Controller, l, len(procs))
			}
		}
	}
	return path.Join(parent, "kiln"), nil
}

// unifiedCgroup is the v2 entry ("0::/path") of a /proc/self/cgroup text.
func unifiedCgroup(selfCgroup string) (string, bool) {
	for _, e := range cgroupEntries(selfCgroup) {
		if e.Unified() && strings.HasPrefix(e.Path, "/") {
			return path.Clean(e.Path), true
		}
	}
	return "", false
}

// cgroupOwner says why the cgroup dir is not uid's to manage ("" = it is): the dir, its
// cgroup.procs and cgroup.subtree_control must be uid's, as systemd's Delegate= chowns them.
// (Inside kiln's user namespace uid is 0 there and the user's files show as 0 too.)
func cgroupOwner(dir string, uid int) (string, error) {
	for _, name := range []string{"", "cgroup.procs", "cgroup.subtree_control"} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("inspect cgroup %s: %w", dir, err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid {
			if name == "" {
				return "is not yours", nil
			}
			return "is yours but its " + name + " is not", nil
		}
	}
	return "", nil
}

// readWords is a cgroup file's whitespace-separated words; none when it is missing.
func readWords(dir, name string) []string {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil
	}
	return strings.Fields(string(data))
}
