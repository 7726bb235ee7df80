package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// attachNetwork gives container s its bridge network: address, pinned namespace with a veth on
// the bridge, default route and published ports. It returns the container's address. On
// failure nothing of it is left behind.
func attachNetwork(ctx context.Context, s Spec) (netip.Addr, error) {
	b, err := s.Bridge.withDefaults()
	if err != nil {
		return netip.Addr{}, err
	}
	if err := checkPortSpecs(s.Ports); err != nil {
		return netip.Addr{}, err
	}
	l, err := lockNet(ctx, s.stateDir)
	if err != nil {
		return netip.Addr{}, err
	}
	defer l.Unlock()
	records, err := readNetRecords(s.stateDir)
	if err != nil {
		return netip.Addr{}, err
	}
	ip, err := allocateIP(records, b, lastIP(s.stateDir, b.Name), s.StaticIP)
	if err != nil {
		return netip.Addr{}, err
	}
	if !s.StaticIP.IsValid() {
		setLastIP(s.stateDir, b.Name, ip)
	}
	if err := checkPorts(records, s.Ports); err != nil {
		return netip.Addr{}, err
	}
	if err := checkHostPortsFree(s.Ports); err != nil {
		return netip.Addr{}, err
	}
	if b.Internal && len(s.Ports) > 0 {
		return netip.Addr{}, fmt.Errorf("-p: network bridge %s is internal: nothing can reach it from outside, so no port can be published", b.Name)
	}
	rec := netRecord{ID: s.ID, Bridge: b.Name, IP: ip, Veth: vethName(s.ID), NetNS: netnsPath(s.stateDir, s.ID), Ports: s.Ports}
	if b.Resolve {
		for _, n := range s.DNSNames {
			if !idPattern.MatchString(n) {
				return netip.Addr{}, fmt.Errorf("network alias %q: use letters, digits, '_', '.' and '-'", n)
			}
		}
		rec.Hosts, rec.Names = filepath.Join(s.BundleDir, "hosts"), s.DNSNames
	}
	if err := writeNetRecord(s.stateDir, rec); err != nil {
		return netip.Addr{}, err
	}
	if err := setupNetwork(ctx, s.stateDir, b, rec); err != nil {
		return netip.Addr{}, errors.Join(fmt.Errorf("container %s network: %w", s.ID, err), detachLocked(context.WithoutCancel(ctx), s.stateDir, rec, true))
	}
	return ip, nil
}

// detachNetwork undoes attachNetwork for container id; a container without a network is fine.
func detachNetwork(ctx context.Context, stateDir, id string) error {
	l, err := lockNet(ctx, stateDir)
	if err != nil {
		return err
	}
	defer l.Unlock()
	records, err := readNetRecords(stateDir)
	if err != nil {
		return err
	}
	for _, r := range records {
		if r.ID == id {
			return detachLocked(ctx, stateDir, r, true)
		}
	}
	return nil
}

// detachLocked removes port rules, veth and namespace, then the record; the caller holds the lock.
// complete says this process wrote r, so it names every port rule: none means no iptables scan.
func detachLocked(ctx context.Context, stateDir string, r netRecord, complete bool) error {
	var errs []error
	if len(r.Ports) > 0 || !complete {
		errs = append(errs, deletePortRules(ctx, r.ID))
	}
	if r.Veth == "" {
		r.Veth = vethName(r.ID)
	}
	// Deleting a veth waits for RCU grace periods (20-30 ms here). After a run the namespace
	// dies with its last user once unpinned, and the kernel then removes the pair in the
	// background; only a half-made or leftover attachment is deleted by hand.
	if link, err := netlink.LinkByName(r.Veth); err == nil && !complete {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("remove veth %s: %w", r.Veth, err))
		}
	}
	if r.NetNS == "" {
		r.NetNS = netnsPath(stateDir, r.ID)
	}
	errs = append(errs, removeNetns(r.NetNS))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("container %s network: %w", r.ID, err) // keep the record: Cleanup retries
	}
	if err := removeNetRecord(stateDir, r.ID); err != nil {
		return err
	}
	return syncHosts(stateDir) // also when r is torn: its bridge may keep members' files
}

