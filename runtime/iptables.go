package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// natChain holds the DNAT rules of published ports; PREROUTING and OUTPUT jump to it for
// traffic to a local address, so published ports work from other hosts and from this one.
const natChain = "KILN"

// ipRule is one iptables rule: table, chain and match/target arguments.
type ipRule struct {
	table, chain string
	args         []string
}

// iptables runs the iptables binary, waiting for the xtables lock of concurrent users.
func iptables(ctx context.Context, args ...string) ([]byte, error) {
	path, err := exec.LookPath("iptables")
	if err != nil {
		return nil, errors.New("iptables not found: bridge networking needs it (apt-get install iptables)")
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, append([]string{"-w", "10"}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// The filter chains of docker's DOCKER-ISOLATION-STAGE-1 and -2: FORWARD jumps to the first
// before anything else; a packet from one kiln bridge to another interface goes on to the
// second, which drops it when that interface is another kiln bridge. So containers on
// different networks cannot reach each other, whatever else FORWARD accepts.
const (
	isolationChain1 = "KILN-ISOLATION-1"
	isolationChain2 = "KILN-ISOLATION-2"
)

// rulesVersion is part of the rules marker: a kiln with other rules installs its own once.
const rulesVersion = "2"

// bridgeRules are the rules every container on bridge b relies on: NAT out of the subnet, NAT of
// locally originated traffic (so 127.0.0.1:port reaches a container, which would otherwise answer
// its own loopback), forwarding to and from the bridge, the jumps to natChain and the isolation
// from other bridges. An internal bridge gets no NAT and forwards only between its members.
// The first rule is the canary of ensureBridgeRules.
func bridgeRules(b Bridge) []ipRule {
	subnet, tag := b.Subnet.Masked().String(), []string{"-m", "comment", "--comment", "kiln bridge " + b.Name}
	with := func(args ...string) []string { return append(args, tag...) }
	rules := []ipRule{
		// route_localnet would let a container with a raw socket reach the host's 127.0.0.1
		// services (CVE-2020-8558): only replies to the host's own connections may come in.
		{"filter", "INPUT", with("-i", b.Name, "-d", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED", "-j", "DROP")},
		{"filter", isolationChain1, with("-i", b.Name, "!", "-o", b.Name, "-j", isolationChain2)},
		{"filter", isolationChain2, with("-o", b.Name, "-j", "DROP")},
	}
	if b.Internal {
		return append(rules,
			ipRule{"filter", isolationChain1, with("-i", b.Name, "!", "-o", b.Name, "-j", "DROP")},
			ipRule{"filter", isolationChain1, with("!", "-i", b.Name, "-o", b.Name, "-j", "DROP")},
			ipRule{"filter", "FORWARD", with("-i", b.Name, "-o", b.Name, "-j", "ACCEPT")})
	}
	return append(rules,
		ipRule{"nat", "PREROUTING", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", natChain}},
		ipRule{"nat", "OUTPUT", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", natChain}},
		ipRule{"nat", "POSTROUTING", with("-s", subnet, "!", "-o", b.Name, "-j", "MASQUERADE")},
		ipRule{"nat", "POSTROUTING", with("-o", b.Name, "-m", "addrtype", "--src-type", "LOCAL", "-j", "MASQUERADE")},
		ipRule{"filter", "FORWARD", with("-i", b.Name, "-j", "ACCEPT")},
		ipRule{"filter", "FORWARD", with("-o", b.Name, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "ACCEPT")})
}

// ensureBridgeRules installs the missing rules of bridgeRules; filter rules go first so a
// FORWARD policy of DROP (docker sets one) does not cut the bridge off. Once they are all in
// place on this boot (a marker under stateDir), later containers check one canary rule only:
// each iptables exec costs milliseconds, and a flushed table loses the canary too.
func ensureBridgeRules(ctx context.Context, stateDir string, b Bridge) error {
	rules := bridgeRules(b)
	marker, boot := filepath.Join(netDir(stateDir), "rules-"+b.Name), rulesVersion+" "+bootID()
	if data, err := os.ReadFile(marker); err == nil && string(data) == boot {
		canary := rules[0]
		if _, err := iptables(ctx, append([]string{"-t", canary.table, "-C", canary.chain}, canary.args...)...); err == nil {
			return nil
		}
	}
	if err := installBridgeRules(ctx, b, rules); err != nil {
		return err
	}
	writeRunFile(marker, []byte(boot)) //nolint:errcheck // without it the next run checks every rule
	return nil
}

// bootID names this boot: markers of an earlier boot are stale.
func bootID() string {
	data, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(data))
}

func installBridgeRules(ctx context.Context, b Bridge, rules []ipRule) error {
	for _, c := range []struct{ table, chain string }{{"nat", natChain}, {"filter", isolationChain1}, {"filter", isolationChain2}} {
		if _, err := iptables(ctx, "-t", c.table, "-S", c.chain); err != nil {
			if _, err := iptables(ctx, "-t", c.table, "-N", c.chain); err != nil {
				return fmt.Errorf("bridge %s: %w", b.Name, err)
			}
		}
	}
	for _, r := range rules {
		check := append([]string{"-t", r.table, "-C", r.chain}, r.args...)
		if _, err := iptables(ctx, check...); err == nil {
			continue
		}
		op := []string{"-t", r.table, "-A", r.chain}
		if r.table == "filter" && r.chain != isolationChain2 {
			op = []string{"-t", r.table, "-I", r.chain, "1"}
		}
		if _, err := iptables(ctx, append(op, r.args...)...); err != nil {
			return fmt.Errorf("bridge %s: %w", b.Name, err)
		}
	}
	return isolationFirst(ctx)
}

// isolationFirst makes FORWARD's first rule the jump to isolationChain1: a bridge's ACCEPT rules,
// inserted at the top, would otherwise let its traffic into other bridges.
func isolationFirst(ctx context.Context) error {
	out, err := iptables(ctx, "-t", "filter", "-S", "FORWARD")
	if err != nil {
		return err
	}
	jump := "-A FORWARD -j " + isolationChain1
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 1 && lines[1] == jump { // lines[0] is the policy
		return nil
	}
	if slices.Contains(lines, jump) {
		if _, err := iptables(ctx, "-t", "filter", "-D", "FORWARD", "-j", isolationChain1); err != nil {
			return err
		}
	}
	_, err = iptables(ctx, "-t", "filter", "-I", "FORWARD", "1", "-j", isolationChain1)
	return err
}

// removeBridgeRules deletes bridge b's own rules, found by their comment whatever settings made
// them (the jumps to natChain and isolationChain1 stay for other bridges).
func removeBridgeRules(ctx context.Context, b Bridge) error {
	tag := "kiln bridge " + b.Name
	var errs []error
	for _, table := range []string{"nat", "filter"} {
		out, err := iptables(ctx, "-t", table, "-S")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := splitRule(line)
			if len(f) < 2 || f[0] != "-A" || !slices.Contains(f, tag) {
				continue
			}
			f[0] = "-D"
			if _, err := iptables(ctx, append([]string{"-t", table}, f...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// portTag marks a container's DNAT rules so they can be found and deleted after a crash.
func portTag(id string) string { return "kiln:" + id }

// portRule is the DNAT rule forwarding p to ip.
func portRule(id string, ip string, p PortMapping) []string {
	args := []string{}
	if p.HostIP.IsValid() {
		args = append(args, "-d", p.HostIP.String())
	}
	return append(args, "-p", p.proto(), "-m", p.proto(), "--dport", strconv.Itoa(int(p.HostPort)),
		"-m", "comment", "--comment", portTag(id),
		"-j", "DNAT", "--to-destination", ip+":"+strconv.Itoa(int(p.ContainerPort)))
}

// addPortRules forwards the container's published ports to its address.
func addPortRules(ctx context.Context, r netRecord) error {
	for _, p := range r.Ports {
		if _, err := iptables(ctx, append([]string{"-t", "nat", "-A", natChain}, portRule(r.ID, r.IP.String(), p)...)...); err != nil {
			return fmt.Errorf("publish port %s: %w", p.hostAddr(), err)
		}
	}
	return nil
}

// deletePortRules removes every DNAT rule tagged with the container's id (also those of a
// killed run that never wrote all of its record).
func deletePortRules(ctx context.Context, id string) error {
	out, err := iptables(ctx, "-t", "nat", "-S", natChain)
	if err != nil {
		return nil // no chain, no rules
	}
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		f := splitRule(line)
		if len(f) < 2 || f[0] != "-A" || !slices.Contains(f, portTag(id)) {
			continue
		}
		f[0] = "-D"
		if _, err := iptables(ctx, append([]string{"-t", "nat"}, f...)...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// splitRule splits a line of `iptables -S` into arguments; iptables quotes comments with
// double quotes and escapes quotes and backslashes inside them.
func splitRule(line string) []string {
	var out []string
	var cur strings.Builder
	inQuote, inArg := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQuote, inArg = !inQuote, true
		case (c == ' ' || c == '\t') && !inQuote:
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out
}
