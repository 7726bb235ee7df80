package container

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/runtime"
)

// recordVersion is the format of container.json that this kiln writes. Version 0 (no
// "version" key) is the first release's, a serialized runtime.Spec; it is read and migrated.
// Version 2 added labels, the stop timeout, host access and more limits (docker's run flags):
// a version 1 record is a version 2 one without them, and a kiln that reads only version 1
// refuses version 2 rather than run a container without, say, its --device or --ulimit.
// Version 3 added user-defined networks (--network NAME, --network-alias, --ip); a record
// without one is still written as version 2, which older kilns read.
const recordVersion = 3

// record is container.json: kiln's own versioned format, so that renaming a field of a Go
// API type (runtime.Spec) never breaks existing containers.
type record struct {
	Version     int               `json:"version"`
	ID          string            `json:"id"`
	Name        string            `json:"name,omitempty"`
	Image       string            `json:"image"`
	ImageDigest string            `json:"imageDigest,omitempty"` // the manifest the container's lease keeps
	Args        []string          `json:"args"`
	Command     *Command          `json:"command,omitempty"` // added in place: older kilns skip it
	Created     time.Time         `json:"created"`
	Restart     RestartPolicy     `json:"restartPolicy"`
	StopSignal  string            `json:"stopSignal,omitempty"`
	AutoRemove  bool              `json:"autoRemove,omitempty"`
	OpenStdin   bool              `json:"openStdin,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	StopTimeout *int              `json:"stopTimeout,omitempty"` // seconds
	Exposed     []string          `json:"exposed,omitempty"`
	Spec        recordSpec        `json:"spec"`
	Healthcheck *recordHealth     `json:"healthcheck,omitempty"`
	CreateCmd   []string          `json:"createCommand,omitempty"`
	CreateDir   string            `json:"createDir,omitempty"`
	Network     string            `json:"networkName,omitempty"` // a user-defined network's name
	Aliases     []string          `json:"networkAliases,omitempty"`
}

// recordSpec is the stored part of runtime.Spec: everything but streams and debug output.
type recordSpec struct {
	Lower          []string         `json:"lower"`
	Upper          string           `json:"upper"`
	Work           string           `json:"work"`
	BundleDir      string           `json:"bundleDir"`
	Env            []string         `json:"env,omitempty"`
	Cwd            string           `json:"cwd,omitempty"`
	User           string           `json:"user,omitempty"`
	Hostname       string           `json:"hostname,omitempty"`
	Mounts         []recordMount    `json:"mounts,omitempty"`
	ReadOnlyRootfs bool             `json:"readOnlyRootfs,omitempty"`
	Network        string           `json:"network"` // none, host, bridge or slirp4netns
	Ports          []recordPort     `json:"ports,omitempty"`
	BridgeName     string           `json:"bridgeName,omitempty"`
	BridgeSubnet   string           `json:"bridgeSubnet,omitempty"`
	BridgeGateway  string           `json:"bridgeGateway,omitempty"`
	BridgeInternal bool             `json:"bridgeInternal,omitempty"`
	BridgeResolve  bool             `json:"bridgeResolve,omitempty"`
	StaticIP       string           `json:"ip,omitempty"`
	DNSNames       []string         `json:"dnsNames,omitempty"`
	Resources      recordResources  `json:"resources,omitzero"`
	CapAdd         []string         `json:"capAdd,omitempty"`
	CapDrop        []string         `json:"capDrop,omitempty"`
	NewPrivileges  bool             `json:"newPrivileges,omitempty"`
	Seccomp        string           `json:"seccomp"` // default, unconfined or profile
	SeccompProfile string           `json:"seccompProfile,omitempty"`
	Terminal       bool             `json:"terminal,omitempty"`
	StopGraceNS    int64            `json:"stopGraceNs,omitempty"`
	HostAccess     recordHostAccess `json:"hostAccess,omitzero"`
}

// recordHostAccess is runtime.HostAccess; ulimits and extra hosts in their flag syntax.
type recordHostAccess struct {
	Init       bool              `json:"init,omitempty"`
	Privileged bool              `json:"privileged,omitempty"`
	Devices    []recordDevice    `json:"devices,omitempty"`
	HostPID    bool              `json:"hostPid,omitempty"`
	HostIPC    bool              `json:"hostIpc,omitempty"`
	Ulimits    []string          `json:"ulimits,omitempty"`
	GroupAdd   []string          `json:"groupAdd,omitempty"`
	Sysctls    map[string]string `json:"sysctls,omitempty"`
	ShmSize    int64             `json:"shmSize,omitempty"`
	ExtraHosts []string          `json:"extraHosts,omitempty"`
	DNS        []string          `json:"dns,omitempty"`
	DNSSearch  []string          `json:"dnsSearch,omitempty"`
	DNSOptions []string          `json:"dnsOptions,omitempty"`
}

type recordDevice struct {
	Host        string `json:"host"`
	Container   string `json:"container,omitempty"`
	Permissions string `json:"permissions,omitempty"`
}

type recordMount struct {
	Type     string   `json:"type"` // bind or tmpfs
	Source   string   `json:"source,omitempty"`
	Target   string   `json:"target"`
	ReadOnly bool     `json:"readOnly,omitempty"`
	Options  []string `json:"options,omitempty"`
}

type recordPort struct {
	HostIP        string `json:"hostIP,omitempty"`
	HostPort      uint16 `json:"hostPort"`
	ContainerPort uint16 `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
}

