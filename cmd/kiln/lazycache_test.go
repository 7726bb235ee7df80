package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/go-units"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/testregistry"
)

// byteCounter is a proxy in front of a registry that counts every response body byte it
// serves: manifests, indexes, configs and blobs, all that a client fetches.
type byteCounter struct {
	proxy *httputil.ReverseProxy
	bytes atomic.Int64
}

func (c *byteCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.proxy.ServeHTTP(&countingWriter{ResponseWriter: w, n: &c.bytes}, r)
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	k, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(k))
	return k, err
}

// countingRegistry starts docker-registry behind a byte-counting proxy; it returns the
// proxy's address, which is the only one the test uses.
func countingRegistry(t *testing.T) (string, *byteCounter) {
	t.Helper()
	backend := testregistry.Start(t)
	u, _ := url.Parse("http://" + backend)
	c := &byteCounter{proxy: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), c
}

// layerBytes sums the compressed layer sizes of the stored image ref.
func layerBytes(t *testing.T, root, ref string) int64 {
	t.Helper()
	s, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	desc, _, err := s.Lookup(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// TestLazyCacheImport: a second machine importing a registry cache fetches, all bytes
// counted (manifests, configs, cache records and blobs), no more than the final image's
// layers + 5%, never the 20 MB builder layer, and its cache summary says as much as the
// registry served; with --push to the same registry no layer at all (they are mounted from
// the cache repository); the pushed image is whole, and the lazily kept local image fetches
// its layers when it runs.
func TestLazyCacheImport(t *testing.T) {
	requireContainers(t)
	addr, counter := countingRegistry(t)
	ctxDir := t.TempDir()
	writeTree(t, ctxDir, map[string]string{
		"Buildfile": "FROM busybox AS builder\nRUN head -c 20000000 /dev/urandom > /big && echo small > /small\n" +
			"FROM busybox\nCOPY --from=builder /small /small\nCOPY f /f\n",
		"f": "f",
	})
	cacheRef := addr + "/team/app:buildcache"
	ok(t, busyboxRoot(t), "build", "--progress=plain", "--cache-to", "type=registry,ref="+cacheRef+",mode=max", "-t", "app", ctxDir)

	second := busyboxRoot(t)
	counter.bytes.Store(0)
	start := time.Now()
	r := ok(t, second, "build", "--progress=plain", "--cache-from", cacheRef, "-t", "app", ctxDir)
	took := time.Since(start)
	if n := strings.Count(r.stderr, "CACHED"); n != 3 {
		t.Errorf("%d CACHED steps, want 3:\n%s", n, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	fetched, final := counter.bytes.Load(), layerBytes(t, second, "app")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "cache: 3 steps cached, 0 run, ") {
		t.Errorf("last progress line %q, want the cache summary", last)
	} else if said := summaryPulled(t, last); said < fetched*99/100 || said > fetched*101/100 {
		t.Errorf("the summary says %d bytes pulled, the registry served %d: %q", said, fetched, last)
	}
	t.Logf("second machine: %d bytes fetched (everything) in %v; the final image's layers are %d bytes; %s", fetched, took, final, last)
	if fetched > final+final/20 {
		t.Errorf("fetched %d bytes for a final image of %d layer bytes (more than +5%%): the import is not lazy", fetched, final)
	}
	if out := ok(t, second, "run", "--rm", "app", "cat", "/small").stdout; out != "small\n" {
		t.Errorf("run of the built image: %q", out)
	}

	pusher := busyboxRoot(t)
	counter.bytes.Store(0)
	pushed := addr + "/team/app:1"
	ok(t, pusher, "build", "--progress=plain", "--cache-from", cacheRef, "-t", pushed, "--push", ctxDir)
	if n := counter.bytes.Load(); n > 64<<10 {
		t.Errorf("build --push fetched %d bytes: cached layers must be mounted, not downloaded", n)
	}
	t.Logf("second machine with --push: %d bytes fetched (everything)", counter.bytes.Load())
	if out := ok(t, pusher, "run", "--rm", pushed, "cat", "/small").stdout; out != "small\n" {
		t.Errorf("run of the lazily kept image: %q", out)
	}
	third := t.TempDir()
	ok(t, third, "pull", pushed)
	if out := ok(t, third, "run", "--rm", pushed, "cat", "/f").stdout; out != "f" {
		t.Errorf("run of the pushed image: %q", out)
	}

	// To another registry the cached layers stream registry → registry: the push reads
	// them from the cache (never the 20 MB builder layer) and the store keeps none.
	other := testregistry.Start(t) + "/team/app:2"
	streamer := busyboxRoot(t)
	counter.bytes.Store(0)
	ok(t, streamer, "build", "--progress=plain", "--cache-from", cacheRef, "-t", other, "--push", ctxDir)
	if n := counter.bytes.Load(); n > final {
		t.Errorf("a push to another registry read %d bytes from the cache, more than the image's %d", n, final)
	}
	if out := ok(t, streamer, "run", "--rm", other, "cat", "/small").stdout; out != "small\n" {
		t.Errorf("run of the streamed image: %q", out)
	}
	fourth := t.TempDir()
	ok(t, fourth, "pull", other)
	if out := ok(t, fourth, "run", "--rm", other, "cat", "/small").stdout; out != "small\n" {
		t.Errorf("run of the image pushed to another registry: %q", out)
	}
}

// summaryPulled reads the bytes pulled from a cache summary line ("…, 1.2MB pulled, …").
func summaryPulled(t *testing.T, line string) int64 {
	t.Helper()
	for _, f := range strings.Split(line, ", ") {
		if v, ok := strings.CutSuffix(f, " pulled"); ok {
			n, err := units.FromHumanSize(v)
			if err != nil {
				t.Fatalf("summary %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("summary %q names no bytes pulled", line)
	return 0
}

// TestCacheBackendsCLI: a local cache directory and an inline cache serve a fresh store;
// several --cache-from go in order (a missing one only warns, --explain names the one that
// answered); JSON progress ends with the cache summary (bytes pulled, the recorded time of the
// cached RUN saved); unknown keys list the valid ones.
func TestCacheBackendsCLI(t *testing.T) {
	requireContainers(t)
	addr := testregistry.Start(t)
	ctxDir, dir := t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\nCOPY a /a\nRUN cat /a /a > /b\n", "a": "A"})
	ok(t, busyboxRoot(t), "build", "--cache-to", "type=local,dest="+dir+",mode=max,compression=zstd", ctxDir)
	r := ok(t, busyboxRoot(t), "build", "--progress=json", "--cache-from", "type=local,src="+dir, ctxDir)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	var last struct {
		Kind  string
		Cache *struct {
			Cached, Run  int
			PulledBytes  int64
			SavedSeconds float64
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Kind != "cache-summary" || last.Cache == nil || last.Cache.Cached != 2 {
		t.Errorf("last JSON event %q (%v), want a cache summary with 2 cached steps", lines[len(lines)-1], err)
	} else if last.Cache.PulledBytes <= 0 || last.Cache.SavedSeconds <= 0 {
		// The image's layers came from the cache dir, and the RUN's recorded duration is time saved.
		t.Errorf("cache summary %q: want bytes pulled and time saved", lines[len(lines)-1])
	}

	img := addr + "/team/inline:1"
	ok(t, busyboxRoot(t), "build", "-t", img, "--push", "--cache-to", "type=inline", ctxDir)
	r = ok(t, busyboxRoot(t), "build", "--progress=plain", "--explain", "--cache-from", addr+"/team/none:x", "--cache-from", img, "--cache-from", "type=local,src="+dir, ctxDir)
	if n := strings.Count(r.stderr, "CACHED from "+img); n != 2 || !strings.Contains(r.stderr, "WARNING: --cache-from "+addr+"/team/none:x") {
		t.Errorf("want 2 steps CACHED from the inline cache (the first to have them) and a warning:\n%s", r.stderr)
	}
	if r := kiln(t, t.TempDir(), nil, "build", "--cache-to", "type=local,dest="+dir+",colour=red", ctxDir); r.code != 2 || !strings.Contains(r.stderr, "valid keys: type, dest, mode, compression, ignore-error") {
		t.Errorf("unknown key: exit %d %s", r.code, r.stderr)
	}
}

// TestCacheMountsTravel: a cache mount's contents go out with --cache-to mounts=true and
// seed a fresh machine's mount, so the step re-run there (its source changed) sees what the
// first machine left; through a registry and through a local directory. `kiln cache mounts`
// lists and prunes them.
func TestCacheMountsTravel(t *testing.T) {
	requireContainers(t)
	addr := testregistry.Start(t)
	for _, tc := range []struct{ name, to, from string }{
		{"registry", "type=registry,ref=" + addr + "/team/m:cache,mounts=true", "type=registry,ref=" + addr + "/team/m:cache,mounts=true"},
		{"local", "type=local,dest=DIR,mounts=true,mounts-max-size=1m", "type=local,src=DIR,mounts=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			to, from := strings.ReplaceAll(tc.to, "DIR", dir), strings.ReplaceAll(tc.from, "DIR", dir)
			ctxDir := t.TempDir()
			writeTree(t, ctxDir, map[string]string{
				"Buildfile": "FROM busybox\nCOPY src /src\nRUN --mount=type=cache,target=/c,id=cm sh -c 'cat /src >> /c/log; cp /c/log /log'\n",
				"src":       "first\n",
			})
			r := ok(t, busyboxRoot(t), "build", "--progress=plain", "--cache-to", to, ctxDir)
			if !strings.Contains(r.stderr, "exported 1 cache mounts") {
				t.Fatalf("export:\n%s", r.stderr)
			}
			writeTree(t, ctxDir, map[string]string{"src": "second\n"})
			second := busyboxRoot(t)
			r = ok(t, second, "build", "--progress=plain", "--cache-from", from, "-t", "app", ctxDir)
			if !strings.Contains(r.stderr, "seeded 1 cache mounts") {
				t.Errorf("import:\n%s", r.stderr)
			}
			if out := ok(t, second, "run", "--rm", "app", "cat", "/log").stdout; out != "first\nsecond\n" {
				t.Errorf("the re-run step saw %q in its cache mount, want the first machine's line then its own", out)
			}
			if out := ok(t, second, "cache", "mounts").stdout; !strings.Contains(out, "cm ") || !strings.Contains(out, "/c") {
				t.Errorf("kiln cache mounts:\n%s", out)
			}
			if tc.name == "local" {
				writeTree(t, ctxDir, map[string]string{"src": "third\n"}) // so the step runs and uses the mount
				r := ok(t, second, "build", "--progress=plain", "--cache-to", "type=local,dest="+t.TempDir()+",mounts=true,mounts-max-size=1", ctxDir)
				if !strings.Contains(r.stderr, "cache mount cm") || !strings.Contains(r.stderr, "left out") {
					t.Errorf("a mount over mounts-max-size must be left out with a warning:\n%s", r.stderr)
				}
			}
			ok(t, second, "cache", "mounts", "--prune")
			if out := ok(t, second, "cache", "mounts").stdout; strings.Contains(out, "cm ") {
				t.Errorf("after --prune:\n%s", out)
			}
		})
	}
}

// corruptor is a proxy in front of a registry that flips a byte of one blob's body.
type corruptor struct {
	proxy  *httputil.ReverseProxy
	digest atomic.Value // string: the blob to corrupt, "" = none
	hits   atomic.Int64
}

func (c *corruptor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d, _ := c.digest.Load().(string); d != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d) {
		c.hits.Add(1)
		w = &flipWriter{ResponseWriter: w}
	}
	c.proxy.ServeHTTP(w, r)
}

type flipWriter struct {
	http.ResponseWriter
	done bool
}

func (w *flipWriter) Write(p []byte) (int, error) {
	if !w.done && len(p) > 0 {
		q := append([]byte(nil), p...)
		q[len(q)/2] ^= 0xff
		w.done = true
		return w.ResponseWriter.Write(q)
	}
	return w.ResponseWriter.Write(p)
}

// TestLazyCacheCorruptBlob: a lazily imported layer that arrives corrupt is a cache miss for
// the build that meets it, not a failure: the build warns, runs the step that layer cached,
// and ends with a whole image.
func TestLazyCacheCorruptBlob(t *testing.T) {
	requireContainers(t)
	backend := testregistry.Start(t)
	u, _ := url.Parse("http://" + backend)
	c := &corruptor{proxy: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctxDir := t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\nRUN echo built > /x\nCOPY f /f\n", "f": "f"})
	cacheRef := addr + "/team/app:buildcache"
	first := busyboxRoot(t)
	ok(t, first, "build", "--progress=plain", "--cache-to", "type=registry,ref="+cacheRef+",mode=max", "-t", "app", ctxDir)
	s, err := cache.Open(first)
	if err != nil {
		t.Fatal(err)
	}
	desc, _, err := s.Lookup("app")
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	s.Close()
	if err != nil || len(m.Layers) < 2 {
		t.Fatalf("manifest: %v, %d layers", err, len(m.Layers))
	}
	c.digest.Store(m.Layers[len(m.Layers)-2].Digest.String()) // the RUN step's layer

	second := busyboxRoot(t)
	r := ok(t, second, "build", "--progress=plain", "--cache-from", cacheRef, "-t", "app", ctxDir)
	if c.hits.Load() == 0 {
		t.Fatal("the corrupt blob was never fetched: the test proves nothing")
	}
	if !strings.Contains(r.stderr, "corrupt") || !strings.Contains(r.stderr, "run again") {
		t.Errorf("no warning about the corrupt cached layer:\n%s", r.stderr)
	}
	if out := ok(t, second, "run", "--rm", "app", "cat", "/x", "/f").stdout; out != "built\nf" {
		t.Errorf("run of the rebuilt image: %q", out)
	}
}

// TestInlineCacheSkipsUncachedBuilder: an inline cache holds only the final stage's records, so
// the builder stage has none; a fresh machine still runs nothing, since the only step that
// needs the builder's result is cached (as BuildKit); a change that misses it runs the builder.
func TestInlineCacheSkipsUncachedBuilder(t *testing.T) {
	requireContainers(t)
	addr := testregistry.Start(t)
	ctxDir := t.TempDir()
	writeTree(t, ctxDir, map[string]string{
		"Buildfile": "FROM busybox AS builder\nCOPY b /b\nRUN cat /b > /small && echo other > /other\nFROM busybox\nCOPY --from=builder /small /small\nCOPY f /f\n",
		"b":         "b1", "f": "f",
	})
	img := addr + "/team/inline:builder"
	ok(t, busyboxRoot(t), "build", "-t", img, "--push", "--cache-to", "type=inline", ctxDir)
	second := busyboxRoot(t)
	r := ok(t, second, "build", "--progress=plain", "--cache-from", img, "-t", "app", ctxDir)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "cache: 2 steps cached, 0 run, ") || strings.Contains(r.stderr, "RUN cat") {
		t.Errorf("the builder stage ran though its only dependant is cached:\n%s", r.stderr)
	}
	if out := ok(t, second, "run", "--rm", "app", "cat", "/small", "/f").stdout; out != "b1f" {
		t.Errorf("run of the built image: %q", out)
	}
	writeTree(t, ctxDir, map[string]string{"b": "b2"})
	r = ok(t, second, "build", "--progress=plain", "--cache-from", img, "-t", "app", ctxDir)
	if out := ok(t, second, "run", "--rm", "app", "cat", "/small").stdout; out != "b2" || !strings.Contains(r.stderr, "RUN cat") {
		t.Errorf("after changing the builder's input: /small is %q:\n%s", out, r.stderr)
	}
}
