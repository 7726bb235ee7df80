package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// splitCpArg reads docker's CONTAINER:PATH; a path with a slash before any colon is local.
func splitCpArg(arg string) (ctr, p string) {
	if i := strings.IndexByte(arg, ':'); i > 0 && !strings.ContainsAny(arg[:i], "/.") {
		return arg[:i], arg[i+1:]
	}
	return "", arg
}

func newCpCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  kiln cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files between a container and the host",
		Long: "Copy a file or directory out of or into a container, running, stopped or created, with\n" +
			"docker's rules: into DEST when it is a directory, else as DEST; SRC/. copies a directory's\n" +
			"contents; - is a tar stream on standard output or input. Paths in the container resolve inside\n" +
			"its root filesystem: its symlinks never lead to the host's files. A container that is not\n" +
			"running cannot start during a copy into it.",
		Args: argsRange(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, src := splitCpArg(args[0])
			dstCtr, dst := splitCpArg(args[1])
			switch {
			case (srcCtr == "") == (dstCtr == ""):
				return usageError{fmt.Errorf("copying between containers or between host paths is not supported: name one CONTAINER:PATH")}
			case srcCtr != "" && src == "" || dstCtr != "" && dst == "":
				return usageError{fmt.Errorf("the container path must not be empty")}
			}
			ref := srcCtr + dstCtr
			_, c, err := getContainer(g, ref)
			if err != nil {
				return err
			}
			if srcCtr != "" {
				return c.CopyToHost(cmd.Context(), src, dst, cmd.OutOrStdout())
			}
			return c.CopyFromHost(cmd.Context(), src, cmd.InOrStdin(), dst)
		},
	}
	c.Flags().BoolP("archive", "a", false, "keep uid/gid (kiln always does as root)")
	return c
}
