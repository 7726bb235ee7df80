package main

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

type psOptions struct {
	all, quiet, noTrunc bool
	format              string
}

// psRow is one container as `kiln ps` shows it; the JSON names are docker's.
type psRow struct {
	ID        string `json:"ID"`
	Image     string `json:"Image"`
	Command   string `json:"Command"`
	CreatedAt string `json:"CreatedAt"`
	Created   string `json:"RunningFor"`
	Status    string `json:"Status"`
	State     string `json:"State"`
	Ports     string `json:"Ports"`
	Names     string `json:"Names"`
}

func newPsCmd(g *globalOptions) *cobra.Command {
	o := &psOptions{}
	c := &cobra.Command{
		Use:   "ps [-a] [-q] [--format table|json]",
		Short: "List containers",
		Long:  "List running containers (-a: all of them), newest first. A container whose monitor was killed shows\n\"Exited (unknown)\"; remove it with kiln rm.",
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.format != "table" && o.format != "json" {
				return usageError{fmt.Errorf("invalid --format %q: use table or json", o.format)}
			}
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			list, err := cs.List()
			if err != nil {
				return err
			}
			return o.print(cmd, list)
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "show all containers, not only running ones")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only container ids")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "do not truncate ids and commands")
	f.StringVar(&o.format, "format", "table", "output format: table or json (one object per line)")
	return c
}

func (o *psOptions) print(cmd *cobra.Command, list []*container.Container) error {
	now := time.Now()
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	if !o.quiet && o.format == "table" {
		fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	}
	enc := json.NewEncoder(out)
	for _, c := range list {
		st, err := c.State()
		if err != nil {
			return err
		}
		if !o.all && !st.Running() {
			continue
		}
		r := o.row(c, st, now)
		switch {
		case o.quiet:
			fmt.Fprintln(out, r.ID)
		case o.format == "json":
			if err := enc.Encode(r); err != nil {
				return err
			}
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Image, r.Command, r.Created, r.Status, r.Ports, r.Names)
		}
	}
	return tw.Flush()
}

func (o *psOptions) row(c *container.Container, st container.State, now time.Time) psRow {
	id, command := c.ShortID(), strings.Join(c.Args, " ")
	if o.noTrunc {
		id = c.ID
	} else if len([]rune(command)) > 20 {
		command = string([]rune(command)[:19]) + "…"
	}
	state := string(st.Status)
	if st.MonitorLost {
		state = "dead"
	}
	return psRow{ID: id, Image: c.Image, Command: `"` + command + `"`, CreatedAt: c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		Created: units.HumanDuration(now.Sub(c.Created)) + " ago", Status: st.Describe(now), State: state,
		Ports: psPorts(c.Spec.Ports, st), Names: c.Name}
}

// psPorts is docker's PORTS column: "127.0.0.1:8080->80/tcp, 0.0.0.0:53->53/udp" for a
// running container's published ports (every address shows as 0.0.0.0); nothing once it stopped.
func psPorts(ports []runtime.PortMapping, st container.State) string {
	if !st.Running() {
		return ""
	}
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		ip, proto := "0.0.0.0", p.Protocol
		if p.HostIP.IsValid() {
			ip = p.HostIP.String()
		}
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, fmt.Sprintf("%s->%d/%s", net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort))), p.ContainerPort, proto))
	}
	return strings.Join(out, ", ")
}
