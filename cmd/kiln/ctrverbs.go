package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
)

// getContainer opens the container store and finds ref in it.
func getContainer(g *globalOptions, ref string) (*container.Store, *container.Container, error) {
	cs, err := g.openContainers()
	if err != nil {
		return nil, nil, err
	}
	c, err := cs.Get(ref)
	return cs, c, err
}

func newWaitCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until containers stop, then print their exit codes",
		Long:  "Wait for each container to stop (a restart policy keeps it waiting) and print its exit code;\na container whose monitor died prints -1.",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			var failed error
			for _, ref := range args {
				c, err := cs.Get(ref)
				var st container.State
				if err == nil {
					st, err = c.Wait(cmd.Context())
				}
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "kiln: %v\n", err)
					failed = exitCodeError{code: 1}
					continue
				}
				code := st.ExitCode
				if st.MonitorLost {
					code = -1
				}
				fmt.Fprintln(cmd.OutOrStdout(), code)
			}
			return failed
		},
	}
}

func newRenameCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  argsRange(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, c, err := getContainer(g, args[0])
			if err != nil {
				return err
			}
			return cs.Rename(cmd.Context(), c, args[1])
		},
	}
}

func newPortCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List a container's published ports",
		Args:  argsRange(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, c, err := getContainer(g, args[0])
			if err != nil {
				return err
			}
			var filter string
			if len(args) == 2 {
				filter = args[1]
			}
			ports, err := c.Ports(filter)
			if err != nil {
				return err
			}
			for _, p := range ports {
				if filter != "" {
					fmt.Fprintln(cmd.OutOrStdout(), p.Public)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s\n", p.Private, p.Public)
				}
			}
			return nil
		},
	}
}

func newTopCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Long:  "Run the host's ps with OPTIONS (default -ef) and show the processes in the container's PID namespace.",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, c, err := getContainer(g, args[0])
			if err != nil {
				return err
			}
			lines, err := c.Top(cmd.Context(), args[1:])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.Join(lines, "\n"))
			return nil
		},
	}
	c.Flags().SetInterspersed(false) // ps's own options follow CONTAINER
	return c
}

func newDiffCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Show the changes to a container's filesystem",
		Long:  "List the files the container added (A), changed (C) or deleted (D) relative to its image.",
		Args:  argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, c, err := getContainer(g, args[0])
			if err != nil {
				return err
			}
			changes, err := c.Diff()
			if err != nil {
				return err
			}
			for _, ch := range changes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
	}
}

// createOnlyFlag is run's hidden switch that `kiln create` sets: one constructor, run's flags.
const createOnlyFlag = "create-only"

func newCreateCmd(g *globalOptions) *cobra.Command {
	c := as(newRunCmd(g), "create")
	c.Short = "Create a new container without starting it"
	c.Long = "Create a container from IMAGE with run's flags and print its id; kiln start runs it under a\ndetached monitor."
	c.Example = "  kiln create --name web -p 8080:80 app\n  kiln start web"
	if err := c.Flags().Set(createOnlyFlag, "true"); err != nil {
		panic(err) // the flag is run's own: a programming error
	}
	return c
}
