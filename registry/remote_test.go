package registry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/testimage"
)

// fastRetry keeps retry tests quick.
func fastRetry() Option {
	return func(o *options) error {
		o.retry = retryPolicy{attempts: 5, base: time.Millisecond, max: 2 * time.Second}
		return nil
	}
}

// fault decides what to do with one request; returning true means it was handled.
type fault func(w http.ResponseWriter, r *http.Request) bool

// faultyRegistry is go-containerregistry's in-process registry behind a fault injector.
type faultyRegistry struct {
	srv   *httptest.Server
	mu    sync.Mutex
	fault fault
	hits  atomic.Int64 // requests seen
	inner http.Handler
}

// mangled serves the real response with its body changed by f, keeping Content-Length.
func (fr *faultyRegistry) mangled(n int64, match func(*http.Request) bool, f func([]byte) []byte, truncate bool) fault {
	var seen atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r) || seen.Add(1) > n {
			return false
		}
		body := fr.replay(w, r, func(n int) int { return n })
		if truncate {
			w.Write(body[:len(body)/2])
			resetConn(w)
			return true
		}
		w.Write(f(body))
		return true
	}
}

// replay serves r with the real registry but sends only the status and headers, declaring the
// Content-Length that length makes of the body's; the caller writes (some of) the body it returns.
func (fr *faultyRegistry) replay(w http.ResponseWriter, r *http.Request, length func(int) int) []byte {
	rec := httptest.NewRecorder()
	fr.inner.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(length(len(body))))
	w.WriteHeader(rec.Code)
	return body
}

func newFaultyRegistry(t *testing.T) *faultyRegistry {
	t.Helper()
	fr := &faultyRegistry{}
	inner := ggcr.New(ggcr.Logger(nilLogger()))
	fr.inner = inner
	fr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr.hits.Add(1)
		fr.mu.Lock()
		f := fr.fault
		fr.mu.Unlock()
		if f != nil && f(w, r) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(fr.srv.Close)
	return fr
}

func (fr *faultyRegistry) setFault(f fault) {
	fr.mu.Lock()
	fr.fault = f
	fr.mu.Unlock()
}

func (fr *faultyRegistry) host() string { return strings.TrimPrefix(fr.srv.URL, "http://") }

// seed pushes the busybox test image to repo:tag and returns its digest.
func (fr *faultyRegistry) seed(t *testing.T, repo string) (v1.Image, v1.Hash) {
	t.Helper()
	img := testimage.Busybox(t)
	ref, err := name.ParseReference(fr.host() + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return img, d
}

// failN fails the first n requests that match with the given behaviour.
func failN(n int64, match func(*http.Request) bool, do func(w http.ResponseWriter)) fault {
	var seen atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r) || seen.Add(1) > n {
			return false
		}
		do(w)
		return true
	}
}

func isBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
}

func anyRequest(*http.Request) bool { return true }

func status(code int, retryAfter string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
	}
}

// resetConn drops the TCP connection without a response.
func resetConn(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func assertPulled(t *testing.T, s *cache.Store, ref string, want v1.Hash) {
	t.Helper()
	desc, _, err := s.Lookup(ref)
	if err != nil {
		t.Fatalf("lookup %s after pull: %v", ref, err)
	}
	if desc.Digest != want {
		t.Fatalf("pulled %s, want %s", desc.Digest, want)
	}
	img, err := s.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("pulled image invalid: %v", err)
	}
}

func assertNoImage(t *testing.T, s *cache.Store) {
	t.Helper()
	tags, err := s.List()
	if err != nil || len(tags) != 0 {
		t.Fatalf("store has tags %v (%v) after a failed pull", tags, err)
	}
}

func TestPullRetriesTransientFaults(t *testing.T) {
	cases := map[string]fault{
		"500 on blobs":          failN(2, isBlobGet, status(500, "")),
		"503 on everything":     failN(2, anyRequest, status(503, "")),
		"429 with Retry-After":  failN(1, anyRequest, status(429, "1")),
		"connection resets":     failN(2, isBlobGet, resetConn),
		"408 request timeout":   failN(1, anyRequest, status(408, "")),
		"502 bad gateway":       failN(1, anyRequest, status(502, "")),
		"truncated blob stream": nil, // filled in per registry
	}
	for label, f := range cases {
		t.Run(label, func(t *testing.T) {
			fr := newFaultyRegistry(t)
			_, want := fr.seed(t, "lib/bb:1")
			if f == nil {
				f = fr.mangled(2, isBlobGet, nil, true)
			}
			fr.setFault(f)
			s := openStore(t)
			start := time.Now()
			desc, err := Pull(context.Background(), s, fr.host()+"/lib/bb:1", fastRetry())
			if err != nil {
				t.Fatalf("pull failed despite retries: %v", err)
			}
			if desc.Digest != want {
				t.Errorf("digest %s, want %s", desc.Digest, want)
			}
			assertPulled(t, s, fr.host()+"/lib/bb:1", want)
			if strings.Contains(label, "Retry-After") && time.Since(start) < 900*time.Millisecond {
				t.Errorf("pull took %v: Retry-After: 1 was not honoured", time.Since(start))
			}
		})
	}
}

