package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
)

// DiffImages names what differs between two stored images, for --check-reproducible:
// "layer 2: /etc/date (content)" lines, config and layer-count differences. Empty when the
// filesystems and configs agree.
func DiffImages(ctx context.Context, s *cache.Store, a, b *Image) ([]string, error) {
	var out []string
	ia, err := s.Image(a.Manifest.Digest)
	if err != nil {
		return nil, err
	}
	ib, err := s.Image(b.Manifest.Digest)
	if err != nil {
		return nil, err
	}
	ra, _ := ia.RawConfigFile()
	rb, _ := ib.RawConfigFile()
	if string(ra) != string(rb) {
		out = append(out, "image config differs (timestamps, environment or history)")
	}
	la, err := ia.Layers()
	if err != nil {
		return nil, err
	}
	lb, err := ib.Layers()
	if err != nil {
		return nil, err
	}
	if len(la) != len(lb) {
		return append(out, fmt.Sprintf("%d layers vs %d", len(la), len(lb))), nil
	}
	for i := range la {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		da, _ := la[i].DiffID()
		db, _ := lb[i].DiffID()
		if da == db {
			continue
		}
		ea, err := layerEntries(ctx, la[i].Uncompressed)
		if err != nil {
			return nil, err
		}
		eb, err := layerEntries(ctx, lb[i].Uncompressed)
		if err != nil {
			return nil, err
		}
		out = append(out, entryDiffs(i+1, ea, eb)...)
	}
	return out, nil
}

// entry summarizes one tar entry for comparison.
type entry struct{ meta, content string }

func layerEntries(ctx context.Context, open func() (io.ReadCloser, error)) (map[string]entry, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := map[string]entry{}
	err = layer.EachEntry(ctx, rc, func(hdr *tar.Header, content io.Reader) error {
		h := sha256.New()
		if _, err := io.Copy(h, content); err != nil {
			return err
		}
		out["/"+hdr.Name] = entry{
			meta: fmt.Sprintf("type %c mode %o owner %d:%d link %q mtime %d xattrs %v", hdr.Typeflag, hdr.Mode,
				hdr.Uid, hdr.Gid, hdr.Linkname, hdr.ModTime.Unix(), hdr.PAXRecords),
			content: hex.EncodeToString(h.Sum(nil)),
		}
		return nil
	})
	return out, err
}

func entryDiffs(n int, a, b map[string]entry) []string {
	var out []string
	for _, name := range sortedKeys(a) {
		eb, ok := b[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("layer %d: %s only in the first build", n, name))
		case a[name].content != eb.content:
			out = append(out, fmt.Sprintf("layer %d: %s (content)", n, name))
		case a[name].meta != eb.meta:
			out = append(out, fmt.Sprintf("layer %d: %s (%s vs %s)", n, name, a[name].meta, eb.meta))
		}
	}
	var extra []string
	for name := range b {
		if _, ok := a[name]; !ok {
			extra = append(extra, fmt.Sprintf("layer %d: %s only in the second build", n, name))
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}
