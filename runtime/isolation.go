package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Isolation is a rung of the isolation ladder (DESIGN.md): how a container is kept from the host.
type Isolation string

const (
	// IsolationAuto picks the strongest rung that works for this process.
	IsolationAuto Isolation = "auto"
	// IsolationOCI is root on the host: namespaces, overlay, cgroups, seccomp, bridge networking.
	IsolationOCI Isolation = "oci"
	// IsolationRootless is an unprivileged user: kiln runs in a user namespace mapping the user to
	// root plus its subordinate ids; no cgroup limits on v1 hosts, no bridge network.
	IsolationRootless Isolation = "rootless"
	// IsolationChroot is root in an unprivileged container (no new namespaces or mounts):
	// chroot(2) into a materialized rootfs with docker's capabilities, no_new_privs and seccomp;
	// it shares kiln's pid, network and ipc namespaces (see the README).
	IsolationChroot Isolation = "chroot"
)

// ParseIsolation checks a --isolation value ("" = auto).
func ParseIsolation(s string) (Isolation, error) {
	switch Isolation(s) {
	case "", IsolationAuto:
		return IsolationAuto, nil
	case IsolationOCI, IsolationRootless, IsolationChroot:
		return Isolation(s), nil
	}
	return "", fmt.Errorf("invalid isolation %q: use auto, oci, rootless or chroot", s)
}

// Resolve turns i into the rung this process uses: auto is the strongest that works (oci as
// root where namespaces and mounts work, chroot as root where they are refused, rootless
// otherwise; inside kiln's user namespace the process is root there, and still rootless). A
// rung that cannot work for this process is an error, never a silent fallback.
func (i Isolation) Resolve() (Isolation, error) {
	iso, _, err := i.resolve()
	return iso, err
}

// resolve is Resolve with what the probe found (zero when no probe was needed).
func (i Isolation) resolve() (Isolation, isolationProbe, error) {
	rootless := InUserNamespace() || os.Geteuid() != 0
	if rootless {
		switch i {
		case "", IsolationAuto:
			if !InUserNamespace() {
				if err := checkUserNamespaces(); err != nil {
					return "", isolationProbe{}, fmt.Errorf("%w; the other rung, chroot isolation, needs root (with CAP_SYS_CHROOT)", err)
				}
			}
			return IsolationRootless, isolationProbe{}, nil
		case IsolationRootless:
			return i, isolationProbe{}, nil
		case IsolationOCI:
			return "", isolationProbe{}, fmt.Errorf("isolation oci needs root on the host (mounts, cgroups and bridge networking): run kiln as root, or use --isolation=rootless (or auto)")
		case IsolationChroot:
			return "", isolationProbe{}, fmt.Errorf("isolation chroot needs root (chroot(2) needs CAP_SYS_CHROOT): run kiln as root in the container, or use --isolation=rootless (or auto)")
		}
		return "", isolationProbe{}, fmt.Errorf("invalid isolation %q: use auto, oci, rootless or chroot", string(i))
	}
	p := cachedProbe(DefaultStateDir)
	iso, err := chooseAsRoot(i, p)
	return iso, p, err
}

// chooseAsRoot is the rung for root given what the probe found.
func chooseAsRoot(i Isolation, p isolationProbe) (Isolation, error) {
	switch i {
	case "", IsolationAuto:
		switch {
		case p.Mounts == "":
			return IsolationOCI, nil
		case p.Chroot == "":
			return IsolationChroot, nil
		}
		return "", fmt.Errorf("no isolation works here: namespaces and mounts are refused (%s) and so is chroot (%s): run kiln with CAP_SYS_CHROOT at least (docker and Kubernetes grant it by default)", p.Mounts, p.Chroot)
	case IsolationOCI:
		if p.Mounts != "" {
			return "", fmt.Errorf("isolation oci needs namespaces and mounts, and this host refuses them (%s): run kiln where it may (CAP_SYS_ADMIN, e.g. a privileged container), or use --isolation=chroot (or auto)", p.Mounts)
		}
	case IsolationChroot:
		if p.Chroot != "" {
			return "", fmt.Errorf("isolation chroot is refused here (%s): run kiln with CAP_SYS_CHROOT", p.Chroot)
		}
	case IsolationRootless:
		return "", fmt.Errorf("isolation rootless is for unprivileged users: as root kiln uses --isolation=oci, chroot (or auto)")
	default:
		return "", fmt.Errorf("invalid isolation %q: use auto, oci, rootless or chroot", string(i))
	}
	return i, nil
}

// isolationProbe is what a root kiln may do here; each field says why not, "" = it works.
type isolationProbe struct {
	Mounts  string `json:"mounts,omitempty"`  // a new mount namespace and a mount in it (what the oci rung needs)
	Chroot  string `json:"chroot,omitempty"`  // chroot(2)
	Seccomp string `json:"seccomp,omitempty"` // installing a seccomp filter under no_new_privs
}

