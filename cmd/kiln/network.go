package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

// networkInspect is `kiln network inspect`'s document, docker's fields.
type networkInspect struct {
	Name       string                     `json:"Name"`
	ID         string                     `json:"Id"`
	Created    string                     `json:"Created"`
	Scope      string                     `json:"Scope"`
	Driver     string                     `json:"Driver"`
	EnableIPv6 bool                       `json:"EnableIPv6"`
	IPAM       networkIPAM                `json:"IPAM"`
	Internal   bool                       `json:"Internal"`
	Attachable bool                       `json:"Attachable"`
	Ingress    bool                       `json:"Ingress"`
	Containers map[string]networkEndpoint `json:"Containers"`
	Options    map[string]string          `json:"Options"`
	Labels     map[string]string          `json:"Labels"`
}

type networkIPAM struct {
	Driver  string              `json:"Driver"`
	Options map[string]string   `json:"Options"`
	Config  []map[string]string `json:"Config"`
}

type networkEndpoint struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

// networkRow is one network as `kiln network ls` shows it; the JSON names are docker's.
type networkRow struct {
	ID        string `json:"ID"`
	Name      string `json:"Name"`
	Driver    string `json:"Driver"`
	Scope     string `json:"Scope"`
	IPv6      string `json:"IPv6"`
	Internal  string `json:"Internal"`
	Labels    string `json:"Labels"`
	CreatedAt string `json:"CreatedAt"`
}

// shownNetwork is a built-in or user-defined network, as ls and inspect see it.
type shownNetwork struct {
	container.Network
	driver  string
	builtin bool
}

func newNetworkCmd(g *globalOptions) *cobra.Command {
	return group("network", "Manage networks",
		newNetworkCreateCmd(g), newNetworkLsCmd(g), newNetworkInspectCmd(g), newNetworkRmCmd(g), newNetworkPruneCmd(g),
		networkMissingCmd("connect"), networkMissingCmd("disconnect"))
}

// networkMissingCmd is docker's connect or disconnect, which kiln has not: a container's network
// is fixed when it is made.
func networkMissingCmd(verb string) *cobra.Command {
	return &cobra.Command{
		Use:                verb + " NETWORK CONTAINER",
		Short:              "Not in kiln: a container joins one network, when it is created",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("\"network %s\" is a docker command kiln does not have; use kiln run --network NETWORK "+
				"(a kiln container is on one network, chosen when it is created: kiln rm it and run it again to change)", verb)}
		},
	}
}

