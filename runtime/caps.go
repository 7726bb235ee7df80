package runtime

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// defaultCaps is docker's default capability set, so images behave as they do under docker.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// allCaps lists every capability the OCI runtimes know (Linux 5.9+), in capability-number order.
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// normalizeCap turns "net_admin" or "CAP_NET_ADMIN" into "CAP_NET_ADMIN"; "ALL" stays "ALL".
func normalizeCap(c string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(c))
	if u == "ALL" {
		return u, nil
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	if !slices.Contains(allCaps, u) {
		return "", fmt.Errorf("unknown capability %q (see capabilities(7))", c)
	}
	return u, nil
}

// capabilities applies cap-drop and then cap-add to docker's default set, as docker does:
// add "ALL" grants everything except the explicit drops; drop "ALL" starts from nothing.
func capabilities(add, drop []string) ([]string, error) {
	adds, err := normalizeCaps(add)
	if err != nil {
		return nil, fmt.Errorf("cap-add: %w", err)
	}
	drops, err := normalizeCaps(drop)
	if err != nil {
		return nil, fmt.Errorf("cap-drop: %w", err)
	}
	base := defaultCaps
	switch {
	case slices.Contains(adds, "ALL"):
		base, adds = allCaps, nil
	case slices.Contains(drops, "ALL"):
		base, drops = nil, nil
	}
	bounding := boundingCaps()
	var caps []string
	for _, c := range base {
		// kiln cannot grant what it lacks itself (here: CAP_SYS_RESOURCE); the runtime would fail.
		if !slices.Contains(drops, c) && slices.Contains(bounding, c) {
			caps = append(caps, c)
		}
	}
	for _, c := range adds {
		if !slices.Contains(bounding, c) {
			return nil, fmt.Errorf("cap-add %s: kiln itself lacks this capability (not in its bounding set), so it cannot grant it", c)
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}

// boundingCaps returns the capabilities in kiln's own bounding set (all known ones if unreadable).
func boundingCaps() []string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return allCaps
	}
	for _, line := range strings.Split(string(data), "\n") {
		hex, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return allCaps
		}
		var out []string
		for bit, c := range allCaps { // allCaps is ordered by capability number
			if mask&(1<<bit) != 0 {
				out = append(out, c)
			}
		}
		return out
	}
	return allCaps
}

func normalizeCaps(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, c := range in {
		n, err := normalizeCap(c)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
