package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/runtime"
)

// Files of one volume directory, volumes/<name>/: docker's layout, so Mountpoint reads alike.
const (
	volumeFile    = "volume.json"
	volumeDataDir = "_data"
	volumeVersion = 1
)

// volumeRecord is volume.json: kiln's own versioned format.
type volumeRecord struct {
	Version   int               `json:"version"`
	Name      string            `json:"name"`
	Created   time.Time         `json:"created"`
	Labels    map[string]string `json:"labels,omitempty"`
	Anonymous bool              `json:"anonymous,omitempty"` // made for a container, not by name: rm -v and plain prune remove it
}

// Volume is one named volume of the store.
type Volume struct {
	Name       string
	Created    time.Time
	Labels     map[string]string
	Anonymous  bool
	Mountpoint string // the directory containers mount
}

// VolumeMount is a volume a container mounts: -v NAME:/path, --mount type=volume, or an image's VOLUME.
type VolumeMount struct {
	Name     string // "" makes an anonymous volume
	Target   string
	ReadOnly bool
	NoCopy   bool // volume-nocopy: an empty volume stays empty
}

// VolumeInUseError says containers still use a volume, in docker's words.
type VolumeInUseError struct {
	Name string
	IDs  []string
}

func (e *VolumeInUseError) Error() string {
	return fmt.Sprintf("remove %s: volume is in use - [%s]", e.Name, strings.Join(e.IDs, ", "))
}

// NoSuchVolumeError says no volume has a name.
type NoSuchVolumeError struct{ Name string }

func (e *NoSuchVolumeError) Error() string { return "get " + e.Name + ": no such volume" }

// volumesDir is the store's volumes/ place, next to containers/.
func (s *Store) volumesDir() string { return filepath.Join(filepath.Dir(s.dir), "volumes") }

// CreateVolume makes the volume name (a random one when ""), or returns it when it exists.
func (s *Store) CreateVolume(ctx context.Context, name string, labels map[string]string) (Volume, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return Volume{}, err
	}
	defer unlock()
	return s.createVolume(name, labels, false)
}

// createVolume is CreateVolume under the store lock.
func (s *Store) createVolume(name string, labels map[string]string, anonymous bool) (Volume, error) {
	if name == "" {
		var err error
		if name, err = newVolumeName(); err != nil {
			return Volume{}, err
		}
	}
	if len(name) < 2 || !validName(name) {
		return Volume{}, fmt.Errorf("invalid volume name %q: use two or more of [a-zA-Z0-9][a-zA-Z0-9_.-]", name)
	}
	if v, err := s.volume(name); err == nil {
		return v, nil
	} else if !errors.As(err, new(*NoSuchVolumeError)) {
		return Volume{}, err
	}
	s.sweepVolumes()
	dir := filepath.Join(s.volumesDir(), name)
	tmp := filepath.Join(s.volumesDir(), ".new-"+name)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	rec := volumeRecord{Version: volumeVersion, Name: name, Created: time.Now().UTC(), Labels: labels, Anonymous: anonymous}
	err := os.Mkdir(filepath.Join(tmp, volumeDataDir), 0o755)
	if err == nil {
		err = writeVolumeRecord(tmp, rec)
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err == nil {
		err = atomicfile.SyncDir(s.volumesDir())
	}
	if err != nil {
		os.RemoveAll(tmp)
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	return rec.volume(dir), nil
}

func writeVolumeRecord(dir string, rec volumeRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, volumeFile), append(data, '\n'), atomicfile.Options{Perm: 0o600})
}

func (r volumeRecord) volume(dir string) Volume {
	return Volume{Name: r.Name, Created: r.Created, Labels: r.Labels, Anonymous: r.Anonymous, Mountpoint: filepath.Join(dir, volumeDataDir)}
}

// sweepVolumes removes what a crash left of a volume being made or removed, and image views a
// killed copy-up left mounted: under the lock, which every copy-up holds, any view is a leftover.
func (s *Store) sweepVolumes() {
	ents, _ := os.ReadDir(s.volumesDir())
	for _, e := range ents {
		p := filepath.Join(s.volumesDir(), e.Name())
		switch {
		case strings.HasPrefix(e.Name(), ".new-"), strings.HasPrefix(e.Name(), ".rm-"):
			_ = os.RemoveAll(p)
		case strings.HasPrefix(e.Name(), ".view-"):
			rootfs := filepath.Join(p, "rootfs")
			if mounted, err := mountinfo.Mounted(rootfs); err != nil || (mounted && unix.Unmount(rootfs, unix.MNT_DETACH) != nil) {
				continue // never remove through a mount
			}
			_ = os.RemoveAll(p)
		}
	}
}

