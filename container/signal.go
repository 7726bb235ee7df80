package container

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ParseSignal reads a signal as docker does: "HUP", "SIGHUP", "hup" or "1".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q: numbers go from 1 to 64", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q: use a name such as TERM, KILL or HUP, or a number", s)
}

// stopSignal is the container's STOPSIGNAL, SIGTERM when unset or unreadable.
func (c *Container) stopSignal() syscall.Signal {
	if c.StopSignal == "" {
		return syscall.SIGTERM
	}
	sig, err := ParseSignal(c.StopSignal)
	if err != nil {
		return syscall.SIGTERM
	}
	return sig
}
