package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Run runs the container described by s in the foreground and returns its process's exit status
// (128+n after signal n; 127 when the command is not found and 126 when it cannot be executed,
// as in docker). Cancelling ctx stops the container (SIGTERM, then SIGKILL after s.StopGrace);
// the rootfs is unmounted and the runtime state removed in every case. The error reports kiln's
// or the runtime's failures and cancellation, never a non-zero exit of the process.
func Run(ctx context.Context, s Spec) (ExitStatus, error) {
	if s.StateDir == "" {
		s.StateDir = DefaultStateDir
	}
	if err := os.MkdirAll(s.StateDir, 0o700); err != nil {
		return -1, fmt.Errorf("create runtime state dir: %w", err)
	}
	r, err := pickRunner(ctx, s.StateDir, s.Runtime, s.Debug)
	if err != nil {
		return -1, err
	}
	return runWith(ctx, r, s)
}

// runWith prepares the bundle, runs the container with r and tears everything down again.
func runWith(ctx context.Context, r Runner, s Spec) (status ExitStatus, err error) {
	if err := checkSpec(s); err != nil {
		return -1, err
	}
	if err := os.MkdirAll(s.BundleDir, 0o700); err != nil {
		return -1, fmt.Errorf("create bundle dir: %w", err)
	}
	o := owner{ID: s.ID, Bundle: s.BundleDir}
	if or, ok := r.(*ociRunner); ok {
		o.Runtime, o.Root = or.path, or.root
	}
	if err := writeOwner(s.StateDir, o); err != nil {
		return -1, err
	}
	files, err := mountFiles(s)
	if err != nil {
		removeOwner(s.StateDir, s.ID) //nolint:errcheck // nothing is mounted; the record is harmless
		return -1, err
	}
	s.Mounts = append(slices.Clip(s.Mounts), files...)
	rootfs, err := mountRootfs(s.BundleDir, s.Lower, s.Upper, s.Work)
	if err != nil {
		if ferr := unmountFiles(s.StateDir, s.ID); ferr != nil {
			return -1, errors.Join(err, ferr) // keep the record: Cleanup retries
		}
		removeOwner(s.StateDir, s.ID) //nolint:errcheck // nothing is mounted; the record is harmless
		return -1, err
	}
	stubs := findStubs(rootfs, s)
	defer func() {
		if uerr := unmountRootfs(s.BundleDir); uerr != nil {
			err = errors.Join(err, uerr) // keep the record: Cleanup retries the unmount
			return
		}
		if ferr := unmountFiles(s.StateDir, s.ID); ferr != nil {
			err = errors.Join(err, ferr) // keep the record: Cleanup retries
			return
		}
		err = errors.Join(err, stubs.pruneUpper(), removeOwner(s.StateDir, s.ID))
	}()
	defer func() { err = errors.Join(err, stubs.remove()) }()
	if s.Network == NetworkBridge {
		if s.ip, err = attachNetwork(ctx, s); err != nil {
			return -1, err
		}
		defer func() { err = errors.Join(err, detachNetwork(context.WithoutCancel(ctx), s.StateDir, s.ID)) }()
	}
	if _, err := WriteConfig(s, rootfs); err != nil {
		return -1, err
	}
	return runContainer(ctx, r, s)
}

type runResult struct {
	code int
	err  error
}

// runContainer runs the bundle and stops the container when ctx is cancelled.
func runContainer(ctx context.Context, r Runner, s Spec) (ExitStatus, error) {
	done := make(chan runResult, 1)
	go func() {
		code, err := r.Run(s.BundleDir, s.ID, Stdio{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr, Terminal: s.Terminal})
		done <- runResult{code, err}
	}()
	select {
	case res := <-done:
		return exitStatus(res, s.ID)
	case <-ctx.Done():
	}
	res := stopContainer(r, s, done)
	if err := r.Delete(context.Background(), s.ID); err != nil {
		return ExitStatus(res.code), errors.Join(fmt.Errorf("container %s: %w", s.ID, context.Cause(ctx)), err)
	}
	return ExitStatus(res.code), fmt.Errorf("container %s stopped: %w", s.ID, context.Cause(ctx))
}

// stopContainer sends SIGTERM, then SIGKILL after the grace period, retrying while the runtime
// may still be creating the container, until the foreground run returns.
func stopContainer(r Runner, s Spec, done <-chan runResult) runResult {
	grace := s.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	deadline := time.Now().Add(grace)
	termSent := false
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if !termSent || time.Now().After(deadline) {
			sig := syscall.SIGTERM
			if termSent {
				sig = syscall.SIGKILL
			}
			kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			termSent = r.Kill(kctx, s.ID, sig) == nil || termSent
			cancel()
		}
		select {
		case res := <-done:
			return res
		case <-tick.C:
		}
	}
}

// exitStatus maps the runtime's failure to exec the command onto docker's 127 and 126.
func exitStatus(res runResult, id string) (ExitStatus, error) {
	var se *StartError
	if !errors.As(res.err, &se) {
		if res.err != nil {
			return -1, fmt.Errorf("container %s: %w", id, res.err)
		}
		return ExitStatus(res.code), nil
	}
	msg := strings.ToLower(se.Msg)
	// runc says `exec: "x": ...`, crun "executable file `x` not found" or "execv ...".
	if strings.Contains(msg, `exec: "`) || strings.Contains(msg, "executable") || strings.Contains(msg, "execv") {
		switch {
		case strings.Contains(msg, "not found") || strings.Contains(msg, "no such file"):
			return 127, nil
		case strings.Contains(msg, "permission denied") || strings.Contains(msg, "exec format error"):
			return 126, nil
		}
	}
	return -1, fmt.Errorf("container %s: %w", id, res.err)
}
