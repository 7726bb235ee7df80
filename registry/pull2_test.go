package registry

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/internal/testimage"
)

// TestInterruptedPullResumes: a pull that dies after the layer arrived leaves no image,
// and the next pull downloads only what is missing.
func TestInterruptedPullResumes(t *testing.T) {
	fr := newFaultyRegistry(t)
	img, want := fr.seed(t, "lib/bb:1")
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	isConfig := func(r *http.Request) bool { return isBlobGet(r) && strings.Contains(r.URL.Path, cfg.Hex) }
	fr.setFault(failN(1000, isConfig, status(http.StatusNotFound, "")))
	s := openStore(t)
	if _, err := Pull(context.Background(), s, fr.host()+"/lib/bb:1", fastRetry()); err == nil {
		t.Fatal("pull without a config succeeded")
	}
	assertNoImage(t, s)
	var layerGets atomic.Int64
	fr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if isBlobGet(r) && !isConfig(r) {
			layerGets.Add(1)
		}
		return false
	})
	if _, err := Pull(context.Background(), s, fr.host()+"/lib/bb:1"); err != nil {
		t.Fatal(err)
	}
	assertPulled(t, s, fr.host()+"/lib/bb:1", want)
	if n := layerGets.Load(); n != 0 {
		t.Errorf("resumed pull downloaded %d layers again", n)
	}
}

func TestPullByDigestAndTimeout(t *testing.T) {
	fr := newFaultyRegistry(t)
	_, want := fr.seed(t, "lib/bb:1")
	s := openStore(t)
	ref := fr.host() + "/lib/bb@" + want.String()
	if _, err := Pull(context.Background(), s, ref); err != nil {
		t.Fatal(err)
	}
	assertPulled(t, s, ref, want)

	fr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done() // a registry that never answers
		return true
	})
	start := time.Now()
	_, err := Pull(context.Background(), openStore(t), fr.host()+"/lib/bb:1", WithTimeout(100*time.Millisecond))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow registry with a 100ms timeout: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("timeout took %v", time.Since(start))
	}
}

// TestPullPicksPlatform pulls one image of a two-platform index.
func TestPullPicksPlatform(t *testing.T) {
	fr := newFaultyRegistry(t)
	base := testimage.Busybox(t)
	images := map[string]v1.Image{}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		cf, err := base.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Architecture, cf.OS = arch, "linux"
		img, err := mutate.ConfigFile(base, cf)
		if err != nil {
			t.Fatal(err)
		}
		images[arch] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	ref, _ := name.ParseReference(fr.host() + "/multi/bb:1")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	for arch, img := range images {
		s := openStore(t)
		desc, err := Pull(context.Background(), s, ref.String(), WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := img.Digest(); d != desc.Digest {
			t.Errorf("%s: pulled %s, want %s", arch, desc.Digest, d)
		}
	}
	if _, err := Pull(context.Background(), openStore(t), ref.String(), WithPlatform(v1.Platform{OS: "linux", Architecture: "s390x"})); err == nil ||
		!strings.Contains(err.Error(), "s390x") {
		t.Errorf("missing platform: %v", err)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second, true},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"soon", 0, false},
		{"-1", 0, false},
	}
	for _, c := range cases {
		got, ok := retryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
