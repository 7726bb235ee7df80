package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// etcMounts writes /etc/hostname (and, without host networking, /etc/hosts and /etc/resolv.conf)
// into the bundle and returns the bind mounts that place them, as docker does.
func etcMounts(bundle, hostname string, network NetworkMode, readOnly bool) ([]specs.Mount, error) {
	if err := writeRunFile(filepath.Join(bundle, "hostname"), []byte(hostname+"\n")); err != nil {
		return nil, err
	}
	hostsSrc, resolvSrc := "/etc/hosts", "/etc/resolv.conf"
	if network != NetworkHost {
		hostsSrc, resolvSrc = filepath.Join(bundle, "hosts"), filepath.Join(bundle, "resolv.conf")
		if err := writeRunFile(hostsSrc, isolatedHosts(hostname)); err != nil {
			return nil, err
		}
		if err := writeRunFile(resolvSrc, isolatedResolvConf()); err != nil {
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

// isolatedHosts is docker's /etc/hosts for a container with its own network namespace.
func isolatedHosts(hostname string) []byte {
	return fmt.Appendf(nil, "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n"+
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n", hostname)
}

// isolatedResolvConf copies the host's resolv.conf without loopback name servers, which would
// point into the container's own empty loopback (docker does the same).
func isolatedResolvConf() []byte {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		out.WriteString(sc.Text() + "\n")
	}
	return out.Bytes()
}

// writeFileAtomic writes via temp file, fsync and rename so no half-written file is visible.
func writeFileAtomic(name string, data []byte) error { return writeFile(name, data, true) }

// writeRunFile is writeFileAtomic without the fsync, for files that live only as long as one run
// (bundle files, owner records): a process crash still never sees a torn file, and after an OS
// crash they are stale anyway. Saves milliseconds per container start.
func writeRunFile(name string, data []byte) error { return writeFile(name, data, false) }

func writeFile(name string, data []byte, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
