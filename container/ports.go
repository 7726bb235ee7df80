package container

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/runtime"
)

// PortMapping is one published port, as docker's `port` prints it.
type PortMapping struct {
	Private string // "80/tcp"
	Public  string // "0.0.0.0:8080"
}

// Ports lists c's published ports; filter ("80" or "80/udp"), when set, keeps only that one
// and an unpublished filter is an error, as docker's.
func (c *Container) Ports(filter string) ([]PortMapping, error) {
	if filter != "" && !strings.Contains(filter, "/") {
		filter += "/tcp"
	}
	var out []PortMapping
	for _, p := range c.Spec.Ports {
		m := portMapping(p)
		if filter == "" || m.Private == filter {
			out = append(out, m)
		}
	}
	if filter != "" && len(out) == 0 {
		return nil, fmt.Errorf("no public port '%s' published for %s", filter, c.Name)
	}
	return out, nil
}

func portMapping(p runtime.PortMapping) PortMapping {
	proto := p.Protocol
	if proto == "" {
		proto = "tcp"
	}
	host := "0.0.0.0"
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
		if p.HostIP.Is6() {
			host = "[" + host + "]"
		}
	}
	return PortMapping{Private: strconv.Itoa(int(p.ContainerPort)) + "/" + proto,
		Public: host + ":" + strconv.Itoa(int(p.HostPort))}
}

// PublishAll gives every exposed port ("80/tcp", the image's EXPOSE form) that ports does not
// publish yet, and every port of ports without a host port (-p 80), a free random host port, as
// docker's -P; the ports are fixed at create, so that kiln port and ps show them before the
// container runs.
func PublishAll(exposed []string, ports []runtime.PortMapping) ([]runtime.PortMapping, error) {
	out := slices.Clone(ports)
	for i, p := range out {
		if p.HostPort != 0 {
			continue
		}
		proto := cmp.Or(p.Protocol, "tcp")
		host, err := freePort(proto)
		if err != nil {
			return nil, fmt.Errorf("publish %d/%s: %w", p.ContainerPort, proto, err)
		}
		out[i].HostPort = host
	}
	for _, e := range exposed {
		num, proto, _ := strings.Cut(e, "/")
		if proto == "" {
			proto = "tcp"
		}
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil || n == 0 || (proto != "tcp" && proto != "udp") {
			return nil, fmt.Errorf("exposed port %q: use PORT[/tcp|udp]", e)
		}
		if slices.ContainsFunc(out, func(p runtime.PortMapping) bool {
			return int(p.ContainerPort) == int(n) && (p.Protocol == proto || (p.Protocol == "" && proto == "tcp"))
		}) {
			continue
		}
		host, err := freePort(proto)
		if err != nil {
			return nil, fmt.Errorf("publish %s: %w", e, err)
		}
		out = append(out, runtime.PortMapping{HostPort: host, ContainerPort: uint16(n), Protocol: proto})
	}
	return out, nil
}

// freePort asks the kernel for an unused port from its ephemeral range, as docker's -P does.
func freePort(proto string) (uint16, error) {
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", "0.0.0.0:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
	}
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}
