package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Run runs the container described by s in the foreground and returns its process's exit status
// (128+n after signal n; 127 when the command is not found and 126 when it cannot be executed,
// as in docker): Start, then Wait. Cancelling ctx stops the container (SIGTERM, then SIGKILL
// after s.StopGrace); the rootfs is unmounted and the runtime state removed in every case. The
// error reports kiln's or the runtime's failures and cancellation, never a non-zero exit.
func (rt *Runtime) Run(ctx context.Context, s Spec) (ExitStatus, error) {
	if rt.isolation == IsolationChroot {
		return rt.runChroot(ctx, s)
	}
	c, err := rt.Start(ctx, s)
	if err != nil {
		return -1, err
	}
	return c.Wait(context.WithoutCancel(ctx)) // ctx stops the container; Wait sees it through
}

// prepare records the owner, mounts the in-memory files and the rootfs, attaches the network and
// writes config.json; teardown undoes all of it (keeping the owner record for Cleanup when an
// unmount fails).
func (rt *Runtime) prepare(ctx context.Context, r *ociRunner, s *Spec) (teardown func() error, err error) {
	if err := os.MkdirAll(s.BundleDir, 0o700); err != nil {
		return nil, fmt.Errorf("create bundle dir: %w", err)
	}
	if err := writeOwner(s.stateDir, owner{ID: s.ID, Bundle: s.BundleDir, Runtime: r.path, Root: r.root}); err != nil {
		return nil, err
	}
	files, err := mountFiles(*s)
	if err != nil {
		removeOwner(s.stateDir, s.ID) //nolint:errcheck // nothing is mounted; the record is harmless
		return nil, err
	}
	s.Mounts = append(slices.Clip(s.Mounts), files...)
	rootfs, err := mountRootfsNote(s.BundleDir, s.Lower, s.Upper, s.Work, s.Volatile, rt.debug)
	if err != nil {
		if ferr := unmountFiles(s.stateDir, s.ID); ferr != nil {
			return nil, errors.Join(err, ferr) // keep the record: Cleanup retries
		}
		removeOwner(s.stateDir, s.ID) //nolint:errcheck // nothing is mounted; the record is harmless
		return nil, err
	}
	stubs := findStubs(rootfs, *s)
	fuse := isFuseMount(rootfs)
	bridged := false
	var sl *slirp
	teardown = func() error {
		var errs []error
		if sl != nil {
			errs = append(errs, sl.stop())
		}
		if bridged {
			errs = append(errs, detachNetwork(context.WithoutCancel(ctx), s.stateDir, s.ID))
		}
		errs = append(errs, stubs.remove())
		if err := unmountRootfs(s.BundleDir); err != nil {
			return errors.Join(append(errs, err)...) // keep the record: Cleanup retries the unmount
		}
		if err := unmountFiles(s.stateDir, s.ID); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if fuse {
			errs = append(errs, normalizeFuseUpper(s.Upper, s.Lower))
		}
		return errors.Join(append(errs, stubs.pruneUpper(), removeOwner(s.stateDir, s.ID))...)
	}
	if s.Network == NetworkBridge {
		bridged = true // a half-made attachment is undone too
		if s.ip, err = attachNetwork(ctx, *s); err != nil {
			return nil, errors.Join(err, teardown())
		}
	}
	if s.Network == NetworkSlirp {
		if sl, err = startSlirp(ctx, *s); err != nil {
			return nil, errors.Join(err, teardown())
		}
		s.ip = slirpGuest
	}
	if _, err := WriteConfig(*s, rootfs); err != nil {
		return nil, errors.Join(err, teardown())
	}
	if s.Network == NetworkBridge && s.Bridge.Resolve {
		if err := joinHosts(ctx, *s); err != nil {
			return nil, errors.Join(err, teardown())
		}
	}
	return teardown, nil
}

type runResult struct {
	code int
	err  error
}

// exitStatus maps the runtime's failure to exec the command onto docker's 127 and 126, with a
// *CommandError that says why.
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
			return 127, &CommandError{Status: 127, Msg: se.Msg}
		case strings.Contains(msg, "permission denied") || strings.Contains(msg, "exec format error"):
			return 126, &CommandError{Status: 126, Msg: se.Msg}
		}
	}
	return -1, fmt.Errorf("container %s: %w", id, res.err)
}
