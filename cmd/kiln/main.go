// Command kiln builds, runs and pushes OCI images without a daemon.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kiln-build/kiln/runtime"
)

func main() {
	runtime.UserNamespaceHook() // a re-exec into the rootless user namespace finishes here
	runtime.ChrootHook()        // so does the child that runs one process of the chroot rung
	ctx, stop := signalContext()
	code := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// signalContext is cancelled by the first SIGINT or SIGTERM, and every command winds down
// cleanly; from then on the default action is back, so a second signal ends kiln even if
// something hangs.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	// A reader that goes away (`kiln export c | head`) makes writes fail with EPIPE instead of
	// killing kiln mid-way, so it still unmounts and removes what it set up. Notify, not Ignore:
	// an ignored SIGPIPE would be inherited by the runtime and the containers' processes.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	return ctx, stop
}
