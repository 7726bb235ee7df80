package runtime

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// x32Bit marks a system call number as the x32 ABI's (arch/x86/include/uapi/asm/unistd.h).
const x32Bit = 0x40000000

// x32Usable asks the kernel directly: getpid through the x32 ABI fails with ENOSYS when the
// kernel has no x32 support. Under a seccomp filter (kiln in a container) it does not ask: a
// filter without the x32 architecture kills the calling thread, which hangs a Go process, so
// x32 stays in the filter there.
func x32Usable() bool {
	if status, err := os.ReadFile("/proc/self/status"); err != nil || !strings.Contains(string(status), "\nSeccomp:\t0\n") {
		return true
	}
	_, _, errno := unix.RawSyscall(x32Bit|unix.SYS_GETPID, 0, 0, 0)
	return errno != unix.ENOSYS
}