type recordResources struct {
	Memory     int64   `json:"memory,omitempty"`
	CPUs       float64 `json:"cpus,omitempty"`
	PidsLimit  int64   `json:"pidsLimit,omitempty"`
	MemorySwap int64   `json:"memorySwap,omitempty"`
	CpusetCPUs string  `json:"cpusetCpus,omitempty"`
	CpusetMems string  `json:"cpusetMems,omitempty"`
	CPUShares  uint64  `json:"cpuShares,omitempty"`
}

// Names of the enums on disk; an index is the runtime's value.
var (
	networkNames = []string{runtime.NetworkNone: "none", runtime.NetworkHost: "host", runtime.NetworkBridge: "bridge", runtime.NetworkSlirp: "slirp4netns"}
	seccompNames = []string{runtime.SeccompDefault: "default", runtime.SeccompUnconfined: "unconfined", runtime.SeccompProfileFile: "profile"}
	mountNames   = []string{runtime.Bind: "bind", runtime.Tmpfs: "tmpfs"}
)

func enumName[T ~int](names []string, v T) string {
	if int(v) >= 0 && int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprint(int(v))
}

func enumValue[T ~int](names []string, s, what string) (T, error) {
	for i, n := range names {
		if n == s {
			return T(i), nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q", what, s)
}

// toRecord is cfg as stored.
func toRecord(cfg Config) record {
	sp := cfg.Spec
	r := record{Version: recordVersion, ID: cfg.ID, Name: cfg.Name, Image: cfg.Image, Args: cfg.Args, Command: cfg.Command, Created: cfg.Created,
		Restart: cfg.Restart, StopSignal: cfg.StopSignal, AutoRemove: cfg.AutoRemove, OpenStdin: cfg.OpenStdin, Labels: cfg.Labels, StopTimeout: cfg.StopTimeout, Exposed: cfg.Exposed}
	if cfg.ImageDigest != (v1.Hash{}) {
		r.ImageDigest = cfg.ImageDigest.String()
	}
	r.Spec = recordSpec{Lower: sp.Lower, Upper: sp.Upper, Work: sp.Work, BundleDir: sp.BundleDir,
		Env: sp.Env, Cwd: sp.Cwd, User: sp.User, Hostname: sp.Hostname, ReadOnlyRootfs: sp.ReadOnlyRootfs,
		Network: enumName(networkNames, sp.Network), BridgeName: sp.Bridge.Name,
		Resources: recordResources{Memory: sp.Resources.Memory, CPUs: sp.Resources.CPUs, PidsLimit: sp.Resources.PidsLimit,
			MemorySwap: sp.Resources.MemorySwap, CpusetCPUs: sp.Resources.CpusetCPUs, CpusetMems: sp.Resources.CpusetMems,
			CPUShares: sp.Resources.CPUShares},
		HostAccess: toRecordHostAccess(sp.HostAccess),
		CapAdd:     sp.CapAdd, CapDrop: sp.CapDrop, NewPrivileges: sp.NewPrivileges,
		Seccomp: enumName(seccompNames, sp.Seccomp), SeccompProfile: sp.SeccompProfile, Terminal: sp.Terminal,
		StopGraceNS: int64(sp.StopGrace)}
	if sp.Bridge.Subnet.IsValid() {
		r.Spec.BridgeSubnet = sp.Bridge.Subnet.String()
	}
	r.Network, r.Aliases = cfg.Network, cfg.NetworkAliases
	r.Spec.BridgeInternal, r.Spec.BridgeResolve, r.Spec.DNSNames = sp.Bridge.Internal, sp.Bridge.Resolve, sp.DNSNames
	if sp.Bridge.Gateway.IsValid() {
		r.Spec.BridgeGateway = sp.Bridge.Gateway.String()
	}
	if sp.StaticIP.IsValid() {
		r.Spec.StaticIP = sp.StaticIP.String()
	}
	if r.Network == "" && !sp.Bridge.Internal && !sp.Bridge.Resolve && !sp.StaticIP.IsValid() && !sp.Bridge.Gateway.IsValid() {
		r.Version = 2 // nothing of version 3: older kilns read it
	}
	for _, m := range sp.Mounts {
		r.Spec.Mounts = append(r.Spec.Mounts, recordMount{Type: enumName(mountNames, m.Type), Source: m.Source,
			Target: m.Target, ReadOnly: m.ReadOnly, Options: m.Options})
	}
	r.Healthcheck, r.CreateCmd, r.CreateDir = healthRecord(cfg.Healthcheck), cfg.CreateCommand, cfg.CreateDir
	for _, p := range sp.Ports {
		rp := recordPort{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol}
		if p.HostIP.IsValid() {
			rp.HostIP = p.HostIP.String()
		}
		r.Spec.Ports = append(r.Spec.Ports, rp)
	}
	return r
}

// config is the record in memory; it fails on values this kiln does not know.
func (r record) config() (Config, error) {
	cfg := Config{ID: r.ID, Name: r.Name, Image: r.Image, Args: r.Args, Command: r.Command, Created: r.Created, Restart: r.Restart,
		Network: r.Network, NetworkAliases: r.Aliases,
		StopSignal: r.StopSignal, AutoRemove: r.AutoRemove, OpenStdin: r.OpenStdin, StopTimeout: r.StopTimeout, Exposed: r.Exposed,
		Healthcheck: r.Healthcheck.config(), CreateCommand: r.CreateCmd, CreateDir: r.CreateDir}
	if len(r.Labels) > 0 {
		cfg.Labels = r.Labels
	}
	var err error
	if r.ImageDigest != "" {
		if cfg.ImageDigest, err = v1.NewHash(r.ImageDigest); err != nil {
			return cfg, fmt.Errorf("image digest: %w", err)
		}
	}
	rs := r.Spec
	sp := runtime.Spec{ID: r.ID, Lower: rs.Lower, Upper: rs.Upper, Work: rs.Work, Volatile: r.AutoRemove, BundleDir: rs.BundleDir,
		Args: r.Args, Env: rs.Env, Cwd: rs.Cwd, User: rs.User, Hostname: rs.Hostname, ReadOnlyRootfs: rs.ReadOnlyRootfs,
		Resources: runtime.Resources{Memory: rs.Resources.Memory, CPUs: rs.Resources.CPUs, PidsLimit: rs.Resources.PidsLimit,
			MemorySwap: rs.Resources.MemorySwap, CpusetCPUs: rs.Resources.CpusetCPUs, CpusetMems: rs.Resources.CpusetMems,
			CPUShares: rs.Resources.CPUShares},
		CapAdd: rs.CapAdd, CapDrop: rs.CapDrop, NewPrivileges: rs.NewPrivileges, SeccompProfile: rs.SeccompProfile,
		Terminal: rs.Terminal, StopGrace: time.Duration(rs.StopGraceNS)}
	if sp.HostAccess, err = rs.HostAccess.hostAccess(); err != nil {
		return cfg, err
	}
	if sp.Network, err = enumValue[runtime.NetworkMode](networkNames, rs.Network, "network"); err != nil {
		return cfg, err
	}
	if sp.Seccomp, err = enumValue[runtime.SeccompMode](seccompNames, rs.Seccomp, "seccomp mode"); err != nil {
		return cfg, err
	}
	sp.Bridge.Name = rs.BridgeName
	if rs.BridgeSubnet != "" {
		if sp.Bridge.Subnet, err = netip.ParsePrefix(rs.BridgeSubnet); err != nil {
			return cfg, fmt.Errorf("bridge subnet: %w", err)
		}
	}
	sp.Bridge.Internal, sp.Bridge.Resolve, sp.DNSNames = rs.BridgeInternal, rs.BridgeResolve, rs.DNSNames
	if rs.BridgeGateway != "" {
		if sp.Bridge.Gateway, err = netip.ParseAddr(rs.BridgeGateway); err != nil {
			return cfg, fmt.Errorf("bridge gateway: %w", err)
		}
	}
	if rs.StaticIP != "" {
		if sp.StaticIP, err = netip.ParseAddr(rs.StaticIP); err != nil {
			return cfg, fmt.Errorf("container address: %w", err)
		}
	}
	for _, m := range rs.Mounts {
		t, err := enumValue[runtime.MountType](mountNames, m.Type, "mount type")
		if err != nil {
			return cfg, err
		}
		sp.Mounts = append(sp.Mounts, runtime.Mount{Type: t, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Options: m.Options})
	}
	for _, p := range rs.Ports {
		mp := runtime.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol}
		if p.HostIP != "" {
			if mp.HostIP, err = netip.ParseAddr(p.HostIP); err != nil {
				return cfg, fmt.Errorf("port host IP: %w", err)
			}
		}
		sp.Ports = append(sp.Ports, mp)
	}
	cfg.Spec = sp
	return cfg, nil
}

// legacyRecord is the first release's container.json (version 0): Config with a runtime.Spec
// serialized under Go's field names, pinned here so that the runtime can change.
type legacyRecord struct {
	ID         string        `json:"Id"`
	Name       string        `json:"Name"`
	Image      string        `json:"Image"`
	Args       []string      `json:"Args"`
	Created    time.Time     `json:"Created"`
	Restart    RestartPolicy `json:"RestartPolicy"`
	StopSignal string        `json:"StopSignal"`
	AutoRemove bool          `json:"AutoRemove"`
	Spec       struct {
		Lower, Env, CapAdd, CapDrop                                           []string
		Upper, Work, BundleDir, StateDir, Cwd, User, Hostname, SeccompProfile string
		Runtime                                                               string
		ReadOnlyRootfs, NewPrivileges, Terminal                               bool
		Network, Seccomp                                                      int
		StopGrace                                                             int64
		Mounts                                                                []struct {
			Type           int
			Source, Target string
			ReadOnly       bool
			Options        []string
		}
		Ports []struct {
			HostIP                  string
			HostPort, ContainerPort uint16
			Protocol                string
		}
		Bridge    struct{ Name, Subnet string }
		Resources struct {
			Memory    int64
			CPUs      float64
			PidsLimit int64
		}
	} `json:"Spec"`
}

// migrate turns the first release's record into the current one.
func (l legacyRecord) migrate() record {
	s := l.Spec
	r := record{Version: 2, ID: l.ID, Name: l.Name, Image: l.Image, Args: l.Args, Created: l.Created,
		Restart: l.Restart, StopSignal: l.StopSignal, AutoRemove: l.AutoRemove}
	r.Spec = recordSpec{Lower: s.Lower, Upper: s.Upper, Work: s.Work, BundleDir: s.BundleDir,
		Env: s.Env, Cwd: s.Cwd, User: s.User, Hostname: s.Hostname, ReadOnlyRootfs: s.ReadOnlyRootfs,
		Network: enumName(networkNames, runtime.NetworkMode(s.Network)), Seccomp: enumName(seccompNames, runtime.SeccompMode(s.Seccomp)),
		BridgeName: s.Bridge.Name, BridgeSubnet: s.Bridge.Subnet, CapAdd: s.CapAdd, CapDrop: s.CapDrop,
		NewPrivileges: s.NewPrivileges, SeccompProfile: s.SeccompProfile, Terminal: s.Terminal,
		StopGraceNS: s.StopGrace, Resources: recordResources{Memory: s.Resources.Memory, CPUs: s.Resources.CPUs, PidsLimit: s.Resources.PidsLimit}}
	for _, m := range s.Mounts {
		r.Spec.Mounts = append(r.Spec.Mounts, recordMount{Type: enumName(mountNames, runtime.MountType(m.Type)), Source: m.Source,
			Target: m.Target, ReadOnly: m.ReadOnly, Options: m.Options})
	}
	for _, p := range s.Ports {
		r.Spec.Ports = append(r.Spec.Ports, recordPort{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol})
	}
	return r
}

// decodeRecord reads container.json of either format; legacy says it was the old one.
func decodeRecord(data []byte) (cfg Config, legacy bool, err error) {
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return cfg, false, err
	}
	var r record
	switch {
	case head.Version == nil:
		var l legacyRecord
		if err := json.Unmarshal(data, &l); err != nil {
			return cfg, true, fmt.Errorf("first-release format: %w", err)
		}
		r, legacy = l.migrate(), true
	case *head.Version >= 1 && *head.Version <= recordVersion:
		if err := json.Unmarshal(data, &r); err != nil {
			return cfg, false, err
		}
	default:
		return cfg, false, fmt.Errorf("format version %d, this kiln reads up to %d: upgrade kiln", *head.Version, recordVersion)
	}
	if r.ID == "" {
		return cfg, legacy, fmt.Errorf("no container id")
	}
	cfg, err = r.config()
	return cfg, legacy, err
}

