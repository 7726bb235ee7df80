package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// Lease keeps data alive for something that uses it: GC never removes an image, blob or
// snapshot that a live lease names, whatever the tags say.
type Lease struct {
	ID string // unique, [a-zA-Z0-9][a-zA-Z0-9_.-]*, e.g. "container-<id>"
	// Holder is a path under the store root (one of its places) whose existence keeps the
	// lease: a container's directory, so the lease ends with `kiln rm` and cannot outlive it.
	// Empty means the lease lasts until DeleteLease.
	Holder  string
	Images  []v1.Hash // manifests or indexes, kept with everything they reference
	DiffIDs []v1.Hash // snapshots, e.g. a container's lower dirs
	Created time.Time
	// Volatile leases are written without fsync, for holders that do not outlive an OS crash
	// (a `run --rm` container): after one, the lease file may be empty, and an empty lease
	// file keeps nothing (a durable lease is never empty).
	Volatile bool
}

// leaseVersion marks the lease file format.
const leaseVersion = 1

// leaseFile is a Lease on disk, leases/<id>.json.
type leaseFile struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Holder  string    `json:"holder,omitempty"` // relative to the root
	Images  []string  `json:"images,omitempty"`
	DiffIDs []string  `json:"diffIDs,omitempty"`
	Created time.Time `json:"created"`
}

var leaseIDRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,199}$`)

// PutLease records (or replaces) l. The Store must be open: GC, which needs the store to
// itself, cannot run between the caller's checks and the lease.
func (s *Store) PutLease(l Lease) error {
	if !leaseIDRE.MatchString(l.ID) {
		return fmt.Errorf("invalid lease id %q", l.ID)
	}
	f := leaseFile{Version: leaseVersion, ID: l.ID, Created: l.Created}
	if f.Created.IsZero() {
		f.Created = time.Now().UTC()
	}
	if l.Holder != "" {
		rel, err := filepath.Rel(s.root, l.Holder)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
			return fmt.Errorf("lease %s: holder %s is not inside the store %s", l.ID, l.Holder, s.root)
		}
		f.Holder = filepath.ToSlash(rel)
	}
	for _, h := range l.Images {
		if err := checkHash(h); err != nil {
			return fmt.Errorf("lease %s: %w", l.ID, err)
		}
		f.Images = append(f.Images, h.String())
	}
	for _, h := range l.DiffIDs {
		if err := checkHash(h); err != nil {
			return fmt.Errorf("lease %s: %w", l.ID, err)
		}
		f.DiffIDs = append(f.DiffIDs, h.String())
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode lease %s: %w", l.ID, err)
	}
	if l.Volatile {
		err = atomicfile.Write(s.leasePath(l.ID), data, atomicfile.Options{Perm: 0o600, NoSync: true})
	} else {
		err = s.writeFileAtomic(s.leasePath(l.ID), data, 0o600)
	}
	if err != nil {
		return fmt.Errorf("write lease %s: %w", l.ID, err)
	}
	return nil
}

// DeleteLease ends the lease id; deleting an absent lease is not an error.
func (s *Store) DeleteLease(id string) error {
	if !leaseIDRE.MatchString(id) {
		return fmt.Errorf("invalid lease id %q", id)
	}
	if err := os.Remove(s.leasePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete lease %s: %w", id, err)
	}
	return nil
}

// Leases returns the live leases: those without a holder, and those whose holder exists.
// A damaged lease file is kept as a lease on nothing rather than guessed at; a lease whose
// holder is gone is over.
func (s *Store) Leases() ([]Lease, error) {
	ents, err := os.ReadDir(s.leaseDir())
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	var out []Lease
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !leaseIDRE.MatchString(id) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(s.leaseDir(), e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read lease %s: %w", id, err)
		}
		if len(raw) == 0 {
			continue // a volatile lease an OS crash cut short: its holder died with it
		}
		l, err := s.decodeLease(raw)
		if err != nil {
			return nil, fmt.Errorf("read lease %s: %w", filepath.Join(s.leaseDir(), e.Name()), err)
		}
		if l.Holder != "" && !exists(l.Holder) {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

func (s *Store) decodeLease(raw []byte) (Lease, error) {
	var f leaseFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return Lease{}, err
	}
	if f.Version != leaseVersion {
		return Lease{}, fmt.Errorf("lease format version %d, this kiln reads %d: upgrade kiln", f.Version, leaseVersion)
	}
	l := Lease{ID: f.ID, Created: f.Created}
	if f.Holder != "" {
		rel := filepath.Clean(filepath.FromSlash(f.Holder))
		if filepath.IsAbs(rel) || strings.HasPrefix(rel, "..") {
			return Lease{}, fmt.Errorf("holder %q outside the store", f.Holder)
		}
		l.Holder = filepath.Join(s.root, rel)
	}
	for _, list := range []struct {
		in  []string
		out *[]v1.Hash
	}{{f.Images, &l.Images}, {f.DiffIDs, &l.DiffIDs}} {
		for _, v := range list.in {
			h, err := v1.NewHash(v)
			if err == nil {
				err = checkHash(h)
			}
			if err != nil {
				return Lease{}, err
			}
			*list.out = append(*list.out, h)
		}
	}
	return l, nil
}

// leaseRoots adds what the live leases name to live.
func (s *Store) leaseRoots(live liveSet) error {
	leases, err := s.Leases()
	if err != nil {
		return err
	}
	for _, l := range leases {
		for _, h := range l.Images {
			s.markManifest(live, h, 0)
		}
		for _, h := range l.DiffIDs {
			live.diffIDs[h.Hex] = true
		}
	}
	return nil
}

// sweepLeases deletes lease files whose holder is gone, empty ones (volatile leases an OS crash
// cut short) and the temp files of writes a crash interrupted. Only under the exclusive store lock.
func (s *Store) sweepLeases() {
	ents, err := os.ReadDir(s.leaseDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(s.leaseDir(), e.Name())
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if len(raw) == 0 || strings.HasPrefix(e.Name(), ".") {
			_ = os.Remove(p)
			continue
		}
		if l, err := s.decodeLease(raw); err == nil && l.Holder != "" && !exists(l.Holder) {
			_ = os.Remove(p)
		}
	}
}

func (s *Store) leasePath(id string) string { return filepath.Join(s.leaseDir(), id+".json") }
