package corpus

import (
	"archive/tar"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Canary is the host directory every escape in the corpus aims at. Tests create it with
// CanaryFiles before a case and check it is unchanged afterwards.
const Canary = "/tmp/kiln-canary-corpus"

// CanarySecret marks the canary's content: no container output may ever contain it.
const CanarySecret = "KILN-CANARY-SECRET"

// CanaryFiles is the canary's content (a name ending in / is an empty directory). Its passwd
// has a user no image has, so a lookup that read it would show uid 4242.
var CanaryFiles = map[string]string{
	"passwd":   "kilncanary:x:4242:4242:" + CanarySecret + ":/:/bin/sh\n",
	"group":    "kilncanary:x:4242:\n",
	"secret":   CanarySecret + "\n",
	"empty/":   "",
	"dir/keep": CanarySecret + "\n",
}

// Busybox is where the tests bind-mount the host's static busybox into every case's container
// (read-only), so the corpus carries no binaries.
const Busybox = "/.kiln/busybox"

// Outcome is what kiln must do with a case.
type Outcome string

// The outcomes. Every outcome also requires that the canary is unchanged, that no container
// output shows CanarySecret, that no kiln command hangs and that nothing stays mounted.
const (
	// RefusedAtLoad: `kiln load` and `kiln pull` fail and tag nothing.
	RefusedAtLoad Outcome = "refused at load"
	// Refused: `kiln load`/`kiln pull` or else `kiln run` fails (which one may depend on the
	// archive kind: docker-archives carry no digests but diff IDs), and Want is in the error.
	Refused Outcome = "refused at load or run"
	// RefusedAtRun: the image loads; `kiln run` fails with Want in its error.
	RefusedAtRun Outcome = "refused at run"
	// Contained: the image loads and runs; the output has Want.
	Contained Outcome = "runs contained"
	// RefusedOrContained: kiln may refuse the image at load or run, or run it contained.
	RefusedOrContained Outcome = "refused or contained"
)

// Case is one hostile image and what kiln must do with it.
type Case struct {
	Name   string
	Doc    string
	Expect Outcome
	// Want is a substring of kiln's error line (refused) or of the container's output (contained).
	Want    string
	Formats []Format // both archive kinds when empty
	Layers  []Layer  // on top of the base layer (a plain /etc with passwd and group, /tmp, /bin)
	// DiffIDs, when set, rewrites the config's diff IDs; Tamper changes the image after its
	// config is written and before its manifest is.
	DiffIDs func([]string) []string
	Tamper  func(*Image)
	// Config changes the image's run config (user, working dir, volumes).
	Config func(*RunConfig)
	// RunFlags go to `kiln run` before the image; Script is what the container's busybox sh runs
	// (DefaultScript when empty).
	RunFlags []string
	Script   string
	// Env is set for every kiln command of the case (e.g. a low decompression limit).
	Env []string
}

// DefaultScript reads and writes the paths the corpus attacks, from inside the container.
const DefaultScript = `B=` + Busybox + `
$B cat /etc/passwd /etc/group /escape/passwd /escape/secret 2>&1
$B echo pwned > /escape/passwd 2>&1
$B echo pwned > /etc/passwd 2>&1
$B echo done`

// Ref is the name the case's archives tag.
func (c Case) Ref() string { return "kiln-corpus/" + c.Name + ":latest" }

// Has reports whether the case is packed as f.
func (c Case) Has(f Format) bool {
	return len(c.Formats) == 0 || containsFormat(c.Formats, f)
}

func containsFormat(fs []Format, f Format) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// RunScript is the script the case's container runs.
func (c Case) RunScript() string {
	if c.Script != "" {
		return "B=" + Busybox + "\n" + c.Script
	}
	return DefaultScript
}

// base is every case's first layer: just enough of a root for `kiln run` to start a shell.
var base = Layer{Entries: []Entry{
	{Name: "bin/", Type: tar.TypeDir},
	{Name: "etc/", Type: tar.TypeDir},
	{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"},
	{Name: "etc/group", Body: "root:x:0:\nnogroup:x:65534:\n"},
	{Name: "root/", Type: tar.TypeDir, Mode: 0o700},
	{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
}}

// Image builds the case's image as raw pieces.
func (c Case) Image() (*Image, error) {
	img, diffIDs, err := buildImage(append([]Layer{base}, c.Layers...))
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", c.Name, err)
	}
	if c.DiffIDs != nil {
		diffIDs = c.DiffIDs(diffIDs)
	}
	if err := img.setConfig(diffIDs, c.Config); err != nil {
		return nil, err
	}
	if c.Tamper != nil {
		c.Tamper(img)
	}
	return img, img.setManifest()
}

// archives packs the case in each of its formats, building the image once.
func (c Case) archives() (map[Format][]byte, error) {
	img, err := c.Image()
	if err != nil {
		return nil, err
	}
	out := map[Format][]byte{}
	for _, f := range []Format{DockerArchive, OCIArchive} {
		if c.Has(f) {
			if out[f], err = img.archive(f, c.Ref()); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// FileName is the case's archive in testdata/malicious.
func (c Case) FileName(f Format) string { return c.Name + "." + string(f) + ".tar" }

// Files returns every corpus file by name: each case's archives and the INDEX.
func Files() (map[string][]byte, error) {
	out := map[string][]byte{}
	var index strings.Builder
	index.WriteString("# kiln's malicious-layer corpus: generated by `go generate ./internal/corpus`; do not edit.\n")
	index.WriteString("# case\tformats\texpected outcome\twhat it tries\n")
	for _, c := range Cases() {
		archives, err := c.archives()
		if err != nil {
			return nil, err
		}
		var formats []string
		for _, f := range []Format{DockerArchive, OCIArchive} {
			if b, ok := archives[f]; ok {
				out[c.FileName(f)] = b
				formats = append(formats, string(f))
			}
		}
		fmt.Fprintf(&index, "%s\t%s\t%s\t%s\n", c.Name, strings.Join(formats, ","), c.Expect, c.Doc)
	}
	out["INDEX"] = []byte(index.String())
	return out, nil
}

// Generate writes the corpus into dir, removing files no case produces any more.
func Generate(dir string) error {
	files, err := Files()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range old {
		if _, ok := files[e.Name()]; !ok {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			return err
		}
	}
	return nil
}
