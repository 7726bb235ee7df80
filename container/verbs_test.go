package container

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/kiln-build/kiln/runtime"
)

func TestPorts(t *testing.T) {
	c := &Container{Config: Config{Name: "web", Spec: runtime.Spec{Ports: []runtime.PortMapping{
		{HostPort: 8080, ContainerPort: 80},
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
	}}}}
	all, err := c.Ports("")
	want := []PortMapping{{"80/tcp", "0.0.0.0:8080"}, {"53/udp", "127.0.0.1:5353"}}
	if err != nil || !reflect.DeepEqual(all, want) {
		t.Fatalf("Ports() = %v, %v", all, err)
	}
	if p, err := c.Ports("53/udp"); err != nil || len(p) != 1 || p[0].Public != "127.0.0.1:5353" {
		t.Fatalf("Ports(53/udp) = %v, %v", p, err)
	}
	if _, err := c.Ports("53"); err == nil || err.Error() != "no public port '53/tcp' published for web" {
		t.Fatalf("Ports(53) = %v", err)
	}
}

func TestFilterPs(t *testing.T) {
	out := "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 43 1 other\n"
	got, err := filterPs(out, map[int]bool{42: true})
	if err != nil || !reflect.DeepEqual(got, []string{"UID PID PPID CMD", "root 42 1 sleep"}) {
		t.Fatalf("filterPs = %q, %v", got, err)
	}
	if _, err := filterPs("USER COMMAND\nroot x\n", nil); err == nil {
		t.Fatal("ps output without PID accepted")
	}
}