func newNetworkCreateCmd(g *globalOptions) *cobra.Command {
	var subnet, gateway, driver string
	var labels []string
	var o container.NetworkOptions
	c := &cobra.Command{
		Use:   "create [--subnet CIDR] [--gateway IP] [--internal] [--label KEY=VALUE] NETWORK",
		Short: "Create a network",
		Long: "Create a user-defined bridge network and print its id. Its containers (kiln run --network NETWORK)\n" +
			"get a bridge of their own (kiln-<id>), addresses from its subnet (a free /24 from 10.89.1.0 up unless\n" +
			"--subnet), outbound NAT unless --internal, and find each other by name, --network-alias and short id\n" +
			"through their /etc/hosts, which kiln keeps up to date (no DNS server). Networks cannot reach each other.",
		Example: "  kiln network create appnet\n  kiln network create --subnet 10.90.0.0/24 --gateway 10.90.0.254 --internal backend",
		Args:    argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if driver != "bridge" {
				return usageError{fmt.Errorf("invalid --driver %q: kiln has the bridge driver only", driver)}
			}
			var err error
			if o.Labels, err = parseLabels(labels); err != nil {
				return err
			}
			if subnet != "" {
				if o.Subnet, err = netip.ParsePrefix(subnet); err != nil {
					return usageError{fmt.Errorf("invalid --subnet %q: use CIDR notation, e.g. 10.90.0.0/24", subnet)}
				}
			}
			if gateway != "" {
				if o.Gateway, err = netip.ParseAddr(gateway); err != nil {
					return usageError{fmt.Errorf("invalid --gateway %q: use an IPv4 address", gateway)}
				}
			}
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			n, err := cs.CreateNetwork(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&subnet, "subnet", "", "subnet in CIDR form (default: a free /24 from 10.89.1.0/24 up)")
	f.StringVar(&gateway, "gateway", "", "the bridge's address (default: the subnet's first)")
	f.BoolVar(&o.Internal, "internal", false, "no NAT and no route out: the containers reach only each other")
	f.StringArrayVar(&labels, "label", nil, "set a label KEY=VALUE")
	f.StringVarP(&driver, "driver", "d", "bridge", "network driver (bridge only)")
	return c
}

// allNetworks is the built-in networks, then the user-defined ones by name, as docker lists them.
func allNetworks(cs *container.Store) ([]shownNetwork, error) {
	user, err := cs.Networks()
	if err != nil {
		return nil, err
	}
	var out []shownNetwork
	for _, name := range container.BuiltinNetworks {
		n := shownNetwork{Network: container.Network{ID: container.BuiltinNetworkID(name), Name: name}, driver: name, builtin: true}
		switch name {
		case "bridge":
			n.Subnet = runtime.DefaultBridge.Subnet
			n.Gateway = runtime.DefaultBridge.Subnet.Addr().Next()
		case "none":
			n.driver = "null"
		}
		out = append(out, n)
	}
	for _, n := range user {
		out = append(out, shownNetwork{Network: n, driver: "bridge"})
	}
	return out, nil
}

func newNetworkLsCmd(g *globalOptions) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	var filterFlags []string
	c := &cobra.Command{
		Use:     "ls [-q] [--filter KEY=VALUE] [--format FORMAT]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Long:    "List the built-in networks (bridge, host, none) and the user-defined ones.",
		Args:    argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseFilters(filterFlags, "name", "id", "label", "driver", "scope", "type", "dangling")
			if err != nil {
				return err
			}
			rf, err := parseFormat(format, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}")
			if err != nil {
				return err
			}
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			all, err := allNetworks(cs)
			if err != nil {
				return err
			}
			users, err := cs.NetworkUsers()
			if err != nil {
				return err
			}
			var rows []networkRow
			for _, n := range all {
				typ := map[bool]string{true: "builtin", false: "custom"}[n.builtin]
				dangling := !n.builtin && len(users[n.Name]) == 0
				if !f.match("name", func(s string) bool { return strings.Contains(n.Name, s) }) ||
					!f.match("id", func(s string) bool { return strings.HasPrefix(n.ID, s) }) ||
					!f.match("label", matchLabel(n.Labels)) ||
					!f.match("driver", func(s string) bool { return s == n.driver }) ||
					!f.match("scope", func(s string) bool { return s == "local" }) ||
					!f.match("type", func(s string) bool { return s == typ }) ||
					!f.match("dangling", func(s string) bool { return (s == "true" || s == "1") == dangling }) {
					continue
				}
				id := n.ID
				if !noTrunc {
					id = id[:12]
				}
				if quiet {
					fmt.Fprintln(cmd.OutOrStdout(), id)
					continue
				}
				rows = append(rows, networkRow{ID: id, Name: n.Name, Driver: n.driver, Scope: "local", IPv6: "false",
					Internal: fmt.Sprint(n.Internal), Labels: labelString(n.Labels), CreatedAt: networkCreated(n)})
			}
			if quiet {
				return nil
			}
			return writeRows(cmd.OutOrStdout(), rf, rows, map[string]string{"ID": "NETWORK ID"})
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only network ids")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "print whole ids")
	c.Flags().StringVar(&format, "format", "table", "table, json (one object a line), a Go template ({{.ID}} {{.Name}} {{.Driver}}\n"+
		"{{.Scope}} {{.Internal}} {{.Labels}} {{.CreatedAt}}) or table TEMPLATE")
	c.Flags().StringArrayVarP(&filterFlags, "filter", "f", nil, "filter: name=, id=, label=KEY[=VALUE], driver=, scope=local, type=custom|builtin, dangling=true|false")
	return c
}

// networkCreated is docker's creation time; the built-in networks have none of their own.
func networkCreated(n shownNetwork) string {
	return n.Created.Local().Format(time.RFC3339Nano)
}

func newNetworkInspectCmd(g *globalOptions) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [-f FORMAT] NETWORK [NETWORK...]",
		Short: "Show details of networks as JSON",
		Long:  "Show networks (by name, id or id prefix) as docker does, with their running containers' addresses.",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			all, err := allNetworks(cs)
			if err != nil {
				return err
			}
			rt, err := g.containerRuntime(cmd)
			if err != nil {
				return err
			}
			out := []json.RawMessage{}
			for _, ref := range args {
				n, err := findShown(cs, all, ref)
				if err != nil {
					return err
				}
				doc, err := inspectNetwork(cs, rt, n)
				if err != nil {
					return err
				}
				raw, err := json.Marshal(doc)
				if err != nil {
					return err
				}
				out = append(out, raw)
			}
			return writeInspect(cmd.OutOrStdout(), format, out)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template per network, e.g. {{json .IPAM.Config}}")
	return c
}

