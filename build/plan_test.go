package build

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// fakeResolver serves fixed in-memory images by name.
type fakeResolver map[string]v1.Image

func (r fakeResolver) Resolve(_ context.Context, ref string) (v1.Image, error) {
	if img, ok := r[ref]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("image %q not found in the local store", ref)
}

// baseImage is a small deterministic image with account files, so golden keys never depend on
// what is installed on the machine.
func baseImage(t testing.TB) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name, body string
		dir        bool
	}{
		{name: "bin/", dir: true}, {name: "etc/", dir: true}, {name: "tmp/", dir: true},
		{name: "etc/group", body: "root:x:0:\napp:x:1500:\n"},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1500::/home/app:/bin/sh\n"},
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if f.dir {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		}
		if f.name == "tmp/" {
			hdr.Mode = 0o1777
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f.body)
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/bin:/bin"}
	cf.Config.Cmd = []string{"sh"}
	cf.Config.OnBuild = nil
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func testResolver(t testing.TB) fakeResolver {
	return fakeResolver{"base": baseImage(t)}
}

// planArchive parses and plans the Buildfile of a txtar archive whose other files form the
// build context. A file "args" holds one KEY=VALUE per line; "target" names the target stage.
func planArchive(t *testing.T, ar *txtar.Archive) (string, error) {
	dir := t.TempDir()
	var buildfile []byte
	opts := PlanOptions{BuildArgs: map[string]string{}, Resolver: testResolver(t)}
	for _, f := range ar.Files {
		switch f.Name {
		case "Buildfile":
			buildfile = f.Data
		case "args":
			for _, l := range strings.Split(strings.TrimSpace(string(f.Data)), "\n") {
				k, v, _ := strings.Cut(l, "=")
				opts.BuildArgs[k] = v
			}
		case "target":
			opts.Target = strings.TrimSpace(string(f.Data))
		case "plan", "error":
		default:
			p := filepath.Join(dir, f.Name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	bctx, err := OpenContext(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Context = bctx
	var warnings []string
	opts.Warn = func(m string) { warnings = append(warnings, m) }
	f, err := Parse("Buildfile", bytes.NewReader(buildfile))
	if err != nil {
		return "", err
	}
	g, err := Plan(context.Background(), f, opts)
	if err != nil {
		return "", err
	}
	sort.Strings(warnings)
	out := g.Dump() + dumpStages(g)
	for _, w := range warnings {
		out += "warning: " + w + "\n"
	}
	return out, nil
}

// dumpStages renders each planned stage's config essentials and history steps.
func dumpStages(g *Graph) string {
	var b strings.Builder
	for _, ps := range g.Stages {
		c := ps.Config.Config
		fmt.Fprintf(&b, "stage %d %q env=%q cmd=%q entrypoint=%q workdir=%q user=%q\n", ps.Index, ps.Name, c.Env, c.Cmd, c.Entrypoint, c.WorkingDir, c.User)
		for _, k := range sortedKeys(c.Labels) {
			fmt.Fprintf(&b, "  label %s=%s\n", k, c.Labels[k])
		}
		for _, s := range ps.Steps {
			fmt.Fprintf(&b, "  step %q layer=%t\n", s.CreatedBy, s.Vertex != nil)
		}
	}
	return b.String()
}

// TestPlanGolden checks the planned graph (vertices, inputs, cache keys) of every
// testdata/plan/*.txtar against its "plan" or "error" section. Keys are permanent once shipped,
// so a change here must be deliberate: run `go test ./build -run TestPlanGolden -update`.
func TestPlanGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/plan/*.txtar")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := planArchive(t, ar)
			section := "plan"
			if err != nil {
				got, section = err.Error()+"\n", "error"
			}
			var want []byte
			idx := -1
			for i, f := range ar.Files {
				if f.Name == "plan" || f.Name == "error" {
					want, idx = f.Data, i
				}
			}
			if *update {
				if idx >= 0 {
					ar.Files = append(ar.Files[:idx], ar.Files[idx+1:]...)
				}
				ar.Files = append(ar.Files, txtar.File{Name: section, Data: []byte(got)})
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if idx < 0 || ar.Files[idx].Name != section || string(want) != got {
				t.Errorf("%s mismatch (run with -update to accept)\n--- got (%s)\n%s\n--- want\n%s", file, section, got, want)
			}
		})
	}
}

// TestStepNumbersCountShownSteps: [i/N] counts what is shown, as BuildKit: the FROM image and
// each ADD, COPY, RUN and WORKDIR, ONBUILD triggers included; ENV and the like take no number.
func TestStepNumbersCountShownSteps(t *testing.T) {
	ar := txtar.Parse([]byte(`-- Buildfile --
FROM base
ENV A=1
WORKDIR /w
LABEL x=y
COPY f .
USER app
RUN a
RUN b
RUN c
RUN d
RUN e
RUN f
RUN g
CMD ["x"]
-- f --
f
`))
	dump, err := planArchive(t, ar)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(dump, "\n") {
		if strings.HasPrefix(l, "v") {
			_, name, _ := strings.Cut(l, "[")
			got = append(got, "["+name)
		}
	}
	want := []string{"[ 1/10] FROM base", "[ 2/10] WORKDIR /w", "[ 3/10] COPY f .", "[ 4/10] RUN a", "[ 5/10] RUN b",
		"[ 6/10] RUN c", "[ 7/10] RUN d", "[ 8/10] RUN e", "[ 9/10] RUN f", "[10/10] RUN g"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("step names:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A second stage FROM the same image counts it as its step 1 too (one vertex, named once).
	dump, err = planArchive(t, txtar.Parse([]byte("-- Buildfile --\nFROM base AS a\nRUN x\nFROM base AS b\nCOPY --from=a /x /x\nRUN y\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"[b 1/3] FROM base", "[a 2/2] RUN x", "[b 2/3] COPY --from=a /x /x", "[b 3/3] RUN y"} {
		if !strings.Contains(dump, name) {
			t.Errorf("no step %q in\n%s", name, dump)
		}
	}
}

func TestCheckPlatform(t *testing.T) {
	for _, p := range []string{"", "local", HostPlatform, strings.ToUpper(HostPlatform)} {
		if err := CheckPlatform(p); err != nil {
			t.Errorf("CheckPlatform(%q): %v", p, err)
		}
	}
	for _, p := range []string{"linux/s390x", "windows/amd64", "linux", "linux/amd64/v9x", "darwin/arm64"} {
		if err := CheckPlatform(p); err == nil || !strings.Contains(err.Error(), "host platform") {
			t.Errorf("CheckPlatform(%q) = %v, want the host-only error", p, err)
		}
	}
}
