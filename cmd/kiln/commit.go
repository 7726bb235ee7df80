package main

import (
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/build"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/container"
)

func newExportCmd(g *globalOptions) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "export [-o FILE] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Long:  "Write the container's filesystem (its image's layers with its changes, without mounts) as a tar\nto standard output or -o FILE.",
		Args:  argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && isTerminal(cmd.OutOrStdout()) {
				return usageError{fmt.Errorf("refusing to write an archive to a terminal: use -o FILE or redirect the output")}
			}
			_, c, err := getContainer(g, args[0])
			if err != nil {
				return err
			}
			if output == "" {
				return c.Export(cmd.Context(), cmd.OutOrStdout())
			}
			return saveToFile(output, func(w io.Writer) error { return c.Export(cmd.Context(), w) })
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	return c
}

// imageFlags are commit's and import's shared flags.
type imageFlags struct {
	message, author string
	changes         []string
	pause           bool
}

func (f *imageFlags) register(c *cobra.Command) {
	c.Flags().StringVarP(&f.message, "message", "m", "", "commit message (the history entry's comment)")
	c.Flags().StringArrayVarP(&f.changes, "change", "c", nil, "apply a Dockerfile instruction to the image config (repeatable): "+
		"CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR")
}

// options checks the flags and the optional REPOSITORY[:TAG].
func (f *imageFlags) options(args []string) (container.ImageOptions, error) {
	o := container.ImageOptions{Message: f.message, Author: f.author, Pause: f.pause}
	if len(f.changes) > 0 {
		o.Configure = func(cf *v1.ConfigFile) error { return build.ApplyChanges(cf, f.changes) }
	}
	if len(args) > 0 {
		n, err := cache.ParseName(args[0])
		if err != nil {
			return o, usageError{fmt.Errorf("invalid reference %q: %w", args[0], err)}
		}
		o.Ref = n
	}
	return o, nil
}

func newCommitCmd(g *globalOptions) *cobra.Command {
	f := &imageFlags{}
	c := &cobra.Command{
		Use:   "commit [-m MESSAGE] [-a AUTHOR] [-c INSTRUCTION]... CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Long: "Store the container's filesystem changes as a new layer on its image and print the new image's ID.\n" +
			"The new image's config is the container's: the command, entrypoint, env, workdir, user, labels,\n" +
			"exposed ports, stop signal and health check it was run with.\n" +
			"A running container is paused while its changes are read (--pause=false reads them live).\n" +
			"Each -c applies a Dockerfile instruction to the new image's config, as in a build; its variables\n" +
			"expand against the config's ENV: -c 'ENV PATH=/opt/bin:$PATH' -c 'CMD [\"app\"]'.\n" +
			"Without REPOSITORY the image is dangling: kiln images lists it as <none>, kiln tag ID NAME names\n" +
			"it, kiln rmi ID or kiln image prune removes it.",
		Args: argsRange(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(args[1:])
			if err != nil {
				return err
			}
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			_, c, err := getContainer(g, args[0])
			if err != nil {
				return err
			}
			desc, err := c.Commit(cmd.Context(), s, opts)
			return printImageID(cmd, s, desc, err)
		},
	}
	f.register(c)
	c.Flags().StringVarP(&f.author, "author", "a", "", `author (e.g. "Jane <jane@example.com>")`)
	c.Flags().BoolVarP(&f.pause, "pause", "p", true, "pause the container while its changes are read")
	return c
}

func newImportCmd(g *globalOptions) *cobra.Command {
	f := &imageFlags{}
	c := &cobra.Command{
		Use:   "import [-m MESSAGE] [-c INSTRUCTION]... FILE|- [REPOSITORY[:TAG]]",
		Short: "Create an image from a tarball of a filesystem",
		Long: "Store a tar (plain, gzip or zstd; - reads standard input) as the one layer of a new image for\n" +
			"this host's platform and print its ID; each -c applies a Dockerfile instruction to its config,\n" +
			"as commit's does. For docker-archive and oci-archive files use kiln load.",
		Args: argsRange(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(args[1:])
			if err != nil {
				return err
			}
			in := cmd.InOrStdin()
			if args[0] != "-" {
				file, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer file.Close()
				in = file
			}
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			desc, err := container.Import(cmd.Context(), s, in, opts)
			return printImageID(cmd, s, desc, err)
		},
	}
	f.register(c)
	return c
}

// printImageID prints the ID (config digest) of a new image, as docker's commit and import.
func printImageID(cmd *cobra.Command, s *cache.Store, desc v1.Descriptor, err error) error {
	if err != nil {
		return err
	}
	id, err := s.ImageID(desc)
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), id)
	return nil
}
