package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/registry"
)

func newLoginCmd(g *globalOptions) *cobra.Command {
	var user, password string
	var stdin bool
	c := &cobra.Command{
		Use:   "login [-u USER] [-p PASSWORD | --password-stdin] REGISTRY",
		Short: "Check credentials against a registry and store them",
		Long: "Verify the credentials with the registry, then store them in docker's config.json\n" +
			"($DOCKER_CONFIG or ~/.docker), through its credential helper when one is configured.",
		Example: "  echo \"$TOKEN\" | kiln login -u me --password-stdin registry.example.com",
		Args:    argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if stdin {
				if password != "" {
					return usageError{errors.New("--password and --password-stdin are mutually exclusive")}
				}
				b, err := io.ReadAll(bufio.NewReader(cmd.InOrStdin()))
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" || password == "" {
				return usageError{errors.New("give -u USER and a password (--password-stdin keeps it out of your shell history)")}
			}
			opts, err := g.registry.options()
			if err != nil {
				return err
			}
			if err := registry.Login(cmd.Context(), args[0], user, password, opts...); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	c.Flags().StringVarP(&user, "username", "u", "", "user name")
	c.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	c.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from standard input")
	return c
}

func newLogoutCmd(_ *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Forget stored credentials for a registry",
		Args:  argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := registry.Logout(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", args[0])
			return nil
		},
	}
}
