package build

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
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

// statCache maps context-relative paths to content digests, keyed by stat data. The
// entries are kept sorted in walk order, so the lookups of a walk over an unchanged context
// meet them one after the other, and one out of order is a binary search: no map to build.
type statCache struct {
	mu    sync.Mutex
	recs  []statEntry           // as loaded, sorted by cmpWalk
	next  int                   // where the next lookup is expected in recs
	fresh map[string]*statEntry // hashed by this build: new and changed files
	dirty bool
	state StateStore
	name  string
}

type statEntry struct {
	Rel    string
	Key    statKey
	Digest string
	used   bool // looked at by this build
}

// racyWindow: a file changed within this window of being hashed may change again without
// its stat data moving (timestamp granularity), so its digest is not remembered.
const racyWindow = 2 * time.Second

func loadStatCache(state StateStore, dir string) *statCache {
	sum := sha256.Sum256([]byte(dir))
	c := &statCache{state: state, name: "statcache-" + hex.EncodeToString(sum[:12])}
	if state == nil {
		return c
	}
	data, err := state.ReadState(c.name)
	if err != nil {
		return c
	}
	if recs, err := decodeStatCache(data); err == nil {
		c.recs = recs
	} // an old or corrupt cache only costs a re-hash, and the next save replaces it
	return c
}

// statCacheMagic starts the cache file; a format change bumps its last byte, and a file
// without it (the gob encoding of earlier versions) is discarded.
const statCacheMagic = "kiln-statcache\x00\x02"

var errStatCache = errors.New("stat cache: bad format")

// encodeStatCache writes the entries as varint-framed records. The format is flat rather than
// gob because decoding 20,000 entries with gob was a fifth of a no-op rebuild (profiled).
func encodeStatCache(recs []statEntry) []byte {
	buf := make([]byte, 0, len(statCacheMagic)+binary.MaxVarintLen64+len(recs)*128)
	buf = append(buf, statCacheMagic...)
	buf = binary.AppendUvarint(buf, uint64(len(recs)))
	for _, e := range recs {
		buf = binary.AppendUvarint(buf, uint64(len(e.Rel)))
		buf = append(buf, e.Rel...)
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
// copy of data, so a large cache costs two allocations.
func decodeStatCache(data []byte) ([]statEntry, error) {
	if !bytes.HasPrefix(data, []byte(statCacheMagic)) {
		return nil, errStatCache
	}
	r := &statReader{b: data[len(statCacheMagic):]}
	r.s = string(r.b)
	count := readVarint(r, binary.Uvarint)
	if r.bad || count > uint64(len(r.s)) { // every record takes more than a byte
		return nil, errStatCache
	}
	recs := make([]statEntry, count)
	for i := range recs {
		rel, d := r.str(), r.str()
		k := statKey{Ino: readVarint(r, binary.Varint), Size: readVarint(r, binary.Varint),
			Mtime: readVarint(r, binary.Varint), Ctime: readVarint(r, binary.Varint)}
		mode := readVarint(r, binary.Uvarint)
		if r.bad || mode > 1<<32-1 {
			return nil, errStatCache
		}
		k.Mode = uint32(mode)
		recs[i] = statEntry{Rel: rel, Key: k, Digest: d}
	}
	if r.off != len(r.s) {
		return nil, errStatCache
	}
	if !slices.IsSortedFunc(recs, byWalk) { // as written; lookups rely on it
		slices.SortFunc(recs, byWalk)
	}
	return recs, nil
}

// statReader walks a stat cache file; bad sticks once a read runs past the end.
type statReader struct {
	b   []byte
	s   string // b, copied once: strings read are substrings of it
	off int
	bad bool
}

func readVarint[T int64 | uint64](r *statReader, dec func([]byte) (T, int)) T {
	v, n := dec(r.b[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

func (r *statReader) str() string {
	n := readVarint(r, binary.Uvarint)
	if r.bad || n > uint64(len(r.s)-r.off) {
		r.bad = true
		return ""
	}
	r.off += int(n)
	return r.s[r.off-int(n) : r.off]
}

func byWalk(a, b statEntry) int { return cmpWalk(a.Rel, b.Rel) }

// cmpWalk orders slash paths as a walk of name-sorted directories meets them: a directory's
// contents come right after it, so "/" sorts before every other byte.
func cmpWalk(a, b string) int {
	for i := range min(len(a), len(b)) {
		ca, cb := a[i], b[i]
		switch {
		case ca == cb:
			continue
		case ca == '/':
			return -1
		case cb == '/':
			return 1
		case ca < cb:
			return -1
		default:
			return 1
		}
	}
	return cmp.Compare(len(a), len(b))
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
	e := c.lookup(rel)
	if e == nil {
		return "", false
	}
	e.used = true
	if ok && e.Key == key {
		return e.Digest, true
	}
	return "", false
}

// lookup finds rel's entry, the one hashed by this build first; the caller holds mu.
func (c *statCache) lookup(rel string) *statEntry {
	if e := c.fresh[rel]; e != nil {
		return e
	}
	i := c.next
	if i >= len(c.recs) || c.recs[i].Rel != rel {
		var ok bool
		if i, ok = slices.BinarySearchFunc(c.recs, rel, func(e statEntry, rel string) int { return cmpWalk(e.Rel, rel) }); !ok {
			return nil
		}
	}
	c.next = i + 1
	return &c.recs[i]
}

// digest returns the sha256 of the file at rel (read through open), from the cache when its
// stat data fi is unchanged.
func (c *statCache) digest(rel string, fi fs.FileInfo, open func() (io.ReadCloser, error)) (string, error) {
	if d, ok := c.cached(rel, fi); ok {
		return d, nil
	}
	return c.hash(rel, fi, open)
}

// hash reads the file at rel and remembers its digest under its stat data fi, unless the file
// changed too recently for the stat data to be trusted.
func (c *statCache) hash(rel string, fi fs.FileInfo, open func() (io.ReadCloser, error)) (string, error) {
	d, err := hashFile(rel, open)
	if err != nil {
		return "", err
	}
	if key, ok := keyOf(fi); ok && time.Since(time.Unix(0, key.Ctime)) > racyWindow && time.Since(time.Unix(0, key.Mtime)) > racyWindow {
		c.mu.Lock()
		if c.fresh == nil {
			c.fresh = map[string]*statEntry{}
		}
		c.fresh[rel] = &statEntry{Rel: rel, Key: key, Digest: d, used: true}
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
	all := make([]statEntry, 0, len(c.recs)+len(c.fresh))
	used := 0
	for _, e := range c.recs {
		if c.fresh[e.Rel] == nil {
			all = append(all, e)
			if e.used {
				used++
			}
		}
	}
	for _, e := range c.fresh {
		all, used = append(all, *e), used+1
	}
	if len(all) > 4*used+1024 {
		all = slices.DeleteFunc(all, func(e statEntry) bool { return !e.used })
	}
	slices.SortFunc(all, byWalk)
	c.dirty = false
	return c.state.WriteState(c.name, encodeStatCache(all))
}
