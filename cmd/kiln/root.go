package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/registry"
	"github.com/kiln-build/kiln/runtime"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	root      string
	debug     bool
	runtime   string // OCI runtime for RUN steps and containers: "", crun, runc or a path
	isolation string // --isolation: auto, oci, rootless or chroot
	registry  registryFlags
	rt        *runtime.Runtime // the process's one runtime, made on first use
}

// containerRuntime is the process's one container runtime (--runtime; notes with --debug).
func (g *globalOptions) containerRuntime(cmd *cobra.Command) (*runtime.Runtime, error) {
	if g.rt != nil {
		return g.rt, nil
	}
	var debug io.Writer
	if g.debug {
		debug = cmd.ErrOrStderr()
	}
	iso, err := runtime.ParseIsolation(g.isolation)
	if err != nil {
		return nil, err
	}
	rt, err := runtime.New(runtime.Options{Runtime: g.runtime, Isolation: iso, Debug: debug})
	if err != nil {
		return nil, err
	}
	g.rt = rt
	return rt, nil
}

// enterRootless re-executes kiln in its user namespace when the isolation is rootless and this
// process is not there yet; the child does the command's work, so its exit code is returned.
func (g *globalOptions) enterRootless(cmd *cobra.Command) error {
	iso, err := runtime.ParseIsolation(g.isolation)
	if err != nil {
		return usageError{err}
	}
	if iso, err = iso.Resolve(); err != nil {
		return err
	}
	if iso == runtime.IsolationChroot && runsContainers[cmd.Name()] {
		return exitCodeError{code: 125, err: runtime.ErrChrootNoContainers} // before any container record exists
	}
	if iso != runtime.IsolationRootless || runtime.InUserNamespace() || noStore[cmd.Name()] {
		return nil
	}
	o := runtime.UserNamespaceOptions{Args: os.Args[1:], Warn: cmd.ErrOrStderr()}
	if g.debug {
		o.Debug = cmd.ErrOrStderr()
	}
	if g.root == "" { // inside, kiln is root: keep the store the user's default
		o.Env = append(o.Env, "KILN_ROOT="+cache.DefaultRoot())
	}
	code, err := runtime.EnterUserNamespace(cmd.Context(), o)
	return exitCodeError{code: code, err: err}
}

// rootless says whether this process runs containers rootless.
func (g *globalOptions) rootless() bool {
	iso, err := runtime.ParseIsolation(g.isolation)
	if err == nil {
		iso, err = iso.Resolve()
	}
	return err == nil && iso == runtime.IsolationRootless
}

// runsContainers are the commands that start a container process, which the chroot rung cannot.
var runsContainers = map[string]bool{"run": true, "create": true, "start": true, "restart": true, "exec": true}

// noStore are the commands that never touch the store or a container.
var noStore = map[string]bool{"version": true, "help": true, "completion": true, "generate-key": true, "verify": true}

