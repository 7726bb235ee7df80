package cache

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// Lock polling backs off from lockMinWait to lockMaxWait: index rewrites are held for
// microseconds, snapshot unpacks for seconds, and flock has no context-aware blocking call.
const (
	lockMinWait = 500 * time.Microsecond
	lockMaxWait = 50 * time.Millisecond
)

// withFileLock runs fn while holding an exclusive flock on path, waiting until ctx ends.
func withFileLock(ctx context.Context, path string, fn func() error) error {
	l := flock.New(path, flock.SetPermissions(0o644))
	if err := lockContext(ctx, l); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer l.Close()
	return fn()
}

// lockContext takes l exclusively, polling with exponential backoff until ctx is done.
func lockContext(ctx context.Context, l *flock.Flock) error {
	wait := lockMinWait
	for {
		ok, err := l.TryLock()
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, lockMaxWait)
	}
}

// withIndexLock serializes rewrites of index.json across goroutines and processes.
func (s *Store) withIndexLock(ctx context.Context, fn func() error) error {
	return withFileLock(ctx, s.indexLockPath(), fn)
}

// withIndexLockNoCtx is withIndexLock for callers that have no context (Open).
func (s *Store) withIndexLockNoCtx(fn func() error) error {
	return withFileLock(context.Background(), s.indexLockPath(), fn)
}

// withSnapshotLock lets exactly one caller at a time create the snapshot with this hex id.
func (s *Store) withSnapshotLock(ctx context.Context, hex string, fn func() error) error {
	return withFileLock(ctx, filepath.Join(s.lockDir(), hex+".lock"), fn)
}
