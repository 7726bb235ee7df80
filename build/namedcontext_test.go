package build

import (
	"context"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/cache"
)

// --build-context NAME=DIR feeds COPY --from=NAME; docker-image://REF and oci-layout://DIR
// replace the image FROM NAME and COPY --from=NAME would use, as BuildKit's named contexts.
func TestBuildContexts(t *testing.T) {
	f := newFixture(t)
	extra := t.TempDir()
	writeTree(t, extra, map[string]string{"x.txt": "from the named dir", "skip.txt": "ignored", ".dockerignore": "skip.txt\n"})

	// An image tagged "other" in the store and one in an OCI layout, each with a label.
	bd, _, err := f.store.Lookup("base")
	if err != nil {
		t.Fatal(err)
	}
	base, err := f.store.Image(bd.Digest)
	if err != nil {
		t.Fatal(err)
	}
	labelled := func(v string) v1.Image {
		cf, _ := base.ConfigFile()
		cf = cf.DeepCopy()
		cf.Config.Labels = map[string]string{"from": v}
		img, err := mutate.ConfigFile(base, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	other := labelled("other")
	desc, err := f.store.WriteImage(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := cache.ParseName("other")
	if err := f.store.Tag(context.Background(), n, desc); err != nil {
		t.Fatal(err)
	}
	lay := t.TempDir()
	lp, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(labelled("layout"), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}

	bf := "FROM alpine\nCOPY --from=extra . /e/\nCOPY --from=tools /etc/group /g\n"
	ctxs := map[string]string{"extra": extra, "alpine": "docker-image://other", "tools": "oci-layout://" + lay + ":v1"}
	img, _, err := f.build(bf, func(o *Options) { o.BuildContexts = ctxs })
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Config.Labels["from"] != "other" {
		t.Errorf("FROM alpine with alpine=docker-image://other: labels %v", img.Config.Config.Labels)
	}
	got := f.files(img)
	if got["/e/x.txt"] != "0 0644 0:0 from the named dir" || got["/g"] == "" {
		t.Errorf("files %v", got)
	}
	if _, ok := got["/e/skip.txt"]; ok {
		t.Error("the named directory's .dockerignore was not applied")
	}
	img, _, err = f.build("FROM tools\n", func(o *Options) { o.BuildContexts = ctxs })
	if err != nil || img.Config.Config.Labels["from"] != "layout" {
		t.Errorf("FROM an oci-layout context: %v %v", err, img)
	}
	f.write(map[string]string{"x.txt": "main"})
	img, _, err = f.build("FROM extra\nCOPY x.txt /again\n", func(o *Options) { o.BuildContexts = ctxs })
	if err != nil {
		t.Fatal(err)
	}
	got = f.files(img)
	if got["/x.txt"] != "0 0644 0:0 from the named dir" || got["/again"] != "0 0644 0:0 main" || len(img.Config.History) != 2 || len(img.Config.RootFS.DiffIDs) != 2 {
		t.Errorf("FROM a directory context: files %v, history %+v", got, img.Config.History)
	}
	if _, ok := got["/skip.txt"]; ok {
		t.Error("FROM a directory context: .dockerignore not applied")
	}
	_, ev, err := f.build("FROM base\nRUN --mount=from=extra,target=/m cat-mount /m/x.txt\n", func(o *Options) { o.BuildContexts = ctxs; o.Runner = &fakeRunner{} })
	if err != nil || !strings.Contains(ev.logs(), "content: from the named dir") {
		t.Errorf("RUN --mount from a directory context: %v\n%s", err, ev.logs())
	}
	if os.Geteuid() == 0 { // the hiding overlay needs root
		if _, _, err := f.build("FROM base\nRUN --mount=from=extra,target=/m cat-mount /m/skip.txt\n", func(o *Options) { o.BuildContexts = ctxs; o.Runner = &fakeRunner{} }); err == nil {
			t.Error("a bind of a directory context shows its .dockerignore'd file")
		}
	}
	// A named context replaces a stage of that name: its instructions do not run.
	bf = "FROM base AS build\nRUN fail\nFROM base\nCOPY --from=build /x.txt /fromstage\n"
	img, _, err = f.build(bf, func(o *Options) { o.BuildContexts = map[string]string{"build": extra}; o.Runner = &fakeRunner{} })
	if err != nil {
		t.Fatal(err)
	}
	if got := f.files(img)["/fromstage"]; got != "0 0644 0:0 from the named dir" {
		t.Errorf("stage replaced by a directory: /fromstage = %q", got)
	}
	img, _, err = f.build("FROM base AS build\nRUN fail\nFROM build\n", func(o *Options) {
		o.BuildContexts = map[string]string{"build": "docker-image://other"}
		o.Runner = &fakeRunner{}
	})
	if err != nil || img.Config.Config.Labels["from"] != "other" {
		t.Errorf("stage replaced by an image: %v", err)
	}
	for _, bad := range []map[string]string{{"x": "oci-layout://" + lay + ":nosuchtag"}, {"x": t.TempDir() + "/missing"}} {
		if _, _, err := f.build("FROM base\n", func(o *Options) { o.BuildContexts = bad }); err == nil || !strings.Contains(err.Error(), "--build-context x") {
			t.Errorf("%v: %v", bad, err)
		}
	}
	for _, bad := range []string{"noequals", "=dir", "x=", "x=https://example.com/ctx.tar.gz"} {
		if _, err := ParseBuildContexts([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if m, err := ParseBuildContexts([]string{"Name=dir"}); err != nil || m["name"] != "dir" {
		t.Errorf("names are case-insensitive: %v %v", m, err)
	}
}
