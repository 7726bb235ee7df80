package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache/layer"
)

// storeContains reports whether any blob of the store, uncompressed, contains needle.
func storeContains(t *testing.T, f *fixture, needle string) bool {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.store.Root(), "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		rc, err := f.store.OpenBlob(v1.Hash{Algorithm: "sha256", Hex: e.Name()})
		if err != nil {
			t.Fatal(err)
		}
		r, err := layer.Decompress(rc)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		rc.Close()
		if bytes.Contains(b, []byte(needle)) {
			return true
		}
	}
	return false
}

func TestRunSecretMount(t *testing.T) {
	f := newFixture(t)
	r := &fakeRunner{}
	bf := "FROM base\nRUN --mount=type=secret,id=token cat-mount /run/secrets/token\n"
	build := func(secret string) *events {
		t.Helper()
		img, ev, err := f.build(bf, func(o *Options) {
			o.Runner, o.LogDir = r, filepath.Join(f.store.Root(), "logs")
			o.Secrets = map[string][]byte{"token": []byte(secret)}
		})
		if err != nil {
			t.Fatal(err)
		}
		for p := range f.files(img) {
			if strings.HasPrefix(p, "/run") {
				t.Errorf("mount point %s leaked into the image", p)
			}
		}
		return ev
	}
	ev := build("s3cr3t-value")
	for _, e := range ev.all {
		if strings.Contains(string(e.Data), "s3cr3t-value") {
			t.Errorf("secret in progress output: %q", e.Data)
		}
	}
	logs, _ := os.ReadDir(filepath.Join(f.store.Root(), "logs"))
	for _, l := range logs {
		b, _ := os.ReadFile(filepath.Join(f.store.Root(), "logs", l.Name()))
		if strings.Contains(string(b), "s3cr3t-value") || !strings.Contains(string(b), "content: ****") {
			t.Errorf("step log %s: %q", l.Name(), b)
		}
	}
	if storeContains(t, f, "s3cr3t-value") {
		t.Error("the secret reached a blob")
	}
	if r.count() != 1 {
		t.Fatalf("%d runs", r.count())
	}
	build("another-value")
	if r.count() != 1 {
		t.Error("a secret's value must not be part of the cache key")
	}
	_, _, err := f.build("FROM base\nRUN --mount=type=secret,id=missing,required cat-mount /run/secrets/missing\n",
		func(o *Options) { o.Runner = r })
	if err == nil || !strings.Contains(err.Error(), `secret "missing" is required`) {
		t.Errorf("missing required secret: %v", err)
	}
}

func TestRunCacheAndBindMounts(t *testing.T) {
	f := newFixture(t)
	r := &fakeRunner{}
	f.write(map[string]string{"conf/app.conf": "v1"})
	bf := "FROM base\nRUN --mount=type=cache,target=/root/.cache append-mount /root/.cache/log x\n" +
		"RUN --mount=type=bind,source=conf,target=/conf copy-mount /conf/app.conf /app.conf\n"
	opts := func(o *Options) { o.Runner = r }
	if _, _, err := f.build(bf, opts); err != nil {
		t.Fatal(err)
	}
	img, _, err := f.build(bf, func(o *Options) { o.Runner, o.NoCache = r, true })
	if err != nil {
		t.Fatal(err)
	}
	files := f.files(img)
	if files["/app.conf"] != "0 0644 0:0 v1" {
		t.Errorf("bind-mounted file copied as %q", files["/app.conf"])
	}
	for p := range files {
		if strings.HasPrefix(p, "/root/.cache/") || strings.HasPrefix(p, "/conf") {
			t.Errorf("mount %s leaked into the image", p)
		}
	}
	if files["/root/.cache"] != "5 0755 0:0" || files["/root"] != "5 0755 0:0" {
		t.Errorf("cache mount target in the image: %q %q, want empty dirs owned by root", files["/root"], files["/root/.cache"])
	}
	matches, _ := filepath.Glob(filepath.Join(f.store.Root(), "cache", "mounts", "*", "log"))
	if len(matches) != 1 {
		t.Fatalf("cache mount dirs: %v", matches)
	}
	if b, _ := os.ReadFile(matches[0]); string(b) != "xx" {
		t.Errorf("cache mount did not persist across builds: %q", b)
	}
	runs := r.count()
	f.write(map[string]string{"conf/app.conf": "v2"})
	if _, _, err := f.build(bf, opts); err != nil {
		t.Fatal(err)
	}
	if r.count() != runs+1 {
		t.Errorf("changing a bind-mounted file ran %d steps, want 1", r.count()-runs)
	}
}

