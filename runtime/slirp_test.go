package runtime

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The user-mode network (rootless kiln run's default): a namespace of its own with slirp4netns's
// address and DNS, a published port on 127.0.0.1, and nothing left afterwards. Run as root here
// (the mechanics are the same); the rootless CLI tests need a 0666 /dev/net/tun.
func TestSlirpPublishAndReach(t *testing.T) {
	if _, err := UserModeNetwork(); err != nil {
		t.Skip(err)
	}
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		port := freePort(t)
		web := testSpec(t, rt, state, "sh", "-c", httpdScript)
		web.Network, web.Hostname = NetworkSlirp, "web"
		web.Ports = []PortMapping{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port, ContainerPort: 80}}
		stop := runContainerInBackground(t, web)
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "hello from web\n")
		if addr := execOut(t, state, web.ID, "ip", "-4", "addr", "show", "tap0"); !strings.Contains(addr, slirpGuest.String()) {
			t.Errorf("tap0 lacks %s:\n%s", slirpGuest, addr)
		}
		if resolv := execOut(t, state, web.ID, "cat", "/etc/resolv.conf"); resolv != "nameserver 10.0.2.3\n" {
			t.Errorf("resolv.conf %q", resolv)
		}
		stop()
		if _, err := os.Stat(netnsPath(state, web.ID)); !os.IsNotExist(err) {
			t.Errorf("network namespace left: %v", err)
		}
		if socks, _ := filepath.Glob(filepath.Join(state, "slirp-*")); len(socks) != 0 {
			t.Errorf("API sockets left: %v", socks)
		}
	})
}

func TestSlirpRefusesPrivilegedHostPorts(t *testing.T) {
	if err := checkUnprivilegedPorts([]PortMapping{{HostPort: 80, ContainerPort: 80}}); err == nil || !strings.Contains(err.Error(), "ip_unprivileged_port_start") {
		t.Errorf("host port 80: %v", err)
	}
	if err := checkUnprivilegedPorts([]PortMapping{{HostPort: 8080, ContainerPort: 80}}); err != nil {
		t.Error(err)
	}
}
