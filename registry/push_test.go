package registry

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
)

// remoteImage reads what a push left in the registry.
func fetchRemote(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	// validate.Image reads layers as gzip only; zstd images get the fast check plus diff IDs.
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Fatalf("pushed image invalid: %v", err)
	}
	checkDiffIDs(t, img)
	return img
}

// checkDiffIDs decompresses every layer and compares it with the config's diff ID.
func checkDiffIDs(t *testing.T, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		want, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || got != want {
			t.Fatalf("layer decompresses to %s (%v), config says %s", got, err, want)
		}
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	fr := newFaultyRegistry(t)
	src := openStore(t)
	local := storeBusybox(t, src, "busybox")
	var mu sync.Mutex
	kinds := map[EventKind]int{}
	progress := WithProgress(func(e Event) { mu.Lock(); kinds[e.Kind]++; mu.Unlock() })
	pushed, err := Push(context.Background(), src, "busybox", fr.host()+"/team/bb:v1", progress, fastRetry())
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest != local.Digest {
		t.Errorf("gzip image pushed as %s, stored as %s: an unchanged image must keep its digest", pushed.Digest, local.Digest)
	}
	if kinds[EventStart] == 0 || kinds[EventDone] == 0 {
		t.Errorf("progress events %v, want start and done", kinds)
	}
	dst := openStore(t)
	desc, err := Pull(context.Background(), dst, fr.host()+"/team/bb:v1")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != local.Digest {
		t.Errorf("pulled %s, pushed %s", desc.Digest, local.Digest)
	}
	// A second push finds every blob present and uploads nothing.
	kinds = map[EventKind]int{}
	if _, err := Push(context.Background(), src, "busybox", fr.host()+"/team/bb:v2", progress); err != nil {
		t.Fatal(err)
	}
	if kinds[EventStart] != 0 || kinds[EventExists] == 0 {
		t.Errorf("second push events %v, want only exists", kinds)
	}
}

func TestPushRetriesFaults(t *testing.T) {
	cases := map[string]fault{
		"500 on uploads":  failN(2, func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/blobs/uploads") }, status(500, "")),
		"reset on HEAD":   failN(2, func(r *http.Request) bool { return r.Method == http.MethodHead }, resetConn),
		"429 on manifest": failN(1, func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }, status(429, "0")),
	}
	for label, f := range cases {
		t.Run(label, func(t *testing.T) {
			fr := newFaultyRegistry(t)
			fr.setFault(f)
			src := openStore(t)
			local := storeBusybox(t, src, "busybox")
			if _, err := Push(context.Background(), src, "busybox", fr.host()+"/team/bb:v1", fastRetry()); err != nil {
				t.Fatalf("push failed despite retries: %v", err)
			}
			if d, _ := fetchRemote(t, fr.host()+"/team/bb:v1").Digest(); d != local.Digest {
				t.Errorf("registry has %s, want %s", d, local.Digest)
			}
		})
	}
}

func TestPushCompression(t *testing.T) {
	fr := newFaultyRegistry(t)
	src := openStore(t)
	storeBusybox(t, src, "busybox")
	_, orig := loadedImage(t, src, "busybox")
	for _, c := range []Compression{Zstd, EStargz} {
		t.Run(c.String(), func(t *testing.T) {
			ref := fr.host() + "/team/bb:" + c.String()
			if _, err := Push(context.Background(), src, "busybox", ref, WithCompression(c)); err != nil {
				t.Fatal(err)
			}
			img := fetchRemote(t, ref)
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			l := m.Layers[0]
			switch c {
			case Zstd:
				if l.MediaType != types.OCILayerZStd {
					t.Errorf("layer media type %s", l.MediaType)
				}
				if configName(t, img) != configName(t, orig) {
					t.Error("re-compressing changed the config (image ID)")
				}
			case EStargz:
				verifyEStargz(t, img, l)
			}
			// Pushing again reuses the encoded blob: same manifest digest.
			again, err := Push(context.Background(), src, "busybox", ref+"-again", WithCompression(c))
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := img.Digest(); d != again.Digest {
				t.Errorf("second %s push made %s, first %s", c, again.Digest, d)
			}
		})
	}
}

// verifyEStargz checks the annotations stargz-snapshotter reads and the TOC itself.
func verifyEStargz(t *testing.T, img v1.Image, l v1.Descriptor) {
	t.Helper()
	toc := l.Annotations[estargz.TOCJSONDigestAnnotation]
	if toc == "" || l.Annotations[estargz.StoreUncompressedSizeAnnotation] == "" {
		t.Fatalf("estargz layer lacks annotations: %v", l.Annotations)
	}
	layer, err := img.LayerByDigest(l.Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	blob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := estargz.Open(io.NewSectionReader(strings.NewReader(string(blob)), 0, int64(len(blob))))
	if err != nil {
		t.Fatalf("not an estargz blob: %v", err)
	}
	if _, err := r.VerifyTOC(digest.Digest(toc)); err != nil {
		t.Fatalf("TOC verification: %v", err)
	}
}

func TestPushErrors(t *testing.T) {
	fr := newFaultyRegistry(t)
	s := openStore(t)
	if _, err := Push(context.Background(), s, "nothere", fr.host()+"/x:1"); err == nil {
		t.Error("push of a missing local image succeeded")
	}
	storeBusybox(t, s, "busybox")
	fr.setFault(failN(1000, anyRequest, func(w http.ResponseWriter) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	_, err := Push(context.Background(), s, "busybox", fr.host()+"/x:1")
	if err == nil || !strings.Contains(err.Error(), "kiln login "+fr.host()+"`, or point DOCKER_CONFIG at") {
		t.Errorf("401 push: %v", err)
	}
	// Nothing listens there: the message names the registry and what to check, once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	_, err = Push(context.Background(), s, "busybox", closed+"/x:1", fastRetry())
	if err == nil || !strings.Contains(err.Error(), "push busybox to "+closed+"/x:1: registry "+closed+" is not reachable (dial tcp "+closed+": connect: connection refused): check its name and port") {
		t.Errorf("push to a closed port: %v", err)
	}
	storeBusybox(t, s, closed+"/x:1")
	_, err = Push(context.Background(), s, closed+"/x:1", closed+"/x:1", fastRetry())
	if err == nil || !strings.HasPrefix(err.Error(), "push "+closed+"/x:1: registry "+closed+" is not reachable") {
		t.Errorf("push of an image by its own name to a closed port: %v", err)
	}
}

var _ = cache.ParseName