// openStore opens the image store named by --root (or KILN_ROOT, or the default).
func (g *globalOptions) openStore() (*cache.Store, error) {
	root := g.storeRoot()
	s, err := cache.Open(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	// Layers of a lazily imported build cache come from their registry when first read.
	if opts, err := g.registry.options(); err == nil {
		if f, err := registry.NewFetcher(opts...); err == nil {
			s.SetFetcher(f)
		}
	}
	return s, nil
}

// storeRoot is --root, KILN_ROOT or the default store directory.
func (g *globalOptions) storeRoot() string {
	if g.root != "" {
		return g.root
	}
	return cache.DefaultRoot()
}

// usageError marks errors in the command line itself; they exit with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCodeError carries a specific exit code (a container's, or docker's 125/126/127).
type exitCodeError struct {
	code int
	err  error // nil when the code speaks for itself (a container that exited non-zero)
}

// failure is err with code, or with docker's 127/126 when the runtime could not execute the
// container's command: exit codes scripts test for, with the runtime's reason printed once.
func failure(code int, err error) exitCodeError {
	var ce *runtime.CommandError
	if errors.As(err, &ce) {
		code = int(ce.Status)
	}
	return exitCodeError{code: code, err: err}
}

func (e exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "kiln",
		Short: "Build, run and push OCI images without a daemon",
		Long: "kiln builds images from Dockerfile-compatible Buildfiles, runs them as isolated containers and\n" +
			"pushes them to OCI registries. Every command is one process over an on-disk store (--root).",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.root, "root", os.Getenv("KILN_ROOT"),
		"store directory (default /var/lib/kiln as root, $XDG_DATA_HOME/kiln otherwise; env KILN_ROOT)")
	root.PersistentFlags().BoolVar(&g.debug, "debug", false, "print debugging details")
	root.PersistentFlags().StringVar(&g.runtime, "runtime", os.Getenv("KILN_RUNTIME"),
		"OCI runtime: crun, runc or a path (default: crun when it works on this host, else runc; env KILN_RUNTIME)")
	root.PersistentFlags().StringVar(&g.isolation, "isolation", os.Getenv("KILN_ISOLATION"),
		"isolation: auto (the strongest that works here), oci (root: namespaces and mounts), rootless (a user namespace) or chroot (root in an unprivileged container: chroot(2), no namespaces; see the README) (env KILN_ISOLATION)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return g.enterRootless(cmd) }
	g.registry.register(root)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(commands(g)...)
	root.AddCommand(missingCommands(root.Commands())...)
	return root
}

// commands lists every verb; one constructor per file.
func commands(g *globalOptions) []*cobra.Command {
	return []*cobra.Command{
		newBuildCmd(g), newRunCmd(g), newExecCmd(g), newImagesCmd(g), newInspectCmd(g), newTagCmd(g), newRmiCmd(g),
		newSaveCmd(g), newLoadCmd(g), newPsCmd(g), newLogsCmd(g), newStopCmd(g), newKillCmd(g), newStartCmd(g),
		newRestartCmd(g), newRmCmd(g), newContainerCmd(g), newMonitorCmd(g), newPullCmd(g), newPushCmd(g), newLoginCmd(g), newLogoutCmd(g), newPruneCmd(g), newSystemCmd(g), newCacheCmd(g), newVersionCmd(),
		newImageCmd(g),
		newBuilderCmd(g),
		newHistoryCmd(g),
		newWaitCmd(g), newAttachCmd(g), newRenameCmd(g), newPortCmd(g), newTopCmd(g), newDiffCmd(g), newCpCmd(g),
		newExportCmd(g), newImportCmd(g), newCommitCmd(g), newCreateCmd(g), newPauseCmd(g), newUnpauseCmd(g), newStatsCmd(g), newUpdateCmd(g),
		newGenerateKeyCmd(), newSignCmd(g), newVerifyCmd(g),
		newVolumeCmd(g),
		newNetworkCmd(g),
		newGenerateCmd(g),
	}
}

// execute runs kiln with args and returns the process exit code.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ue usageError
	var ce exitCodeError
	switch {
	case errors.As(err, &ce):
		if ce.err != nil {
			fmt.Fprintf(stderr, "kiln: %v\n", ce.err)
		}
		return ce.code
	case errors.As(err, &ue) || isCobraUsage(err):
		fmt.Fprintf(stderr, "kiln: %v\nSee 'kiln --help'.\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "kiln: %v\n", err)
	return 1
}

// isCobraUsage recognizes cobra's own command-line errors, which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "flag needs an argument")
}

// argsRange validates the number of positional arguments, as a usage error.
func argsRange(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			want := fmt.Sprintf("%d", min)
			switch {
			case max < 0:
				want = fmt.Sprintf("at least %d", min)
			case max != min:
				want = fmt.Sprintf("%d to %d", min, max)
			}
			return usageError{fmt.Errorf("%q requires %s argument(s), got %d\nUsage: %s", cmd.CommandPath(), want, len(args), cmd.UseLine())}
		}
		return nil
	}
}
