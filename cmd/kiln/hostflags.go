package main

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

// hostFlags are run's flags for host access, process tweaks, labels and stopping: docker's
// names and syntax, each parsed into the runtime spec or the container config.
type hostFlags struct {
	init, privileged, publishAll bool
	devices, ulimits, addHosts   []string
	dns, dnsSearch, dnsOptions   []string
	sysctls, groupAdd, expose    []string
	labels, labelFiles, attach   []string
	shmSize, pid, ipc            string
	cpusetCPUs, memorySwap       string
	cpusetMems                   string
	stopSignal, cidfile          string
	stopTimeout                  int
	cpuShares                    uint64

	// parsed by apply, used by config once the image is known
	labelMap map[string]string
	exposed  []string // --expose as "80/tcp"
}

func (h *hostFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&h.init, "init", false, "run tini ("+runtime.InitBinary+") as pid 1: it reaps zombies and forwards signals")
	f.BoolVar(&h.privileged, "privileged", false, "give the container every capability, no seccomp filter, all of /proc and /sys and the host's devices (root only)")
	f.StringArrayVar(&h.devices, "device", nil, "give the container a host device: HOST-PATH[:CONTAINER-PATH][:rwm] (root only)")
	f.StringArrayVar(&h.ulimits, "ulimit", nil, "set a resource limit: NAME=SOFT[:HARD], e.g. nofile=1024:2048 (-1 = unlimited)")
	f.StringArrayVar(&h.addHosts, "add-host", nil, "add an /etc/hosts line: NAME:IP (IP may be host-gateway, the host as the container reaches it)")
	f.StringArrayVar(&h.dns, "dns", nil, "name server for the container's resolv.conf (replaces the host's)")
	f.StringArrayVar(&h.dnsSearch, "dns-search", nil, "DNS search domain for resolv.conf (\".\" for none)")
	f.StringArrayVar(&h.dnsOptions, "dns-option", nil, "resolv.conf option, e.g. ndots:2")
	f.StringVar(&h.shmSize, "shm-size", "", "size of /dev/shm, e.g. 256m (default 64m)")
	f.StringVar(&h.pid, "pid", "", "PID namespace: host shares the host's (default: the container's own)")
	f.StringVar(&h.ipc, "ipc", "", "IPC namespace: host shares the host's and its /dev/shm, private (the default) its own")
	f.StringArrayVar(&h.sysctls, "sysctl", nil, "set a namespaced kernel parameter: NAME=VALUE (net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*)")
	f.StringArrayVar(&h.groupAdd, "group-add", nil, "add a supplementary group (name in the image's /etc/group, or id)")
	f.StringVar(&h.cpusetCPUs, "cpuset-cpus", "", "CPUs the container may use, e.g. 0-2,4")
	f.StringVar(&h.cpusetMems, "cpuset-mems", "", "memory nodes (NUMA) the container may allocate on, e.g. 0-1")
	f.Uint64VarP(&h.cpuShares, "cpu-shares", "c", 0, "relative CPU weight against other containers (default 1024)")
	f.StringVar(&h.memorySwap, "memory-swap", "", "memory plus swap limit, e.g. 1g, with --memory; -1 = unlimited swap (default: no swap)")
	f.StringArrayVar(&h.expose, "expose", nil, "expose a port or range: PORT[-PORT][/tcp|udp] (published by -P)")
	f.BoolVarP(&h.publishAll, "publish-all", "P", false, "publish every exposed port (the image's EXPOSE and --expose) on a random host port")
	f.StringArrayVarP(&h.labels, "label", "l", nil, "set a container label KEY=VALUE (shown by inspect, matched by ps --filter label=)")
	f.StringArrayVar(&h.labelFiles, "label-file", nil, "read labels from a file of KEY=VALUE lines")
	f.StringVar(&h.cidfile, "cidfile", "", "write the container id to this file (which must not exist)")
	f.StringVar(&h.stopSignal, "stop-signal", "", "signal kiln stop sends (default: the image's STOPSIGNAL, else SIGTERM)")
	f.IntVar(&h.stopTimeout, "stop-timeout", -1, "seconds kiln stop waits before SIGKILL when not given -t")
	f.StringArrayVarP(&h.attach, "attach", "a", nil, "attach only these streams: stdin, stdout or stderr (default stdout and stderr)")
	f.Lookup("stop-timeout").DefValue = "10" // -1 is "unset": kiln stop's own 10 s
}

