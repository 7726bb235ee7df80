package build

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
)

// fakeRegistry records what a pipeline asks of the registry, in order.
type fakeRegistry struct {
	s     *cache.Store
	calls []string
	keys  []string
}

func (r *fakeRegistry) ImportCache(_ context.Context, ref string) (CacheImport, error) {
	r.calls = append(r.calls, "import "+ref)
	if ref == "unreachable" {
		return CacheImport{}, errors.New("connection refused")
	}
	return CacheImport{Records: 3}, nil
}

func (r *fakeRegistry) ExportCache(_ context.Context, spec string, img *Image) (CacheExport, error) {
	r.calls, r.keys = append(r.calls, "export "+spec), img.Keys
	return CacheExport{Records: len(img.Keys)}, nil
}

func (r *fakeRegistry) Push(_ context.Context, n cache.Name) (v1.Descriptor, error) {
	r.calls = append(r.calls, "push "+n.Short())
	desc, _, err := r.s.Lookup(n.String())
	return desc, err
}

func (r *fakeRegistry) EncodeEStargz(_ context.Context, m v1.Hash) (v1.Descriptor, error) {
	r.calls = append(r.calls, "estargz")
	size, err := r.s.BlobSize(m)
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: m, Size: size}, err
}

// TestPipelineOrchestration: the whole `kiln build` runs without the CLI — cache import
// (an unreachable cache only warns), build, re-encoding, export, push, cache export with the
// build's keys — and --check-reproducible tags only an image two builds agree on.
func TestPipelineOrchestration(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"Buildfile": "FROM base\nCOPY a /a\n", "a": "a"})
	n, _ := cache.ParseName("app")
	reg := &fakeRegistry{s: f.store}
	var notes strings.Builder
	var exported *Image
	epoch := time.Unix(1700000000, 0).UTC()
	po := PipelineOptions{
		Options:  Options{ContextDir: f.dir, Store: f.store, Resolver: storeResolver{f.store}, Tags: []cache.Name{n}, Epoch: &epoch},
		Registry: reg, CacheFrom: []string{"unreachable", "cachehost/app:cache"}, CacheTo: "cachehost/app:cache",
		EStargz: true, Push: true, Reproducible: true, Notes: &notes,
		Export: func(_ context.Context, img *Image, _ []cache.Name) error { exported = img; return nil },
	}
	img, err := Pipeline(context.Background(), po)
	if err != nil {
		t.Fatal(err)
	}
	want := "import unreachable,import cachehost/app:cache,estargz,export cachehost/app:cache,push app:latest"
	if got := strings.Join(reg.calls, ","); got != want {
		t.Errorf("registry calls %s, want %s", got, want)
	}
	if exported != img || len(reg.keys) == 0 {
		t.Errorf("exported %v, cache keys %v: the export and the cache must see the final image and its keys", exported, reg.keys)
	}
	for _, s := range []string{"WARNING: --cache-from unreachable", "imported 3 cache records", "reproducible: both builds gave", "exported 1 cache records"} {
		if !strings.Contains(notes.String(), s) {
			t.Errorf("notes lack %q:\n%s", s, notes.String())
		}
	}
	if img.Index == nil {
		t.Fatal("a pushed build has no provenance (BuildKit's default is mode=min)")
	}
	if desc, _, err := f.store.Lookup("app"); err != nil || desc.Digest != img.Index.Digest {
		t.Errorf("app is %v (%v), want the attested index %s", desc.Digest, err, img.Index.Digest)
	}
	po.Registry = nil
	if _, err := Pipeline(context.Background(), po); err == nil {
		t.Error("a pipeline that pushes without a registry ran")
	}
}
