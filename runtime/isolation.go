package runtime

import (
	"fmt"
	"os"
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
)

// ParseIsolation checks a --isolation value ("" = auto).
func ParseIsolation(s string) (Isolation, error) {
	switch Isolation(s) {
	case "", IsolationAuto:
		return IsolationAuto, nil
	case IsolationOCI, IsolationRootless:
		return Isolation(s), nil
	}
	return "", fmt.Errorf("invalid isolation %q: use auto, oci or rootless", s)
}

// Resolve turns i into the rung this process uses: auto is oci as root and rootless otherwise
// (inside kiln's user namespace the process is root there, and still rootless). A rung that
// cannot work for this process is an error, never a silent fallback.
func (i Isolation) Resolve() (Isolation, error) {
	rootless := InUserNamespace() || os.Geteuid() != 0
	switch i {
	case "", IsolationAuto:
		if rootless {
			return IsolationRootless, nil
		}
		return IsolationOCI, nil
	case IsolationOCI:
		if rootless {
			return "", fmt.Errorf("isolation oci needs root on the host (mounts, cgroups and bridge networking): run kiln as root, or use --isolation=rootless (or auto)")
		}
	case IsolationRootless:
		if !rootless {
			return "", fmt.Errorf("isolation rootless is for unprivileged users: as root kiln uses --isolation=oci (or auto)")
		}
	default:
		return "", fmt.Errorf("invalid isolation %q: use auto, oci or rootless", string(i))
	}
	return i, nil
}

// checkRootless refuses what a rootless container cannot have, naming why, rather than
// dropping it: cgroup limits where the user cannot manage cgroups, and the bridge network.
func checkRootless(s Spec) error {
	if !s.rootless {
		return nil
	}
	if r := s.Resources; r.Memory > 0 || r.CPUs > 0 || r.PidsLimit > 0 {
		why := "this host uses cgroup v1, where an unprivileged user cannot manage cgroups"
		if unifiedOnly() {
			why = "kiln does not use delegated cgroup v2 subtrees yet"
		}
		return fmt.Errorf("--memory, --cpus and --pids-limit need cgroups, and %s: run kiln as root (--isolation=oci) or drop the limits", why)
	}
	if s.Network == NetworkBridge {
		return fmt.Errorf("rootless containers have no bridge network (it needs root for veth and iptables): use --network host or --network none")
	}
	return nil
}
