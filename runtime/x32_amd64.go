package runtime

import "golang.org/x/sys/unix"

// x32Bit marks a system call number as the x32 ABI's (arch/x86/include/uapi/asm/unistd.h).
const x32Bit = 0x40000000

// x32Usable asks the kernel directly: getpid through the x32 ABI fails with ENOSYS when the
// kernel has no x32 support (or a filter around kiln refuses it, which binds containers too).
func x32Usable() bool {
	_, _, errno := unix.RawSyscall(x32Bit|unix.SYS_GETPID, 0, 0, 0)
	return errno != unix.ENOSYS
}
