package container

import (
	"fmt"
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
