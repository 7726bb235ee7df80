package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-build/kiln/internal/passwd"
	"github.com/kiln-build/kiln/runtime"
)

// buildHostname is the hostname RUN steps see; fixed so that builds are reproducible.
const buildHostname = "kiln-build"

// RuntimeRunner runs RUN steps as isolated containers with the process's one runtime.
type RuntimeRunner struct {
	Runtime *runtime.Runtime
	// UserMode gives RUN steps of the default network a user-mode network (slirp4netns) of
	// their own instead of the host's: rootless, as podman build, so that a build reaches the
	// internet without sharing the user's loopback services.
	UserMode bool
}

// InTree says whether RUN steps run in place in a materialized tree (the chroot rung).
func (r RuntimeRunner) InTree() bool { return r.Runtime.Isolation() == runtime.IsolationChroot }

// PrepareTree places the chroot rung's device nodes and /etc files (runtime.PrepareChroot).
func (r RuntimeRunner) PrepareTree(rootfs string) ([]string, func() error, error) {
	cf, err := r.Runtime.PrepareChroot(rootfs)
	if err != nil {
		return nil, nil, err
	}
	return cf.Paths, cf.Restore, nil
}

// Run executes req over its layers (or in req.Rootfs); a non-zero exit becomes an *ExitError.
func (r RuntimeRunner) Run(ctx context.Context, req RunRequest) error {
	base := req.Upper
	if req.Rootfs != "" {
		base = req.Rootfs
	}
	bundle := filepath.Join(filepath.Dir(base), "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return err
	}
	network := runtime.NetworkHost // docker's default for RUN
	switch {
	case req.Network == "none":
		network = runtime.NetworkNone
	case req.Network != "host" && r.UserMode:
		network = runtime.NetworkSlirp
	}
	var mounts []runtime.Mount
	var files []runtime.File
	for _, m := range req.Mounts {
		if sec := m.Secret; sec != nil {
			if sec.UID < 0 || sec.UID > passwd.MaxID || sec.GID < 0 || sec.GID > passwd.MaxID {
				return fmt.Errorf("secret at %s: uid and gid must be from 0 to %d", m.Target, uint64(passwd.MaxID))
			}
			files = append(files, runtime.File{Target: m.Target, Data: sec.Data, Mode: sec.Mode, UID: uint32(sec.UID), GID: uint32(sec.GID)})
			continue
		}
		rm := runtime.Mount{Type: runtime.Bind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Options: m.Options}
		if m.Tmpfs {
			rm.Type = runtime.Tmpfs
		}
		mounts = append(mounts, rm)
	}
	code, err := r.Runtime.Run(ctx, runtime.Spec{
		ID: req.ID, Lower: req.Lower, Upper: req.Upper, Work: req.Work, Rootfs: req.Rootfs, BundleDir: bundle,
		Args: req.Args, Env: req.Env, Cwd: req.Cwd, User: req.User, Hostname: buildHostname, Mounts: mounts, Files: files,
		Network: network, Stdout: req.Output, Stderr: req.Output,
		NewPrivileges: true, // as BuildKit: `USER app` then `RUN sudo …` works
		SecretEnv:     req.SecretEnv, HostAccess: runtime.HostAccess{ExtraHosts: req.ExtraHosts, Ulimits: req.Ulimits, ShmSize: req.ShmSize},
	})
	var ce *runtime.CommandError
	if errors.As(err, &ce) {
		return &ExitError{Code: int(ce.Status), Reason: ce.Msg}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &ExitError{Code: int(code)}
	}
	return nil
}
