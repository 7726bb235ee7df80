package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
)

// splitCpArg reads docker's CONTAINER:PATH; a path with a slash before any colon is local.
func splitCpArg(arg string) (ctr, p string) {
	if i := strings.IndexByte(arg, ':'); i > 0 && !strings.ContainsAny(arg[:i], "/.") {
		return arg[:i], arg[i+1:]
	}
	return "", arg
}

func newCpCmd(g *globalOptions) *cobra.Command {
	var opts container.CopyOptions
	c := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  kiln cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files between a container and the host",
		Long: "Copy a file or directory out of or into a container, running, stopped or created, with\n" +
			"docker's rules: into DEST when it is a directory, else as DEST; SRC/. copies a directory's\n" +
			"contents; - is a tar stream on standard output or input. Paths in the container resolve inside\n" +
			"its root filesystem: its symlinks never lead to the host's files; -L follows SRC_PATH's own\n" +
			"symlink there too. A container that is not running cannot start during a copy into it.\n\n" +
			"Ownership follows docker's documented behaviour: what is copied into a container belongs to\n" +
			"root (0:0), what is copied to the host to the user who runs kiln cp; -a keeps the source's\n" +
			"uid:gid instead. A tar stream (-) always carries and applies the ids its entries hold.",
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
				return c.CopyToHost(cmd.Context(), src, dst, cmd.OutOrStdout(), opts)
			}
			return c.CopyFromHost(cmd.Context(), src, cmd.InOrStdin(), dst, opts)
		},
	}
	c.Flags().BoolVarP(&opts.Archive, "archive", "a", false, "archive mode: keep the source's uid/gid (without it: root's in a container, yours on the host)")
	c.Flags().BoolVarP(&opts.FollowLink, "follow-link", "L", false, "always follow the symbolic link SRC_PATH names (confined to the container's root filesystem)")
	return c
}
