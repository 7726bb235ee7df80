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
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// etcMounts writes /etc/hostname, /etc/hosts and /etc/resolv.conf into the bundle and returns the
// bind mounts that place them, as docker does. With the host network the last two are copies of
// the host's: the container may change its own, never the host's (issue 10.1).
// Extra hosts (--add-host) are appended to /etc/hosts, as docker does, whatever the network.
func etcMounts(bundle, hostname string, network NetworkMode, ip netip.Addr, readOnly bool, extra []HostEntry) ([]specs.Mount, error) {
	hosts, resolv := isolatedHosts(hostname, ip), isolatedResolvConf(network == NetworkBridge)
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
	if hosts != nil || len(extra) > 0 {
		hosts = append(hosts, hostLines(extra)...)
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
		src := filepath.Join(bundle, f.name)
		if err := writeRunFile(src, f.data); err != nil {
			return nil, err
		}
		opts := []string{"rbind", "rprivate"}
		if readOnly {
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
