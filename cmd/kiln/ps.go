package main

import (
	"fmt"
	"strings"
	"time"

	units "github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/container"
)

type psOptions struct {
	all, quiet, noTrunc bool
	format              string
	filters             []string
	last                int
	latest              bool
	size                bool
	imageSize           func(v1.Hash) int64 // with size: an image's size (describe's), 0 when unknown
}

// imageSizes returns the size of an image in s by manifest digest, as images shows it, each read once.
func imageSizes(s *cache.Store) func(v1.Hash) int64 {
	seen := map[v1.Hash]int64{}
	return func(d v1.Hash) int64 {
		if n, ok := seen[d]; ok {
			return n
		}
		row, _ := storedRow(s, v1.Descriptor{Digest: d}, d.String()) // unknown: 0
		seen[d] = row.Size
		return row.Size
	}
}

// psRow is one container as `kiln ps` shows it; the JSON names are docker's.
type psRow struct {
	ID         string `json:"ID"`
	Image      string `json:"Image"`
	Command    string `json:"Command"`
	CreatedAt  string `json:"CreatedAt"`
	RunningFor string `json:"RunningFor"`
	Status     string `json:"Status"`
	State      string `json:"State"`
	Ports      string `json:"Ports"`
	Names      string `json:"Names"`
	Size       string `json:"Size,omitempty"`
}

func newPsCmd(g *globalOptions) *cobra.Command {
	o := &psOptions{}
	c := &cobra.Command{
		Use:   "ps [-a] [-q] [--format FORMAT] [--filter KEY=VALUE]",
		Short: "List containers",
		Long:  "List running containers (-a: all of them), newest first. A container whose monitor was killed shows\n\"Exited (unknown)\"; remove it with kiln rm.",
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			list, err := cs.List()
			if err != nil {
				return err
			}
			if o.size {
				s, err := g.openStore()
				if err != nil {
					return err
				}
				defer s.Close()
				o.imageSize = imageSizes(s)
			}
			return o.print(cmd, list)
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "show all containers, not only running ones")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only container ids")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "do not truncate ids and commands")
	f.StringVar(&o.format, "format", "table", "table, json (one object a line), a Go template ({{.ID}} {{.Image}} {{.Command}}\n"+
		"{{.CreatedAt}} {{.RunningFor}} {{.Status}} {{.State}} {{.Ports}} {{.Names}}) or table TEMPLATE")
	f.IntVarP(&o.last, "last", "n", -1, "show the n last created containers (all states)")
	f.BoolVarP(&o.latest, "latest", "l", false, "show the latest created container (all states)")
	f.BoolVarP(&o.size, "size", "s", false, "show the size of each container's filesystem changes (and, virtual, with its image)")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "filter: status=, name=, id=, ancestor=, exited=, before=, since=, label=KEY[=VALUE], health=")
	return c
}

const psTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

var psHeaders = map[string]string{"ID": "CONTAINER ID", "RunningFor": "CREATED", "CreatedAt": "CREATED AT"}

func (o *psOptions) print(cmd *cobra.Command, list []*container.Container) error {
	table := psTable
	if o.size {
		table += "\t{{.Size}}"
	}
	format, err := parseFormat(o.format, table)
	if err != nil {
		return err
	}
	f, err := parseFilters(o.filters, "status", "name", "id", "ancestor", "exited", "before", "since", "label", "health")
	if err != nil {
		return err
	}
	if err := checkHealthFilter(f); err != nil {
		return err
	}
	if o.latest {
		o.last = 1
	}
	if len(f["status"])+len(f["exited"]) > 0 || o.last > 0 {
		o.all = true // as docker: these look at stopped containers too
	}
	now := time.Now()
	var rows []psRow
	for _, c := range containerFilter(f, list) {
		st, err := c.State()
		if err != nil {
			return err
		}
		if !o.all && !st.Running() {
			continue
		}
		r := o.row(c, st, now)
		if !f.match("status", func(v string) bool { return v == r.State }) ||
			!f.match("exited", func(v string) bool { return r.State == "exited" && v == fmt.Sprint(st.ExitCode) }) ||
			!f.match("health", func(v string) bool { return v == string(st.HealthStatus()) }) {
			continue
		}
		if o.size { // docker's "0B (virtual 1.2MB)": the changes, and with the image
			changes := cache.TreeSize(c.Spec.Upper)
			r.Size = fmt.Sprintf("%s (virtual %s)", humanSize(changes), humanSize(changes+o.imageSize(c.ImageDigest)))
		}
		rows = append(rows, r)
	}
	if o.last > 0 && len(rows) > o.last {
		rows = rows[:o.last] // newest first
	}
	if o.quiet {
		for _, r := range rows {
			fmt.Fprintln(cmd.OutOrStdout(), r.ID)
		}
		return nil
	}
	return writeRows(cmd.OutOrStdout(), format, rows, psHeaders)
}

// containerFilter keeps the containers (newest first) that name=, id=, ancestor=, before= and since= select.
func containerFilter(f filters, list []*container.Container) []*container.Container {
	var out []*container.Container
	for _, c := range list {
		if !f.match("name", func(v string) bool { return strings.Contains(c.Name, strings.TrimPrefix(v, "/")) }) ||
			!f.match("id", func(v string) bool { return strings.HasPrefix(c.ID, v) }) ||
			!f.match("ancestor", func(v string) bool {
				return c.Image == v || strings.HasPrefix(c.ImageDigest.String(), v) || c.Image == v+":latest"
			}) ||
			!f.match("label", matchLabel(c.Labels)) ||
			!f.match("before", func(v string) bool { return createdRelative(list, v, c, -1) }) ||
			!f.match("since", func(v string) bool { return createdRelative(list, v, c, 1) }) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// createdRelative reports whether c was created after (dir 1) or before (dir -1) the container ref.
func createdRelative(list []*container.Container, ref string, c *container.Container, dir int) bool {
	for _, o := range list {
		if o.Name == ref || strings.HasPrefix(o.ID, ref) {
			return c.Created.Compare(o.Created) == dir
		}
	}
	return false
}

func (o *psOptions) row(c *container.Container, st container.State, now time.Time) psRow {
	id, command := c.ShortID(), strings.Join(c.Args, " ")
	if o.noTrunc {
		id = c.ID
	} else if len([]rune(command)) > 20 {
		command = string([]rune(command)[:19]) + "…"
	}
	state := st.DockerStatus()
	return psRow{ID: id, Image: c.Image, Command: `"` + command + `"`, CreatedAt: c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: units.HumanDuration(now.Sub(c.Created)) + " ago", Status: st.Describe(now), State: state,
		Ports: psPorts(c, st), Names: c.Name}
}

// psPorts is docker's PORTS column: "127.0.0.1:8080->80/tcp, 0.0.0.0:53->53/udp" for a
// running container's published ports; nothing once it stopped.
func psPorts(c *container.Container, st container.State) string {
	if !st.Running() {
		return ""
	}
	ports, _ := c.Ports("") // no filter: never an error
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		out = append(out, p.Public+"->"+p.Private)
	}
	return strings.Join(out, ", ")
}
