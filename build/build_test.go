package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
)

// storeResolver serves base images from a test store.
type storeResolver struct{ s *cache.Store }

func (r storeResolver) Resolve(_ context.Context, ref string) (v1.Image, error) {
	desc, _, err := r.s.Lookup(ref)
	if err != nil {
		return nil, err
	}
	return r.s.Image(desc.Digest)
}

// events records progress events for assertions.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) report(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// kinds maps each step name to its final event kind (cached or done).
func (e *events) kinds() map[string]EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]EventKind{}
	for _, ev := range e.all {
		if ev.Kind == EventCached || ev.Kind == EventDone {
			out[ev.Name] = ev.Kind
		}
	}
	return out
}

type fixture struct {
	t     *testing.T
	store *cache.Store
	dir   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	desc, err := s.WriteImage(context.Background(), baseImage(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := cache.ParseName("base")
	if err := s.Tag(context.Background(), n, desc); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, store: s, dir: t.TempDir()}
}

func (f *fixture) build(buildfile string, mod func(*Options)) (*Image, *events, error) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, "Buildfile"), []byte(buildfile), 0o644); err != nil {
		f.t.Fatal(err)
	}
	ev := &events{}
	o := Options{ContextDir: f.dir, Store: f.store, Resolver: storeResolver{f.store}, Report: ev.report, Jobs: 2, Compression: layer.Gzip}
	if mod != nil {
		mod(&o)
	}
	img, err := Build(context.Background(), o)
	return img, ev, err
}

// files lists every layer entry of the image as "type mode uid:gid content link", last layer winning.
func (f *fixture) files(img *Image) map[string]string {
	f.t.Helper()
	im, err := f.store.Image(img.Manifest.Digest)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := validate.Image(im); err != nil {
		f.t.Fatalf("invalid image: %v", err)
	}
	ls, err := im.Layers()
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			f.t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			desc := fmt.Sprintf("%c %04o %d:%d %s %s", hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, data, hdr.Linkname)
			out["/"+strings.TrimSuffix(hdr.Name, "/")] = strings.TrimSpace(desc)
		}
		rc.Close()
	}
	return out
}

func (f *fixture) write(files map[string]string) { writeTree(f.t, f.dir, files) }

