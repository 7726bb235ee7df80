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

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/runtime"
)

// Files of one container directory.
const (
	configFile  = "container.json"
	stateFile   = "state.json"
	logFile     = "log.json"
	stopFile    = "stop.json"
	monitorLock = "monitor.lock"
)

// Store is the containers/ directory of a kiln store root.
type Store struct {
	dir      string
	lockPath string
	// StateDir is the runtime's state root the containers run under ("" = runtime.DefaultStateDir).
	StateDir string
}

// Open returns the container store under root (a kiln store root), creating containers/.
func Open(root string) (*Store, error) {
	dir := filepath.Join(root, "containers")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create containers dir: %w", err)
	}
	// The lock lives with the store's other locks, so containers/ holds containers only.
	locks := filepath.Join(root, "locks")
	if err := os.MkdirAll(locks, 0o700); err != nil {
		return nil, fmt.Errorf("create locks dir: %w", err)
	}
	return &Store{dir: dir, lockPath: filepath.Join(locks, "containers.lock")}, nil
}

// stateDir is the runtime state root, defaulted.
func (s *Store) stateDir() string {
	if s.StateDir == "" {
		return runtime.DefaultStateDir
	}
	return s.StateDir
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
	if cfg.Created.IsZero() {
		cfg.Created = time.Now().UTC()
	}
	return s.materialize(cfg)
}

// materialize builds the directory under a hidden name and renames it into place, so a crash
// never leaves a half-made container visible.
func (s *Store) materialize(cfg Config) (*Container, error) {
	c := &Container{Config: cfg, dir: filepath.Join(s.dir, cfg.ID)}
	tmp := filepath.Join(s.dir, ".new-"+cfg.ID)
	sp := &c.Spec
	sp.ID, sp.Upper, sp.Work, sp.BundleDir = cfg.ID, filepath.Join(c.dir, "upper"), filepath.Join(c.dir, "work"), filepath.Join(c.dir, "bundle")
	sp.Stdin, sp.Stdout, sp.Stderr = nil, nil, nil
	if sp.Hostname == "" {
		sp.Hostname = cfg.ID[:12]
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create container dir: %w", err)
	}
	// The upper dir's own mode becomes the mode of the container's "/": it must be 0755 like
	// any root directory, or no other user could resolve a path.
	for _, d := range []string{"upper", "work", "bundle"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("create container dir: %w", err)
		}
	}
	data, err := json.MarshalIndent(c.Config, "", "  ")
	if err == nil {
		err = atomicfile.Write(filepath.Join(tmp, configFile), append(data, '\n'), atomicfile.Options{Perm: 0o600})
	}
	if err == nil {
		err = writeState(tmp, State{Status: StatusCreated})
	}
	if err == nil {
		err = os.Rename(tmp, c.dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("create container %s: %w", cfg.ID[:12], err)
	}
	return c, nil
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
		if errors.Is(err, os.ErrNotExist) {
			continue // a container dir being removed by another process
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// load reads containers/<id>/config.json.
func (s *Store) load(id string) (*Container, error) {
	dir := filepath.Join(s.dir, id)
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, err
	}
	c := &Container{dir: dir}
	if err := json.Unmarshal(data, &c.Config); err != nil {
		return nil, fmt.Errorf("read container %s: %w", id, err)
	}
	return c, nil
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
