package cache

import "path/filepath"

// The store owns every path under its root; other packages get their places from these
// methods and never join paths under Root themselves. Each exists once Open returns and is
// closed to other users like the rest of the store.

// Containers is where the container package keeps one directory per container.
func (s *Store) Containers() string { return filepath.Join(s.root, "containers") }

// Logs is where builds keep each RUN step's whole output.
func (s *Store) Logs() string { return filepath.Join(s.root, "logs") }

// Mounts is where RUN --mount=type=cache directories persist between builds.
func (s *Store) Mounts() string { return filepath.Join(s.root, "cache", "mounts") }

// Locks is the directory of the store's lock files, for other packages' locks too (e.g.
// containers.lock), so that their directories hold only what they are for.
func (s *Store) Locks() string { return s.lockDir() }

func (s *Store) leaseDir() string { return filepath.Join(s.root, "leases") }

// Volumes is where the container package keeps named volumes, one directory each.
func (s *Store) Volumes() string { return filepath.Join(s.root, "volumes") }

// Networks is where the container package keeps user-defined networks, one record each.
func (s *Store) Networks() string { return filepath.Join(s.root, "networks") }
