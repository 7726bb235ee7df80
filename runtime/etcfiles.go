package runtime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// etcMounts writes /etc/hostname, /etc/hosts and /etc/resolv.conf into the bundle and returns the
// bind mounts that place them, as docker does. With the host network the last two are copies of
// the host's: the container may change its own, never the host's (issue 10.1). --add-host and
// --dns* lines go into these copies.
func etcMounts(s Spec, hostname string) ([]specs.Mount, error) {
	network := s.Network
	hosts, resolv := isolatedHosts(hostname, s.ip), isolatedResolvConf(network == NetworkBridge)
	if network == NetworkSlirp {
		resolv = []byte("nameserver " + slirpDNS.String() + "\n") // slirp4netns forwards it to the host's resolver
	}
	if network == NetworkHost {
		var err error
		if hosts, err = hostEtcFile("/etc/hosts"); err != nil {
			return nil, err
		}
		if resolv, err = hostEtcFile("/etc/resolv.conf"); err != nil {
			return nil, err
		}
	}
	if hosts != nil || len(s.ExtraHosts) > 0 {
		hosts = append(hosts, extraHosts(s)...)
	}
	if resolv != nil || !s.DNS.empty() {
		resolv = s.DNS.apply(resolv)
	}
	files := []struct {
		name string
		data []byte
	}{{"hostname", []byte(hostname + "\n")}, {"hosts", hosts}, {"resolv.conf", resolv}}
	var out []specs.Mount
	for _, f := range files {
		if f.data == nil {
			continue // the host has none: neither has the container
		}
		src := filepath.Join(s.BundleDir, f.name)
		if err := writeRunFile(src, f.data); err != nil {
			return nil, err
		}
		opts := []string{"rbind", "rprivate"}
		if s.ReadOnlyRootfs {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: "/etc/" + f.name, Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

// hostEtcFile reads one of the host's own /etc files for a container's copy; nil when missing.
func hostEtcFile(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the host's %s for the container: %w", name, err)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// isolatedHosts is docker's /etc/hosts for a container with its own network namespace; with a
// bridge address the hostname resolves to it, else to loopback.
func isolatedHosts(hostname string, ip netip.Addr) []byte {
	local := "localhost " + hostname
	if ip.IsValid() {
		local = "localhost"
	}
	out := fmt.Appendf(nil, "127.0.0.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n"+
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n", local)
	if ip.IsValid() {
		out = fmt.Appendf(out, "%s\t%s\n", ip, hostname)
	}
	return out
}

// isolatedResolvConf copies the host's resolv.conf without loopback name servers, which would
// point into the container's own empty loopback (docker does the same).
// With fallback (a bridge network, which can reach the outside), a file left without name
// servers gets docker's public defaults.
func isolatedResolvConf(fallback bool) []byte {
	data, _ := os.ReadFile("/etc/resolv.conf")
	var out bytes.Buffer
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if strings.HasPrefix(f[1], "127.") || f[1] == "::1" {
				continue
			}
			servers++
		}
		out.WriteString(sc.Text() + "\n")
	}
	if fallback && servers == 0 {
		out.WriteString("nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
	}
	return append([]byte{}, out.Bytes()...) // never nil: an empty file is still the container's own
}

// extraHosts are the --add-host lines; host-gateway is the host as the network reaches it.
func extraHosts(s Spec) []byte {
	var out []byte
	for _, h := range s.ExtraHosts {
		ip := h.IP
		if h.Gateway {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1}) // the host network: the host is here
			if s.Network == NetworkBridge {
				b := s.Bridge
				if b.Name == "" {
					b = DefaultBridge
				}
				ip = b.gateway()
			}
		}
		out = fmt.Appendf(out, "%s\t%s\n", ip, h.Name)
	}
	return out
}

func (d DNS) empty() bool { return len(d.Servers) == 0 && len(d.Search) == 0 && len(d.Options) == 0 }

// apply replaces the nameserver, search and options lines of resolv.conf that d sets, keeping
// the others (comments, sortlist), as docker's --dns, --dns-search and --dns-option do.
func (d DNS) apply(resolv []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(resolv))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && ((f[0] == "nameserver" && len(d.Servers) > 0) ||
			((f[0] == "search" || f[0] == "domain") && len(d.Search) > 0) || (f[0] == "options" && len(d.Options) > 0)) {
			continue
		}
		out.WriteString(sc.Text() + "\n")
	}
	for _, ip := range d.Servers {
		fmt.Fprintf(&out, "nameserver %s\n", ip)
	}
	if search := slices.DeleteFunc(slices.Clone(d.Search), func(s string) bool { return s == "." }); len(search) > 0 {
		fmt.Fprintf(&out, "search %s\n", strings.Join(search, " "))
	}
	if len(d.Options) > 0 {
		fmt.Fprintf(&out, "options %s\n", strings.Join(d.Options, " "))
	}
	return append([]byte{}, out.Bytes()...)
}

// writeFileAtomic writes via temp file, fsync and rename so no half-written file is visible.
func writeFileAtomic(name string, data []byte) error {
	return atomicfile.Write(name, data, atomicfile.Options{})
}

// writeRunFile is writeFileAtomic without the fsyncs, for files that live only as long as one
// run (bundle files, owner records): a process crash still never sees a torn file, and after
// an OS crash they are stale anyway. Saves milliseconds per container start.
func writeRunFile(name string, data []byte) error {
	return atomicfile.Write(name, data, atomicfile.Options{NoSync: true})
}
