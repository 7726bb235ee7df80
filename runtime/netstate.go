package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// netRecord is what one container holds on a bridge: its address, host-side veth, pinned
// namespace and forwarded ports. Written before any of them exists, so Cleanup can undo a
// killed run's half-made network; removed after they are all gone.
type netRecord struct {
	ID     string        `json:"id"`
	Bridge string        `json:"bridge"`
	IP     netip.Addr    `json:"ip"`
	Veth   string        `json:"veth"`
	NetNS  string        `json:"netns"`
	Ports  []PortMapping `json:"ports,omitempty"`
	// Hosts is the container's /etc/hosts on a bridge with Resolve, kept listing the other
	// members by their Names.
	Hosts string   `json:"hosts,omitempty"`
	Names []string `json:"names,omitempty"`
}

func netDir(stateDir string) string        { return filepath.Join(stateDir, "net") }
func netRecordsDir(stateDir string) string { return filepath.Join(netDir(stateDir), "containers") }

// lockNet takes the state dir's network lock: address allocation, port checks and iptables
// edits of concurrent kiln processes are serialized by it.
func lockNet(ctx context.Context, stateDir string) (*flock.Flock, error) {
	if err := os.MkdirAll(netRecordsDir(stateDir), 0o700); err != nil {
		return nil, fmt.Errorf("create network state dir: %w", err)
	}
	l := flock.New(filepath.Join(netDir(stateDir), "lock"))
	if _, err := l.TryLockContext(ctx, 5*time.Millisecond); err != nil { // a signal ends the wait
		return nil, fmt.Errorf("lock network state: %w", err)
	}
	return l, nil
}

// readNetRecords returns every container's network record under stateDir.
func readNetRecords(stateDir string) ([]netRecord, error) {
	ents, err := os.ReadDir(netRecordsDir(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read network records: %w", err)
	}
	var out []netRecord
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		r := netRecord{ID: id}
		if data, err := os.ReadFile(filepath.Join(netRecordsDir(stateDir), e.Name())); err == nil {
			json.Unmarshal(data, &r) //nolint:errcheck // a torn record still names the container
		}
		out = append(out, r)
	}
	return out, nil
}

func writeNetRecord(stateDir string, r netRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode network record: %w", err)
	}
	return writeRunFile(filepath.Join(netRecordsDir(stateDir), r.ID+".json"), data)
}

func removeNetRecord(stateDir, id string) error {
	err := os.Remove(filepath.Join(netRecordsDir(stateDir), id+".json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network record: %w", err)
	}
	return nil
}

// allocateIP picks the lowest free host address of bridge b after after, skipping the gateway, or
// checks that static (docker's --ip) is one; the caller holds the lock.
func allocateIP(records []netRecord, b Bridge, after, static netip.Addr) (netip.Addr, error) {
	used := map[netip.Addr]bool{b.gateway(): true}
	for _, r := range records {
		if r.Bridge == b.Name {
			used[r.IP] = true
		}
	}
	subnet := b.Subnet.Masked()
	if static.IsValid() {
		switch {
		case !usableIn(subnet, static):
			return netip.Addr{}, fmt.Errorf("invalid --ip %s: no matching subnet: choose a host address of %s", static, subnet)
		case static == b.gateway():
			return netip.Addr{}, fmt.Errorf("invalid --ip %s: it is the network's gateway", static)
		case used[static]:
			return netip.Addr{}, fmt.Errorf("address %s already in use: choose another --ip or none", static)
		}
		return static, nil
	}
	var free []netip.Addr
	for a := subnet.Addr().Next(); usableIn(subnet, a); a = a.Next() {
		if !used[a] {
			free = append(free, a)
		}
	}
	if len(free) == 0 {
		return netip.Addr{}, fmt.Errorf("bridge %s: no free address in %s: stop containers or choose a larger subnet", b.Name, subnet)
	}
	for _, a := range free {
		if after.IsValid() && a.Compare(after) > 0 {
			return a, nil
		}
	}
	return free[0], nil // wrapped around
}

// lastIP is the address a bridge handed out last: allocation goes on after it, so a released
// address (whose namespace the kernel may still be tearing down) is not reused at once.
func lastIP(stateDir, bridge string) netip.Addr {
	data, _ := os.ReadFile(filepath.Join(netDir(stateDir), "last-"+bridge))
	a, _ := netip.ParseAddr(strings.TrimSpace(string(data)))
	return a
}

func setLastIP(stateDir, bridge string, a netip.Addr) {
	writeRunFile(filepath.Join(netDir(stateDir), "last-"+bridge), []byte(a.String())) //nolint:errcheck // lost: allocation restarts at the bottom
}

// checkPorts refuses host ports another container already forwards, as docker does.
func checkPorts(records []netRecord, ports []PortMapping) error {
	for _, p := range ports {
		for _, r := range records {
			for _, q := range r.Ports {
				if q.proto() == p.proto() && q.HostPort == p.HostPort &&
					(!q.HostIP.IsValid() || !p.HostIP.IsValid() || q.HostIP == p.HostIP) {
					return fmt.Errorf("bind for %s failed: port is already allocated (by container %s)", p.hostAddr(), r.ID)
				}
			}
		}
	}
	return nil
}

func (p PortMapping) proto() string {
	if p.Protocol == "" {
		return "tcp"
	}
	return p.Protocol
}

// hostAddr is docker's "0.0.0.0:8080" form for messages.
func (p PortMapping) hostAddr() string {
	ip := "0.0.0.0"
	if p.HostIP.IsValid() {
		ip = p.HostIP.String()
	}
	return netip.AddrPortFrom(netip.MustParseAddr(ip), p.HostPort).String()
}
