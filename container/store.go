package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/atomicfile"
)

// Files of one container directory.
const (
	configFile  = "container.json"
	stateFile   = "state.json"
	logFile     = "log.json"
	monitorLock = "monitor.lock"
)

// errTornRecord is an empty container.json: only a --rm container's record, written without
// fsync, can be left so, by an OS crash that also ended the container.
var errTornRecord = errors.New("empty container record")

// Store is the containers/ place of a kiln store.
type Store struct {
	root     string // the kiln store's root, to open it for leases
	dir      string
	networks string // the store's networks/ place
	lockPath string
}

// Open returns the container store of the kiln store at root.
func Open(root string) (*Store, error) {
	st, err := cache.Open(root)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	// The lock lives with the store's other locks, so containers/ holds containers only.
	return &Store{root: st.Root(), dir: st.Containers(), networks: st.Networks(), lockPath: filepath.Join(st.Locks(), "containers.lock")}, nil
}

// lock serializes changes of names and the set of containers across kiln processes.
func (s *Store) lock(ctx context.Context) (func(), error) {
	l := flock.New(s.lockPath, flock.SetPermissions(0o600))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := l.TryLockContext(ctx, 10*time.Millisecond); err != nil {
		return nil, fmt.Errorf("lock containers dir: %w", err)
	}
	return func() { l.Unlock() }, nil //nolint:errcheck // closing the fd releases the lock anyway
}

// Container is one container directory and its fixed configuration.
type Container struct {
	Config
	dir string
}

// Dir is the container's directory, containers/<id>.
func (c *Container) Dir() string { return c.dir }

// LogPath is the current json-lines log file.
func (c *Container) LogPath() string { return filepath.Join(c.dir, logFile) }

// State reads the container's current state, marking it MonitorLost when its monitor died.
func (c *Container) State() (State, error) { return readState(c.dir) }

// ShortID is the 12-character id docker shows.
func (c *Container) ShortID() string { return c.ID[:12] }

// Create reserves cfg.Name (or a random one), makes the container's directory with its overlay
// upper, work and bundle dirs, and records cfg; Spec's ID and paths are filled in.
func (s *Store) Create(ctx context.Context, cfg Config) (*Container, error) {
	if cfg.Name != "" && !validName(cfg.Name) {
		return nil, fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", cfg.Name)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	s.sweep()
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = freeName(all)
	}
	for _, c := range all {
		if c.Name == cfg.Name {
			return nil, &NameConflictError{Name: cfg.Name, ID: c.ID}
		}
	}
	if cfg.ID, err = newID(); err != nil {
		return nil, err
	}
	if err := s.checkNetwork(&cfg); err != nil {
		return nil, err
	}
	if cfg.Created.IsZero() {
		cfg.Created = time.Now().UTC()
	}
	// The image store stays open (so no GC runs) from the check that the image's snapshots
	// are there, through the lease, until the container exists.
	st, err := cache.Open(s.root)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	for _, l := range cfg.Spec.Lower {
		if _, err := os.Stat(l); err != nil {
			return nil, fmt.Errorf("image %s: a layer was removed while the container was being created; run it again: %w", cfg.Image, err)
		}
	}
	undo, err := s.attachVolumes(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	c := &Container{Config: cfg, dir: filepath.Join(s.dir, cfg.ID)}
	if err := st.PutLease(c.lease(st)); err != nil {
		undo()
		return nil, err
	}
	if err := s.materialize(c); err != nil {
		_ = st.DeleteLease(c.leaseID())
		undo()
		return nil, err
	}
	return c, nil
}

// sweep removes what crashes left: directories a Create or Remove did not finish (.new-, .rm-)
// and --rm containers an OS crash ended (empty records). Only under the store lock, which
// every Create and Remove holds while such a directory exists. Errors are ignored: the next
// Create tries again.
func (s *Store) sweep() {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(s.dir, name)
		switch {
		case strings.HasPrefix(name, ".new-"), strings.HasPrefix(name, ".rm-"):
			if mounted, err := unmountAbandonedViews(p); err == nil && !mounted {
				_ = os.RemoveAll(p) // never through a mount
			}
		case !strings.HasPrefix(name, "."):
			if fi, err := os.Stat(filepath.Join(p, configFile)); err == nil && fi.Size() == 0 {
				gone := filepath.Join(s.dir, ".rm-"+name)
				if os.Rename(p, gone) == nil {
					_ = os.RemoveAll(gone)
				}
			}
		}
	}
}

// leaseID names the container's lease in the image store.
func (c *Container) leaseID() string { return "container-" + c.ID }

// lease keeps the container's image and snapshots for as long as its directory exists:
// `kiln rm` ends it by removing the directory, whatever kills kiln on the way.
func (c *Container) lease(st *cache.Store) cache.Lease {
	l := cache.Lease{ID: c.leaseID(), Holder: c.dir, Created: c.Created, Volatile: c.AutoRemove}
	if c.ImageDigest != (v1.Hash{}) {
		l.Images = []v1.Hash{c.ImageDigest}
	}
	for _, dir := range c.Spec.Lower {
		if h, ok := st.SnapshotDiffID(dir); ok {
			l.DiffIDs = append(l.DiffIDs, h)
		}
	}
	return l
}