// TestRunCacheMountIdentityOwner: a cache mount with uid/gid/mode is a cache of its own, as
// BuildKit's base directory makes it; the plain one keeps its old place (id alone). The
// target stays in the image as an empty root-owned directory, its parent (/tmp, sticky)
// copied up unchanged.
func TestRunCacheMountIdentityOwner(t *testing.T) {
	f := newFixture(t)
	r := &fakeRunner{}
	bf := "FROM base\nRUN --mount=type=cache,id=c,target=/tmp/c append-mount /tmp/c/log plain\n" +
		"RUN --mount=type=cache,id=c,target=/tmp/c,uid=1000,gid=1500,mode=0700 append-mount /tmp/c/log owned\n"
	img, _, err := f.build(bf, func(o *Options) { o.Runner = r })
	if err != nil {
		t.Fatal(err)
	}
	mounts := filepath.Join(f.store.Root(), "cache", "mounts")
	sum := sha256.Sum256([]byte("c"))
	if b, err := os.ReadFile(filepath.Join(mounts, hex.EncodeToString(sum[:16]), "log")); err != nil || string(b) != "plain" {
		t.Errorf("plain cache (by id alone): %q %v", b, err)
	}
	matches, _ := filepath.Glob(filepath.Join(mounts, "*", "log"))
	if len(matches) != 2 {
		t.Fatalf("cache dirs %v, want two caches", matches)
	}
	for _, m := range matches {
		fi, _ := os.Stat(filepath.Dir(m))
		if b, _ := os.ReadFile(m); string(b) == "owned" && fi.Mode().Perm() != 0o700 {
			t.Errorf("owned cache dir mode %v", fi.Mode())
		}
	}
	files := f.files(img)
	if files["/tmp/c"] != "5 0755 0:0" {
		t.Errorf("/tmp/c = %q, want an empty dir owned by root", files["/tmp/c"])
	}
	if got, ok := files["/tmp"]; ok && got != "5 1777 0:0" {
		t.Errorf("/tmp copied up as %q", got)
	}
}

func TestRunReadWriteBindIsThrowaway(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a read-write bind is an overlay mount")
	}
	f := newFixture(t)
	r := &fakeRunner{}
	f.write(map[string]string{"conf/app.conf": "orig"})
	bf := "FROM base\nRUN --mount=type=bind,source=conf,target=/conf,rw append-mount /conf/app.conf +changed\n"
	if _, _, err := f.build(bf, func(o *Options) { o.Runner = r }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, "conf/app.conf")); string(b) != "orig" {
		t.Errorf("a rw bind wrote through to the context: %q", b)
	}
}

// TestRunBindHidesIgnoredFiles pins #10.4 for RUN --mount=type=bind from the context: ignored
// files are not in the mount, directly or through a link, while the rest is.
func TestRunBindHidesIgnoredFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the view of the context is an overlay mount")
	}
	f := newFixture(t)
	r := &fakeRunner{}
	f.write(map[string]string{".dockerignore": "secret.txt\nd/*.key\n", "secret.txt": "s3cret", "ok.txt": "ok",
		"linkdir": "->.", "d/a.key": "k", "d/b.txt": "b"})
	for _, p := range []string{"/ctx/secret.txt", "/ctx/linkdir/secret.txt", "/ctx/d/a.key", "/ctx/linkdir/d/a.key"} {
		for _, rw := range []string{"", ",rw"} {
			_, _, err := f.build("FROM base\nRUN --mount=type=bind,target=/ctx"+rw+" cat-mount "+p+"\n", func(o *Options) { o.Runner = r })
			if err == nil || !strings.Contains(err.Error(), "no such file") {
				t.Errorf("bind%s: %s readable: %v", rw, p, err)
			}
		}
	}
	_, ev, err := f.build("FROM base\nRUN --mount=type=bind,target=/ctx cat-mount /ctx/linkdir/d/b.txt\n", func(o *Options) { o.Runner = r })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ev.logs(), "content: b") {
		t.Errorf("a file that is not ignored is missing from the bind: %q", ev.logs())
	}
	// The second step in a build reuses the first one's whiteout layer, which still hides.
	_, _, err = f.build("FROM base\nRUN --mount=type=bind,target=/ctx cat-mount /ctx/ok.txt\n"+
		"RUN --mount=type=bind,target=/c2 cat-mount /c2/linkdir/secret.txt\n", func(o *Options) { o.Runner = r })
	if err == nil || !strings.Contains(err.Error(), "Buildfile:3") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("second bind of the build: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(f.dir, "secret.txt")); err != nil || fi.Size() != 6 {
		t.Errorf("the context itself changed: %v", err)
	}
}
