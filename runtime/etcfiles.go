package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// etcMounts writes /etc/hostname (and, without host networking, /etc/hosts and /etc/resolv.conf)
// into the bundle and returns the bind mounts that place them, as docker does.
func etcMounts(bundle, hostname string, network NetworkMode, ip netip.Addr, readOnly bool) ([]specs.Mount, error) {
	if err := writeRunFile(filepath.Join(bundle, "hostname"), []byte(hostname+"\n")); err != nil {
		return nil, err
	}
	hostsSrc, resolvSrc := "/etc/hosts", "/etc/resolv.conf"
	if network != NetworkHost {
		hostsSrc, resolvSrc = filepath.Join(bundle, "hosts"), filepath.Join(bundle, "resolv.conf")
		if err := writeRunFile(hostsSrc, isolatedHosts(hostname, ip)); err != nil {
			return nil, err
		}
		if err := writeRunFile(resolvSrc, isolatedResolvConf(network == NetworkBridge)); err != nil {
			return nil, err
		}
	}
	var out []specs.Mount
	add := func(src, dst string) {
		opts := []string{"rbind", "rprivate"}
		if readOnly {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts})
	}
	add(filepath.Join(bundle, "hostname"), "/etc/hostname")
	if _, err := os.Stat(hostsSrc); err == nil {
		add(hostsSrc, "/etc/hosts")
	}
	if _, err := os.Stat(resolvSrc); err == nil {
		add(resolvSrc, "/etc/resolv.conf")
	}
	return out, nil
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
	return out.Bytes()
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
