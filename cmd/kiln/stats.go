package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

// statsRow is one line of `kiln stats`, with docker's field names for --format.
type statsRow struct {
	Container string
	Name      string
	ID        string
	CPUPerc   string
	MemUsage  string
	MemPerc   string
	NetIO     string
	BlockIO   string
	PIDs      string
}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeaders = map[string]string{"ID": "CONTAINER ID", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}

// statsInterval is how far apart the two reads of CPU time are: docker's one second.
const statsInterval = time.Second

type statsOptions struct {
	all, noStream, noTrunc bool
	format                 string
}

func newStatsCmd(g *globalOptions) *cobra.Command {
	var o statsOptions
	c := &cobra.Command{
		Use:   "stats [-a] [--no-stream] [--no-trunc] [--format FORMAT] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		Long: "Display a live stream of container(s) resource usage statistics, read from each container's cgroup\n" +
			"(CPU time, memory less reclaimable page cache, block I/O, pids) and network namespace (bytes over\n" +
			"all interfaces but lo), refreshed every second until Ctrl-C. CPU % is the CPU time used over the\n" +
			"last second (100% = one core). Without CONTAINER: every running container (-a: all of them).",
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := parseFormat(o.format, statsTable)
			if err != nil {
				return err
			}
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), cs, args, format)
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVar(&o.noStream, "no-stream", false, "print one sample and exit")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "do not truncate the container ids")
	f.StringVar(&o.format, "format", "table", "table, json (one object a line), a Go template ({{.Container}} {{.Name}} {{.ID}} {{.CPUPerc}}\n"+
		"{{.MemUsage}} {{.MemPerc}} {{.NetIO}} {{.BlockIO}} {{.PIDs}}) or table TEMPLATE")
	return c
}

// statsTarget is a container being watched, as the user named it.
type statsTarget struct {
	name string
	c    *container.Container
}

type statsSample struct {
	u  runtime.Usage
	at time.Time
	ok bool
}

func (o *statsOptions) run(ctx context.Context, out io.Writer, cs *container.Store, refs []string, format rowFormat) error {
	var named []statsTarget
	for _, ref := range refs {
		c, err := cs.Get(ref)
		if err != nil {
			return err
		}
		named = append(named, statsTarget{ref, c})
	}
	targets := func() ([]statsTarget, error) {
		if len(refs) > 0 {
			return named, nil
		}
		list, err := cs.List()
		if err != nil {
			return nil, err
		}
		var ts []statsTarget
		for _, c := range list {
			if st, err := c.State(); err == nil && (o.all || st.Running()) {
				ts = append(ts, statsTarget{c.ShortID(), c})
			}
		}
		return ts, nil
	}
	prev := map[string]statsSample{}
	ts, err := targets()
	if err != nil {
		return err
	}
	for _, t := range ts {
		if prev[t.c.ID], err = sampleStats(t.c); err != nil {
			return err
		}
	}
	timer := time.NewTimer(statsInterval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil // Ctrl-C ends the stream, as docker's
		case <-timer.C:
		}
		if ts, err = targets(); err != nil {
			return err
		}
		rows := make([]statsRow, 0, len(ts))
		cur := map[string]statsSample{}
		for _, t := range ts {
			s, err := sampleStats(t.c)
			if err != nil {
				return err
			}
			cur[t.c.ID] = s
			rows = append(rows, o.row(t, prev[t.c.ID], s))
		}
		if !o.noStream {
			fmt.Fprint(out, "\033[2J\033[H") // docker's refresh: clear the screen, cursor home
		}
		if err := writeRows(out, format, rows, statsHeaders); err != nil {
			return err
		}
		if o.noStream {
			return nil
		}
		prev = cur
		timer.Reset(statsInterval)
	}
}

// sampleStats reads c's usage now; a container that is not running has none.
func sampleStats(c *container.Container) (statsSample, error) {
	st, err := c.State()
	if err != nil || !st.Running() || st.Pid <= 0 {
		return statsSample{}, err
	}
	u, err := runtime.ReadUsage(c.ID, st.Pid)
	if err != nil {
		if st, serr := c.State(); serr == nil && (!st.Running() || st.Pid <= 0) {
			return statsSample{}, nil // it exited meanwhile
		}
		return statsSample{}, err
	}
	return statsSample{u: u, at: time.Now(), ok: true}, nil
}

// row formats a sample as docker does: binary sizes for memory, decimal ones for I/O.
func (o *statsOptions) row(t statsTarget, prev, cur statsSample) statsRow {
	id := t.c.ShortID()
	if o.noTrunc {
		id = t.c.ID
	}
	u := cur.u
	var cpu, mem float64
	if cur.ok && prev.ok && cur.at.After(prev.at) && u.CPUNanos >= prev.u.CPUNanos {
		cpu = float64(u.CPUNanos-prev.u.CPUNanos) / float64(cur.at.Sub(prev.at).Nanoseconds()) * 100
	}
	if u.MemLimit > 0 {
		mem = float64(u.MemUsage) / float64(u.MemLimit) * 100
	}
	dec := func(n uint64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
	return statsRow{Container: t.name, Name: t.c.Name, ID: id, CPUPerc: fmt.Sprintf("%.2f%%", cpu),
		MemUsage: units.BytesSize(float64(u.MemUsage)) + " / " + units.BytesSize(float64(u.MemLimit)),
		MemPerc:  fmt.Sprintf("%.2f%%", mem), NetIO: dec(u.NetRx) + " / " + dec(u.NetTx),
		BlockIO: dec(u.BlockRead) + " / " + dec(u.BlockWrite), PIDs: strconv.FormatUint(u.Pids, 10)}
}