// setupNetwork builds what rec describes on bridge b.
func setupNetwork(ctx context.Context, stateDir string, b Bridge, rec netRecord) error {
	br, err := ensureBridge(b)
	if err != nil {
		return err
	}
	if err := ensureBridgeRules(ctx, stateDir, b); err != nil {
		return err
	}
	if err := createNetns(rec.NetNS); err != nil {
		return err
	}
	ns, err := netns.GetFromPath(rec.NetNS)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer ns.Close()
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: rec.Veth, MasterIndex: br.Attrs().Index},
		PeerName:         "eth0",
		PeerNamespace:    netlink.NsFd(int(ns)),
		PeerHardwareAddr: macFor(rec.IP),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", rec.Veth, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return fmt.Errorf("bring up veth %s: %w", rec.Veth, err)
	}
	if err := configureInside(ns, rec.IP, b); err != nil {
		return err
	}
	return addPortRules(ctx, rec)
}

// configureInside brings up lo and eth0 with the container's address and default route.
func configureInside(ns netns.NsHandle, ip netip.Addr, b Bridge) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in container namespace: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	eth, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("container eth0: %w", err)
	}
	if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(ip, b.Subnet.Bits())}); err != nil {
		return fmt.Errorf("add %s to eth0: %w", ip, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("bring up eth0: %w", err)
	}
	if b.Internal {
		return nil // docker's --internal: the subnet's own route only, no way out
	}
	route := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: b.gateway().AsSlice()}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("add default route via %s: %w", b.gateway(), err)
	}
	return nil
}

// macFor is docker's MAC address for a container address: 02:42 and the address's bytes, so
// it is unique on the bridge and known without asking the namespace.
func macFor(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}

// vethName is the host side of the container's veth: unique per id and within IFNAMSIZ.
func vethName(id string) string {
	h := sha256.Sum256([]byte(id))
	return "kv" + hex.EncodeToString(h[:])[:11]
}

// checkPortSpecs rejects mappings iptables would refuse with a less helpful message.
func checkPortSpecs(ports []PortMapping) error {
	for _, p := range ports {
		if p.HostPort == 0 || p.ContainerPort == 0 {
			return fmt.Errorf("port mapping %d:%d: ports must be between 1 and 65535", p.HostPort, p.ContainerPort)
		}
		if p.proto() != "tcp" && p.proto() != "udp" {
			return fmt.Errorf("port mapping %d:%d/%s: protocol must be tcp or udp", p.HostPort, p.ContainerPort, p.Protocol)
		}
		if p.HostIP.IsValid() && !p.HostIP.Is4() {
			return fmt.Errorf("port mapping %s: only IPv4 host addresses are supported", p.HostIP)
		}
	}
	return nil
}

// checkHostPortsFree refuses a host port a host process listens on: the DNAT rule would hide it.
func checkHostPortsFree(ports []PortMapping) error {
	for _, p := range ports {
		addr := p.hostAddr()
		var err error
		if p.proto() == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp4", addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp4", addr); err == nil {
				l.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("bind for %s failed: port is already in use on the host: %w", addr, err)
		}
	}
	return nil
}

// cleanupNetworks removes the networks of containers no live run owns, and namespaces pinned
// by runs killed before they wrote a record.
func cleanupNetworks(ctx context.Context, stateDir string, live *liveRuns) error {
	records, err := readNetRecords(stateDir)
	if err != nil {
		return err
	}
	pinned, _ := os.ReadDir(filepath.Join(stateDir, "netns"))
	if len(records) == 0 && len(pinned) == 0 {
		return nil // the common case: no lock, no netlink
	}
	l, err := lockNet(ctx, stateDir)
	if err != nil {
		return err
	}
	defer l.Unlock()
	if records, err = readNetRecords(stateDir); err != nil { // again, under the lock
		return err
	}
	var errs []error
	known := map[string]bool{}
	for _, r := range records {
		known[r.ID] = true
		if !live.has(r.ID) {
			errs = append(errs, detachLocked(ctx, stateDir, r, false))
		}
	}
	for _, e := range pinned {
		if !live.has(e.Name()) && !known[e.Name()] {
			errs = append(errs, removeNetns(filepath.Join(stateDir, "netns", e.Name())))
		}
	}
	return errors.Join(errs...)
}
