package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// testBridge returns a bridge and subnet of this test alone (the real kiln0 may be in use) and
// removes it and its rules when the test ends.
func testBridge(t *testing.T) Bridge {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables (apt-get install iptables)")
	}
	b := Bridge{Name: fmt.Sprintf("kt%06x", rand.N(1<<24)),
		Subnet: netip.MustParsePrefix(fmt.Sprintf("10.251.%d.0/24", rand.N(250)))}
	t.Cleanup(func() {
		if err := errors.Join(removeBridgeRules(context.Background(), b), removeBridge(b)); err != nil {
			t.Errorf("remove test bridge: %v", err)
		}
		nat, _ := iptables(context.Background(), "-t", "nat", "-S")
		if out, _ := iptables(context.Background(), "-S"); bytes.Contains(append(out, nat...), []byte(b.Name)) {
			t.Errorf("rules of %s left:\n%s", b.Name, out)
		}
	})
	return b
}

// freePort returns a TCP port nothing listens on right now.
func freePort(t *testing.T) uint16 {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

const httpdScript = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"

func bridgeSpec(t *testing.T, rt, state string, b Bridge, args ...string) Spec {
	s := testSpec(t, rt, state, args...)
	s.Network, s.Bridge = NetworkBridge, b
	return s
}

func execOut(t *testing.T, state, id string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	st, err := execIn(context.Background(), t, state, id, ExecSpec{Args: args, Stdout: &out, Stderr: &errb})
	if err != nil || st != 0 {
		t.Fatalf("exec %v: status %d, %v\n%s%s", args, st, err, out.String(), errb.String())
	}
	return out.String()
}

func TestBridgePublishAndReach(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		b := testBridge(t)
		port := freePort(t)
		web := bridgeSpec(t, rt, state, b, "sh", "-c", httpdScript)
		web.Hostname = "web"
		web.Ports = []PortMapping{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port, ContainerPort: 80}}
		stopWeb := runContainerInBackground(t, web)
		defer stopWeb()
		client := bridgeSpec(t, rt, state, b, "sleep", "30")
		stopClient := runContainerInBackground(t, client)
		defer stopClient()

		webIP := b.Subnet.Addr().Next().Next() // the first container gets the first address
		if hosts := execOut(t, state, web.ID, "cat", "/etc/hosts"); !strings.Contains(hosts, webIP.String()+"\tweb\n") {
			t.Errorf("/etc/hosts lacks the container's address:\n%s", hosts)
		}
		if routes := execOut(t, state, client.ID, "ip", "route"); !strings.Contains(routes, "default via "+b.gateway().String()) {
			t.Errorf("no default route via the bridge:\n%s", routes)
		}
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), "hello from web\n")
		if got := execOut(t, state, client.ID, "wget", "-qO-", "http://"+webIP.String()+"/"); got != "hello from web\n" {
			t.Errorf("container to container: %q", got)
		}
		out, _ := iptables(context.Background(), "-t", "nat", "-S")
		filter, _ := iptables(context.Background(), "-S")
		out = append(out, filter...)
		nat := strings.ReplaceAll(string(out), `"`, "") // iptables-nft quotes every comment, legacy only those with spaces
		for _, want := range []string{"-s " + b.Subnet.String() + " ! -o " + b.Name + " -m comment --comment kiln bridge " + b.Name + " -j MASQUERADE",
			"-d 127.0.0.0/8 -i " + b.Name + " -m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment kiln bridge " + b.Name + " -j DROP",
			fmt.Sprintf("-d 127.0.0.1/32 -p tcp -m tcp --dport %d -m comment --comment kiln:%s -j DNAT --to-destination %s:80", port, web.ID, webIP)} {
			if !strings.Contains(nat, want) {
				t.Errorf("rules lack %q:\n%s", want, nat)
			}
		}
		if err := errors.Join(stopWeb(), stopClient()); !errors.Is(err, context.Canceled) {
			t.Errorf("stop: %v", err)
		}
		assertNoNetwork(t, state, web.ID, client.ID)
	})
}

// waitHTTP polls url until it answers want (httpd may still be starting).
func waitHTTP(t *testing.T, url, want string) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := c.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) == want {
			return
		}
		last = fmt.Sprintf("%s: %q", resp.Status, body)
	}
	t.Errorf("GET %s: %s, want %q", url, last, want)
}