// materialize builds the directory under a hidden name and renames it into place, so a crash
// never leaves a half-made container visible.
func (s *Store) materialize(c *Container) error {
	cfg := c.Config
	tmp := filepath.Join(s.dir, ".new-"+cfg.ID)
	sp := &c.Spec
	sp.ID, sp.Upper, sp.Work, sp.BundleDir = cfg.ID, filepath.Join(c.dir, "upper"), filepath.Join(c.dir, "work"), filepath.Join(c.dir, "bundle")
	sp.Stdin, sp.Stdout, sp.Stderr = nil, nil, nil
	if sp.Hostname == "" {
		sp.Hostname = cfg.ID[:12]
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("create container dir: %w", err)
	}
	// The upper dir's own mode becomes the mode of the container's "/": it must be 0755 like
	// any root directory, or no other user could resolve a path.
	for _, d := range []string{"upper", "work", "bundle"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("create container dir: %w", err)
		}
	}
	err := writeRecord(tmp, c.Config)
	if err == nil {
		err = writeState(tmp, State{Status: StatusCreated}, cfg.AutoRemove)
	}
	if err == nil {
		err = os.Rename(tmp, c.dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("create container %s: %w", cfg.ID[:12], err)
	}
	return nil
}

// writeRecord replaces dir/container.json with cfg in the current format. A --rm container's
// files are not worth an fsync each (they are half of `run --rm`'s own cost): an OS crash ends
// such a container, and leaves at most an empty record, which List skips and Create sweeps.
func writeRecord(dir string, cfg Config) error {
	data, err := json.MarshalIndent(toRecord(cfg), "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, configFile), append(data, '\n'), atomicfile.Options{Perm: 0o600, NoSync: cfg.AutoRemove})
}

// List returns every container, newest first.
func (s *Store) List() ([]*Container, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []*Container
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		c, err := s.load(e.Name())
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errTornRecord) {
			continue // a container dir being removed by another process, or a --rm one an OS crash ended
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// load reads containers/<id>/container.json. A record of the first release's format is
// migrated: rewritten in the current one, with the lease that format did not have.
func (s *Store) load(id string) (*Container, error) {
	dir := filepath.Join(s.dir, id)
	p := filepath.Join(dir, configFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: %w", p, errTornRecord)
	}
	cfg, legacy, err := decodeRecord(data)
	if err != nil {
		return nil, fmt.Errorf("read container record %s: %w; remove the directory %s if the container is not needed", p, err, dir)
	}
	c := &Container{Config: cfg, dir: dir}
	if legacy {
		s.migrate(c)
	}
	return c, nil
}

// migrate leases a first-release container's image and snapshots and rewrites its record.
// It is best effort: failing, the container still works and the next load tries again.
func (s *Store) migrate(c *Container) {
	st, err := cache.Open(s.root)
	if err != nil {
		return
	}
	defer st.Close()
	if desc, _, err := st.Lookup(c.Image); err == nil {
		c.ImageDigest = desc.Digest
	}
	if st.PutLease(c.lease(st)) == nil {
		_ = writeRecord(c.dir, c.Config)
	}
}

// Get finds a container the way docker does: by full id, by name (with or without a leading
// "/"), then by unique id prefix.
func (s *Store) Get(ref string) (*Container, error) {
	if ref == "" {
		return nil, &NotFoundError{Ref: ref}
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(ref, "/")
	for _, c := range all {
		if c.ID == ref || c.Name == name {
			return c, nil
		}
	}
	var found *Container
	for _, c := range all {
		if strings.HasPrefix(c.ID, ref) {
			if found != nil {
				return nil, fmt.Errorf("multiple containers found with the id prefix %q: give more of the id", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, &NotFoundError{Ref: ref}
	}
	return found, nil
}

// newID returns 64 random hex characters, never all digits (docker's rule: an id must not
// parse as a number, which would confuse short-id lookups).
func newID() (string, error) {
	b := make([]byte, 32)
	for {
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("make container id: %w", err)
		}
		id := hex.EncodeToString(b)
		if strings.ContainsAny(id[:12], "abcdef") {
			return id, nil
		}
	}
}

// NotFoundError says no container matches a name or id.
type NotFoundError struct{ Ref string }

func (e *NotFoundError) Error() string { return "No such container: " + e.Ref }

// NameConflictError says a name is taken, in docker's words.
type NameConflictError struct{ Name, ID string }

func (e *NameConflictError) Error() string {
	return fmt.Sprintf("the container name \"/%s\" is already in use by container %s. You have to remove (or rename) that container to be able to reuse that name.", e.Name, e.ID)
}
