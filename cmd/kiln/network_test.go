package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

func networkIDs(t *testing.T, root string, args ...string) []string {
	t.Helper()
	return strings.Fields(ok(t, root, append([]string{"network", "ls", "-q"}, args...)...).stdout)
}

func inspectNetworkDoc(t *testing.T, root, ref string) networkInspect {
	t.Helper()
	var docs []networkInspect
	if err := json.Unmarshal([]byte(ok(t, root, "network", "inspect", ref).stdout), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("network inspect %s: %v %v", ref, docs, err)
	}
	return docs[0]
}

// assertNoBridge fails while the network's bridge device or any of its iptables rules exist.
func assertNoBridge(t *testing.T, id string) {
	t.Helper()
	bridge := "kiln-" + id[:10]
	if _, err := net.InterfaceByName(bridge); err == nil {
		t.Errorf("bridge %s left", bridge)
	}
	for _, table := range []string{"nat", "filter"} {
		out, _ := exec.Command("iptables", "-w", "-t", table, "-S").Output()
		if strings.Contains(string(out), bridge) {
			t.Errorf("%s rules of %s left:\n%s", table, bridge, out)
		}
	}
}

func TestNetworkVerbs(t *testing.T) {
	root := t.TempDir()
	if got := ok(t, root, "network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}").stdout; got != "bridge bridge local\nhost host local\nnone null local\n" {
		t.Errorf("ls of the built-in networks: %q", got)
	}
	id := strings.TrimSpace(ok(t, root, "network", "create", "--label", "tier=db", "appnet").stdout)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("network create printed %q, want 64 hex", id)
	}
	ok(t, root, "network", "create", "--subnet", "10.123.0.0/24", "--gateway", "10.123.0.254", "--internal", "backend")
	table := ok(t, root, "network", "ls").stdout
	if !regexp.MustCompile(`^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\n`).MatchString(table) || !regexp.MustCompile(`\n`+id[:12]+`\s+appnet\s+bridge\s+local\n`).MatchString(table) {
		t.Errorf("ls table:\n%s", table)
	}
	if got := networkIDs(t, root, "--filter", "label=tier=db"); len(got) != 1 || got[0] != id[:12] {
		t.Errorf("ls --filter label=tier=db: %v", got)
	}
	if got := networkIDs(t, root, "--filter", "type=custom", "--no-trunc"); len(got) != 2 || !strings.Contains(strings.Join(got, " "), id) {
		t.Errorf("ls --filter type=custom --no-trunc: %v", got)
	}
	doc := inspectNetworkDoc(t, root, "appnet")
	if doc.ID != id || doc.Driver != "bridge" || doc.Scope != "local" || doc.Internal || doc.Labels["tier"] != "db" ||
		len(doc.IPAM.Config) != 1 || !strings.HasPrefix(doc.IPAM.Config[0]["Subnet"], "10.89.") || len(doc.Containers) != 0 {
		t.Errorf("inspect appnet: %+v", doc)
	}
	if cfg := inspectNetworkDoc(t, root, "backend").IPAM.Config; len(cfg) != 1 || cfg[0]["Subnet"] != "10.123.0.0/24" || cfg[0]["Gateway"] != "10.123.0.254" {
		t.Errorf("inspect backend: %v", cfg)
	}
	if got := ok(t, root, "network", "inspect", "-f", "{{.Name}} {{.Internal}}", "backend", id[:6], "bridge").stdout; got != "backend true\nappnet false\nbridge false\n" {
		t.Errorf("inspect -f: %q", got)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"network", "create", "appnet"}, 1, "network with name appnet already exists"},
		{[]string{"network", "create", "host"}, 1, "network with name host already exists"},
		{[]string{"network", "create", "--subnet", "10.123.0.128/25", "x"}, 1, "overlaps"},
		{[]string{"network", "create", "--gateway", "10.1.1.1", "x"}, 1, "--gateway needs --subnet"},
		{[]string{"network", "create", "--subnet", "10.124.0.0/24", "--gateway", "10.125.0.1", "x"}, 1, "no matching subnet for gateway 10.125.0.1"},
		{[]string{"network", "create", "-d", "overlay", "x"}, 2, "bridge driver only"},
		{[]string{"network", "inspect", "nope"}, 1, "network nope not found"},
		{[]string{"network", "rm", "bridge"}, 1, "bridge is a pre-defined network and cannot be removed"},
		{[]string{"network", "connect", "appnet", "c"}, 2, "use kiln run --network NETWORK"},
	} {
		if r := kiln(t, root, nil, c.args...); r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("kiln %s: exit %d, want %d with %q:\n%s", strings.Join(c.args, " "), r.code, c.code, c.msg, r.stderr)
		}
	}
	if out := ok(t, root, "network", "rm", "backend").stdout; out != "backend\n" {
		t.Errorf("rm: %q", out)
	}
	if out := ok(t, root, "network", "prune", "-f").stdout; out != "Deleted Networks:\nappnet\n" {
		t.Errorf("prune: %q", out)
	}
	ok(t, root, "network", "create", "spare")
	if out := ok(t, root, "system", "prune", "-f").stdout; !strings.HasPrefix(out, "Deleted Networks:\nspare\n") {
		t.Errorf("system prune: %q", out)
	}
	if got := networkIDs(t, root, "--filter", "type=custom"); len(got) != 0 {
		t.Errorf("networks left: %v", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "networks")); len(ents) != 0 {
		t.Errorf("network records left: %v", ents)
	}
}