// findShown looks a network up by name, then id or id prefix (built-in ones too).
func findShown(cs *container.Store, all []shownNetwork, ref string) (shownNetwork, error) {
	for _, n := range all {
		if n.builtin && (n.Name == ref || strings.HasPrefix(n.ID, ref)) {
			return n, nil
		}
	}
	n, err := cs.Network(ref)
	return shownNetwork{Network: n, driver: "bridge"}, err
}

// inspectNetwork is n as docker's network inspect shows it; Containers are the running members.
func inspectNetwork(cs *container.Store, rt *runtime.Runtime, n shownNetwork) (networkInspect, error) {
	doc := networkInspect{Name: n.Name, ID: n.ID, Created: networkCreated(n), Scope: "local", Driver: n.driver,
		IPAM:     networkIPAM{Driver: "default", Options: map[string]string{}, Config: []map[string]string{}},
		Internal: n.Internal, Containers: map[string]networkEndpoint{}, Options: map[string]string{}, Labels: n.Labels}
	if doc.Labels == nil {
		doc.Labels = map[string]string{}
	}
	if n.Subnet.IsValid() {
		doc.IPAM.Config = append(doc.IPAM.Config, map[string]string{"Subnet": n.Subnet.String(), "Gateway": n.Gateway.String()})
	}
	ctrs, err := cs.List()
	if err != nil {
		return doc, err
	}
	byID := map[string]*container.Container{}
	for _, c := range ctrs {
		byID[c.ID] = c
	}
	endpoint := func(c *container.Container, e networkEndpoint) {
		h := sha256.Sum256([]byte(n.ID + c.ID))
		e.Name, e.EndpointID = c.Name, hex.EncodeToString(h[:])
		doc.Containers[c.ID] = e
	}
	if n.driver != "bridge" { // host and none: the running containers of that mode
		mode := map[string]runtime.NetworkMode{"host": runtime.NetworkHost, "null": runtime.NetworkNone}[n.driver]
		for _, c := range ctrs {
			if st, err := c.State(); err == nil && st.Running() && c.Spec.Network == mode {
				endpoint(c, networkEndpoint{})
			}
		}
		return doc, nil
	}
	b := runtime.DefaultBridge
	if !n.builtin {
		b = n.Bridge()
	}
	eps, err := rt.Endpoints(b)
	if err != nil {
		return doc, err
	}
	for _, e := range eps {
		if c, ok := byID[e.ID]; ok {
			endpoint(c, networkEndpoint{MacAddress: e.MAC.String(), IPv4Address: e.IP.String()})
		}
	}
	return doc, nil
}

func newNetworkRmCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove networks",
		Long: "Remove each user-defined network with its bridge and iptables rules. A network any container\n" +
			"(running or not) is on is refused: kiln rm the containers first.",
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, rt, err := g.containersAndRuntime(cmd)
			if err != nil {
				return err
			}
			return eachRef(cmd, args, func(ref string) error { return cs.RemoveNetwork(cmd.Context(), rt, ref) })
		},
	}
	return c
}

func newNetworkPruneCmd(g *globalOptions) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "prune [-f]",
		Short: "Remove unused networks",
		Long:  "Remove every user-defined network no container (running or not) is on.",
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force && !confirm(cmd, "This will remove all custom networks not used by at least one container.") {
				return nil
			}
			cs, rt, err := g.containersAndRuntime(cmd)
			if err != nil {
				return err
			}
			names, err := cs.PruneNetworks(cmd.Context(), rt)
			printDeleted(cmd.OutOrStdout(), "Deleted Networks:", names, false)
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return c
}

// userNetwork puts the container on user-defined network o.network, with its aliases and --ip;
// a built-in network takes neither.
func (o *runOptions) userNetwork(cs *container.Store, cfg *container.Config) error {
	if slices.Contains(container.BuiltinNetworks, o.network) || o.network == "" || o.network == "slirp4netns" {
		switch {
		case len(o.networkAliases) > 0:
			return errors.New("network-scoped aliases are supported only for containers in user defined networks")
		case o.ip != "":
			return errors.New("user specified IP address is supported on user defined networks only")
		}
		return nil
	}
	n, err := cs.Network(o.network)
	if err != nil {
		return err
	}
	cfg.Network, cfg.NetworkAliases = n.Name, o.networkAliases
	cfg.Spec.Network, cfg.Spec.Bridge = runtime.NetworkBridge, n.Bridge()
	if o.ip != "" {
		ip, err := netip.ParseAddr(o.ip)
		if err != nil || !ip.Is4() {
			return usageError{fmt.Errorf("invalid --ip %q: use an IPv4 address", o.ip)}
		}
		if !n.Subnet.Contains(ip) {
			return fmt.Errorf("invalid --ip %s: no configured subnet of network %s contains it (%s)", ip, n.Name, n.Subnet)
		}
		cfg.Spec.StaticIP = ip
	}
	return nil
}
