package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
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
	entries map[string]*statEntry
	used    int // entries looked at by this build
	dirty   bool
	state   StateStore
	name    string
}

type statEntry struct {
	Key    statKey
	Digest string
	used   bool
}

// racyWindow: a file changed within this window of being hashed may change again without
// its stat data moving (timestamp granularity), so its digest is not remembered.
const racyWindow = 2 * time.Second

func loadStatCache(state StateStore, dir string) *statCache {
	sum := sha256.Sum256([]byte(dir))
	c := &statCache{entries: map[string]*statEntry{}, state: state,
		name: "statcache-" + hex.EncodeToString(sum[:12])}
	if state == nil {
		return c
	}
	data, err := state.ReadState(c.name)
	if err != nil {
		return c
	}
	if entries, err := decodeStatCache(data); err == nil {
		c.entries = entries
	} // an old or corrupt cache only costs a re-hash, and the next save replaces it
	return c
}

// statCacheMagic starts the cache file; a format change bumps its last byte, and a file
// without it (the gob encoding of earlier versions) is discarded.
const statCacheMagic = "kiln-statcache\x00\x02"

var errStatCache = errors.New("stat cache: bad format")

// encodeStatCache writes the entries as varint-framed records. The format is flat rather than
// gob because decoding 20,000 entries with gob was a fifth of a no-op rebuild (profiled).
func encodeStatCache(entries map[string]*statEntry) []byte {
	buf := make([]byte, 0, len(statCacheMagic)+binary.MaxVarintLen64+len(entries)*128)
	buf = append(buf, statCacheMagic...)
	buf = binary.AppendUvarint(buf, uint64(len(entries)))
	for rel, e := range entries {
		buf = binary.AppendUvarint(buf, uint64(len(rel)))
		buf = append(buf, rel...)
		buf = binary.AppendUvarint(buf, uint64(len(e.Digest)))
		buf = append(buf, e.Digest...)
		for _, v := range [...]int64{e.Key.Ino, e.Key.Size, e.Key.Mtime, e.Key.Ctime} {
			buf = binary.AppendVarint(buf, v)
		}
		buf = binary.AppendUvarint(buf, uint64(e.Key.Mode))
	}
	return buf
}

// decodeStatCache reads what encodeStatCache wrote. Paths and digests are substrings of one
// copy of data, and the entries share one array, so a large cache costs three allocations.
func decodeStatCache(data []byte) (map[string]*statEntry, error) {
	if !bytes.HasPrefix(data, []byte(statCacheMagic)) {
		return nil, errStatCache
	}
	body := data[len(statCacheMagic):]
	s := string(body)
	off, bad := 0, false
	uvarint := func() uint64 {
		v, n := binary.Uvarint(body[off:])
		if n <= 0 {
			bad = true
			return 0
		}
		off += n
		return v
	}
	varint := func() int64 {
		v, n := binary.Varint(body[off:])
		if n <= 0 {
			bad = true
			return 0
		}
		off += n
		return v
	}
	str := func() string {
		n := uvarint()
		if bad || n > uint64(len(s)-off) {
			bad = true
			return ""
		}
		off += int(n)
		return s[off-int(n) : off]
	}
	count := uvarint()
	if bad || count > uint64(len(s)) { // every record takes more than a byte
		return nil, errStatCache
	}
	all := make([]statEntry, count)
	entries := make(map[string]*statEntry, count)
	for i := range all {
		rel, d := str(), str()
		k := statKey{Ino: varint(), Size: varint(), Mtime: varint(), Ctime: varint()}
		mode := uvarint()
		if bad || mode > 1<<32-1 {
			return nil, errStatCache
		}
		k.Mode = uint32(mode)
		all[i] = statEntry{Key: k, Digest: d}
		entries[rel] = &all[i]
	}
	if off != len(s) {
		return nil, errStatCache
	}
	return entries, nil
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

// cached returns the remembered digest of the file at rel when its stat data fi is unchanged,
// without reading it.
func (c *statCache) cached(rel string, fi fs.FileInfo) (string, bool) {
	key, ok := keyOf(fi)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, hit := c.entries[rel]
	if hit && !e.used {
		e.used = true
		c.used++
	}
	if ok && hit && e.Key == key {
		return e.Digest, true
	}
	return "", false
}

// digest returns the sha256 of the file at rel (read through open), from the cache when its
// stat data fi is unchanged.
func (c *statCache) digest(rel string, fi fs.FileInfo, open func() (io.ReadCloser, error)) (string, error) {
	if d, ok := c.cached(rel, fi); ok {
		return d, nil
	}
	d, err := hashFile(rel, open)
	if err != nil {
		return "", err
	}
	if key, ok := keyOf(fi); ok && time.Since(time.Unix(0, key.Ctime)) > racyWindow && time.Since(time.Unix(0, key.Mtime)) > racyWindow {
		c.mu.Lock()
		if old := c.entries[rel]; old == nil || !old.used {
			c.used++
		}
		c.entries[rel] = &statEntry{Key: key, Digest: d, used: true}
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

// save writes the cache back when this build hashed something new, dropping entries for
// files this build did not look at only when the cache grew large, so alternating builds of
// different subsets stay warm. A no-op rebuild writes nothing.
func (c *statCache) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil || !c.dirty {
		return nil
	}
	if len(c.entries) > 4*c.used+1024 {
		for k, e := range c.entries {
			if !e.used {
				delete(c.entries, k)
			}
		}
	}
	c.dirty = false
	return c.state.WriteState(c.name, encodeStatCache(c.entries))
}
