package runtime

import (
	"fmt"
	"net/netip"
	"strings"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Ulimit is one resource limit of the container process (docker's --ulimit).
type Ulimit struct {
	Name string // docker's name: nofile, nproc, core, memlock, stack, …
	Soft int64  // -1 = unlimited
	Hard int64  // -1 = unlimited
}

// HostEntry is one extra /etc/hosts line (docker's --add-host).
type HostEntry struct {
	Name string
	IP   netip.Addr
}

// ParseUlimit parses docker's --ulimit NAME=SOFT[:HARD] (-1 for unlimited).
func ParseUlimit(s string) (Ulimit, error) {
	u, err := units.ParseUlimit(s)
	if err != nil {
		return Ulimit{}, fmt.Errorf("--ulimit %q: %w (use NAME=SOFT[:HARD], e.g. nofile=1024:2048)", s, err)
	}
	if u.Soft < -1 || u.Hard < -1 {
		return Ulimit{}, fmt.Errorf("--ulimit %q: limits are -1 (unlimited) or more", s)
	}
	return Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard}, nil
}

// ParseAddHost parses docker's --add-host NAME:IP (or NAME=IP); an IPv6 address may be in brackets.
func ParseAddHost(s string) (HostEntry, error) {
	name, ip, ok := strings.Cut(s, "=")
	if !ok {
		name, ip, ok = strings.Cut(s, ":")
	}
	if !ok || name == "" || ip == "" {
		return HostEntry{}, fmt.Errorf("--add-host %q: use NAME:IP, e.g. db:10.0.0.5", s)
	}
	if strings.ContainsAny(name, " \t\n#") {
		return HostEntry{}, fmt.Errorf("--add-host %q: %q is not a host name", s, name)
	}
	if ip == "host-gateway" {
		return HostEntry{}, fmt.Errorf("--add-host %q: kiln has no host-gateway address; give the host's IP", s)
	}
	addr, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]"))
	if err != nil {
		return HostEntry{}, fmt.Errorf("--add-host %q: %q is not an IP address", s, ip)
	}
	return HostEntry{Name: name, IP: addr}, nil
}

// ParseSize parses a size such as docker's --shm-size (64m, 1g, or bytes).
func ParseSize(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: use a positive number of bytes with an optional unit (k, m, g), e.g. 64m", s)
	}
	return n, nil
}

// ulimitTypes maps docker's names to the OCI runtime's.
var ulimitTypes = map[string]string{
	"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
	"locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE",
	"nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
	"rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}

// withUlimits replaces or adds the given limits to docker's defaults.
func withUlimits(base []specs.POSIXRlimit, us []Ulimit) ([]specs.POSIXRlimit, error) {
	out := append([]specs.POSIXRlimit(nil), base...)
	for _, u := range us {
		typ, ok := ulimitTypes[u.Name]
		if !ok {
			return nil, fmt.Errorf("ulimit %q is not known", u.Name)
		}
		lim := specs.POSIXRlimit{Type: typ, Soft: rlimValue(u.Soft), Hard: rlimValue(u.Hard)}
		if lim.Soft > lim.Hard {
			return nil, fmt.Errorf("ulimit %s: soft limit %d is above the hard limit %d", u.Name, u.Soft, u.Hard)
		}
		replaced := false
		for i := range out {
			if out[i].Type == typ {
				out[i], replaced = lim, true
			}
		}
		if !replaced {
			out = append(out, lim)
		}
	}
	return out, nil
}

func rlimValue(n int64) uint64 {
	if n < 0 {
		return unix.RLIM_INFINITY
	}
	return uint64(n)
}

// hostLines are --add-host entries in /etc/hosts form.
func hostLines(hs []HostEntry) []byte {
	var out []byte
	for _, h := range hs {
		out = fmt.Appendf(out, "%s\t%s\n", h.IP, h.Name)
	}
	return out
}