// cachedProbe is probeIsolation's answer, kept under <stateDir>/probe/ as the runtime probes
// are: keyed by the boot, the mount and user namespaces and this process's capabilities and
// seccomp state, so another container, another capability set or a reboot probes again.
func cachedProbe(stateDir string) isolationProbe {
	// This thread's own status and namespaces, not the process leader's: the probe's thread may
	// be the main thread, which Go wedges rather than ends, so the leader can carry what the
	// probe did to it (a mount namespace, a filter). No thread the probe used runs Go code again.
	goruntime.LockOSThread()
	status, _ := os.ReadFile("/proc/thread-self/status")
	mnt, _ := os.Readlink("/proc/thread-self/ns/mnt")
	usr, _ := os.Readlink("/proc/thread-self/ns/user")
	goruntime.UnlockOSThread()
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	key := strings.TrimSpace(string(boot)) + "\x00" + mnt + "\x00" + usr
	for _, line := range strings.Split(string(status), "\n") {
		for _, f := range []string{"Uid:", "CapPrm:", "CapEff:", "CapBnd:", "NoNewPrivs:", "Seccomp:", "Seccomp_filters:"} {
			if strings.HasPrefix(line, f) {
				key += "\x00" + line
			}
		}
	}
	h := sha256.Sum256([]byte(key))
	file := filepath.Join(stateDir, "probe", "isolation-"+hex.EncodeToString(h[:8])+".json")
	var p isolationProbe
	if data, err := os.ReadFile(file); err == nil && json.Unmarshal(data, &p) == nil {
		return p
	}
	p = probeIsolation()
	if data, err := json.Marshal(p); err == nil && os.MkdirAll(filepath.Dir(file), 0o700) == nil {
		writeFileAtomic(file, append(data, '\n')) //nolint:errcheck // best effort: a lost record costs one probe
	}
	return p
}

// why is a short note on why this rung, for the progress header and --debug.
func (p isolationProbe) why() string {
	if p.Mounts == "" {
		return "asked for; this host also allows oci"
	}
	note := "no namespaces or mounts here"
	if p.Seccomp != "" {
		note += "; no seccomp filter: " + p.Seccomp
	}
	return note
}

// probeIsolation tries, on a thread of its own that is discarded afterwards (a locked
// goroutine's thread ends with it), what the rungs need: a mount namespace with a tmpfs mount,
// chroot(2), and a seccomp filter (about 0.6 ms; cachedProbe keeps the answer).
func probeIsolation() isolationProbe {
	res := make(chan isolationProbe, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread, with what the probe did to it, goes
		var p isolationProbe
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			p.Mounts = fmt.Sprintf("unshare a mount namespace: %v", err)
		} else if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			p.Mounts = fmt.Sprintf("mount: %v", err)
		} else if err := unix.Mount("kiln-probe", "/", "tmpfs", 0, "size=4k"); err != nil {
			p.Mounts = fmt.Sprintf("mount: %v", err)
		}
		if err := unix.Chroot("/"); err != nil { // with the mount namespace unshared, per thread
			p.Chroot = fmt.Sprintf("chroot: %v", err)
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			p.Seccomp = fmt.Sprintf("no_new_privs: %v", err)
		} else if err := installSeccomp([]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}); err != nil {
			p.Seccomp = err.Error()
		}
		res <- p
	}()
	return <-res
}

// rootlessNoCgroups says why a rootless container has no cgroup of its own.
func rootlessNoCgroups() string {
	if unifiedOnly() {
		return "rootless kiln gives a container a cgroup (in your delegated cgroup v2 subtree) only for limits such as --memory, and does not pause or update it"
	}
	return "this host uses cgroup v1, where an unprivileged user cannot manage cgroups"
}

// checkRootless refuses what a rootless container cannot have, naming why, rather than
// dropping it: cgroup limits where the user cannot manage cgroups (it sets s.cgroupParent,
// the delegated cgroup v2 dir, where they can), and the bridge network.
func checkRootless(s *Spec) error {
	if !s.rootless {
		return nil
	}
	if needs := cgroupNeeds(s.Resources); len(needs) > 0 {
		parent, err := hostRootlessCgroup(needs)
		if err != nil {
			return err
		}
		if s.Resources.MemorySwap != 0 && !swapAccounting("/sys/fs/cgroup", true) {
			return errors.New("--memory-swap needs the kernel's swap accounting, which this host lacks (memory.swap.max): drop --memory-swap")
		}
		s.cgroupParent = parent
	}
	if s.Network == NetworkBridge {
		return fmt.Errorf("rootless containers have no bridge network (it needs root for veth and iptables): use --network host or --network none")
	}
	return nil
}
