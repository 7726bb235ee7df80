package runtime

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

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
	return b, nil
}

// gateway is the bridge's own address: the subnet's first.
func (b Bridge) gateway() netip.Addr { return b.Subnet.Addr().Next() }

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
