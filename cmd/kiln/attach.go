package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/containerd/console"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/container"
)

type attachOptions struct {
	detachKeys        string
	noStdin, sigProxy bool
	held              bool // the monitor holds the container's start for this client (start -ai)
}

func newAttachCmd(g *globalOptions) *cobra.Command {
	o := &attachOptions{}
	c := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Long: "Connect this terminal to a running container's monitor: its output from now on (stdout and\n" +
			"stderr), and its input when it was started with -i. A -t container's terminal is this one, in\n" +
			"raw mode, resized with it; the detach keys (ctrl-p ctrl-q) leave it running. Without -t, SIGINT\n" +
			"and SIGTERM go to the container (--sig-proxy). Several clients may attach at once: all see the\n" +
			"output, any may type; one that falls 4 MiB behind is disconnected, never the container slowed.\n" +
			"The exit code is the container's when it exits while attached; 1 after detaching.",
		Example: "  kiln run -d -it --name box busybox sh\n  kiln attach box\n  kiln attach --detach-keys ctrl-x,x box\n" +
			"  kiln attach --no-stdin web",
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, c, err := getContainer(g, args[0])
			if err != nil {
				return err
			}
			return attachExit(attachTo(cmd, g, cs, c, o))
		},
	}
	f := c.Flags()
	f.StringVar(&o.detachKeys, "detach-keys", "", "override the key sequence for detaching a container (default ctrl-p,ctrl-q)")
	f.BoolVar(&o.noStdin, "no-stdin", false, "do not attach STDIN")
	f.BoolVar(&o.sigProxy, "sig-proxy", true, "proxy received signals to the process (containers without -t)")
	return c
}

// attachExit turns attach's end into kiln's exit: the container's code, docker's 1 and message
// after a detach, 128+n when a signal ended this client.
func attachExit(code int, err error) error {
	var se signalEnd
	switch {
	case errors.As(err, &se):
		return exitCodeError{code: 128 + int(se)}
	case err != nil:
		return err
	case code != 0:
		return exitCodeError{code: code}
	}
	return nil
}

// signalEnd says a signal ended the attach client (the container runs on).
type signalEnd syscall.Signal

func (s signalEnd) Error() string { return syscall.Signal(s).String() }

// attachTo attaches this process's stdio to c until it exits, the user detaches, or a signal
// ends the client; the terminal is restored on every way out but SIGKILL.
func attachTo(cmd *cobra.Command, g *globalOptions, cs *container.Store, c *container.Container, o *attachOptions) (int, error) {
	keys := container.DefaultDetachKeys
	if o.detachKeys != "" {
		var err error
		if keys, err = container.ParseDetachKeys(o.detachKeys); err != nil {
			return 0, err
		}
	}
	tty := c.Spec.Terminal
	ao := container.AttachOptions{Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(), Held: o.held}
	if !o.noStdin && c.OpenStdin {
		ao.Stdin = cmd.InOrStdin()
	}
	// A signal ends this client (or, proxied, goes to the container): never main's context.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(cmd.Context()))
	defer cancel(nil)
	var restore func()
	if tty {
		con, err := clientTerminal(cmd, ao.Stdin)
		if err != nil {
			return 0, err
		}
		if ao.Stdin != nil {
			if err := con.SetRaw(); err != nil {
				return 0, fmt.Errorf("attach: raw terminal: %w", err)
			}
			restore = func() { con.Reset() } //nolint:errcheck // best effort on the way out
			defer restore()
			ao.DetachKeys = keys
		}
		if con != nil {
			ao.Resize = watchTermSize(ctx, con)
		}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	go relaySignals(ctx, cmd, g, cs, c, o.sigProxy && !tty, sigs, cancel)
	code, err := c.Attach(ctx, ao)
	if restore != nil {
		restore() // before any message: it must not print in raw mode
	}
	if errors.Is(err, container.ErrDetached) {
		fmt.Fprintln(cmd.ErrOrStderr(), err) // docker's words and exit code
		return 0, exitCodeError{code: 1}
	}
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return 0, cause
	}
	return code, err
}

// relaySignals sends the signals kiln attach receives to the container (proxy), or ends the
// client with the first one.
func relaySignals(ctx context.Context, cmd *cobra.Command, g *globalOptions, cs *container.Store, c *container.Container, proxy bool, sigs <-chan os.Signal, end context.CancelCauseFunc) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sigs:
			sig := s.(syscall.Signal)
			if !proxy {
				end(signalEnd(sig))
				return
			}
			rt, err := g.containerRuntime(cmd)
			if err == nil {
				err = cs.Kill(ctx, rt, c, sig)
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "kiln: attach: forwarding %v: %v\n", sig, err)
			}
		}
	}
}

// clientTerminal is the terminal a -t container is attached to; input from anything else is
// refused, as docker does.
func clientTerminal(cmd *cobra.Command, stdin io.Reader) (console.Console, error) {
	if stdin != nil {
		f, ok := stdin.(*os.File)
		if !ok {
			return nil, errors.New("the input device is not a TTY: attach with --no-stdin, or from a terminal")
		}
		con, err := console.ConsoleFromFile(f)
		if err != nil {
			return nil, errors.New("the input device is not a TTY: attach with --no-stdin, or from a terminal")
		}
		return con, nil
	}
	if f, ok := cmd.OutOrStdout().(*os.File); ok {
		if con, err := console.ConsoleFromFile(f); err == nil {
			return con, nil
		}
	}
	return nil, nil
}

// watchTermSize sends con's size now and after every SIGWINCH until ctx ends. The first size is
// one row and column larger, docker's way to make a shell that is already at the right size
// redraw its prompt for a client attaching again.
func watchTermSize(ctx context.Context, con console.Console) <-chan container.TermSize {
	ch := make(chan container.TermSize)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	send := func(grow uint16) bool {
		ws, err := con.Size()
		if err != nil || ws.Height == 0 || ws.Width == 0 {
			return true
		}
		select {
		case ch <- container.TermSize{Rows: ws.Height + grow, Cols: ws.Width + grow}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer signal.Stop(winch)
		if !send(1) || !send(0) {
			return
		}
		for {
			select {
			case <-winch:
				if !send(0) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}
