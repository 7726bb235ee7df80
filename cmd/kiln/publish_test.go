package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/runtime"
)

func TestParsePublish(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, c := range []struct {
		in   string
		want runtime.PortMapping
		bad  bool
	}{
		{in: "8080:80", want: runtime.PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		{in: "127.0.0.1:8080:80/udp", want: runtime.PortMapping{HostIP: lo, HostPort: 8080, ContainerPort: 80, Protocol: "udp"}},
		{in: "0.0.0.0:53:53/tcp", want: runtime.PortMapping{HostPort: 53, ContainerPort: 53, Protocol: "tcp"}},
		{in: "80", want: runtime.PortMapping{ContainerPort: 80, Protocol: "tcp"}}, // a random host port
		{in: "127.0.0.1::80/udp", want: runtime.PortMapping{HostIP: lo, ContainerPort: 80, Protocol: "udp"}},
		{in: ":80", want: runtime.PortMapping{ContainerPort: 80, Protocol: "tcp"}},
		{in: "8080:80/sctp", bad: true},
		{in: "8000-8001:80", bad: true},
		{in: "0:80", bad: true},
		{in: "70000:80", bad: true},
		{in: "::1:8080:80", bad: true},
		{in: "host:8080:80", bad: true},
	} {
		got, err := parsePublish(c.in)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("parsePublish(%q) = %+v, %v", c.in, got, err)
		}
	}
}

func TestRunPublish(t *testing.T) {
	requireContainers(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables (apt-get install iptables)")
	}
	root := busyboxRoot(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	id, run := startRun(t, root, "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox",
		"sh", "-c", "mkdir /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www")
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
	}
	if string(body) != "published\n" {
		t.Errorf("GET through -p: %q", body)
	}
	r := kiln(t, root, nil, "exec", id, "sh", "-c", "ip -4 addr show eth0 | grep -o 'inet [0-9.]*/24'")
	if !strings.HasPrefix(r.stdout, "inet 10.89.0.") {
		t.Errorf("container address %q (exit %d, %s), want one of kiln0's 10.89.0.0/24", r.stdout, r.code, r.stderr)
	}
	run.Process.Signal(syscall.SIGTERM)
	run.Wait()
	if out, _ := exec.Command("iptables", "-t", "nat", "-S").Output(); strings.Contains(string(out), id) {
		t.Errorf("DNAT rules of %s left:\n%s", id, out)
	}
	if _, err := os.Stat(filepath.Join(runtime.DefaultStateDir, "net", "containers", id+".json")); !os.IsNotExist(err) {
		t.Errorf("address of %s still allocated: %v", id, err)
	}
	if r := kiln(t, root, nil, "run", "--rm", "--network", "none", "-p", "1:1", "busybox", "true"); r.code != 125 {
		t.Errorf("-p with --network none: exit %d, %s", r.code, r.stderr)
	}
}