// assertNoNetwork checks that the containers left no veth, DNAT rule, pinned namespace or address.
func assertNoNetwork(t *testing.T, state string, ids ...string) {
	t.Helper()
	nat, _ := iptables(context.Background(), "-t", "nat", "-S")
	for _, id := range ids {
		// The kernel removes the veth pair with the unpinned namespace, in the background.
		gone := false
		for deadline := time.Now().Add(10 * time.Second); !gone && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			_, err := netlink.LinkByName(vethName(id))
			gone = err != nil
		}
		if !gone {
			t.Errorf("veth %s left", vethName(id))
		}
		if bytes.Contains(nat, []byte(portTag(id))) {
			t.Errorf("DNAT rules of %s left:\n%s", id, nat)
		}
		if _, err := os.Lstat(netnsPath(state, id)); !os.IsNotExist(err) {
			t.Errorf("netns of %s left: %v", id, err)
		}
	}
	if recs, _ := readNetRecords(state); len(recs) != 0 {
		t.Errorf("addresses still allocated: %+v", recs)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mounts, []byte(filepath.Join(state, "netns"))) {
		t.Errorf("netns mounts left")
	}
}

func TestBridgeCleanupAfterKill(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		b := testBridge(t)
		ready := t.TempDir()
		s := bridgeSpec(t, rt, state, b, "sh", "-c", "touch /ready/ok; exec sleep 100")
		s.Mounts = []Mount{{Type: Bind, Source: ready, Target: "/ready"}}
		s.Ports = []PortMapping{{HostPort: freePort(t), ContainerPort: 80, Protocol: "tcp"}}
		os.MkdirAll(s.Upper, 0o755)
		enc, _ := json.Marshal(s)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), helperEnv+"="+string(enc), helperEnv+"_RT="+rt, helperEnv+"_STATE="+state)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, filepath.Join(ready, "ok"))
		cmd.Process.Kill()
		cmd.Wait()
		if _, err := netlink.LinkByName(vethName(s.ID)); err != nil {
			t.Fatalf("the killed run should have left its veth: %v", err)
		}
		if err := stateRT(t, state).Cleanup(context.Background()); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		assertNoLeftovers(t, rt, state, s)
		assertNoNetwork(t, state, s.ID)
	})
}

func TestBridgeAllocation(t *testing.T) {
	subnet := netip.MustParsePrefix("10.9.0.0/29") // .1 gateway, .2-.6 containers, .7 broadcast
	var recs []netRecord
	for i := 2; i <= 6; i++ {
		ip, err := allocateIP(recs, Bridge{Name: "b", Subnet: subnet}, netip.Addr{}, netip.Addr{})
		if err != nil || ip != netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}) {
			t.Fatalf("allocation %d: %v %v", i, ip, err)
		}
		recs = append(recs, netRecord{ID: fmt.Sprint(i), Bridge: "b", IP: ip})
	}
	if _, err := allocateIP(recs, Bridge{Name: "b", Subnet: subnet}, netip.Addr{}, netip.Addr{}); err == nil {
		t.Error("allocated past the end of the subnet")
	}
	if ip, _ := allocateIP(recs, Bridge{Name: "other", Subnet: subnet}, netip.Addr{}, netip.Addr{}); ip.String() != "10.9.0.2" {
		t.Errorf("another bridge's addresses are its own: %v", ip)
	}
	// Released addresses come back only after the rest: .3 is free again, but .5 was handed out last.
	freed := append(append([]netRecord{}, recs[:1]...), recs[2:]...)
	if ip, _ := allocateIP(freed[:2], Bridge{Name: "b", Subnet: subnet}, netip.MustParseAddr("10.9.0.5"), netip.Addr{}); ip.String() != "10.9.0.6" {
		t.Errorf("after .5: %v, want .6", ip)
	}
	if ip, _ := allocateIP(freed, Bridge{Name: "b", Subnet: subnet}, netip.MustParseAddr("10.9.0.6"), netip.Addr{}); ip.String() != "10.9.0.3" {
		t.Errorf("after .6, wrapping: %v, want .3", ip)
	}
	recs[1].Ports = []PortMapping{{HostPort: 8080, ContainerPort: 80}}
	for _, c := range []struct {
		p    PortMapping
		fail bool
	}{
		{PortMapping{HostPort: 8080, ContainerPort: 81}, true},
		{PortMapping{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, ContainerPort: 81}, true},
		{PortMapping{HostPort: 8080, ContainerPort: 81, Protocol: "udp"}, false},
		{PortMapping{HostPort: 8081, ContainerPort: 80}, false},
	} {
		if err := checkPorts(recs, []PortMapping{c.p}); (err != nil) != c.fail {
			t.Errorf("%+v: %v", c.p, err)
		}
	}
}

func TestSplitRule(t *testing.T) {
	for line, want := range map[string][]string{
		`-A KILN -p tcp -m comment --comment "kiln:t1" -j DNAT`: {"-A", "KILN", "-p", "tcp", "-m", "comment", "--comment", "kiln:t1", "-j", "DNAT"},
		`-A X -m comment --comment "a \"b\" c"  -j ACCEPT`:      {"-A", "X", "-m", "comment", "--comment", `a "b" c`, "-j", "ACCEPT"},
		`-A X -m comment --comment kiln:t2 -j DNAT`:             {"-A", "X", "-m", "comment", "--comment", "kiln:t2", "-j", "DNAT"},
		`-A X --comment ""`: {"-A", "X", "--comment", ""},
	} {
		if got := splitRule(line); fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
			t.Errorf("splitRule(%s) = %q, want %q", line, got, want)
		}
	}
}

