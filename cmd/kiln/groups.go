package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// as renames a verb's command for its place in a group (`kiln image rm` is `kiln rmi`): the
// same constructor, flags and RunE, only the first word of Use and the aliases change.
func as(c *cobra.Command, name string, aliases ...string) *cobra.Command {
	_, rest, _ := strings.Cut(c.Use, " ")
	c.Use = strings.TrimSpace(name + " " + rest)
	c.Aliases = aliases
	return c
}

// group is a docker-style management command whose bare form prints its help.
func group(name, short string, verbs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   name + " COMMAND",
		Short: short,
		Args:  argsRange(0, 0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	c.AddCommand(verbs...)
	return c
}

func newImageCmd(g *globalOptions) *cobra.Command {
	return group("image", "Manage images",
		as(newImagesCmd(g), "ls", "list"), as(newRmiCmd(g), "rm", "remove"), newImagePruneCmd(g),
		as(newInspectCmd(g), "inspect"), as(newTagCmd(g), "tag"), as(newSaveCmd(g), "save"),
		as(newLoadCmd(g), "load"), as(newHistoryCmd(g), "history"), as(newImportCmd(g), "import"), as(newPushCmd(g), "push"), as(newPullCmd(g), "pull"))
}

func newContainerCmd(g *globalOptions) *cobra.Command {
	return group("container", "Manage containers",
		as(newPsCmd(g), "ls", "ps", "list"), as(newRmCmd(g), "rm", "remove"), newContainerPruneCmd(g),
		newContainerInspectCmd(g), as(newRunCmd(g), "run"), as(newCreateCmd(g), "create"), as(newExecCmd(g), "exec"), as(newAttachCmd(g), "attach"), as(newLogsCmd(g), "logs"),
		as(newStartCmd(g), "start"), as(newStopCmd(g), "stop"), as(newKillCmd(g), "kill"),
		as(newRestartCmd(g), "restart"), as(newWaitCmd(g), "wait"), as(newRenameCmd(g), "rename"),
		as(newPortCmd(g), "port"), as(newTopCmd(g), "top"), as(newDiffCmd(g), "diff"), as(newCpCmd(g), "cp"),
		as(newExportCmd(g), "export"), as(newCommitCmd(g), "commit"), as(newPauseCmd(g), "pause"), as(newUnpauseCmd(g), "unpause"), as(newStatsCmd(g), "stats"), as(newUpdateCmd(g), "update"))
}
