package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/runtime"
)

// parsePublish reads docker's -p [IP:][HOST-PORT:]CONTAINER-PORT[/tcp|udp]; without a host
// port (HostPort 0) the port is published on a random one.
func parsePublish(v string) (runtime.PortMapping, error) {
	var p runtime.PortMapping
	spec, proto, hasProto := strings.Cut(v, "/")
	p.Protocol = "tcp"
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return p, fmt.Errorf("invalid -p %q: protocol %q is not supported (use tcp or udp)", v, proto)
		}
		p.Protocol = proto
	}
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 1:
		parts = []string{"", parts[0]}
	case 2:
	case 3:
		ip, err := netip.ParseAddr(parts[0])
		if err != nil || !ip.Is4() {
			return p, fmt.Errorf("invalid -p %q: host address %q must be an IPv4 address", v, parts[0])
		}
		if !ip.IsUnspecified() {
			p.HostIP = ip
		}
		parts = parts[1:]
	default:
		return p, fmt.Errorf("invalid -p %q: use [IP:][HOST-PORT:]CONTAINER-PORT[/tcp|udp]", v)
	}
	var err error
	if parts[0] != "" { // else a random host port
		if p.HostPort, err = parsePort(v, parts[0]); err != nil {
			return p, err
		}
	}
	p.ContainerPort, err = parsePort(v, parts[1])
	return p, err
}

func parsePort(flag, s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid -p %q: port %q must be a number from 1 to 65535 (ranges are not supported)", flag, s)
	}
	return uint16(n), nil
}

// parseExpose reads docker's --expose PORT[-PORT][/tcp|udp] into the image's EXPOSE form.
func parseExpose(v string) ([]string, error) {
	spec, proto, _ := strings.Cut(v, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("invalid --expose %q: protocol %q is not supported (use tcp or udp)", v, proto)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	if !isRange {
		hi = lo
	}
	a, errA := strconv.ParseUint(lo, 10, 16)
	b, errB := strconv.ParseUint(hi, 10, 16)
	if errA != nil || errB != nil || a == 0 || b < a {
		return nil, fmt.Errorf("invalid --expose %q: use PORT[-PORT][/tcp|udp] with ports from 1 to 65535", v)
	}
	var out []string
	for p := a; p <= b; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}
