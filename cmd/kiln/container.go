package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

// openContainers opens the container store of --root.
func (g *globalOptions) openContainers() (*container.Store, error) {
	return container.Open(g.storeRoot())
}

// containersAndRuntime opens the container store and the runtime that verbs changing
// containers and networks need together.
func (g *globalOptions) containersAndRuntime(cmd *cobra.Command) (*container.Store, *runtime.Runtime, error) {
	cs, err := g.openContainers()
	if err != nil {
		return nil, nil, err
	}
	rt, err := g.containerRuntime(cmd)
	return cs, rt, err
}

// eachContainer applies fn to every named container, printing the name given as docker does,
// and reports the failures together after trying them all.
func eachContainer(cmd *cobra.Command, g *globalOptions, refs []string, fn func(*container.Store, *runtime.Runtime, *container.Container) error) error {
	cs, rt, err := g.containersAndRuntime(cmd)
	if err != nil {
		return err
	}
	return eachRef(cmd, refs, func(ref string) error {
		c, err := cs.Get(ref)
		if err == nil {
			err = fn(cs, rt, c)
		}
		return err
	})
}

// eachRef applies fn to every ref, printing each that succeeds as docker does, and exits 1
// after trying them all when any failed (each failure on stderr).
func eachRef(cmd *cobra.Command, refs []string, fn func(ref string) error) error {
	var failed error
	for _, ref := range refs {
		if err := fn(ref); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "kiln: %v\n", err)
			failed = exitCodeError{code: 1}
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), ref)
	}
	return failed
}

func newContainerPruneCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "prune [-f]",
		Short: "Remove all stopped containers",
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			rt, err := g.containerRuntime(cmd)
			if err != nil {
				return err
			}
			ids, err := cs.Prune(cmd.Context(), rt)
			printDeleted(cmd.OutOrStdout(), "Deleted Containers:", ids, false)
			return err
		},
	}
	c.Flags().BoolP("force", "f", false, "do not prompt for confirmation (kiln never prompts)")
	return c
}

// containerInspect is `kiln container inspect`'s view, shaped like docker's.
type containerInspect struct {
	ID           string                 `json:"Id"`
	Name         string                 `json:"Name"`
	Created      time.Time              `json:"Created"`
	Path         string                 `json:"Path"`
	Args         []string               `json:"Args"`
	Image        string                 `json:"Image"`
	State        inspectState           `json:"State"`
	RestartCount int                    `json:"RestartCount"`
	LogPath      string                 `json:"LogPath"`
	HostConfig   inspectHostConfig      `json:"HostConfig"`
	Mounts       []inspectMount         `json:"Mounts"`
	Config       inspectContainerConfig `json:"Config"`
}

type inspectState struct {
	Status     string            `json:"Status"`
	Running    bool              `json:"Running"`
	Paused     bool              `json:"Paused"`
	Restarting bool              `json:"Restarting"`
	Dead       bool              `json:"Dead"` // the monitor died: the container's fate is unknown
	Pid        int               `json:"Pid"`
	MonitorPid int               `json:"MonitorPid"`
	ExitCode   int               `json:"ExitCode"`
	Error      string            `json:"Error"`
	StartedAt  time.Time         `json:"StartedAt"`
	FinishedAt time.Time         `json:"FinishedAt"`
	Health     *container.Health `json:"Health,omitempty"`
}

type inspectHostConfig struct {
	RestartPolicy  container.RestartPolicy `json:"RestartPolicy"`
	AutoRemove     bool                    `json:"AutoRemove"`
	ReadonlyRootfs bool                    `json:"ReadonlyRootfs"`
	NetworkMode    string                  `json:"NetworkMode"`
	Memory         int64                   `json:"Memory"`
	NanoCpus       int64                   `json:"NanoCpus"`
	PidsLimit      int64                   `json:"PidsLimit"`
	CapAdd         []string                `json:"CapAdd"`
	CapDrop        []string                `json:"CapDrop"`
	Privileged     bool                    `json:"Privileged"`
	Init           bool                    `json:"Init"`
	PidMode        string                  `json:"PidMode"`
	IpcMode        string                  `json:"IpcMode"`
	Devices        []inspectDevice         `json:"Devices"`
	Ulimits        []inspectUlimit         `json:"Ulimits"`
	ExtraHosts     []string                `json:"ExtraHosts"`
	DNS            []string                `json:"Dns"`
	DNSSearch      []string                `json:"DnsSearch"`
	DNSOptions     []string                `json:"DnsOptions"`
	ShmSize        int64                   `json:"ShmSize"`
	Sysctls        map[string]string       `json:"Sysctls,omitempty"`
	GroupAdd       []string                `json:"GroupAdd"`
	CpusetCpus     string                  `json:"CpusetCpus"`
	CpusetMems     string                  `json:"CpusetMems"`
	CPUShares      uint64                  `json:"CpuShares"`
	MemorySwap     int64                   `json:"MemorySwap"`
}

type inspectDevice struct {
	PathOnHost        string `json:"PathOnHost"`
	PathInContainer   string `json:"PathInContainer"`
	CgroupPermissions string `json:"CgroupPermissions"`
}

// inspectUlimit is docker's: -1 for unlimited.
type inspectUlimit struct {
	Name string `json:"Name"`
	Hard int64  `json:"Hard"`
	Soft int64  `json:"Soft"`
}

