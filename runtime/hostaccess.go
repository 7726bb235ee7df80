package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// HostAccess is what docker's run flags add to a container beyond its image: shared host
// namespaces and devices, limits and tweaks of the process, and /etc/hosts and resolv.conf lines.
type HostAccess struct {
	Init       bool              // run tini as pid 1 (docker's --init): it reaps zombies and forwards signals
	Privileged bool              // every capability, no seccomp, no masked or read-only paths, the host's devices
	Devices    []Device          // host device nodes given to the container (docker's --device)
	HostPID    bool              // share the host's PID namespace (--pid host)
	HostIPC    bool              // share the host's IPC namespace and its /dev/shm (--ipc host)
	Ulimits    []Ulimit          // rlimits over docker's default nofile
	GroupAdd   []string          // supplementary groups: names in the rootfs's /etc/group, or ids
	Sysctls    map[string]string // namespaced kernel parameters (see CheckSysctl)
	ShmSize    int64             // /dev/shm size in bytes; 0 = docker's 64 MiB
	ExtraHosts []HostEntry       // extra /etc/hosts lines (--add-host)
	DNS        DNS               // resolv.conf overrides
}

// DNS overrides lines of the container's resolv.conf; an empty field keeps the base file's.
type DNS struct {
	Servers []netip.Addr // nameserver lines (--dns)
	Search  []string     // the search line (--dns-search; "." clears it)
	Options []string     // the options line (--dns-option)
}

// Device is one host device node made available in the container (docker's --device).
type Device struct {
	Host        string // host path of the node, e.g. /dev/fuse
	Container   string // path inside the container; "" = Host
	Permissions string // cgroup access: some of r, w, m; "" = "rwm"
}

// InitBinary is the init that Spec.Init runs: tini's static build (Debian's tini package), so it
// works in any image, libc or not. It is docker's own --init (docker-init is tini).
const InitBinary = "tini-static"

// initPath is where the init is bind-mounted: the runtime's /dev tmpfs, so it needs no mount
// point in the image and works with a read-only rootfs.
const initPath = "/dev/init"

// ParseDevice reads docker's --device HOST[:CONTAINER][:PERMISSIONS].
func ParseDevice(v string) (Device, error) {
	parts := strings.Split(v, ":")
	d := Device{Host: parts[0]}
	switch len(parts) {
	case 1:
	case 2:
		if validPerms(parts[1]) {
			d.Permissions = parts[1]
		} else {
			d.Container = parts[1]
		}
	case 3:
		d.Container, d.Permissions = parts[1], parts[2]
	default:
		return Device{}, fmt.Errorf("invalid --device %q: use HOST-PATH[:CONTAINER-PATH][:rwm]", v)
	}
	if !filepath.IsAbs(d.Host) || (d.Container != "" && !filepath.IsAbs(d.Container)) {
		return Device{}, fmt.Errorf("invalid --device %q: device paths must be absolute", v)
	}
	if d.Permissions != "" && !validPerms(d.Permissions) {
		return Device{}, fmt.Errorf("invalid --device %q: permissions %q must be some of r, w and m", v, d.Permissions)
	}
	return d, nil
}

func validPerms(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	for _, c := range p {
		if !strings.ContainsRune("rwm", c) || strings.Count(p, string(c)) > 1 {
			return false
		}
	}
	return true
}

// ipcSysctls are the IPC-namespaced sysctls outside fs.mqueue.*, as docker lists them.
var ipcSysctls = []string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}

// CheckSysctl refuses a sysctl that is not namespaced (it would change the host) or whose
// namespace the container shares with the host, as docker does.
func CheckSysctl(name string, s Spec) error {
	switch {
	case slices.Contains(ipcSysctls, name) || strings.HasPrefix(name, "fs.mqueue."):
		if s.HostIPC {
			return fmt.Errorf("--sysctl %s: an IPC sysctl cannot be set with --ipc host (it would change the host's)", name)
		}
	case strings.HasPrefix(name, "net."):
		if s.Network == NetworkHost {
			return fmt.Errorf("--sysctl %s: a network sysctl cannot be set with --network host (it would change the host's)", name)
		}
	case name == "kernel.domainname" || name == "kernel.hostname":
		return fmt.Errorf("--sysctl %s: set it with --hostname (or --domainname) instead", name)
	default:
		return fmt.Errorf("--sysctl %s is not allowed: only namespaced sysctls (net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*) can be set per container", name)
	}
	return nil
}

// checkHostAccess validates the HostAccess and cgroup settings of s before any work, and
// refuses what the isolation cannot give, naming why, instead of dropping it.
func checkHostAccess(s Spec) error {
	for k := range s.Sysctls {
		if err := CheckSysctl(k, s); err != nil {
			return err
		}
	}
	if s.HostIPC && s.ShmSize > 0 {
		return errors.New("--shm-size cannot be combined with --ipc host: the container uses the host's /dev/shm")
	}
	for _, h := range s.ExtraHosts {
		if h.Gateway && s.Network != NetworkBridge && s.Network != NetworkHost {
			return fmt.Errorf("--add-host %s: host-gateway needs --network bridge or host (this network cannot reach the host's own addresses)", h)
		}
	}
	r := s.Resources
	if r.MemorySwap != 0 && r.Memory == 0 {
		return errors.New("--memory-swap needs --memory: it is the total of memory and swap")
	}
	if r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return fmt.Errorf("--memory-swap %d must be at least --memory %d (it is memory plus swap; -1 = unlimited swap)", r.MemorySwap, r.Memory)
	}
	if err := CheckResources(r); err != nil {
		return err
	}
	if r.MemorySwap != 0 && !s.rootless && !swapAccounting("/sys/fs/cgroup", unifiedOnly()) {
		return errors.New("--memory-swap needs the kernel's swap accounting, which this host lacks (cgroup v1: boot with swapaccount=1): drop --memory-swap")
	}
	if s.Init {
		if _, err := exec.LookPath(InitBinary); err != nil {
			return fmt.Errorf("--init runs %s, which is not installed: install Debian's tini package (apt-get install tini)", InitBinary)
		}
	}
	if !s.rootless {
		return nil
	}
	switch {
	case s.Privileged:
		return errors.New("--privileged needs root: a rootless container's user namespace cannot have the host's devices and capabilities; use --cap-add ALL and --security-opt seccomp=unconfined for what a user namespace allows")
	case len(s.Devices) > 0:
		return errors.New("--device needs root: a rootless container cannot be given device nodes or device cgroup rules")
	}
	return nil
}

