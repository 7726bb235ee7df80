package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// slirpGuest is the address slirp4netns gives the container (in its default 10.0.2.0/24), and
// slirpDNS its DNS forwarder.
var slirpGuest, slirpDNS = netip.MustParseAddr("10.0.2.100"), netip.MustParseAddr("10.0.2.3")

// slirp is the slirp4netns process giving one container a user-mode network: its own network
// namespace, outbound TCP/UDP through the user's sockets, and host ports forwarded in.
type slirp struct {
	cmd   *exec.Cmd
	exitW *os.File // closing it ends slirp4netns, also when kiln dies
	ns    string
	sock  string
}

// startSlirp pins a network namespace for s, starts slirp4netns on it and adds s.Ports once it
// is ready; stop undoes all of it.
func startSlirp(ctx context.Context, s Spec) (*slirp, error) {
	bin, err := UserModeNetwork()
	if err != nil {
		return nil, err
	}
	if err := checkPortSpecs(s.Ports); err != nil {
		return nil, err
	}
	if s.rootless {
		if err := checkUnprivilegedPorts(s.Ports); err != nil {
			return nil, err
		}
	}
	ns := netnsPath(s.stateDir, s.ID)
	if err := createNetns(ns); err != nil {
		return nil, err
	}
	sock := slirpSocket(s.stateDir, s.ID)
	os.Remove(sock)
	exitR, exitW, err := os.Pipe()
	if err != nil {
		return nil, errors.Join(err, removeNetns(ns))
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		exitR.Close()
		exitW.Close()
		return nil, errors.Join(err, removeNetns(ns))
	}
	defer readyR.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--configure", "--mtu=65520", "--disable-host-loopback", "--netns-type=path",
		"--exit-fd=3", "--ready-fd=4", "--api-socket", sock, ns, "tap0")
	cmd.ExtraFiles = []*os.File{exitR, readyW}
	cmd.Stderr = &stderr
	err = cmd.Start()
	exitR.Close()
	readyW.Close()
	sl := &slirp{cmd: cmd, exitW: exitW, ns: ns, sock: sock}
	if err != nil {
		exitW.Close()
		return nil, errors.Join(fmt.Errorf("start slirp4netns: %w", err), removeNetns(ns))
	}
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		if _, err := readyR.Read(b); err != nil {
			ready <- fmt.Errorf("slirp4netns exited before the network was up: %s", strings.TrimSpace(stderr.String()))
			return
		}
		ready <- nil
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	if err == nil {
		err = sl.addPorts(sock, s.Ports)
	}
	if err != nil {
		return nil, errors.Join(err, sl.stop())
	}
	return sl, nil
}

// UserModeNetwork returns the slirp4netns binary of NetworkSlirp, or why it cannot work here.
func UserModeNetwork() (string, error) {
	bin, err := exec.LookPath("slirp4netns")
	if err != nil {
		return "", fmt.Errorf("the user-mode network needs slirp4netns: install it (apt-get install slirp4netns), or use --network host or none")
	}
	if err := unix.Access("/dev/net/tun", unix.R_OK|unix.W_OK); err != nil {
		return "", fmt.Errorf("the user-mode network needs read-write /dev/net/tun (%v): ask an administrator to `chmod 0666 /dev/net/tun` (its usual mode), or use --network host or none", err)
	}
	return bin, nil
}

// slirpSocket is a short API socket path (sun_path holds 108 bytes; ids are long).
func slirpSocket(stateDir, id string) string {
	h := sha256.Sum256([]byte(id))
	return filepath.Join(stateDir, "slirp-"+hex.EncodeToString(h[:6])+".sock")
}

// checkUnprivilegedPorts refuses host ports an unprivileged user cannot bind, naming the sysctl.
func checkUnprivilegedPorts(ports []PortMapping) error {
	start := 1024
	if v, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(v))); err == nil {
			start = n
		}
	}
	for _, p := range ports {
		if int(p.HostPort) < start {
			return fmt.Errorf("host port %d: rootless containers can publish only ports from %d up (sysctl net.ipv4.ip_unprivileged_port_start); pick a higher host port", p.HostPort, start)
		}
	}
	return nil
}

// addPorts asks slirp4netns, over its API socket, to forward each host port to the container.
func (sl *slirp) addPorts(sock string, ports []PortMapping) error {
	for _, p := range ports {
		host := "0.0.0.0"
		if p.HostIP.IsValid() {
			host = p.HostIP.String()
		}
		req := map[string]any{"execute": "add_hostfwd", "arguments": map[string]any{
			"proto": p.proto(), "host_addr": host, "host_port": p.HostPort, "guest_port": p.ContainerPort}}
		if err := slirpCall(sock, req); err != nil {
			return fmt.Errorf("publish %s -> %d/%s: %w", p.hostAddr(), p.ContainerPort, p.proto(), err)
		}
	}
	return nil
}

// slirpCall sends one request on a new connection, as the slirp4netns API expects.
func slirpCall(sock string, req map[string]any) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // a unix socket supports deadlines
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	c.(*net.UnixConn).CloseWrite() //nolint:errcheck // the request is complete either way
	var resp struct {
		Error *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	if resp.Error != nil {
		return errors.New(resp.Error.Desc)
	}
	return nil
}

// stop ends slirp4netns (closing its exit fd, SIGKILL if it lingers) and removes the namespace.
func (sl *slirp) stop() error {
	sl.exitW.Close()
	done := make(chan struct{})
	go func() { sl.cmd.Wait(); close(done) }() //nolint:errcheck // its exit status says nothing we need
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		sl.cmd.Process.Kill() //nolint:errcheck // it may just have exited
		<-done
	}
	os.Remove(sl.sock) //nolint:errcheck // slirp4netns may have removed it
	return removeNetns(sl.ns)
}
