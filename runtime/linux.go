package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cpuPeriod is the CFS period docker uses for --cpus, in microseconds.
const cpuPeriod = 100000

// linuxConfig sets namespaces, masked paths, devices, sysctls and cgroup limits.
func linuxConfig(s Spec) (*specs.Linux, error) {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.UTSNamespace}, {Type: specs.CgroupNamespace}}
	if !s.HostPID {
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	if !s.HostIPC {
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	switch s.Network {
	case NetworkHost:
	case NetworkBridge, NetworkSlirp: // pinned and wired up by Run before the runtime starts
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netnsPath(s.stateDir, s.ID)})
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	l := &specs.Linux{Namespaces: ns, MaskedPaths: maskedPaths, ReadonlyPaths: readonlyPaths, Sysctl: s.Sysctls}
	if s.Privileged { // docker's --privileged: the container sees every kernel interface
		l.MaskedPaths, l.ReadonlyPaths = nil, nil
	}
	if s.rootless { // checkRootless refused devices, and limits the user's cgroups cannot have
		if s.cgroupParent != "" {
			// No device rules: a user namespace cannot load cgroup v2's device filter (eBPF), and
			// a rootless container has no host devices to guard.
			l.CgroupsPath, l.Resources = s.cgroupParent+"/"+s.ID, resources(s.Resources)
			l.Resources.Devices = nil
		}
		return l, nil
	}
	devs, rules, err := specDevices(s)
	if err != nil {
		return nil, err
	}
	l.CgroupsPath, l.Resources, l.Devices = cgroupsPath(s.ID), resources(s.Resources), devs
	l.Resources.Devices = append(l.Resources.Devices, rules...)
	return l, nil
}

// resources converts limits and adds docker's default device cgroup rules.
func resources(r Resources) *specs.LinuxResources {
	out := &specs.LinuxResources{Devices: deviceRules()}
	if r.Memory > 0 {
		mem := r.Memory
		swap := mem
		if r.MemorySwap != 0 {
			swap = r.MemorySwap // -1 is unlimited in the OCI spec too
		}
		out.Memory = &specs.LinuxMemory{Limit: &mem, Swap: &swap}
	}
	if r.CPUs > 0 {
		quota, period := int64(r.CPUs*cpuPeriod), uint64(cpuPeriod)
		out.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if r.CpusetCPUs != "" || r.CpusetMems != "" || r.CPUShares > 0 {
		if out.CPU == nil {
			out.CPU = &specs.LinuxCPU{}
		}
		out.CPU.Cpus, out.CPU.Mems = r.CpusetCPUs, r.CpusetMems
		if r.CPUShares > 0 {
			shares := r.CPUShares
			out.CPU.Shares = &shares
		}
	}
	if r.PidsLimit > 0 {
		limit := r.PidsLimit
		out.Pids = &specs.LinuxPids{Limit: &limit}
	}
	return out
}

// deviceRules denies every device node except docker's defaults (null, zero, full, random,
// urandom, tty, console, ptmx and ptys); mknod of anything stays allowed as docker does.
func deviceRules() []specs.LinuxDeviceCgroup {
	dev := func(major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"}
	}
	wild := int64(-1)
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: &wild, Minor: &wild, Access: "m"},
		{Allow: true, Type: "b", Major: &wild, Minor: &wild, Access: "m"},
		dev(1, 3), dev(1, 5), dev(1, 7), dev(1, 8), dev(1, 9), dev(5, 0), dev(5, 1), dev(5, 2),
		{Allow: true, Type: "c", Major: ptr(int64(136)), Minor: &wild, Access: "rwm"},
	}
}

func ptr[T any](v T) *T { return &v }
