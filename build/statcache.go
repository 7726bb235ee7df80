package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"syscall"
	"time"
)

// statKey identifies a file's content without reading it: if none of these changed, the
// content is taken to be unchanged (as git's index does).
type statKey struct {
	Ino, Size, Mtime, Ctime int64
	Mode                    uint32
}

// statCache maps context-relative paths to content digests, keyed by stat data.
type statCache struct {
	mu      sync.Mutex
	entries map[string]statEntry
	used    map[string]bool
	dirty   bool
	state   StateStore
	name    string
}

type statEntry struct {
	Key    statKey
	Digest string
}

// racyWindow: a file changed within this window of being hashed may change again without
// its stat data moving (timestamp granularity), so its digest is not remembered.
const racyWindow = 2 * time.Second

func loadStatCache(state StateStore, dir string) *statCache {
	sum := sha256.Sum256([]byte(dir))
	c := &statCache{entries: map[string]statEntry{}, used: map[string]bool{}, state: state,
		name: "statcache-" + hex.EncodeToString(sum[:12])}
	if state == nil {
		return c
	}
	data, err := state.ReadState(c.name)
	if err != nil {
		return c
	}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&c.entries); err != nil {
		c.entries = map[string]statEntry{} // a corrupt cache only costs a re-hash
	}
	return c
}

func keyOf(fi fs.FileInfo) (statKey, bool) {
	if fi == nil {
		return statKey{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return statKey{}, false
	}
	return statKey{Ino: int64(st.Ino), Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
		Mode: st.Mode}, true
}

// digest returns the sha256 of the file at rel (read through open), from the cache when its
// stat data fi is unchanged.
func (c *statCache) digest(rel string, fi fs.FileInfo, open func() (io.ReadCloser, error)) (string, error) {
	key, ok := keyOf(fi)
	c.mu.Lock()
	e, hit := c.entries[rel]
	c.used[rel] = true
	c.mu.Unlock()
	if ok && hit && e.Key == key {
		return e.Digest, nil
	}
	d, err := hashFile(rel, open)
	if err != nil {
		return "", err
	}
	if ok && time.Since(time.Unix(0, key.Ctime)) > racyWindow && time.Since(time.Unix(0, key.Mtime)) > racyWindow {
		c.mu.Lock()
		c.entries[rel] = statEntry{Key: key, Digest: d}
		c.dirty = true
		c.mu.Unlock()
	}
	return d, nil
}

// hashBufs recycles read buffers: a fresh 256 KiB per file made hashing 20,000 small files
// allocation-bound.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func hashFile(rel string, open func() (io.ReadCloser, error)) (string, error) {
	f, err := open()
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(buf)
	if _, err := io.CopyBuffer(h, f, *buf); err != nil {
		return "", fmt.Errorf("hash %s: %w", rel, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// save writes the cache back, dropping entries for files this build did not look at only when
// the cache grew large, so alternating builds of different subsets stay warm.
func (c *statCache) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil || !c.dirty {
		return nil
	}
	if len(c.entries) > 4*len(c.used)+1024 {
		for k := range c.entries {
			if !c.used[k] {
				delete(c.entries, k)
			}
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(c.entries); err != nil {
		return fmt.Errorf("encode stat cache: %w", err)
	}
	c.dirty = false
	return c.state.WriteState(c.name, buf.Bytes())
}
