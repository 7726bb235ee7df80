package runtime

import (
	"io"
	"net/netip"
	"time"
)

// Spec describes one container run: its filesystem, process, isolation and limits.
type Spec struct {
	ID        string   // unique container id ([a-zA-Z0-9][a-zA-Z0-9_.-]*), names the runtime state and cgroup
	Lower     []string // read-only layer dirs, bottom layer first; empty means the rootfs is Upper alone
	Upper     string   // writable overlay upperdir; holds whole files after the run (for layer diffs)
	Work      string   // overlay workdir on the same filesystem as Upper
	Volatile  bool     // Upper is thrown away after the run (--rm): overlay skips its syncs ("volatile")
	BundleDir string   // caller-owned dir for config.json, generated /etc files and the rootfs mountpoint
	Rootfs    string   // IsolationChroot: the materialized rootfs dir the process chroots into (Lower, Upper, Work unused)

	Args     []string // argv of the container process; Args[0] is looked up in PATH inside the container
	Env      []string // KEY=value environment; PATH defaults to docker's when absent
	Cwd      string   // absolute working directory, created if missing; "" = "/"
	User     string   // "name", "uid", "uid:gid", "name:group", resolved in the rootfs's /etc/passwd and /etc/group
	Hostname string   // container hostname; "" = the first 12 characters of ID

	Mounts         []Mount // extra bind and tmpfs mounts, applied after the defaults
	Files          []File  `json:"-"` // read-only files kept in memory only (secrets), mounted after Mounts; never encoded
	ReadOnlyRootfs bool    // mount the rootfs read-only (overlay stays rw underneath, the view is ro)
	// SecretEnv are KEY=value variables added to Env whose values must never reach a disk: with
	// any, config.json is written on the run's in-memory files tmpfs and the bundle links to it.
	SecretEnv []string `json:"-"`

	Network NetworkMode   // NetworkNone (own netns with lo only), NetworkHost or NetworkBridge
	Ports   []PortMapping // host ports forwarded to the container (NetworkBridge and NetworkSlirp)
	Bridge  Bridge        // the bridge NetworkBridge attaches to; zero = DefaultBridge
	// StaticIP is docker's --ip: the container's address on Bridge; zero = the next free one.
	StaticIP netip.Addr
	// DNSNames are the names the other members of a Bridge with Resolve find this container
	// by in their /etc/hosts (docker's container name, --network-alias and short id).
	DNSNames  []string
	Resources Resources // cgroup limits; zero values mean unlimited

	CapAdd  []string // capabilities added to docker's default set ("ALL" for every capability)
	CapDrop []string // capabilities removed from the set ("ALL" drops every default first)
	// NewPrivileges lets setuid binaries and file capabilities raise privileges, as docker and
	// BuildKit allow by default (sudo, su, ping); false sets no_new_privs, docker's
	// --security-opt no-new-privileges. The chroot rung always sets no_new_privs.
	NewPrivileges bool

	Seccomp        SeccompMode // default profile, unconfined or a profile file
	SeccompProfile string      // path of a docker-format JSON profile when Seccomp is SeccompProfileFile

	HostAccess // docker's run flags that reach into the host or tune the process

	Terminal bool      // attach the process to a pty; Stdin should then be a terminal for resizing to work
	Stdin    io.Reader // nil = /dev/null
	Stdout   io.Writer // nil = discarded
	Stderr   io.Writer // nil = discarded

	StopGrace time.Duration // how long a cancelled run gets after SIGTERM before SIGKILL; 0 = DefaultStopGrace

	ip       netip.Addr // the container's bridge address once attached, for /etc/hosts
	stateDir string     // the Runtime's state dir, set by Start
	rootless bool       // the Runtime is rootless (sysfs bound for host networking), set by Start

	cgroupParent string // rootless with limits: the delegated cgroup v2 dir its cgroup goes in, set by checkRootless
}

