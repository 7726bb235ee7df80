package runtime

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	units "github.com/docker/go-units"
)

// The parsers here read docker's flag syntax for settings both `kiln run` and `kiln build`
// take (--ulimit, --add-host, --shm-size), so the two verbs accept exactly the same values.

// Ulimit is one resource limit of the container process (docker's --ulimit).
type Ulimit struct {
	Name string // docker's name without RLIMIT_: nofile, nproc, core, ...
	Soft uint64 // RlimitInfinity for unlimited
	Hard uint64
}

// RlimitInfinity is RLIM_INFINITY: --ulimit's -1.
const RlimitInfinity = math.MaxUint64

// ParseUlimit reads docker's --ulimit NAME=SOFT[:HARD] (a missing HARD is SOFT; -1 is unlimited).
func ParseUlimit(v string) (Ulimit, error) {
	u, err := units.ParseUlimit(v)
	if err != nil {
		return Ulimit{}, fmt.Errorf("invalid --ulimit %q: %w (use NAME=SOFT[:HARD], e.g. nofile=1024:2048)", v, err)
	}
	lim := func(n int64) (uint64, error) {
		switch {
		case n == -1:
			return RlimitInfinity, nil
		case n < 0:
			return 0, fmt.Errorf("invalid --ulimit %q: a limit is a non-negative number or -1 (unlimited)", v)
		}
		return uint64(n), nil
	}
	out := Ulimit{Name: u.Name}
	if out.Soft, err = lim(u.Soft); err != nil {
		return Ulimit{}, err
	}
	if out.Hard, err = lim(u.Hard); err != nil {
		return Ulimit{}, err
	}
	return out, nil
}

// String is the limit in --ulimit syntax.
func (u Ulimit) String() string {
	n := func(v uint64) string {
		if v == RlimitInfinity {
			return "-1"
		}
		return fmt.Sprint(v)
	}
	return u.Name + "=" + n(u.Soft) + ":" + n(u.Hard)
}

// HostGateway is --add-host's special address: the host as the container reaches it.
const HostGateway = "host-gateway"

// HostEntry is one extra /etc/hosts line (docker's --add-host).
type HostEntry struct {
	Name string
	IP   netip.Addr // invalid when Gateway
	// Gateway resolves the name to the host as the container's network reaches it: the bridge's
	// address, or loopback with the host network.
	Gateway bool
}

// ParseAddHost reads docker's --add-host NAME:IP or NAME=IP, where IP may be bracketed IPv6 or
// host-gateway.
func ParseAddHost(v string) (HostEntry, error) {
	name, addr, ok := strings.Cut(v, "=")
	if !ok {
		name, addr, ok = strings.Cut(v, ":") // the first colon only: the address may be IPv6
	}
	if !ok || name == "" || addr == "" || strings.ContainsAny(name, ": \t") {
		return HostEntry{}, fmt.Errorf("invalid --add-host %q: use NAME:IP (or NAME:host-gateway)", v)
	}
	if addr == HostGateway {
		return HostEntry{Name: name, Gateway: true}, nil
	}
	if len(addr) > 2 && addr[0] == '[' && addr[len(addr)-1] == ']' {
		addr = addr[1 : len(addr)-1]
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		return HostEntry{}, fmt.Errorf("invalid --add-host %q: %q is not an IP address (or host-gateway)", v, addr)
	}
	return HostEntry{Name: name, IP: ip}, nil
}

// String is the entry in --add-host syntax.
func (h HostEntry) String() string {
	if h.Gateway {
		return h.Name + ":" + HostGateway
	}
	return h.Name + ":" + h.IP.String()
}

// ParseSize reads a size flag such as --shm-size 64m or 1g (binary units, as docker; a bare
// number is bytes). flag names the flag in the error.
func ParseSize(flag, v string) (int64, error) {
	n, err := units.RAMInBytes(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid %s %q: use a positive size such as 64m or 1g", flag, v)
	}
	return n, nil
}