// Volume returns the volume name.
func (s *Store) Volume(name string) (Volume, error) { return s.volume(name) }

func (s *Store) volume(name string) (Volume, error) {
	if !validName(name) {
		return Volume{}, &NoSuchVolumeError{Name: name}
	}
	dir := filepath.Join(s.volumesDir(), name)
	data, err := os.ReadFile(filepath.Join(dir, volumeFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Volume{}, &NoSuchVolumeError{Name: name}
	}
	if err != nil {
		return Volume{}, fmt.Errorf("read volume %s: %w", name, err)
	}
	var rec volumeRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return Volume{}, fmt.Errorf("read volume record %s: %w", filepath.Join(dir, volumeFile), err)
	}
	if rec.Version != volumeVersion {
		return Volume{}, fmt.Errorf("volume %s: format version %d, this kiln reads %d: upgrade kiln", name, rec.Version, volumeVersion)
	}
	return rec.volume(dir), nil
}

// Volumes lists every volume by name.
func (s *Store) Volumes() ([]Volume, error) {
	ents, err := os.ReadDir(s.volumesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Volume
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		v, err := s.volume(e.Name())
		if errors.As(err, new(*NoSuchVolumeError)) {
			continue // being removed by another process
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// VolumeName is the name of the volume m mounts, when m is one of c's volumes.
func (c *Container) VolumeName(m runtime.Mount) (string, bool) {
	vols := filepath.Join(filepath.Dir(filepath.Dir(c.dir)), "volumes")
	if m.Type != runtime.Bind || filepath.Dir(filepath.Dir(m.Source)) != vols || filepath.Base(m.Source) != volumeDataDir {
		return "", false
	}
	return filepath.Base(filepath.Dir(m.Source)), true
}

// VolumeUsers maps each volume's mountpoint to the ids of the containers that mount it.
func (s *Store) VolumeUsers() (map[string][]string, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, c := range all {
		for _, m := range c.Spec.Mounts {
			if m.Type == runtime.Bind && filepath.Dir(filepath.Dir(m.Source)) == s.volumesDir() {
				users[m.Source] = append(users[m.Source], c.ID)
			}
		}
	}
	return users, nil
}

// RemoveVolume removes a volume no container uses; force removes a missing one silently,
// never one in use (docker's rule too).
func (s *Store) RemoveVolume(ctx context.Context, name string, force bool) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	v, err := s.volume(name)
	if errors.As(err, new(*NoSuchVolumeError)) && force {
		return nil
	}
	if err != nil {
		return err
	}
	users, err := s.VolumeUsers()
	if err != nil {
		return err
	}
	if ids := users[v.Mountpoint]; len(ids) > 0 {
		return &VolumeInUseError{Name: name, IDs: ids}
	}
	_, err = s.removeVolume(v)
	return err
}

// removeVolume takes v out of sight first, so no half-removed volume is ever listed, and
// returns the bytes it held; under the lock.
func (s *Store) removeVolume(v Volume) (int64, error) {
	dir := filepath.Dir(v.Mountpoint)
	gone := filepath.Join(s.volumesDir(), ".rm-"+v.Name)
	if err := os.Rename(dir, gone); err != nil {
		return 0, fmt.Errorf("remove volume %s: %w", v.Name, err)
	}
	size := cache.TreeSize(gone)
	if err := os.RemoveAll(gone); err != nil {
		return 0, fmt.Errorf("remove volume %s: %w", v.Name, err)
	}
	return size, nil
}

// PruneVolumes removes the volumes no container uses: anonymous ones only unless all (docker
// ≥ 23). It returns the removed names and the bytes they held.
func (s *Store) PruneVolumes(ctx context.Context, all bool) ([]string, int64, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	vols, err := s.Volumes()
	if err != nil {
		return nil, 0, err
	}
	users, err := s.VolumeUsers()
	if err != nil {
		return nil, 0, err
	}
	var names []string
	var total int64
	var errs []error
	for _, v := range vols {
		if len(users[v.Mountpoint]) > 0 || (!all && !v.Anonymous) {
			continue
		}
		n, err := s.removeVolume(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		names, total = append(names, v.Name), total+n
	}
	return names, total, errors.Join(errs...)
}

// RemoveAnonymousVolumes removes the anonymous volumes the removed container c mounted that no
// other container uses: `rm -v` and `run --rm`, as docker.
func (s *Store) RemoveAnonymousVolumes(ctx context.Context, c *Container) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	users, err := s.VolumeUsers()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range c.Spec.Mounts {
		if m.Type != runtime.Bind || filepath.Dir(filepath.Dir(m.Source)) != s.volumesDir() {
			continue
		}
		v, err := s.volume(filepath.Base(filepath.Dir(m.Source)))
		if err != nil || !v.Anonymous || slices.ContainsFunc(users[m.Source], func(id string) bool { return id != c.ID }) {
			continue
		}
		if _, err := s.removeVolume(v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// attachVolumes makes cfg's volumes that are missing, fills each empty one with the image's
// content at its target (docker's copy-up), and adds their mounts to the spec; under the lock.
// undo removes the anonymous volumes it made, for a Create that fails later.
func (s *Store) attachVolumes(ctx context.Context, cfg *Config) (undo func(), err error) {
	var made []Volume
	undo = func() {
		for _, v := range made {
			_, _ = s.removeVolume(v)
		}
	}
	if len(cfg.Volumes) > 0 {
		s.sweepVolumes()
	}
	var users map[string][]string
	if len(cfg.Volumes) > 0 {
		if users, err = s.VolumeUsers(); err != nil {
			return nil, err
		}
	}
	var view *layersView
	defer func() { view.release() }()
	for _, vm := range cfg.Volumes {
		v, err := s.createVolume(vm.Name, nil, vm.Name == "")
		if err != nil {
			undo()
			return nil, err
		}
		if vm.Name == "" {
			made = append(made, v)
		}
		if !vm.NoCopy {
			if view == nil {
				view = &layersView{lower: cfg.Spec.Lower, parent: s.volumesDir()}
			}
			if err := view.copyUp(ctx, vm.Target, v.Mountpoint, len(users[v.Mountpoint]) > 0); err != nil {
				undo()
				return nil, fmt.Errorf("volume %s: copy the image's %s: %w", v.Name, vm.Target, err)
			}
		}
		cfg.Spec.Mounts = append(cfg.Spec.Mounts, runtime.Mount{Type: runtime.Bind, Source: v.Mountpoint, Target: vm.Target, ReadOnly: vm.ReadOnly})
	}
	cfg.Volumes = nil
	// Parents before what they hold, whatever flag gave them (docker's order): -v data:/srv
	// after --tmpfs /srv/tmp must not hide the tmpfs.
	slices.SortStableFunc(cfg.Spec.Mounts, func(a, b runtime.Mount) int {
		return strings.Count(filepath.Clean(a.Target), "/") - strings.Count(filepath.Clean(b.Target), "/")
	})
	return undo, nil
}

// layersView is an image's layers mounted read-only, on first need, for copy-up.
type layersView struct {
	lower   []string
	parent  string
	dir     string
	rootfs  string
	unmount func() error
}

func (l *layersView) release() {
	if l == nil || l.dir == "" {
		return
	}
	_ = l.unmount()
	os.RemoveAll(l.dir)
}

// copyUp copies the image's target directory (resolved inside the image's rootfs) into data
// when data is empty, with ownership and modes, the directory's own included. A volume no
// container mounts is filled beside data and renamed over it, so a crash mid-copy leaves it
// empty (and copied again on next use), never half full.
func (l *layersView) copyUp(ctx context.Context, target, data string, inUse bool) error {
	if ents, err := os.ReadDir(data); err != nil || len(ents) > 0 {
		return err
	}
	if len(l.lower) == 0 {
		return nil
	}
	if l.dir == "" {
		dir, err := os.MkdirTemp(l.parent, ".view-")
		if err != nil {
			return err
		}
		rootfs, unmount, err := runtime.MountLayers(dir, l.lower)
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("mount the image's layers: %w", err)
		}
		l.dir, l.rootfs, l.unmount = dir, rootfs, unmount
	}
	// The target's symlinks resolve inside the image (docker's FollowSymlinkInScope): a link
	// to /../../etc is the image's /etc, never the host's.
	h, err := pathrs.OpenInRoot(l.rootfs, target)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil // docker copies directories only
	}
	dst := data
	if !inUse {
		dst = data + ".copy"
		if err := os.RemoveAll(dst); err != nil { // a crashed copy's
			return err
		}
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
	}
	if err := copyTree(ctx, "/proc/self/fd/"+strconv.Itoa(int(h.Fd())), "/.", dst, "/", nil, copyOpts{}); err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if err := os.Chmod(dst, fi.Mode()&(fs.ModePerm|fs.ModeSticky|fs.ModeSetgid|fs.ModeSetuid)); err != nil || inUse {
		return err
	}
	if err := atomicfile.SyncFS(dst); err != nil {
		return err
	}
	// rename(2) replaces an empty directory; os.Rename refuses any.
	if err := unix.Rename(dst, data); err != nil {
		return fmt.Errorf("rename %s over %s: %w", dst, data, err)
	}
	return nil
}

// newVolumeName is a random 64-hex name, as docker gives a volume created without one.
func newVolumeName() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make volume name: %w", err)
	}
	return hex.EncodeToString(b), nil
}
