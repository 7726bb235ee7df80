package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

// volumeInspect is `kiln volume inspect`'s document, docker's fields.
type volumeInspect struct {
	CreatedAt  string            `json:"CreatedAt"`
	Driver     string            `json:"Driver"`
	Labels     map[string]string `json:"Labels"`
	Mountpoint string            `json:"Mountpoint"`
	Name       string            `json:"Name"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
}

// volumeRow is one volume as `kiln volume ls` shows it; the JSON names are docker's.
type volumeRow struct {
	Driver     string `json:"Driver"`
	Labels     string `json:"Labels"`
	Mountpoint string `json:"Mountpoint"`
	Name       string `json:"Name"`
	Scope      string `json:"Scope"`
	CreatedAt  string `json:"CreatedAt"`
}

func newVolumeCmd(g *globalOptions) *cobra.Command {
	return group("volume", "Manage volumes",
		newVolumeCreateCmd(g), newVolumeLsCmd(g), newVolumeInspectCmd(g), newVolumeRmCmd(g), newVolumePruneCmd(g))
}

func newVolumeCreateCmd(g *globalOptions) *cobra.Command {
	var labels []string
	var driver string
	c := &cobra.Command{
		Use:   "create [--label KEY=VALUE] [VOLUME]",
		Short: "Create a volume",
		Long: "Create a named volume in the store (a random 64-hex name when none is given) and print its name.\n" +
			"Creating one that exists is no error. kiln run -v NAME:/path also creates a missing volume.",
		Args: argsRange(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if driver != "local" {
				return usageError{fmt.Errorf("invalid --driver %q: kiln has the local driver only", driver)}
			}
			lm, err := parseLabels(labels)
			if err != nil {
				return err
			}
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			v, err := cs.CreateVolume(cmd.Context(), name, lm)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Name)
			return nil
		},
	}
	c.Flags().StringArrayVar(&labels, "label", nil, "set a label KEY=VALUE")
	c.Flags().StringVarP(&driver, "driver", "d", "local", "volume driver (local only)")
	return c
}

// parseLabels reads KEY=VALUE (or KEY, an empty value) flags.
func parseLabels(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, l := range flags {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, usageError{fmt.Errorf("invalid label %q: use KEY=VALUE", l)}
		}
		m[k] = v
	}
	return m, nil
}

func newVolumeLsCmd(g *globalOptions) *cobra.Command {
	var quiet bool
	var format string
	var filterFlags []string
	c := &cobra.Command{
		Use:     "ls [-q] [--filter KEY=VALUE] [--format FORMAT]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseFilters(filterFlags, "name", "label", "dangling", "driver")
			if err != nil {
				return err
			}
			rf, err := parseFormat(format, "table {{.Driver}}\t{{.Name}}")
			if err != nil {
				return err
			}
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			vols, err := cs.Volumes()
			if err != nil {
				return err
			}
			users, err := cs.VolumeUsers()
			if err != nil {
				return err
			}
			var rows []volumeRow
			for _, v := range vols {
				dangling := len(users[v.Mountpoint]) == 0
				if !f.match("name", func(s string) bool { return strings.Contains(v.Name, s) }) ||
					!f.match("label", matchLabel(v.Labels)) ||
					!f.match("driver", func(s string) bool { return s == "local" }) ||
					!f.match("dangling", func(s string) bool { return (s == "true" || s == "1") == dangling }) {
					continue
				}
				if quiet {
					fmt.Fprintln(cmd.OutOrStdout(), v.Name)
					continue
				}
				rows = append(rows, volumeRow{Driver: "local", Labels: labelString(v.Labels), Mountpoint: v.Mountpoint,
					Name: v.Name, Scope: "local", CreatedAt: v.Created.Local().Format(time.RFC3339)})
			}
			if quiet {
				return nil
			}
			return writeRows(cmd.OutOrStdout(), rf, rows, map[string]string{"Name": "VOLUME NAME"})
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only volume names")
	c.Flags().StringVar(&format, "format", "table", "table, json (one object a line), a Go template ({{.Name}} {{.Driver}}\n"+
		"{{.Mountpoint}} {{.Labels}} {{.Scope}} {{.CreatedAt}}) or table TEMPLATE")
	c.Flags().StringArrayVarP(&filterFlags, "filter", "f", nil, "filter: name=, label=KEY[=VALUE], dangling=true|false, driver=local")
	return c
}

// labelString is docker's KEY=VALUE,… column, sorted.
func labelString(labels map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}

func newVolumeInspectCmd(g *globalOptions) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect VOLUME [VOLUME...]",
		Short: "Show details of volumes as JSON",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			out := []json.RawMessage{}
			for _, name := range args {
				v, err := cs.Volume(name)
				if err != nil {
					return err
				}
				raw, err := json.Marshal(inspectVolume(v))
				if err != nil {
					return err
				}
				out = append(out, raw)
			}
			return writeInspect(cmd.OutOrStdout(), format, out)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template per volume, e.g. {{.Mountpoint}}")
	return c
}

// inspectVolume is v as docker's volume inspect shows it.
func inspectVolume(v container.Volume) volumeInspect {
	labels := v.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return volumeInspect{CreatedAt: v.Created.Local().Format(time.RFC3339), Driver: "local", Labels: labels,
		Mountpoint: v.Mountpoint, Name: v.Name, Scope: "local"}
}

func newVolumeRmCmd(g *globalOptions) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "rm [-f] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove volumes",
		Long:    "Remove each volume and its data. A volume any container (running or not) mounts is refused.",
		Args:    argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			return eachRef(cmd, args, func(name string) error { return cs.RemoveVolume(cmd.Context(), name, force) })
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not fail on a volume that does not exist")
	return c
}

func newVolumePruneCmd(g *globalOptions) *cobra.Command {
	var all, force bool
	c := &cobra.Command{
		Use:   "prune [-a] [-f]",
		Short: "Remove unused volumes",
		Long:  "Remove the anonymous volumes no container uses, or with -a every volume no container uses (docker ≥ 23).",
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			warning := "This will remove anonymous local volumes not used by at least one container."
			if all {
				warning = "This will remove all local volumes not used by at least one container."
			}
			if !force && !confirm(cmd, warning) {
				return nil
			}
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			names, size, err := cs.PruneVolumes(cmd.Context(), all)
			printDeleted(cmd.OutOrStdout(), "Deleted Volumes:", names, true)
			fmt.Fprintf(cmd.OutOrStdout(), "Total reclaimed space: %s\n", humanSize(size))
			return err
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return c
}

// containerVolumes adds the mounts of --volumes-from to spec and returns the volumes the
// container mounts: -v NAME:/path and --mount type=volume, then an anonymous one for each of
// the image's VOLUME paths that no other mount covers (docker's rules).
func (o *runOptions) containerVolumes(g *globalOptions, spec *runtime.Spec, imageVolumes map[string]struct{}) ([]container.VolumeMount, error) {
	flags, err := o.mountFlags()
	if err != nil {
		return nil, err
	}
	var vols []container.VolumeMount
	taken := map[string]bool{}
	for _, m := range spec.Mounts {
		taken[m.Target] = true
	}
	for _, m := range flags {
		if m.volume {
			vols = append(vols, container.VolumeMount{Name: m.source, Target: m.target, ReadOnly: m.readOnly, NoCopy: m.noCopy})
			taken[m.target] = true
		}
	}
	if len(o.volumesFrom) > 0 {
		cs, err := g.openContainers()
		if err != nil {
			return nil, err
		}
		for _, from := range o.volumesFrom {
			ms, err := volumesFrom(cs, from)
			if err != nil {
				return nil, err
			}
			for _, m := range ms {
				if !taken[m.Target] {
					spec.Mounts, taken[m.Target] = append(spec.Mounts, m), true
				}
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(imageVolumes)) {
		if t := cleanTarget(p); t != "" && !taken[t] {
			vols, taken[t] = append(vols, container.VolumeMount{Target: t}), true
		}
	}
	return vols, nil
}

// cleanTarget is an image's VOLUME path made absolute and clean; "" for "/" or none.
func cleanTarget(p string) string {
	if t := path.Clean("/" + p); t != "/" {
		return t
	}
	return ""
}

// volumesFrom reads --volumes-from CONTAINER[:ro|rw]: the container's binds and volumes, made
// read-only by ro, read-write by rw, else as that container has them.
func volumesFrom(cs *container.Store, v string) ([]runtime.Mount, error) {
	ref, mode, hasMode := strings.Cut(v, ":")
	if hasMode && mode != "ro" && mode != "rw" {
		return nil, usageError{fmt.Errorf("invalid --volumes-from %q: use CONTAINER[:ro|rw]", v)}
	}
	c, err := cs.Get(ref)
	if err != nil {
		return nil, fmt.Errorf("--volumes-from %s: %w", ref, err)
	}
	var out []runtime.Mount
	for _, m := range c.Spec.Mounts {
		if m.Type != runtime.Bind {
			continue // docker shares binds and volumes, not tmpfs
		}
		if hasMode {
			m.ReadOnly = mode == "ro"
		}
		out = append(out, m)
	}
	return out, nil
}