type inspectMount struct {
	Type        string `json:"Type"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	RW          bool   `json:"RW"`
	Name        string `json:"Name,omitempty"`   // a volume's
	Driver      string `json:"Driver,omitempty"` // a volume's: local
}

type inspectContainerConfig struct {
	Hostname     string              `json:"Hostname"`
	User         string              `json:"User"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	WorkingDir   string              `json:"WorkingDir"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	StopTimeout  *int                `json:"StopTimeout,omitempty"`
	Labels       map[string]string   `json:"Labels"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Healthcheck  *inspectHealthcheck `json:"Healthcheck,omitempty"`
}

func newContainerInspectCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect CONTAINER [CONTAINER...]",
		Short: "Show details of containers as JSON",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			out := []containerInspect{}
			for _, ref := range args {
				c, err := cs.Get(ref)
				if err != nil {
					return err
				}
				st, err := c.State()
				if err != nil {
					return err
				}
				out = append(out, inspectContainer(c, st))
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "    ")
			return enc.Encode(out)
		},
	}
}

// inspectContainer assembles the docker-shaped record of one container.
func inspectContainer(c *container.Container, st container.State) containerInspect {
	sp := c.Spec
	status := st.DockerStatus()
	ci := containerInspect{ID: c.ID, Name: "/" + c.Name, Created: c.Created, Args: c.Args[1:], Path: c.Args[0],
		Image: c.Image, RestartCount: st.RestartCount, LogPath: c.LogPath(), Mounts: []inspectMount{},
		State: inspectState{Status: status, Running: st.Running() && st.Status == container.StatusRunning,
			Paused: st.Running() && st.Paused, Restarting: st.Running() && st.Status == container.StatusRestarting, Dead: st.MonitorLost, Pid: st.Pid,
			MonitorPid: st.MonitorPid, ExitCode: st.ExitCode, Error: st.Error, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt},
		HostConfig: inspectHostConfig{RestartPolicy: c.Restart, AutoRemove: c.AutoRemove, ReadonlyRootfs: sp.ReadOnlyRootfs,
			NetworkMode: networkName(c.Config), Memory: sp.Resources.Memory, NanoCpus: int64(sp.Resources.CPUs * 1e9),
			PidsLimit: sp.Resources.PidsLimit, CapAdd: sp.CapAdd, CapDrop: sp.CapDrop},
		Config: inspectContainerConfig{Hostname: sp.Hostname, User: sp.User, Env: sp.Env, Cmd: c.Args, WorkingDir: sp.Cwd,
			StopSignal: c.StopSignal, StopTimeout: c.StopTimeout, Labels: c.Labels},
	}
	inspectHostAccess(&ci.HostConfig, sp)
	for _, p := range c.Exposed {
		if ci.Config.ExposedPorts == nil {
			ci.Config.ExposedPorts = map[string]struct{}{}
		}
		ci.Config.ExposedPorts[p] = struct{}{}
	}
	if st.MonitorLost {
		ci.State.ExitCode = -1
	}
	ci.State.Health, ci.Config.Healthcheck = st.Health, inspectHealth(c.Healthcheck)
	for _, m := range sp.Mounts {
		typ := "bind"
		if m.Type == runtime.Tmpfs {
			typ = "tmpfs"
		}
		im := inspectMount{Type: typ, Source: m.Source, Destination: m.Target, RW: !m.ReadOnly}
		if name, ok := c.VolumeName(m); ok {
			im.Type, im.Name, im.Driver = "volume", name, "local"
		}
		ci.Mounts = append(ci.Mounts, im)
	}
	return ci
}

// networkName is docker's HostConfig.NetworkMode: a user-defined network's name, else the mode's.
func networkName(c container.Config) string {
	switch {
	case c.Network != "":
		return c.Network
	case c.Spec.Network == runtime.NetworkHost:
		return "host"
	case c.Spec.Network == runtime.NetworkSlirp:
		return "slirp4netns"
	case c.Spec.Network == runtime.NetworkBridge:
		return "bridge"
	}
	return "none"
}

// inspectHostAccess fills docker's HostConfig fields of the run flags for host access.
func inspectHostAccess(hc *inspectHostConfig, sp runtime.Spec) {
	a := sp.HostAccess
	hc.Privileged, hc.Init, hc.ShmSize, hc.Sysctls, hc.GroupAdd = a.Privileged, a.Init, a.ShmSize, a.Sysctls, a.GroupAdd
	hc.CpusetCpus, hc.MemorySwap = sp.Resources.CpusetCPUs, sp.Resources.MemorySwap
	hc.CpusetMems, hc.CPUShares = sp.Resources.CpusetMems, sp.Resources.CPUShares
	hc.DNSSearch, hc.DNSOptions = a.DNS.Search, a.DNS.Options
	if hc.ShmSize == 0 {
		hc.ShmSize = 64 << 20
	}
	if a.HostPID {
		hc.PidMode = "host"
	}
	hc.IpcMode = "private"
	if a.HostIPC {
		hc.IpcMode = "host"
	}
	for _, d := range a.Devices {
		ctr, perms := d.Container, d.Permissions
		if ctr == "" {
			ctr = d.Host
		}
		if perms == "" {
			perms = "rwm"
		}
		hc.Devices = append(hc.Devices, inspectDevice{PathOnHost: d.Host, PathInContainer: ctr, CgroupPermissions: perms})
	}
	lim := func(v uint64) int64 {
		if v == runtime.RlimitInfinity {
			return -1
		}
		return int64(v)
	}
	for _, u := range a.Ulimits {
		hc.Ulimits = append(hc.Ulimits, inspectUlimit{Name: u.Name, Hard: lim(u.Hard), Soft: lim(u.Soft)})
	}
	for _, h := range a.ExtraHosts {
		hc.ExtraHosts = append(hc.ExtraHosts, h.String())
	}
	for _, ip := range a.DNS.Servers {
		hc.DNS = append(hc.DNS, ip.String())
	}
}