// Containers on a user-defined network find each other by name, alias and short id, whichever
// started first; another network reaches neither; an internal one has no way out; and rm and
// network rm leave no veth, lease, hosts line, bridge or rule.
func TestNetworkRun(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	appnet := strings.TrimSpace(ok(t, root, "network", "create", "appnet").stdout)
	other := strings.TrimSpace(ok(t, root, "network", "create", "other").stdout)
	closed := strings.TrimSpace(ok(t, root, "network", "create", "--internal", "closed").stdout)
	db := strings.TrimSpace(ok(t, root, "run", "-d", "--network", "appnet", "--name", "db", "--network-alias", "database", "busybox", "sleep", "60").stdout)
	web := strings.TrimSpace(ok(t, root, "run", "-d", "--network", "appnet", "--name", "web", "busybox", "sleep", "60").stdout)
	for _, name := range []string{"db", "database", db[:12], "web"} {
		if r := kiln(t, root, nil, "run", "--rm", "--network", "appnet", "busybox", "busybox", "ping", "-c1", "-W2", name); r.code != 0 {
			t.Errorf("ping %s on appnet: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}
	// db started before web, yet knows it: kiln rewrote db's /etc/hosts when web joined.
	if hosts := ok(t, root, "exec", "db", "cat", "/etc/hosts").stdout; !regexp.MustCompile(`\n10\.89\.\d+\.\d+\tweb ` + web[:12]).MatchString(hosts) {
		t.Errorf("db's /etc/hosts lacks web:\n%s", hosts)
	}
	doc := inspectNetworkDoc(t, root, "appnet")
	ep, found := doc.Containers[db]
	if !found || ep.Name != "db" || !strings.HasPrefix(ep.IPv4Address, "10.89.") || !strings.HasPrefix(ep.MacAddress, "02:42:") || len(doc.Containers) != 2 {
		t.Errorf("inspect appnet containers: %+v", doc.Containers)
	}
	if mode := inspectOne(t, root, "db").HostConfig.NetworkMode; mode != "appnet" {
		t.Errorf("inspect db: NetworkMode %q, want appnet", mode)
	}
	dbIP := strings.Split(ep.IPv4Address, "/")[0]
	if r := kiln(t, root, nil, "run", "--rm", "--network", "other", "busybox", "sh", "-c", "grep -c db /etc/hosts; busybox ping -c1 -W1 "+dbIP); r.code == 0 || !strings.HasPrefix(r.stdout, "0\n") {
		t.Errorf("a container on another network reached db (%s): exit %d\n%s", dbIP, r.code, r.stdout)
	}
	if r := ok(t, root, "run", "--rm", "--network", "closed", "busybox", "ip", "route"); strings.Contains(r.stdout, "default") {
		t.Errorf("an internal network's container has a route out:\n%s", r.stdout)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"run", "--rm", "--network", "nope", "busybox", "true"}, "network nope not found"},
		{[]string{"run", "--rm", "--network", "appnet", "--ip", "192.0.2.7", "busybox", "true"}, "invalid --ip 192.0.2.7"},
		{[]string{"run", "--rm", "--network-alias", "x", "busybox", "true"}, "network-scoped aliases are supported only for containers in user defined networks"},
		{[]string{"run", "--rm", "--network", "closed", "-p", "8080:80", "busybox", "true"}, "is internal"},
	} {
		if r := kiln(t, root, nil, c.args...); r.code != exitKilnError || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("kiln %s: exit %d, want 125 with %q:\n%s", strings.Join(c.args, " "), r.code, c.msg, r.stderr)
		}
	}
	if r := kiln(t, root, nil, "network", "rm", "appnet"); r.code != 1 || !strings.Contains(r.stderr, "error while removing network: network appnet has active endpoints") {
		t.Errorf("network rm in use: exit %d\n%s", r.code, r.stderr)
	}
	// web's monitor dies unannounced: rm -f cleans up after it, db's /etc/hosts too.
	if err := syscall.Kill(inspectOne(t, root, "web").State.MonitorPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead monitor to show", func() bool { return psRows(t, root)["web"].Status == "Exited (unknown)" })
	ok(t, root, "rm", "-f", "web")
	if hosts := ok(t, root, "exec", "db", "cat", "/etc/hosts").stdout; strings.Contains(hosts, "web") {
		t.Errorf("db's /etc/hosts still lists web after rm:\n%s", hosts)
	}
	ok(t, root, "rm", "-f", "db")
	for _, id := range []string{db, web} {
		if _, err := os.Stat(filepath.Join("/run/kiln/net/containers", id+".json")); err == nil {
			t.Errorf("address lease of %s left", id[:12])
		}
	}
	waitFor(t, "appnet's veths to go", func() bool {
		links, _ := exec.Command("ip", "-o", "link", "show", "master", "kiln-"+appnet[:10]).Output()
		return len(links) == 0
	})
	ok(t, root, "network", "rm", "appnet", "other", "closed")
	for _, id := range []string{appnet, other, closed} {
		assertNoBridge(t, id)
	}
}
