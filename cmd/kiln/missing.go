package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"
)

// dockerOnly names docker's verbs kiln does not have, with what to use instead.
var dockerOnly = map[string]string{
	"events":     "kiln wait CONTAINER, or kiln ps -a",
	"info":       "kiln version and kiln system df",
	"search":     "the registry's own web interface or API",
	"checkpoint": "kiln stop and kiln start (no checkpoint/restore)",
	"context":    "--root DIR (or KILN_ROOT) to choose a store: kiln has no daemon to connect to",
	"compose":    "a shell script of kiln run -d commands",
	"buildx":     "kiln build (BuildKit's flags: --platform for the host, --cache-from/--cache-to, -o)",
	"manifest":   "kiln push and kiln inspect",
	"trust":      "kiln sign --key and kiln verify --key (cosign's key-based signatures)",
	"plugin":     "nothing: kiln has no plugins",
	"swarm":      "nothing: kiln runs containers on this host only",
	"service":    "nothing: kiln runs containers on this host only",
	"stack":      "nothing: kiln runs containers on this host only",
	"node":       "nothing: kiln runs containers on this host only",
	"secret":     "kiln build --secret, or kiln run -v with a file",
	"config":     "kiln run -v with a file",
	"init":       "a Buildfile written by hand",
	"scout":      "a scanner that reads OCI layouts (the store's root is one)",
}

// missingCommands are hidden verbs that exit 2 saying what to use instead of a docker verb.
func missingCommands(have []*cobra.Command) []*cobra.Command {
	exists := map[string]bool{}
	for _, c := range have {
		exists[c.Name()] = true
	}
	var verbs []string
	for v := range dockerOnly {
		if !exists[v] {
			verbs = append(verbs, v)
		}
	}
	sort.Strings(verbs)
	var out []*cobra.Command
	for _, v := range verbs {
		alt := dockerOnly[v]
		out = append(out, &cobra.Command{
			Use:                v,
			Hidden:             true,
			DisableFlagParsing: true,
			RunE: func(*cobra.Command, []string) error {
				return usageError{fmt.Errorf("%q is a docker command kiln does not have; use %s", v, alt)}
			},
		})
	}
	return out
}
