package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/runtime"
)

type execOptions struct {
	interactive, tty bool
	user, workdir    string
	env              []string
}

func newExecCmd(g *globalOptions) *cobra.Command {
	o := &execOptions{}
	c := &cobra.Command{
		Use:   "exec [flags] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Long: "Run COMMAND inside a running container: its namespaces, cgroup, capabilities and seccomp filter,\n" +
			"the container's environment plus -e, its user and working directory unless -u/-w say otherwise.\n" +
			"CONTAINER is a name, an id or a unique id prefix. The exit code is the command's; 1 means kiln\n" +
			"failed (e.g. the container is not running), 126 the command cannot be executed, 127 it was not found.",
		Example: "  kiln exec web cat /etc/hostname\n  kiln exec -it web sh\n  kiln exec -u nobody -w /tmp -e A=1 web env",
		Args:    argsRange(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := execInContainer(cmd, g, o, args[0], args[1:])
			if err != nil {
				return failure(1, err)
			}
			if code != 0 {
				return exitCodeError{code: code}
			}
			return nil
		},
	}
	f := c.Flags()
	f.SetInterspersed(false) // flags after CONTAINER belong to the command
	f.BoolVarP(&o.interactive, "interactive", "i", false, "keep standard input open")
	f.BoolVarP(&o.tty, "tty", "t", false, "allocate a pseudo-terminal")
	f.StringVarP(&o.user, "user", "u", "", "user[:group] (names or ids) to run as")
	f.StringVarP(&o.workdir, "workdir", "w", "", "working directory inside the container")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set KEY=VALUE (KEY alone copies it from kiln's environment)")
	return c
}

// execInContainer runs the command and returns its exit code.
func execInContainer(cmd *cobra.Command, g *globalOptions, o *execOptions, ref string, args []string) (int, error) {
	p := runtime.ExecSpec{Args: args, User: o.user, Cwd: o.workdir, Terminal: o.tty,
		Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}
	if o.workdir != "" && !strings.HasPrefix(o.workdir, "/") {
		return 0, fmt.Errorf("invalid -w %q: the working directory must be absolute", o.workdir)
	}
	for _, e := range o.env {
		v, err := envEntry(e)
		if err != nil {
			return 0, fmt.Errorf("-e: %w", err)
		}
		if v != "" {
			p.Env = append(p.Env, v)
		}
	}
	if o.interactive {
		p.Stdin = cmd.InOrStdin()
	}
	id, err := lookupContainer(g.storeRoot(), ref)
	if err != nil {
		return 0, err
	}
	if _, c, err := getContainer(g, id); err == nil {
		if st, err := c.State(); err == nil && st.Running() && st.Paused {
			return 0, fmt.Errorf("container %s is paused, unpause the container before exec", shortID(id))
		}
	}
	rt, err := g.containerRuntime(cmd)
	if err != nil {
		return 0, err
	}
	var code runtime.ExitStatus
	ctr, err := rt.Load(id)
	if err == nil {
		code, err = ctr.Exec(cmd.Context(), p)
	}
	if errors.Is(err, runtime.ErrNotRunning) {
		return 0, fmt.Errorf("container %s is not running", shortID(id))
	}
	return int(code), err
}

// lookupContainer resolves a name, full id or unique id prefix with the container store (a
// foreground `kiln run` records its container there too).
func lookupContainer(root, ref string) (string, error) {
	store, err := container.Open(root)
	if err != nil {
		return "", err
	}
	c, err := store.Get(ref)
	if err != nil {
		return "", err
	}
	return c.ID, nil
}
