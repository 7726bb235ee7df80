package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Cleanup removes what killed kiln processes left behind under the state dir: containers still
// known to the runtime, their rootfs mounts, in-memory files, networks and cgroups. Runs owned
// by a living kiln process are left alone, so it is safe to call at every start.
func (rt *Runtime) Cleanup(ctx context.Context) error {
	stateDir := rt.stateDir
	owners, err := readOwners(stateDir)
	if err != nil {
		return err
	}
	live := &liveRuns{stateDir: stateDir, known: map[string]bool{}}
	var errs []error
	var dead []string
	for _, o := range owners {
		if o.alive() {
			live.known[o.ID] = true
			continue
		}
		if err := cleanupOwner(ctx, stateDir, o); err != nil {
			errs = append(errs, err)
			live.known[o.ID] = true // keep its cgroups until the container is really gone
			continue
		}
		dead = append(dead, o.ID)
	}
	errs = append(errs, cleanupRuntimes(ctx, stateDir, live))
	errs = append(errs, cleanupNetworks(ctx, stateDir, live))
	errs = append(errs, cleanupFiles(stateDir, live))
	errs = append(errs, cleanupProbes(stateDir))
	errs = append(errs, cleanupCgroups(dead))
	return errors.Join(errs...)
}

// liveRuns says which containers a living kiln process owns. A run that started after Cleanup
// read the owner records is not in known, but its owner record was written before its runtime
// state, network or cgroup existed: so whatever a sweep finds and known lacks is checked
// against a fresh read of that one record before it is touched.
type liveRuns struct {
	stateDir string
	known    map[string]bool
}

func (l *liveRuns) has(id string) bool {
	if l.known[id] {
		return true
	}
	o, ok := readOwner(l.stateDir, id)
	return ok && o.alive()
}

// cleanupOwner kills and deletes a dead owner's container, then unmounts its rootfs.
func cleanupOwner(ctx context.Context, stateDir string, o owner) error {
	if o.Runtime != "" {
		r := ownerRunner(o)
		r.kill(ctx, o.ID, syscall.SIGKILL) //nolint:errcheck // it may have exited already
		if err := r.delete(ctx, o.ID); err != nil {
			return fmt.Errorf("clean up container %s: %w", o.ID, err)
		}
	}
	if o.Bundle != "" {
		if err := unmountRootfs(o.Bundle); err != nil {
			return fmt.Errorf("clean up container %s: %w", o.ID, err)
		}
	}
	if err := unmountFiles(stateDir, o.ID); err != nil {
		return fmt.Errorf("clean up container %s: %w", o.ID, err)
	}
	if err := detachNetwork(ctx, stateDir, o.ID); err != nil {
		return fmt.Errorf("clean up container %s: %w", o.ID, err)
	}
	return removeOwner(stateDir, o.ID)
}

// cleanupRuntimes deletes containers in kiln's runtime state roots that no live run owns.
func cleanupRuntimes(ctx context.Context, stateDir string, live *liveRuns) error {
	var errs []error
	for _, name := range []string{"crun", "runc"} {
		root := filepath.Join(stateDir, name)
		if !hasForeignState(root, live) {
			continue // nothing to delete: skip exec'ing the runtime, which costs ~10 ms per call
		}
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		r := newOCIRunner(path, "", root)
		ids, err := r.list(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, id := range ids {
			if live.has(id) {
				continue
			}
			r.kill(ctx, id, syscall.SIGKILL) //nolint:errcheck // it may have exited already
			if err := r.delete(ctx, id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// hasForeignState reports whether a runtime state root holds a container (crun and runc
// keep one directory per container) that no live run owns.
func hasForeignState(root string, live *liveRuns) bool {
	ents, err := os.ReadDir(root)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.IsDir() && !live.has(e.Name()) {
			return true
		}
	}
	return false
}

// cleanupProbes removes probe bundles of killed runtime probes (plain dirs, nothing mounted);
// young ones may belong to a probe running right now in another kiln process.
func cleanupProbes(stateDir string) error {
	dirs, err := filepath.Glob(filepath.Join(stateDir, "probe-bundle-*"))
	if err != nil {
		return fmt.Errorf("find probe leftovers: %w", err)
	}
	var errs []error
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("remove probe leftover: %w", err))
		}
	}
	return errors.Join(errs...)
}