// apply parses the flags into sp and checks the container-level ones, before any work; every
// error names its flag.
func (h *hostFlags) apply(sp *runtime.Spec) error {
	if err := h.parseContainerFlags(); err != nil {
		return err
	}
	a := &sp.HostAccess
	a.Init, a.Privileged, a.GroupAdd = h.init, h.privileged, h.groupAdd
	switch h.pid {
	case "":
	case "host":
		a.HostPID = true
	default:
		return fmt.Errorf("invalid --pid %q: use host (sharing another container's namespace is not supported)", h.pid)
	}
	switch h.ipc {
	case "", "private", "shareable":
	case "host":
		a.HostIPC = true
	default:
		return fmt.Errorf("invalid --ipc %q: use host or private (sharing another container's namespace is not supported)", h.ipc)
	}
	for _, v := range h.devices {
		d, err := runtime.ParseDevice(v)
		if err != nil {
			return err
		}
		a.Devices = append(a.Devices, d)
	}
	for _, v := range h.ulimits {
		u, err := runtime.ParseUlimit(v)
		if err != nil {
			return err
		}
		a.Ulimits = append(a.Ulimits, u)
	}
	for _, v := range h.addHosts {
		e, err := runtime.ParseAddHost(v)
		if err != nil {
			return err
		}
		a.ExtraHosts = append(a.ExtraHosts, e)
	}
	for _, v := range h.dns {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return fmt.Errorf("invalid --dns %q: not an IP address", v)
		}
		a.DNS.Servers = append(a.DNS.Servers, ip)
	}
	for _, v := range h.dnsSearch {
		if v == "" || strings.ContainsAny(v, " \t") {
			return fmt.Errorf("invalid --dns-search %q: give a domain name (or . for none)", v)
		}
	}
	for _, v := range h.dnsOptions {
		if v == "" || strings.ContainsAny(v, " \t") {
			return fmt.Errorf("invalid --dns-option %q: give one option such as ndots:2", v)
		}
	}
	a.DNS.Search, a.DNS.Options = h.dnsSearch, h.dnsOptions
	var err error
	if h.shmSize != "" {
		if a.ShmSize, err = runtime.ParseSize("--shm-size", h.shmSize); err != nil {
			return err
		}
	}
	for _, v := range h.sysctls {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("invalid --sysctl %q: use NAME=VALUE", v)
		}
		if a.Sysctls == nil {
			a.Sysctls = map[string]string{}
		}
		a.Sysctls[k] = val
	}
	for k := range a.Sysctls {
		if err := runtime.CheckSysctl(k, *sp); err != nil {
			return err
		}
	}
	sp.Resources.CpusetCPUs, sp.Resources.CpusetMems, sp.Resources.CPUShares = h.cpusetCPUs, h.cpusetMems, h.cpuShares
	switch h.memorySwap {
	case "":
	case "-1":
		sp.Resources.MemorySwap = -1
	default:
		if sp.Resources.MemorySwap, err = parseMemory("--memory-swap", h.memorySwap); err != nil {
			return err
		}
	}
	return nil
}

// parseContainerFlags checks labels, --expose and the stop flags.
func (h *hostFlags) parseContainerFlags() error {
	lines, err := readLabelFiles(h.labelFiles)
	if err != nil {
		return err
	}
	h.labelMap = map[string]string{}
	for _, v := range append(lines, h.labels...) {
		k, val, _ := strings.Cut(v, "=") // docker: a bare KEY is an empty label
		if k == "" {
			return fmt.Errorf("invalid --label %q: use KEY=VALUE", v)
		}
		h.labelMap[k] = val
	}
	for _, v := range h.expose {
		ports, err := parseExpose(v)
		if err != nil {
			return err
		}
		h.exposed = append(h.exposed, ports...)
	}
	if h.stopSignal != "" {
		if _, err := container.ParseSignal(h.stopSignal); err != nil {
			return fmt.Errorf("invalid --stop-signal: %w", err)
		}
	}
	if h.stopTimeout < -1 {
		return fmt.Errorf("invalid --stop-timeout %d: give seconds, 0 or more", h.stopTimeout)
	}
	return nil
}

// config sets the container-level flags: labels (over the image's) and stopping.
func (h *hostFlags) config(cfg *container.Config, imageLabels map[string]string) {
	labels := maps.Clone(imageLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, h.labelMap)
	if len(labels) > 0 {
		cfg.Labels = labels
	}
	if h.stopSignal != "" {
		cfg.StopSignal = h.stopSignal
	}
	if h.stopTimeout >= 0 {
		t := h.stopTimeout
		cfg.StopTimeout = &t
	}
}

// readLabelFiles reads --label-file lines (KEY=VALUE, # comments), as docker.
func readLabelFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("--label-file: %w", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--label-file %s: %w", p, err)
		}
	}
	return out, nil
}

// attachSet is the -a/--attach choice; none given is docker's stdout and stderr (and stdin with -i).
type attachSet struct{ stdin, stdout, stderr bool }

func (h *hostFlags) attachSet(interactive bool) (attachSet, error) {
	if len(h.attach) == 0 {
		return attachSet{stdin: interactive, stdout: true, stderr: true}, nil
	}
	var a attachSet
	for _, v := range h.attach {
		switch strings.ToLower(v) {
		case "stdin":
			a.stdin = true
		case "stdout":
			a.stdout = true
		case "stderr":
			a.stderr = true
		default:
			return a, fmt.Errorf("invalid -a %q: use stdin, stdout or stderr", v)
		}
	}
	return a, nil
}

// writeCidfile creates the --cidfile, failing if it exists, as docker (a stale file from an
// earlier run must not be mistaken for this container's).
func writeCidfile(path, id string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("--cidfile %s already exists: remove it or pick another file", path)
	}
	if err != nil {
		return fmt.Errorf("--cidfile: %w", err)
	}
	if _, err := f.WriteString(id); err != nil {
		f.Close()
		return fmt.Errorf("--cidfile %s: %w", path, err)
	}
	return f.Close()
}

// checkCidfile fails before any work when --cidfile exists.
func checkCidfile(path string) error {
	if path == "" {
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("--cidfile %s already exists: remove it or pick another file", path)
	}
	return nil
}
