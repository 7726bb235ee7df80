package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/registry"
)

type saveOptions struct {
	output string
	format string
}

func newSaveCmd(g *globalOptions) *cobra.Command {
	o := &saveOptions{}
	c := &cobra.Command{
		Use:   "save [-o FILE] [--format docker-archive|oci-archive] NAME...",
		Short: "Write images to a tar archive",
		Long: "Write images to a tar archive: docker-archive (the `docker save` layout, the default) or\n" +
			"oci-archive (an OCI image layout in a tar). Without -o the archive goes to standard output.",
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := registry.ParseArchiveFormat(o.format)
			if err != nil {
				return usageError{err}
			}
			if o.output == "" && isTerminal(cmd.OutOrStdout()) {
				return usageError{fmt.Errorf("refusing to write an archive to a terminal: use -o FILE or redirect the output")}
			}
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			if o.output == "" {
				return registry.Save(cmd.Context(), s, args, format, cmd.OutOrStdout())
			}
			return saveToFile(o.output, func(w io.Writer) error {
				return registry.Save(cmd.Context(), s, args, format, w)
			})
		},
	}
	c.Flags().StringVarP(&o.output, "output", "o", "", "write to this file instead of standard output")
	c.Flags().StringVar(&o.format, "format", "docker-archive", "archive format: docker-archive or oci-archive")
	return c
}

// saveToFile writes through a temp file renamed into place, so a failed save leaves no partial archive.
func saveToFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save to %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
