package cache

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Every open Store stages under tmp/o-<id>/ and holds an exclusive flock on tmp/o-<id>.lock
// until Close. The kernel drops the lock when its process dies, however it dies, so a lock
// that can be taken names staging nobody will finish: any Open removes it at once, while
// other processes use the store. Entries directly under tmp/ come from kilns before this
// scheme and go by age when nobody holds the store.
const (
	ownerPrefix = "o-"
	lockSuffix  = ".lock"
	newSuffix   = ".new"
)

// staging is one Store's own staging dir and the lock that says its owner lives.
type staging struct {
	dir  string
	lock *os.File
}

// newStaging makes tmp/o-<id>/ under a lock taken before the lock file has its final name,
// so a sweeper never sees an owner's lock unlocked.
func newStaging(tmp string) (*staging, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	name := ownerPrefix + hex.EncodeToString(b)
	lockPath := filepath.Join(tmp, name+lockSuffix)
	f, err := os.OpenFile(lockPath+newSuffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create staging lock: %w", err)
	}
	st := &staging{dir: filepath.Join(tmp, name), lock: f}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		err = os.Rename(lockPath+newSuffix, lockPath)
	}
	if err == nil {
		err = os.Mkdir(st.dir, dirMode)
	}
	if err != nil {
		_ = os.Remove(lockPath + newSuffix)
		_ = os.Remove(lockPath)
		f.Close()
		return nil, fmt.Errorf("create staging dir: %w", err)
	}
	return st, nil
}

// close removes what this owner left staged, then releases its lock.
func (st *staging) close() error {
	err := removeTree(st.dir)
	if rmErr := os.Remove(st.dir + lockSuffix); err == nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = rmErr
	}
	if cerr := st.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// sweepDeadOwners removes the staging of every owner whose lock can be taken: its process is
// gone (or its Store closed without cleaning up). Live owners' locks fail to lock and are
// left alone. Errors are ignored: a leftover costs space only, and the next Open tries again.
func sweepDeadOwners(tmp string) (removed int) {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return 0
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, ownerPrefix) || !(strings.HasSuffix(name, lockSuffix) || strings.HasSuffix(name, lockSuffix+newSuffix)) {
			continue
		}
		if strings.HasSuffix(name, newSuffix) && !olderThan(e, newLockAge) {
			continue // its owner may be between creating and locking it
		}
		if sweepOwner(tmp, name) {
			removed++
		}
	}
	return removed
}

// newLockAge is how long an unrenamed owner lock may exist before it counts as abandoned.
const newLockAge = time.Minute

func olderThan(e os.DirEntry, age time.Duration) bool {
	info, err := e.Info()
	return err == nil && time.Since(info.ModTime()) > age
}

// sweepOwner removes one owner's dir and lock file if the owner is dead.
func sweepOwner(tmp, lockName string) bool {
	p := filepath.Join(tmp, lockName)
	f, err := os.OpenFile(p, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false // alive
	}
	owner := strings.TrimSuffix(strings.TrimSuffix(lockName, newSuffix), lockSuffix)
	dir := filepath.Join(tmp, owner)
	// A killed RUN step can leave a mount in its staging (a rootfs overlay, a bind): removing
	// through it could reach what it shows. The runtime's cleanup unmounts; a later Open removes.
	if hasMounts(dir) {
		return false
	}
	if removeTree(dir) != nil {
		return false
	}
	return os.Remove(p) == nil
}

// cleanLegacyTmp removes entries under tmp/ that belong to no owner and were last modified
// before cutoff: leftovers of kilns that staged directly under tmp/.
func cleanLegacyTmp(tmp string, cutoff time.Time) (removed int) {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return 0
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ownerPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) || hasMounts(filepath.Join(tmp, e.Name())) {
			continue
		}
		if removeTree(filepath.Join(tmp, e.Name())) == nil {
			removed++
		}
	}
	return removed
}

// hasMounts reports whether anything is mounted at or below dir (or whether that is unknown).
func hasMounts(dir string) bool {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	return err != nil || len(mounts) > 0
}