func TestPullRefusesCorruptBlobs(t *testing.T) {
	fr := newFaultyRegistry(t)
	fr.seed(t, "lib/bb:1")
	flip := func(b []byte) []byte {
		out := append([]byte(nil), b...)
		out[len(out)/2] ^= 0xff
		return out
	}
	fr.setFault(fr.mangled(1000, isBlobGet, flip, false))
	s := openStore(t)
	_, err := Pull(context.Background(), s, fr.host()+"/lib/bb:1", fastRetry())
	if err == nil {
		t.Fatal("pull accepted blobs with the wrong digest")
	}
	assertNoImage(t, s)
	if _, err := s.Image(must(testimage.Busybox(t).Digest())); err == nil {
		t.Error("the manifest of a failed pull is in the store")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestPullErrorsSayWhatToDo(t *testing.T) {
	fr := newFaultyRegistry(t)
	fr.seed(t, "lib/bb:1")
	s := openStore(t)
	_, err := Pull(context.Background(), s, fr.host()+"/lib/nothere:1", fastRetry())
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "not found in "+fr.host()) {
		t.Errorf("missing image: got %v", err)
	}
	fr.setFault(failN(1000, anyRequest, func(w http.ResponseWriter) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	_, err = Pull(context.Background(), s, fr.host()+"/lib/bb:1", fastRetry())
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "kiln login "+fr.host()) {
		t.Errorf("401: got %v", err)
	}
	assertNoImage(t, s)
}

func TestPullSkipsStoredBlobs(t *testing.T) {
	fr := newFaultyRegistry(t)
	img, want := fr.seed(t, "lib/bb:1")
	s := openStore(t)
	if _, err := s.WriteImage(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	var blobGets atomic.Int64
	fr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if isBlobGet(r) {
			blobGets.Add(1)
		}
		return false
	})
	var events []Event
	var mu sync.Mutex
	progress := WithProgress(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	if _, err := Pull(context.Background(), s, fr.host()+"/lib/bb:1", progress); err != nil {
		t.Fatal(err)
	}
	assertPulled(t, s, fr.host()+"/lib/bb:1", want)
	if n := blobGets.Load(); n > 1 { // the config may be fetched; layers must not
		t.Errorf("%d blob downloads for an image whose blobs were stored", n)
	}
	if len(events) == 0 || events[0].Kind != EventExists {
		t.Errorf("events %+v, want exists", events)
	}
}

func TestResolverPolicies(t *testing.T) {
	fr := newFaultyRegistry(t)
	_, want := fr.seed(t, "lib/bb:1")
	ref := fr.host() + "/lib/bb:1"
	s := openStore(t)
	if _, err := NewResolver(s, WithPullPolicy(PullNever)).Resolve(context.Background(), ref); err == nil ||
		!strings.Contains(err.Error(), "kiln pull") {
		t.Fatalf("PullNever on a missing image: %v", err)
	}
	img, err := NewResolver(s).Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d != want {
		t.Errorf("resolved %s, want %s", d, want)
	}
	before := fr.hits.Load()
	if _, err := NewResolver(s).Resolve(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if fr.hits.Load() != before {
		t.Error("PullMissing contacted the registry for a stored image")
	}
	if _, err := NewResolver(s, WithPullPolicy(PullAlways)).Resolve(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if fr.hits.Load() == before {
		t.Error("PullAlways did not check the registry")
	}
}

// TestResolverWithoutStore: build --check reads a missing base image's config from the
// registry and stores nothing: no tag, no manifest, no layer.
func TestResolverWithoutStore(t *testing.T) {
	fr := newFaultyRegistry(t)
	seeded, want := fr.seed(t, "lib/bb:1")
	ref := fr.host() + "/lib/bb:1"
	s := openStore(t)
	img, err := NewResolver(s, WithoutStore()).Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d != want {
		t.Errorf("resolved %s, want %s", d, want)
	}
	if cf, err := img.ConfigFile(); err != nil || cf.Architecture == "" {
		t.Errorf("config %+v, %v", cf, err)
	}
	if _, _, err := s.Lookup(ref); err == nil {
		t.Error("the image was tagged in the store")
	}
	layers, _ := seeded.Layers()
	for _, l := range layers {
		if d, _ := l.Digest(); s.HasBlob(d) {
			t.Errorf("layer %s was stored", d)
		}
	}
	if s.HasBlob(want) {
		t.Error("the manifest was stored")
	}
}
