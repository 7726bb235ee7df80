package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
)

// withDefaults fills an empty bridge name and subnet from DefaultBridge and checks them.
func (b Bridge) withDefaults() (Bridge, error) {
	if b.Name == "" {
		b.Name = DefaultBridge.Name
	}
	if !b.Subnet.IsValid() {
		b.Subnet = DefaultBridge.Subnet
	}
	b.Subnet = b.Subnet.Masked()
	if len(b.Name) > 15 || !idPattern.MatchString(b.Name) {
		return b, fmt.Errorf("bridge name %q: use at most 15 letters, digits, '_', '.' or '-'", b.Name)
	}
	if !b.Subnet.Addr().Is4() || b.Subnet.Bits() > 30 {
		return b, fmt.Errorf("bridge subnet %s: use an IPv4 subnet of /30 or larger", b.Subnet)
	}
	if gw := b.gateway(); !usableIn(b.Subnet, gw) {
		return b, fmt.Errorf("bridge gateway %s: choose an address inside %s other than its first and last", gw, b.Subnet)
	}
	return b, nil
}

// gateway is the bridge's own address: Gateway, or the subnet's first.
func (b Bridge) gateway() netip.Addr {
	if b.Gateway.IsValid() {
		return b.Gateway
	}
	return b.Subnet.Addr().Next()
}

// ensureBridge creates bridge b with its gateway address if missing and brings it up; it also
// turns on IPv4 forwarding (for outbound NAT, as docker does) and route_localnet on the bridge
// (so DNAT of 127.0.0.1 may route to a container).
func ensureBridge(b Bridge) (netlink.Link, error) {
	link, err := netlink.LinkByName(b.Name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b.Name}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create bridge %s: %w", b.Name, err)
		}
		link, err = netlink.LinkByName(b.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("%s exists and is a %s, not a bridge: remove it or choose another bridge name", b.Name, link.Type())
	}
	if err := ensureAddr(link, b); err != nil {
		return nil, err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bring up bridge %s: %w", b.Name, err)
	}
	for _, knob := range []string{"/proc/sys/net/ipv4/ip_forward", filepath.Join("/proc/sys/net/ipv4/conf", b.Name, "route_localnet")} {
		if err := setSysctl(knob, "1"); err != nil {
			return nil, err
		}
	}
	return link, nil
}

// ensureAddr gives the bridge its gateway address unless it has it already.
func ensureAddr(link netlink.Link, b Bridge) error {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", b.Name, err)
	}
	gw := b.gateway()
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == gw {
			return nil
		}
	}
	addr := &netlink.Addr{IPNet: ipNet(gw, b.Subnet.Bits())}
	if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("add %s to bridge %s: %w", addr.IPNet, b.Name, err)
	}
	return nil
}

// removeBridge deletes bridge b; its routes and addresses go with it.
func removeBridge(b Bridge) error {
	link, err := netlink.LinkByName(b.Name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err == nil {
		err = netlink.LinkDel(link)
	}
	if err != nil {
		return fmt.Errorf("remove bridge %s: %w", b.Name, err)
	}
	return nil
}

// usableIn reports whether a is a host address of subnet: inside it, not its network or
// broadcast address.
func usableIn(subnet netip.Prefix, a netip.Addr) bool {
	subnet = subnet.Masked()
	return subnet.Contains(a) && a != subnet.Addr() && subnet.Contains(a.Next())
}

func ipNet(ip netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, ip.BitLen())}
}

// setSysctl writes a /proc/sys knob unless it already has the value.
func setSysctl(file, value string) error {
	if cur, err := os.ReadFile(file); err == nil && string(cur) == value+"\n" {
		return nil
	}
	if err := os.WriteFile(file, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set %s=%s: %w", file, value, err)
	}
	return nil
}

// RemoveBridge deletes user bridge b, its iptables rules and its allocation state, refusing while
// a container of this state dir is attached to it. Removing one that is gone is no error.
func (rt *Runtime) RemoveBridge(ctx context.Context, b Bridge) error {
	b, err := b.withDefaults()
	if err != nil {
		return err
	}
	if b.Name == DefaultBridge.Name {
		return fmt.Errorf("bridge %s is the default bridge: kiln does not remove it", b.Name)
	}
	l, err := lockNet(ctx, rt.stateDir)
	if err != nil {
		return err
	}
	defer l.Unlock()
	records, err := readNetRecords(rt.stateDir)
	if err != nil {
		return err
	}
	for _, r := range records {
		if r.Bridge == b.Name {
			return fmt.Errorf("bridge %s: container %s is still attached: stop it first", b.Name, r.ID)
		}
	}
	errs := []error{removeBridgeRules(ctx, b), removeBridge(b)}
	for _, f := range []string{"rules-" + b.Name, "last-" + b.Name} {
		if err := os.Remove(filepath.Join(netDir(rt.stateDir), f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Endpoint is one container attached to a bridge, as network inspect lists it.
type Endpoint struct {
	ID  string
	IP  netip.Prefix // the address with the subnet's length, docker's IPv4Address
	MAC net.HardwareAddr
}

// Endpoints lists the containers attached to bridge b under this state dir.
func (rt *Runtime) Endpoints(b Bridge) ([]Endpoint, error) {
	b, err := b.withDefaults()
	if err != nil {
		return nil, err
	}
	records, err := readNetRecords(rt.stateDir)
	if err != nil {
		return nil, err
	}
	var out []Endpoint
	for _, r := range records {
		if r.Bridge == b.Name && r.IP.IsValid() {
			out = append(out, Endpoint{ID: r.ID, IP: netip.PrefixFrom(r.IP, b.Subnet.Bits()), MAC: macFor(r.IP)})
		}
	}
	return out, nil
}

// SubnetPool is where PickSubnet looks for a free /24: above DefaultBridge's subnet.
var SubnetPool = netip.MustParsePrefix("10.89.0.0/16")

// PickSubnet returns the first /24 of SubnetPool after DefaultBridge's that overlaps neither a
// taken subnet nor a route of this host (default routes aside), as docker picks one for a new
// network.
func PickSubnet(taken []netip.Prefix) (netip.Prefix, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("list host routes: %w", err)
	}
	taken = append(slices.Clip(taken), DefaultBridge.Subnet)
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			continue
		}
		if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
			ones, _ := r.Dst.Mask.Size()
			taken = append(taken, netip.PrefixFrom(a.Unmap(), ones).Masked())
		}
	}
	for p := netip.PrefixFrom(SubnetPool.Addr(), 24); SubnetPool.Contains(p.Addr()); {
		if !slices.ContainsFunc(taken, p.Overlaps) {
			return p, nil
		}
		next := p.Addr().As4()
		if next[2] == 255 {
			break
		}
		next[2]++
		p = netip.PrefixFrom(netip.AddrFrom4(next), 24)
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 left in %s: remove unused networks (kiln network prune) or give --subnet", SubnetPool)
}
