package runtime

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// dockerNofile is docker's default open-file limit inside containers.
const dockerNofile = 1048576

// rlimits returns docker's RLIMIT_NOFILE capped at kiln's own hard limit (without
// CAP_SYS_RESOURCE the runtime cannot raise a limit above it and would fail to start), with
// the --ulimit flags over it.
func rlimits(ulimits []Ulimit) []specs.POSIXRlimit {
	n := uint64(dockerNofile)
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err == nil && cur.Max < n {
		n = cur.Max
	}
	out := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: n, Soft: n}}
	for _, u := range ulimits {
		l := specs.POSIXRlimit{Type: rlimitName(u.Name), Hard: u.Hard, Soft: u.Soft}
		if i := slices.IndexFunc(out, func(o specs.POSIXRlimit) bool { return o.Type == l.Type }); i >= 0 {
			out[i] = l
		} else {
			out = append(out, l)
		}
	}
	return out
}

// rlimitName is the OCI name of a docker ulimit name.
func rlimitName(name string) string { return "RLIMIT_" + strings.ToUpper(name) }