// Mount is one extra mount inside the container.
type Mount struct {
	Type     MountType // Bind or Tmpfs
	Source   string    // host path for Bind (must exist); ignored for Tmpfs
	Target   string    // absolute path inside the container, created if missing (confined to the rootfs)
	ReadOnly bool      // mount read-only
	Options  []string  // extra mount options, e.g. "size=64m" for tmpfs or "rprivate" for binds
}

// MountType says what kind of filesystem a Mount attaches.
type MountType int

const (
	// Bind mounts a host file or directory (recursively).
	Bind MountType = iota
	// Tmpfs mounts a fresh in-memory filesystem.
	Tmpfs
)

// NetworkMode selects the container's network namespace.
type NetworkMode int

const (
	// NetworkNone gives the container its own network namespace with only loopback.
	NetworkNone NetworkMode = iota
	// NetworkHost shares the host's network namespace (and its /etc/hosts and resolv.conf).
	NetworkHost
	// NetworkBridge gives the container its own network namespace with a veth on a host bridge,
	// an address from the bridge's subnet, outbound NAT and Spec.Ports forwarded to it.
	NetworkBridge
	// NetworkSlirp gives the container its own network namespace with a user-mode network
	// (slirp4netns): outbound through the user's own sockets, Spec.Ports forwarded in. For rootless.
	NetworkSlirp
)

// Bridge names the host bridge of NetworkBridge and its subnet; the bridge takes the subnet's
// first address and is the containers' gateway. One state dir owns a bridge: containers of
// another state dir must use another bridge and subnet.
type Bridge struct {
	Name    string       // interface name (at most 15 bytes); "" = DefaultBridge.Name
	Subnet  netip.Prefix // IPv4 subnet; zero = DefaultBridge.Subnet
	Gateway netip.Addr   // the bridge's own address; zero = the subnet's first
	// Internal cuts the bridge off from the outside, as docker's --internal: no NAT, no
	// forwarding to or from other interfaces, no default route in the containers.
	Internal bool
	// Resolve keeps every member's /etc/hosts listing the others by their DNSNames, the
	// daemonless stand-in for the DNS server of docker's user-defined networks.
	Resolve bool
}

// DefaultBridge is the bridge `kiln run --network bridge` uses.
var DefaultBridge = Bridge{Name: "kiln0", Subnet: netip.MustParsePrefix("10.89.0.0/24")}

// PortMapping forwards HostIP:HostPort to the container's ContainerPort (docker's -p).
type PortMapping struct {
	HostIP        netip.Addr // invalid (zero) = every host address, loopback included
	HostPort      uint16
	ContainerPort uint16
	Protocol      string // "tcp" or "udp"; "" = "tcp"
}

// SeccompMode selects the syscall filter of the container process.
type SeccompMode int

const (
	// SeccompDefault applies docker's default profile (from github.com/moby/profiles/seccomp).
	SeccompDefault SeccompMode = iota
	// SeccompUnconfined applies no syscall filter.
	SeccompUnconfined
	// SeccompProfileFile applies the docker-format JSON profile at Spec.SeccompProfile.
	SeccompProfileFile
)

// Resources are cgroup limits enforced by the OCI runtime; zero means unlimited.
type Resources struct {
	Memory    int64   // memory limit in bytes; swap is limited to the same total, like docker
	CPUs      float64 // CPU share as a number of cores (1.5 = 150 ms per 100 ms period)
	PidsLimit int64   // maximum number of tasks
	// MemorySwap is docker's --memory-swap, memory plus swap in bytes (needs Memory); -1 is
	// unlimited swap; 0 = as much as Memory (no swap).
	MemorySwap int64
	CpusetCPUs string // CPUs the container may run on, e.g. "0-2,4"; "" = all
	CpusetMems string // memory nodes it may allocate on (NUMA), e.g. "0"; "" = all
	CPUShares  uint64 // docker's --cpu-shares: relative CPU weight (1024 = default); 0 = unset
}

// ExitStatus is the container process's exit code; a death by signal n is 128+n, like a shell's $?.
type ExitStatus int

// Defaults used when a Spec leaves a field empty.
const (
	DefaultStateDir  = "/run/kiln"
	DefaultStopGrace = 3 * time.Second
	DefaultPath      = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)