// CheckResources checks the limits that name host resources (--cpuset-cpus, --cpuset-mems,
// --cpu-shares) against this host, as run and update take them.
func CheckResources(r Resources) error {
	if r.CpusetCPUs != "" {
		if err := checkCpuset(r.CpusetCPUs); err != nil {
			return err
		}
	}
	if r.CpusetMems != "" {
		if err := checkCpusetMems(r.CpusetMems, "/sys/devices/system/node/online"); err != nil {
			return err
		}
	}
	if r.CPUShares > 0 && (r.CPUShares < 2 || r.CPUShares > 262144) {
		return fmt.Errorf("invalid --cpu-shares %d: use 2 to 262144 (1024 is the default weight)", r.CPUShares)
	}
	return nil
}

// checkCpusetMems checks a --cpuset-mems list against the memory nodes online (the file
// online, the kernel's list format; a kernel without NUMA has node 0 alone).
func checkCpusetMems(v, online string) error {
	want, err := parseCPUList(v)
	if err != nil {
		return fmt.Errorf("invalid --cpuset-mems %q: use a list such as 0-1", v)
	}
	avail := []int{0}
	if data, err := os.ReadFile(online); err == nil {
		if avail, err = parseCPUList(strings.TrimSpace(string(data))); err != nil {
			return fmt.Errorf("--cpuset-mems: read %s: %w", online, err)
		}
	}
	for _, n := range want {
		if !slices.Contains(avail, n) {
			return fmt.Errorf("invalid --cpuset-mems %q: memory node %d is not available (available: %s)", v, n, strings.Trim(fmt.Sprint(avail), "[]"))
		}
	}
	return nil
}

// checkCpuset checks a --cpuset-cpus list ("0-2,4") against the CPUs kiln itself may run on
// (its affinity: the CPUs online within its own cgroup's cpuset, v1 or v2), since a container's
// cpuset must be a subset of its parent's.
func checkCpuset(v string) error {
	want, err := parseCPUList(v)
	if err != nil {
		return fmt.Errorf("invalid --cpuset-cpus %q: use a list such as 0-2,4", v)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return fmt.Errorf("--cpuset-cpus: read the available CPUs: %w", err)
	}
	var avail []string
	for c := range 1024 {
		if set.IsSet(c) {
			avail = append(avail, strconv.Itoa(c))
		}
	}
	for _, c := range want {
		if c >= 1024 || !set.IsSet(c) {
			return fmt.Errorf("invalid --cpuset-cpus %q: CPU %d is not available (available: %s)", v, c, strings.Join(avail, ","))
		}
	}
	return nil
}

// parseCPUList reads the kernel's CPU list format: comma-separated numbers and ranges.
func parseCPUList(v string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU range %q", part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// specDevices turns --device flags (or, privileged, every node under the host's /dev) into OCI
// devices and the cgroup rules that allow them.
func specDevices(s Spec) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	if s.Privileged {
		all, err := hostDevices()
		if err != nil {
			return nil, nil, err
		}
		devs = all
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"})
	}
	for _, d := range s.Devices {
		dev, err := deviceNode(d.Host)
		if err != nil {
			return nil, nil, fmt.Errorf("--device %s: %w", d.Host, err)
		}
		if d.Container != "" {
			dev.Path = d.Container
		}
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		devs = slices.DeleteFunc(devs, func(o specs.LinuxDevice) bool { return o.Path == dev.Path })
		devs = append(devs, dev)
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: dev.Type, Major: ptr(dev.Major), Minor: ptr(dev.Minor), Access: perms})
	}
	return devs, rules, nil
}

// deviceNode describes the host's device node at path (following a symlink, as docker).
func deviceNode(path string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errors.New("not a device node")
	}
	mode := os.FileMode(st.Mode & 0o777)
	return specs.LinuxDevice{Path: path, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: ptr(st.Uid), GID: ptr(st.Gid)}, nil
}

// hostDevices lists the device nodes under /dev for --privileged, as docker: not the pty and
// shm filesystems, which the container has its own of.
func hostDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue":
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&fs.ModeDevice == 0 || p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		dev, err := deviceNode(p)
		if err != nil {
			return nil // vanished or not a node after all
		}
		out = append(out, dev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--privileged: list the host's devices: %w", err)
	}
	return out, nil
}

// swapAccounting reports whether the cgroups mounted at root can limit swap: v1's memory.memsw
// files, or (unified) v2's memory.swap.max next to memory.max. When v2 shows no memory
// controller to look at it says yes and lets the OCI runtime decide.
func swapAccounting(root string, unified bool) bool {
	if !unified {
		_, err := os.Stat(filepath.Join(root, "memory", "memory.memsw.limit_in_bytes"))
		return err == nil
	}
	limits, _ := filepath.Glob(filepath.Join(root, "*", "memory.max"))
	swaps, _ := filepath.Glob(filepath.Join(root, "*", "memory.swap.max"))
	return len(limits) == 0 || len(swaps) > 0
}
