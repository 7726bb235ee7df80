// Command kiln builds, runs and pushes OCI images without a daemon.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/kiln-build/kiln/runtime"
)

func main() {
	runtime.UserNamespaceHook() // a re-exec into the rootless user namespace finishes here
	runtime.ChrootHook()        // so does the child that runs one process of the chroot rung
	tuneGC()
	ctx, stop := signalContext()
	code := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// tuneGC trades memory for time in a short-lived process: a no-op rebuild of a 20,000-file
// context allocates ~24 MB, and the default GOGC=100 collects it three times (GOGC=400 measured
// ~10% faster). The soft limit keeps the heap near 1 GiB where a build's live data is larger.
// GOGC and GOMEMLIMIT, when set, win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
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