func toRecordHostAccess(h runtime.HostAccess) recordHostAccess {
	r := recordHostAccess{Init: h.Init, Privileged: h.Privileged, HostPID: h.HostPID, HostIPC: h.HostIPC, GroupAdd: h.GroupAdd,
		Sysctls: h.Sysctls, ShmSize: h.ShmSize, DNSSearch: h.DNS.Search, DNSOptions: h.DNS.Options}
	for _, d := range h.Devices {
		r.Devices = append(r.Devices, recordDevice{Host: d.Host, Container: d.Container, Permissions: d.Permissions})
	}
	for _, u := range h.Ulimits {
		r.Ulimits = append(r.Ulimits, u.String())
	}
	for _, e := range h.ExtraHosts {
		r.ExtraHosts = append(r.ExtraHosts, e.String())
	}
	for _, ip := range h.DNS.Servers {
		r.DNS = append(r.DNS, ip.String())
	}
	return r
}

// hostAccess reads the stored host access back through the flags' own parsers.
func (r recordHostAccess) hostAccess() (runtime.HostAccess, error) {
	h := runtime.HostAccess{Init: r.Init, Privileged: r.Privileged, HostPID: r.HostPID, HostIPC: r.HostIPC, GroupAdd: r.GroupAdd,
		ShmSize: r.ShmSize, DNS: runtime.DNS{Search: r.DNSSearch, Options: r.DNSOptions}}
	if len(r.Sysctls) > 0 {
		h.Sysctls = r.Sysctls
	}
	for _, d := range r.Devices {
		h.Devices = append(h.Devices, runtime.Device{Host: d.Host, Container: d.Container, Permissions: d.Permissions})
	}
	for _, v := range r.Ulimits {
		u, err := runtime.ParseUlimit(v)
		if err != nil {
			return h, err
		}
		h.Ulimits = append(h.Ulimits, u)
	}
	for _, v := range r.ExtraHosts {
		e, err := runtime.ParseAddHost(v)
		if err != nil {
			return h, err
		}
		h.ExtraHosts = append(h.ExtraHosts, e)
	}
	for _, v := range r.DNS {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return h, fmt.Errorf("dns server: %w", err)
		}
		h.DNS.Servers = append(h.DNS.Servers, ip)
	}
	return h, nil
}
