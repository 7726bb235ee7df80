package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/cache/layer"
)

func tarBytes(t *testing.T, gz bool, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = tar.NewWriter(zw)
	} else {
		w = tar.NewWriter(&buf)
	}
	for _, h := range hdrs {
		body := h.Linkname
		if h.Typeflag == tar.TypeReg {
			body, h.Linkname = h.Linkname, ""
			h.Size = int64(len(body))
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			w.Write([]byte(body))
		}
	}
	w.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

// reg is a regular file entry whose content is body (carried in Linkname until written).
func reg(name, body string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Linkname: body}
}

func (f *fixture) pipeline(ctxArg, buildfile string, stdin []byte) (*Image, error) {
	f.t.Helper()
	o := Options{ContextDir: ctxArg, Buildfile: buildfile, Store: f.store, Resolver: storeResolver{f.store}, Jobs: 2, Compression: layer.Gzip}
	if stdin != nil {
		o.Stdin = bytes.NewReader(stdin)
	}
	return Pipeline(context.Background(), PipelineOptions{Options: o})
}

// `kiln build -` takes a tar context (plain or compressed, -f inside it, .dockerignore
// applied, links confined) or a lone Buildfile with no context, as docker does.
func TestStdinContext(t *testing.T) {
	f := newFixture(t)
	ctxTar := tarBytes(t, true,
		reg("Buildfile", "FROM base\nCOPY . /c/\n"),
		reg("docker/Alt", "FROM base\nCOPY a /alt\n"),
		reg(".dockerignore", "secret.txt\n"),
		reg("a", "from the tar"),
		reg("secret.txt", "ignored"),
		&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../tmp"},
		reg("up/kiln-escaped", "must stay inside"),
	)
	img, err := f.pipeline(StdinContext, "", ctxTar)
	if err != nil {
		t.Fatal(err)
	}
	got := f.files(img)
	if got["/c/a"] != "0 0644 0:0 from the tar" {
		t.Errorf("/c/a = %q", got["/c/a"])
	}
	if _, ok := got["/c/secret.txt"]; ok {
		t.Error(".dockerignore of the tar not applied")
	}
	if _, err := os.Stat("/tmp/kiln-escaped"); err == nil {
		t.Fatal("the tar wrote outside the context")
	}
	if got["/c/tmp/kiln-escaped"] != "0 0644 0:0 must stay inside" {
		t.Errorf("a link out of the context resolves inside it: %q", got["/c/tmp/kiln-escaped"])
	}
	img, err = f.pipeline(StdinContext, "docker/Alt", ctxTar)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.files(img); got["/alt"] != "0 0644 0:0 from the tar" {
		t.Errorf("-f inside the tar: /alt = %q", got["/alt"])
	}

	img, err = f.pipeline(StdinContext, "", []byte("FROM base\nENV FROM_STDIN=1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(img.Config.Config.Env, ","), "FROM_STDIN=1") {
		t.Errorf("a lone Buildfile on stdin: env %v", img.Config.Config.Env)
	}
	if _, err := f.pipeline(StdinContext, "", []byte("FROM base\nCOPY a /a\n")); err == nil {
		t.Error("COPY with no context must fail")
	}
	if _, err := f.pipeline(StdinContext, "-", ctxTar); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("-f - with context -: %v", err)
	}
	if _, err := f.pipeline(StdinContext, "Buildfile", []byte("FROM base\n")); err == nil || !strings.Contains(err.Error(), "not a tar") {
		t.Errorf("-f with a lone Buildfile: %v", err)
	}
	if _, err := f.pipeline(StdinContext, "../../../../etc/passwd", ctxTar); err == nil {
		t.Error("-f out of the tar context must fail")
	}
	ents, _ := os.ReadDir(f.store.Root() + "/tmp")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "context-") {
			t.Errorf("context staging %s left behind", e.Name())
		}
	}
}

// A git URL is a context: #ref:subdir as BuildKit, fetched by ADD's fetcher; -f is inside.
func TestGitContext(t *testing.T) {
	url := gitRepoWith(t, map[string]string{"src/Buildfile": "FROM base\nCOPY a.txt /a\n", "Other": "FROM base\nCOPY src/a.txt /o\n",
		"src/.dockerignore": "Buildfile\n"})
	f := newFixture(t)
	img, err := f.pipeline(url+"#next:src", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.files(img)["/a"]; got != "0 0644 0:0 two" {
		t.Errorf("#next:src: /a = %q", got)
	}
	img, err = f.pipeline(url, "Other", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.files(img)["/o"]; got != "0 0644 0:0 one" {
		t.Errorf("default branch with -f Other: /o = %q", got)
	}
	if _, err := f.pipeline(url+"#main:README", "", nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as subdir: %v", err)
	}
	if _, err := f.pipeline(url+"#nosuchref", "", nil); err == nil || !strings.Contains(err.Error(), "build context") {
		t.Errorf("unknown ref: %v", err)
	}
}
