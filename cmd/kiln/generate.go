package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/internal/atomicfile"
)

func newGenerateCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "generate",
		Short: "Generate files that run containers outside kiln (systemd units)",
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("generate needs a subcommand: systemd")}
		},
	}
	c.AddCommand(newGenerateSystemdCmd(g))
	return c
}

func newGenerateSystemdCmd(g *globalOptions) *cobra.Command {
	var o container.UnitOptions
	var files bool
	c := &cobra.Command{
		Use:   "systemd [--name] [--restart-policy POLICY] [--files] [--new] CONTAINER",
		Short: "Write a systemd unit that starts a container at boot",
		Long: "Print a systemd service for CONTAINER, as podman does. kiln has no daemon: --restart lasts only as\n" +
			"long as the container's monitor process, so nothing starts a container after a reboot unless a unit\n" +
			"does. The unit's main process is the monitor (`kiln start -a`), which systemd supervises; it stops\n" +
			"the container with `kiln stop`, restarts it as Restart= says (from the container's --restart unless\n" +
			"--restart-policy), and uses this kiln's store (--root). Stop such a container with systemctl, not\n" +
			"kiln stop: systemd restarts a monitor that exits on failure. With --new, every start is a fresh\n" +
			"container: `kiln run --rm` of the command line that created CONTAINER (its flags, -e values too,\n" +
			"are in the unit), run where it was run; the first start replaces CONTAINER.",
		Example: "  kiln generate systemd --name --files web\n  sudo cp container-web.service /etc/systemd/system/ && sudo systemctl enable --now container-web",
		Args:    argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			ctr, err := cs.Get(args[0])
			if err != nil {
				return err
			}
			if o.Kiln, err = kilnArgv(g); err != nil {
				return err
			}
			name, unit, err := container.SystemdUnit(ctr, o)
			if err != nil {
				return err
			}
			if !files {
				_, err := cmd.OutOrStdout().Write(unit)
				return err
			}
			path, err := filepath.Abs(name)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(path, unit, atomicfile.Options{Perm: 0o644}); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&o.UseName, "name", false, "refer to the container by its name, not its id (in the unit and its file name)")
	f.StringVar(&o.RestartPolicy, "restart-policy", "", "systemd Restart=: no, on-success, on-failure, on-abnormal, on-watchdog, on-abort or always (default: from the container's --restart)")
	f.BoolVar(&files, "files", false, "write container-NAME.service in the current directory instead of printing it")
	f.BoolVar(&o.New, "new", false, "start a fresh container on every start: kiln run --rm of the command that created this one (which the unit replaces)")
	return c
}

// kilnArgv is how a unit runs this kiln over the same store and runtime: absolute paths, as
// systemd runs it from "/".
func kilnArgv(g *globalOptions) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the kiln binary: %w", err)
	}
	root, err := filepath.Abs(g.storeRoot())
	if err != nil {
		return nil, err
	}
	argv := []string{exe, "--root", root}
	if g.runtime != "" {
		argv = append(argv, "--runtime", g.runtime)
	}
	if g.isolation != "" {
		argv = append(argv, "--isolation", g.isolation)
	}
	return argv, nil
}

// createCommand is the command line of `kiln run` (or create) as parsed: every flag given, as
// --name=value, then the image and its arguments; docker's CreateCommand, podman's --new.
func createCommand(cmd *cobra.Command, ref string, args []string) []string {
	argv := []string{"run"}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name == createOnlyFlag {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				argv = append(argv, "--"+f.Name+"="+v)
			}
			return
		}
		argv = append(argv, "--"+f.Name+"="+f.Value.String())
	})
	return append(append(argv, ref), args...)
}

// workDir is where relative paths of a create command line are resolved; "" when unknown.
func workDir() string {
	wd, _ := os.Getwd()
	return wd
}
