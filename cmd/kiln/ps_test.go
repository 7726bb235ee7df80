package main

import (
	"net/netip"
	"testing"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

// TestPsPorts: the PORTS column as docker writes it, for running containers only.
func TestPsPorts(t *testing.T) {
	ports := []runtime.PortMapping{
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, ContainerPort: 80},
		{HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
		{HostIP: netip.MustParseAddr("::1"), HostPort: 9000, ContainerPort: 9000, Protocol: "tcp"},
	}
	c := &container.Container{Config: container.Config{Spec: runtime.Spec{Ports: ports}}}
	running := container.State{Status: container.StatusRunning}
	want := "127.0.0.1:8080->80/tcp, 0.0.0.0:5353->53/udp, [::1]:9000->9000/tcp"
	if got := psPorts(c, running); got != want {
		t.Errorf("PORTS = %q, want %q", got, want)
	}
	if got := psPorts(c, container.State{Status: container.StatusExited}); got != "" {
		t.Errorf("PORTS of an exited container = %q, want none", got)
	}
}
