package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNotFound reports that a blob, tag, image or cache record is absent; test with errors.Is.
var ErrNotFound = errors.New("not found")

// ErrDigest reports content that does not hash to the digest it was stored or fetched as.
var ErrDigest = errors.New("digest mismatch")

// ErrInUse is returned by OpenExclusive while other kiln processes (or Stores) use the root.
var ErrInUse = errors.New("store is in use by another kiln process; retry when it finishes")

// staleAge is how old an entry under tmp/ must be before Open may remove it.
const staleAge = time.Hour

// Store is one open kiln root. Its methods are safe for concurrent use by many goroutines,
// and many processes may open the same root at once.
type Store struct {
	root      string
	gcLock    *flock.Flock
	exclusive bool
	opened    time.Time
	// stage is this Store's staging under tmp/, made on first use: most commands never
	// stage anything, and creating a file and a directory costs about a millisecond here.
	stageOnce sync.Once
	stage     *staging
	stageErr  error
	// gcMu keeps this Store's own writers out while its GC deletes.
	gcMu sync.RWMutex
	// fetch brings in blobs that only a remote record names (lazy cache import).
	fetch fetchState
	// unsynced is set once a write skipped its fsync, until Flush makes it durable.
	unsynced atomic.Bool
	// mountUse lists the cache mounts this Store's builds used, for --cache-to mounts=true.
	mountUse mountUse
}

// Open opens (creating if absent) the store at root and holds a shared lock on it until
// Close, so that no GC runs underneath. It waits while a GC holds the store.
func Open(root string) (*Store, error) {
	s, err := create(root)
	if err != nil {
		return nil, err
	}
	// Nobody else holding the store means whatever is left in tmp/ was abandoned.
	if ok, err := s.gcLock.TryLock(); err == nil && ok {
		cleanLegacyTmp(s.tmpRoot(), time.Now().Add(-staleAge))
		if err := s.gcLock.Unlock(); err != nil {
			return nil, fmt.Errorf("unlock %s: %w", s.gcLock.Path(), err)
		}
	}
	if err := s.gcLock.RLock(); err != nil {
		s.closeStaging()
		return nil, fmt.Errorf("lock store %s: %w", root, err)
	}
	return s, nil
}

// OpenExclusive opens the store at root for GC: it fails with ErrInUse rather than wait
// while any other Store (in this or another process) has the root open.
func OpenExclusive(root string) (*Store, error) {
	s, err := create(root)
	if err != nil {
		return nil, err
	}
	ok, err := s.gcLock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock store %s: %w", root, err)
	}
	if !ok {
		s.closeStaging()
		return nil, fmt.Errorf("open %s exclusively: %w", root, ErrInUse)
	}
	s.exclusive = true
	return s, nil
}

// create makes the directory skeleton and the OCI layout marker files if they are missing.
func create(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("open store: empty root path")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	s := &Store{root: abs, opened: time.Now()}
	if err := s.makeDirs(); err != nil {
		return nil, fmt.Errorf("create store %s: %w", abs, err)
	}
	sweepDeadOwners(s.tmpRoot())
	if err := s.initLayout(); err != nil {
		s.closeStaging()
		return nil, fmt.Errorf("create store %s: %w", abs, err)
	}
	s.gcLock = flock.New(filepath.Join(abs, "gc.lock"), flock.SetPermissions(0o600))
	return s, nil
}

// initLayout writes oci-layout and an empty index.json once; existing files are kept.
func (s *Store) initLayout() error {
	marker := filepath.Join(s.root, "oci-layout")
	if _, err := os.Stat(marker); os.IsNotExist(err) {
		if err := s.writeFileAtomic(marker, []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return err
		}
	}
	if _, err := os.Stat(s.indexPath()); os.IsNotExist(err) {
		data := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
		// Take the index lock so that two processes creating the root do not race a first Tag.
		return s.withIndexLockNoCtx(func() error {
			if _, err := os.Stat(s.indexPath()); err == nil {
				return nil
			}
			return s.writeFileAtomic(s.indexPath(), data, 0o644)
		})
	}
	return nil
}

// Close removes what this Store left staged and releases the store lock; the Store (and
// any TempDir it made) must not be used afterwards.
func (s *Store) Close() error {
	stageErr := s.closeStaging()
	if err := s.gcLock.Close(); err != nil {
		return fmt.Errorf("unlock store %s: %w", s.root, err)
	}
	if stageErr != nil {
		return fmt.Errorf("close store %s: remove staging: %w", s.root, stageErr)
	}
	return nil
}

// Root is the absolute path of the store, for messages and for tools that read the layout.
func (s *Store) Root() string { return s.root }

// TempDir makes a fresh directory in this Store's staging under root/tmp, on the same
// filesystem as snapshots, so a finished tree (e.g. a RUN step's upper dir) can be adopted by
// rename. It lives until the caller removes it or the Store is closed, and no longer than
// this process: the next Open of any kiln process removes a dead owner's staging.
func (s *Store) TempDir(prefix string) (string, error) {
	tmp, err := s.tmpDir()
	if err != nil {
		return "", err
	}
	d, err := os.MkdirTemp(tmp, prefix+"*")
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	return d, nil
}

func (s *Store) blobDir() string   { return filepath.Join(s.root, "blobs", "sha256") }
func (s *Store) snapDir() string   { return filepath.Join(s.root, "snapshots") }
func (s *Store) recordDir() string { return filepath.Join(s.root, "cache", "index", "sha256") }
func (s *Store) tmpRoot() string   { return filepath.Join(s.root, "tmp") }

// tmpDir is this Store's staging dir, made on first use.
func (s *Store) tmpDir() (string, error) {
	s.stageOnce.Do(func() { s.stage, s.stageErr = newStaging(s.tmpRoot()) })
	if s.stageErr != nil {
		return "", s.stageErr
	}
	return s.stage.dir, nil
}

// closeStaging removes this Store's staging, if it made any.
func (s *Store) closeStaging() error {
	s.stageOnce.Do(func() {}) // no staging from now on
	if s.stage == nil {
		return nil
	}
	return s.stage.close()
}
func (s *Store) lockDir() string       { return filepath.Join(s.root, "locks") }
func (s *Store) indexPath() string     { return filepath.Join(s.root, "index.json") }
func (s *Store) indexLockPath() string { return filepath.Join(s.root, "index.lock") }

func (s *Store) snapshotPath(diffID v1.Hash) string { return filepath.Join(s.snapDir(), diffID.Hex) }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
