package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// dockerNofile is docker's default open-file limit inside containers.
const dockerNofile = 1048576

// rlimits returns docker's RLIMIT_NOFILE capped at kiln's own hard limit: without
// CAP_SYS_RESOURCE the runtime cannot raise a limit above it and would fail to start.
func rlimits() []specs.POSIXRlimit {
	n := uint64(dockerNofile)
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err == nil && cur.Max < n {
		n = cur.Max
	}
	return []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: n, Soft: n}}
}