func TestBuildCopyAndMetadata(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"app/main.sh": "echo hi", "app/lib/x": "x", "app/README.md": "ignored", ".dockerignore": "**/*.md\n"})
	img, _, err := f.build(`FROM base
ENV HOME=/home/app
WORKDIR /srv/app
COPY app/ ./
COPY --chown=app:app --chmod=0700 app/main.sh /usr/local/bin/main
COPY <<EOF /etc/motd
welcome to $HOME
EOF
USER app
CMD ["main"]
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := f.files(img)
	wantFiles(t, got, map[string]string{
		"/srv":                "5 0755 0:0",
		"/srv/app":            "5 0755 0:0",
		"/srv/app/main.sh":    "0 0644 0:0 echo hi",
		"/srv/app/lib/x":      "0 0644 0:0 x",
		"/usr/local/bin/main": "0 0700 1000:1500 echo hi",
		"/etc/motd":           "0 0644 0:0 welcome to /home/app",
	})
	if _, ok := got["/srv/app/README.md"]; ok {
		t.Error(".dockerignore'd file was copied")
	}
	cfg := img.Config.Config
	if cfg.WorkingDir != "/srv/app" || cfg.User != "app" || len(cfg.Cmd) != 1 {
		t.Errorf("config = %+v", cfg)
	}
	if n := len(img.Config.History); n != 1+7 {
		t.Errorf("history has %d entries, want 8: %+v", n, img.Config.History)
	}
}

// TestBuildHistoryExpandsVariables: created_by is BuildKit's text, variables expanded.
func TestBuildHistoryExpandsVariables(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"a": "1"})
	img, _, err := f.build(`FROM base
ARG VERSION=1.0
LABEL version=${VERSION}
ENV DIR=/opt/v$VERSION
WORKDIR $DIR/
COPY --chmod=0600 a $DIR/a
USER app
ARG EMPTY
RUN echo $VERSION
CMD run $VERSION
`, func(o *Options) { o.Runner = &fakeRunner{} })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range img.Config.History[1:] {
		got = append(got, h.CreatedBy)
	}
	want := []string{"ARG VERSION=1.0", "LABEL version=1.0", "ENV DIR=/opt/v1.0", "WORKDIR /opt/v1.0/",
		"COPY --chmod=0600 a /opt/v1.0/a # buildkit", "USER app", "ARG EMPTY",
		"RUN |2 VERSION=1.0 EMPTY= /bin/sh -c echo $VERSION # buildkit", `CMD ["/bin/sh" "-c" "run $VERSION"]`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("created_by:\n got %q\nwant %q", got, want)
	}
}

func TestBuildCacheHitsAndMisses(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"a": "1", "b": "2"})
	bf := "FROM base\nCOPY a /a\nCOPY b /b\nENV X=1\n"
	first, ev, err := f.build(bf, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range ev.kinds() {
		if strings.Contains(name, "COPY") && k != EventDone {
			t.Errorf("cold build: %s was %v", name, k)
		}
	}
	second, ev, err := f.build(bf, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range ev.kinds() {
		if strings.Contains(name, "COPY") && k != EventCached {
			t.Errorf("no-op rebuild: %s was %v", name, k)
		}
	}
	if first.Manifest.Digest != second.Manifest.Digest {
		t.Errorf("no-op rebuild changed the digest: %s → %s", first.Manifest.Digest, second.Manifest.Digest)
	}
	f.write(map[string]string{"b": "changed"})
	_, ev, err = f.build(bf, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := ev.kinds()
	if k["[2/3] COPY a /a"] != EventCached || k["[3/3] COPY b /b"] != EventDone {
		t.Errorf("after editing b: %v", k)
	}
	_, ev, err = f.build(bf, func(o *Options) { o.NoCache = true })
	if err != nil {
		t.Fatal(err)
	}
	if k := ev.kinds(); k["[2/3] COPY a /a"] != EventDone {
		t.Errorf("--no-cache: %v", k)
	}
}

func TestBuildReproducibleWithEpoch(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	var digests []string
	for i := 0; i < 2; i++ {
		f := newFixture(t)
		f.write(map[string]string{"a": "same"})
		now := time.Now().Add(time.Duration(i) * time.Hour)
		os.Chtimes(filepath.Join(f.dir, "a"), now, now)
		img, _, err := f.build("FROM base\nWORKDIR /w\nCOPY a .\nCOPY <<EOF /h\nx\nEOF\n", func(o *Options) { o.Epoch = &epoch })
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, img.Manifest.Digest.String())
	}
	if digests[0] != digests[1] {
		t.Errorf("same inputs with SOURCE_DATE_EPOCH gave %s and %s", digests[0], digests[1])
	}
}

func TestBuildAddExtractsArchives(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, n := range []string{"pkg/", "pkg/bin", "../escape"} {
		hdr := &tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeReg, Size: 2}
		if strings.HasSuffix(n, "/") {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		tw.WriteHeader(hdr)
		if hdr.Size > 0 {
			tw.Write([]byte("ok"))
		}
	}
	tw.Close()
	gz.Close()
	f.write(map[string]string{"pkg.tgz": buf.String(), "plain.txt": "p"})
	img, _, err := f.build("FROM base\nADD pkg.tgz plain.txt /opt/\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range f.files(img) {
		if strings.HasPrefix(n, "/opt") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	want := []string{"/opt", "/opt/escape", "/opt/pkg", "/opt/pkg/bin", "/opt/plain.txt"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("ADD wrote %q, want %q", names, want)
	}
}

func TestBuildErrorsLeaveStoreUntouched(t *testing.T) {
	f := newFixture(t)
	before, _ := f.store.List()
	for _, bf := range []string{
		"FROM base\nCOPY nothing /\n",
		"FROM base\nCOPY --chown=nobody a /\n",
		"FROM base\nRUN true\n",
		"FROM missing\n",
	} {
		f.write(map[string]string{"a": "a"})
		n, _ := cache.ParseName("out")
		if _, _, err := f.build(bf, func(o *Options) { o.Tags = []cache.Name{n} }); err == nil {
			t.Errorf("%q: no error", bf)
		} else if !strings.Contains(err.Error(), "Buildfile:") {
			t.Errorf("%q: error without location: %v", bf, err)
		}
	}
	after, _ := f.store.List()
	if len(after) != len(before) {
		t.Errorf("failed builds changed the tags: %v → %v", before, after)
	}
}

// logs joins the output of every step.
func (e *events) logs() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.all {
		if ev.Kind == EventLog {
			b.Write(ev.Data)
		}
	}
	return b.String()
}

// TestCopyChownRange pins #10.6: an id outside 0..2^32-2 is refused with the Buildfile line,
// never wrapped to root (with --chmod=4755 that made a setuid-root file).
func TestCopyChownRange(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"a": "a"})
	for _, chown := range []string{"4294967296", "-1", "4294967295", "0:-1", "1000:4294967296", "99999999999999999999"} {
		_, _, err := f.build("FROM base\n\nCOPY --chown="+chown+" --chmod=4755 a /a\n", nil)
		if err == nil || !strings.Contains(err.Error(), "Buildfile:3") || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("--chown=%s: %v, want an out-of-range error at Buildfile:3", chown, err)
		}
	}
	_, _, err := f.build("FROM base\nRUN --mount=type=cache,target=/c,uid=4294967295 true\n", func(o *Options) { o.Runner = &fakeRunner{} })
	if err == nil || !strings.Contains(err.Error(), "Buildfile:2") || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("cache mount uid=2^32-1: %v", err)
	}
	img, _, err := f.build("FROM base\nCOPY --chown=4294967294:0 a /a\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.files(img)["/a"]; got != "0 0644 4294967294:0 a" {
		t.Errorf("/a = %q", got)
	}
}

// wantFiles checks that the image files got (from fixture.files) include want, path by path.
func wantFiles(t *testing.T, got, want map[string]string) {
	t.Helper()
	for _, p := range sortedKeys(want) {
		if got[p] != want[p] {
			t.Errorf("%s = %q, want %q", p, got[p], want[p])
		}
	}
}

// tarOf makes a tar of headers; regular files get their name as content.
func tarOf(t *testing.T, hdrs ...*tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(h.Name))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestAddArchiveResolvesInsideDest: a local archive is extracted as if the destination were
// the root, as docker does: links to ".." or "/" stay links and entries through them land
// inside the destination.
func TestAddArchiveResolvesInsideDest(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"t.tar": tarOf(t,
		&tar.Header{Name: "symldir1", Typeflag: tar.TypeSymlink, Linkname: ".."},
		&tar.Header{Name: "symldir1/etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "symldir1/etc/myfile", Typeflag: tar.TypeReg},
		&tar.Header{Name: "abs", Typeflag: tar.TypeSymlink, Linkname: "/"},
		&tar.Header{Name: "abs/x", Typeflag: tar.TypeReg},
		&tar.Header{Name: "symldir1/etc/hard", Typeflag: tar.TypeLink, Linkname: "abs/etc/myfile"},
	)})
	img, _, err := f.build("FROM base\nADD t.tar /testsubdir\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := f.files(img)
	wantFiles(t, got, map[string]string{
		"/testsubdir/symldir1":   "2 0777 0:0  ..",
		"/testsubdir/abs":        "2 0777 0:0  /",
		"/testsubdir/etc/myfile": "0 0644 0:0 symldir1/etc/myfile",
		"/testsubdir/x":          "0 0644 0:0 abs/x",
		"/testsubdir/etc":        "5 0755 0:0",
		"/testsubdir/etc/hard":   "1 0644 0:0  testsubdir/etc/myfile",
	})
	for _, p := range []string{"/etc/myfile", "/x", "/testsubdir/symldir1/etc/myfile"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s extracted outside the destination: %v", p, got)
		}
	}
}

// TestAddRefusesArchivesThatCannotUnpack pins #10.8b: ADD of a local archive that the
// unpacker would refuse fails the build at its line, instead of storing an image that never
// unpacks; a valid archive with a hard link still builds and unpacks.
func TestAddRefusesArchivesThatCannotUnpack(t *testing.T) {
	f := newFixture(t)
	reg := func(n string) *tar.Header { return &tar.Header{Name: n, Typeflag: tar.TypeReg} }
	hostile := map[string]string{
		"link-missing.tar": tarOf(t, &tar.Header{Name: "a", Typeflag: tar.TypeLink, Linkname: "nowhere"}),
		"link-dir.tar":     tarOf(t, &tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, &tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "d"}),
		"under-file.tar":   tarOf(t, reg("f"), reg("f/x")),
	}
	hostile["good.tar"] = tarOf(t, reg("f"), &tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "f"})
	f.write(hostile)
	for name := range hostile {
		if name == "good.tar" {
			continue
		}
		_, _, err := f.build("FROM base\nADD "+name+" /x/\n", nil)
		if err == nil || !strings.Contains(err.Error(), "Buildfile:2: ADD") {
			t.Errorf("ADD %s: %v, want it refused at Buildfile:2", name, err)
		}
	}
	img, _, err := f.build("FROM base\nADD good.tar /x/\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	im, err := f.store.Image(img.Manifest.Digest)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := im.Layers()
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := layer.Apply(context.Background(), rc, t.TempDir(), layer.ApplyOptions{}); err != nil {
			t.Errorf("layer of a valid ADD does not unpack: %v", err)
		}
		rc.Close()
	}
}