// Concurrent runs on one bridge get distinct addresses and leave nothing behind.
func TestBridgeConcurrentRuns(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		b := testBridge(t)
		const n = 4
		specs := make([]Spec, n)
		outs := make([]bytes.Buffer, n)
		errs := make(chan error, n)
		for i := range specs {
			specs[i] = bridgeSpec(t, rt, state, b, "sh", "-c", "ip -4 addr show eth0 | grep -o 'inet [0-9.]*'")
			os.MkdirAll(specs[i].Upper, 0o755)
			specs[i].Stdout = &outs[i]
			go func(s Spec) {
				st, err := rtOf(s).Run(context.Background(), s)
				if err == nil && st != 0 {
					err = fmt.Errorf("%s: status %d", s.ID, st)
				}
				errs <- err
			}(specs[i])
		}
		for range specs {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]bool{}
		for i := range outs {
			addr := strings.TrimSpace(outs[i].String())
			if !strings.HasPrefix(addr, "inet "+strings.TrimSuffix(b.Subnet.Addr().String(), "0")) || seen[addr] {
				t.Errorf("container %d: address %q (seen before: %v)", i, addr, seen[addr])
			}
			seen[addr] = true
		}
		ids := make([]string, n)
		for i := range specs {
			ids[i] = specs[i].ID
		}
		assertNoNetwork(t, state, ids...)
	})
}

// Members of a bridge with Resolve find each other by name and alias, both ways, whatever the
// order they started in; another bridge's containers reach neither them nor their names, an
// internal bridge has no route out, and a member that leaves leaves no line behind.
func TestUserBridgesResolveAndIsolate(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		netA, netB, internal := testBridge(t), testBridge(t), testBridge(t)
		for netB.Subnet.Overlaps(netA.Subnet) || internal.Subnet.Overlaps(netA.Subnet) || internal.Subnet.Overlaps(netB.Subnet) {
			netB.Subnet = netip.MustParsePrefix(fmt.Sprintf("10.252.%d.0/24", rand.N(250)))
			internal.Subnet = netip.MustParsePrefix(fmt.Sprintf("10.253.%d.0/24", rand.N(250)))
		}
		netA.Resolve, netB.Resolve, internal.Resolve, internal.Internal = true, true, true, true
		member := func(b Bridge, names ...string) (Spec, func() error) {
			s := bridgeSpec(t, rt, state, b, "sleep", "30")
			s.DNSNames = names
			return s, runContainerInBackground(t, s)
		}
		db, stopDB := member(netA, "db", "dbalias")
		defer stopDB()
		app, stopApp := member(netA, "app")
		defer stopApp()
		other, stopOther := member(netB, "other")
		defer stopOther()
		for _, c := range []struct{ in, name string }{{app.ID, "db"}, {app.ID, "dbalias"}, {db.ID, "app"}} {
			execOut(t, state, c.in, "busybox", "ping", "-c1", "-W2", c.name)
		}
		dbIP := strings.Fields(execOut(t, state, app.ID, "grep", "-w", "db", "/etc/hosts"))[0]
		if hosts := execOut(t, state, other.ID, "cat", "/etc/hosts"); strings.Contains(hosts, "db") {
			t.Errorf("another network's container knows db:\n%s", hosts)
		}
		if st, err := execIn(context.Background(), t, state, other.ID, ExecSpec{Args: []string{"busybox", "ping", "-c1", "-W1", dbIP}}); err != nil || st == 0 {
			t.Errorf("a container on another network reached db at %s: status %d, %v", dbIP, st, err)
		}
		closed, stopClosed := member(internal, "closed")
		defer stopClosed()
		if routes := execOut(t, state, closed.ID, "ip", "route"); strings.Contains(routes, "default") {
			t.Errorf("an internal network's container has a route out:\n%s", routes)
		}
		if err := stopApp(); !errors.Is(err, context.Canceled) {
			t.Errorf("stop app: %v", err)
		}
		if hosts := execOut(t, state, db.ID, "cat", "/etc/hosts"); strings.Contains(hosts, "app") || !strings.Contains(hosts, "\t"+db.ID[:5]) && !strings.Contains(hosts, "localhost") {
			t.Errorf("db's hosts still lists app after it left:\n%s", hosts)
		}
		stopDB()
		stopOther()
		stopClosed()
		assertNoNetwork(t, state, db.ID, app.ID, other.ID, closed.ID)
	})
}
