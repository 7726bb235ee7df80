package sbom

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/rootfile"
)

var update = flag.Bool("update", false, "rewrite the golden SPDX documents in testdata/golden")

var epoch = time.Unix(1700000000, 0)

func testOptions(name string) Options {
	return Options{Name: name, ImageDigest: "sha256:" + strings.Repeat("ab", 32), Created: &epoch, Tool: "kiln-test"}
}

// TestScanGolden scans real package databases (a trimmed copy of a Debian 12 host's dpkg
// status and copyright files, an Alpine 3.20 installed db, Python and npm trees) and compares
// the documents to the golden ones byte for byte.
func TestScanGolden(t *testing.T) {
	for _, name := range []string{"debian", "distroless", "alpine", "apps", "empty"} {
		t.Run(name, func(t *testing.T) {
			doc, err := ScanDir(context.Background(), filepath.Join("testdata", name), testOptions(name+":latest"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := doc.MarshalSPDX()
			if err != nil {
				t.Fatal(err)
			}
			checkSPDX(t, got)
			golden := filepath.Join("testdata", "golden", name+".spdx.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the scan (run with -update and review the diff):\n%s", golden, firstDiff(got, want))
			}
			again, _ := ScanDir(context.Background(), filepath.Join("testdata", name), testOptions(name+":latest"))
			if b, _ := again.MarshalSPDX(); !bytes.Equal(b, got) {
				t.Error("a second scan of the same tree marshals differently")
			}
		})
	}
}

// TestScanDebianPackages pins what the golden file should say, so -update cannot bless a regression.
func TestScanDebianPackages(t *testing.T) {
	doc, err := ScanDir(context.Background(), "testdata/debian", testOptions("debian"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := byName(doc)
	if len(pkgs) != 39 {
		t.Errorf("%d packages, want the 39 installed ones (oldpkg is only config files)", len(pkgs))
	}
	// /usr/share/doc/libncursesw6 -> libtinfo6: one source package, one copyright file.
	if n, tinfo := pkgs["libncursesw6"], pkgs["libtinfo6"]; n.License == "" || n.License != tinfo.License ||
		!slices.Equal(n.Locations, []string{"/var/lib/dpkg/status", "/usr/share/doc/libtinfo6/copyright"}) {
		t.Errorf("libncursesw6: license %q at %v, want libtinfo6's %q", n.License, n.Locations, tinfo.License)
	}
	if _, ok := pkgs["oldpkg"]; ok {
		t.Error("a deinstalled package is listed")
	}
	bash := pkgs["bash"]
	if !strings.HasPrefix(bash.PURL, "pkg:deb/debian/bash@") {
		t.Errorf("bash purl %q", bash.PURL)
	}
	if !strings.Contains(bash.License, "GPL-3.0-or-later") {
		t.Errorf("bash license %q, want GPL-3.0-or-later from its DEP-5 copyright", bash.License)
	}
	if want := []string{"/var/lib/dpkg/status", "/usr/share/doc/bash/copyright"}; !slices.Equal(bash.Locations, want) {
		t.Errorf("bash locations %v, want %v", bash.Locations, want)
	}
	if libc := pkgs["libc6"]; libc.License != "" || !strings.Contains(libc.PURL, "arch=amd64") {
		t.Errorf("libc6 (free-form copyright): license %q purl %q, want no license", libc.License, libc.PURL)
	}
	if gcc := pkgs["libgcc-s1"]; !strings.Contains(gcc.PURL, "upstream=gcc-12") {
		t.Errorf("libgcc-s1 purl %q lacks its source package", gcc.PURL)
	}
}

func TestScanAlpineAndApps(t *testing.T) {
	doc, err := ScanDir(context.Background(), "testdata/alpine", testOptions("alpine"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := byName(doc)
	for name, want := range map[string][2]string{
		"musl":                   {"MIT", "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"},
		"ca-certificates-bundle": {"MPL-2.0 AND MIT", "pkg:apk/alpine/ca-certificates-bundle@20240705-r0?arch=x86_64&distro=alpine-3.20.3&upstream=ca-certificates"},
		"legacy-tool":            {"LicenseRef-BSD AND LicenseRef-GPL2 AND MIT", "pkg:apk/alpine/legacy-tool@2.1-r3?arch=x86_64&distro=alpine-3.20.3"},
	} {
		if p := pkgs[name]; p.License != want[0] || p.PURL != want[1] {
			t.Errorf("%s: license %q purl %q, want %q %q", name, p.License, p.PURL, want[0], want[1])
		}
	}
	if len(pkgs) != 9 {
		t.Errorf("%d alpine packages, want 9", len(pkgs))
	}

	doc, err = ScanDir(context.Background(), "testdata/apps", testOptions("apps"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs = byName(doc)
	for name, want := range map[string][2]string{
		"requests":       {"Apache-2.0", "pkg:pypi/requests@2.31.0"},
		"attrs":          {"MIT", "pkg:pypi/attrs@23.2.0"},
		"Zope.Interface": {"", "pkg:pypi/zope-interface@6.1"},
		"six":            {"MIT", "pkg:pypi/six@1.16.0"},
		"simplejson":     {"MIT OR AFL-2.1", "pkg:pypi/simplejson@3.19.1"},
		"express":        {"MIT", "pkg:npm/express@4.18.2"},
		"debug":          {"MIT", "pkg:npm/debug@2.6.9"},
		"@babel/core":    {"MIT", "pkg:npm/%40babel/core@7.23.9"},
		"tslib":          {"0BSD", "pkg:npm/tslib@2.6.2"},
		"legacy":         {"MIT OR Apache-2.0", "pkg:npm/legacy@0.1.0"},
		"proprietary":    {"LicenseRef-SEE-LICENSE-IN-LICENSE.txt", "pkg:npm/proprietary@3.0.0"},
	} {
		if p := pkgs[name]; p.License != want[0] || p.PURL != want[1] {
			t.Errorf("%s: license %q purl %q, want %q %q", name, p.License, p.PURL, want[0], want[1])
		}
	}
	if _, ok := pkgs["app"]; ok {
		t.Error("the application's own package.json (not under node_modules) is listed")
	}
	if len(pkgs) != 11 {
		t.Errorf("%d packages, want 11: %v", len(pkgs), slices.Sorted(func(yield func(string) bool) {
			for k := range pkgs {
				yield(k)
			}
		}))
	}
	if len(doc.Notes) != 2 || !strings.Contains(doc.Notes[0], "broken") || !strings.Contains(doc.Notes[1], "broken") {
		t.Errorf("notes %q, want the broken METADATA and package.json skipped", doc.Notes)
	}
}

// TestScanEmpty: an image with no package database is an empty SBOM that says so.
func TestScanEmpty(t *testing.T) {
	doc, err := ScanDir(context.Background(), "testdata/empty", testOptions("empty"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := doc.MarshalSPDX()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Comment  string
		Packages []struct{ SPDXID string }
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Packages) != 1 || got.Packages[0].SPDXID != imageID || !strings.Contains(got.Comment, "no packages found") {
		t.Errorf("empty image: comment %q, packages %v", got.Comment, got.Packages)
	}
}

// TestScanGoBinary builds a Go program with a dependency from the module cache and a
// directory replacement, and reads them back from its build info, through a directory and
// through layers.
func TestScanGoBinary(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain to build a test binary")
	}
	xsys, err := exec.Command(gobin, "list", "-m", "-f", "{{.Version}}", "golang.org/x/sys").Output()
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	write(t, filepath.Join(src, "go.mod"), "module example.com/hello\n\ngo 1.22\n\nrequire (\n\tgolang.org/x/sys "+strings.TrimSpace(string(xsys))+
		"\n\texample.com/greet v1.0.0\n)\n\nreplace example.com/greet => ./greet\n")
	write(t, filepath.Join(src, "main.go"), "package main\n\nimport (\n\t\"example.com/greet\"\n\t\"golang.org/x/sys/unix\"\n)\n\nfunc main() { println(greet.Hello(), unix.Getpid()) }\n")
	write(t, filepath.Join(src, "greet", "go.mod"), "module example.com/greet\n\ngo 1.22\n")
	write(t, filepath.Join(src, "greet", "greet.go"), "package greet\n\nfunc Hello() string { return \"hello\" }\n")
	root := t.TempDir()
	bin := filepath.Join(root, "usr", "local", "bin", "hello")
	cmd := exec.Command(gobin, "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Executables that are not Go's are passed over: a script and a C program.
	write(t, filepath.Join(root, "usr", "bin", "script"), "#!/bin/sh\necho hi\n")
	os.Chmod(filepath.Join(root, "usr", "bin", "script"), 0o755)
	if c, err := os.ReadFile("/bin/true"); err == nil {
		os.WriteFile(filepath.Join(root, "usr", "bin", "true"), c, 0o755)
	}
	os.Symlink("/usr/local/bin/hello", filepath.Join(root, "usr", "bin", "hello"))

	doc, err := ScanDir(context.Background(), root, testOptions("go"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := byName(doc)
	goVersion, _, _ := strings.Cut(runtime.Version(), " ")
	want := map[string]string{
		"example.com/hello": "pkg:golang/example.com/hello",
		"example.com/greet": "pkg:golang/example.com/greet",
		"golang.org/x/sys":  "pkg:golang/golang.org/x/sys@" + strings.TrimSpace(string(xsys)),
		"stdlib":            "pkg:golang/stdlib@" + strings.TrimPrefix(goVersion, "go"),
	}
	if len(pkgs) != len(want) {
		t.Errorf("packages %v, want %v", pkgs, want)
	}
	for name, purl := range want {
		if p := pkgs[name]; p.PURL != purl || !slices.Equal(p.Locations, []string{"/usr/local/bin/hello"}) {
			t.Errorf("%s: purl %q at %v, want %q at /usr/local/bin/hello", name, p.PURL, p.Locations, purl)
		}
	}
	if !pkgs["example.com/hello"].Main {
		t.Error("the main module is not marked Main")
	}
	b, err := doc.MarshalSPDX()
	if err != nil {
		t.Fatal(err)
	}
	checkSPDX(t, b)
	if n := bytes.Count(b, []byte(`"relationshipType": "DEPENDS_ON"`)); n != 3 {
		t.Errorf("%d DEPENDS_ON relationships, want the main module's 3", n)
	}

	// The same tree as a layer, and a second layer that changes nothing Go: same document.
	layers := []func() (io.ReadCloser, error){tarOf(t, root), tarOf(t, t.TempDir())}
	fromLayers, err := ScanLayers(context.Background(), layers, testOptions("go"))
	if err != nil {
		t.Fatal(err)
	}
	if lb, _ := fromLayers.MarshalSPDX(); !bytes.Equal(lb, b) {
		t.Errorf("layers and directory disagree:\n%s", firstDiff(lb, b))
	}
}

// TestScanLayersWhiteouts: a later layer's whiteouts and opaque directories remove what lower
// layers installed, and a rewritten database replaces the old one.
func TestScanLayersWhiteouts(t *testing.T) {
	upper := t.TempDir()
	py := filepath.Join(upper, "usr", "lib", "python3", "dist-packages")
	write(t, filepath.Join(py, ".wh.six-1.16.0.egg-info"), "")
	write(t, filepath.Join(upper, "app", "node_modules", ".wh..wh..opq"), "")
	write(t, filepath.Join(upper, "app", "node_modules", "left-pad", "package.json"), `{"name":"left-pad","version":"1.3.0","license":"WTFPL"}`)
	layers := []func() (io.ReadCloser, error){tarOf(t, "testdata/apps"), tarOf(t, "testdata/alpine"), tarOf(t, upper)}
	doc, err := ScanLayers(context.Background(), layers, testOptions("layers"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := byName(doc)
	for _, gone := range []string{"six", "express", "debug", "@babel/core"} {
		if _, ok := pkgs[gone]; ok {
			t.Errorf("%s survived its whiteout", gone)
		}
	}
	for _, kept := range []string{"requests", "simplejson", "left-pad", "musl"} {
		if _, ok := pkgs[kept]; !ok {
			t.Errorf("%s is missing", kept)
		}
	}
	if p := pkgs["left-pad"]; p.License != "WTFPL" {
		t.Errorf("left-pad license %q", p.License)
	}
}

// TestScanRefuses: files kiln would read that are not regular or too large fail with the path;
// a symlink at a database path is not followed (out of the root or not).
func TestScanRefuses(t *testing.T) {
	root := t.TempDir()
	status := filepath.Join(root, "var", "lib", "dpkg", "status")
	os.MkdirAll(filepath.Dir(status), 0o755)
	if err := unix.Mkfifo(status, 0o644); err != nil {
		t.Fatal(err)
	}
	var nr *rootfile.NotRegularError
	if _, err := ScanDir(context.Background(), root, testOptions("fifo")); !errors.As(err, &nr) || !strings.Contains(err.Error(), "/var/lib/dpkg/status") {
		t.Errorf("fifo: %v", err)
	}
	os.Remove(status)
	f, _ := os.Create(status)
	f.Truncate(maxDatabase + 1)
	f.Close()
	var tl *rootfile.TooLargeError
	if _, err := ScanDir(context.Background(), root, testOptions("big")); !errors.As(err, &tl) {
		t.Errorf("big: %v", err)
	}
	os.Remove(status)
	// The host's own database is right there; a scan that followed the link would list it.
	os.Symlink("/var/lib/dpkg/status", status)
	os.Symlink("../../../../../../../../var/lib/dpkg/status", filepath.Join(root, "var", "lib", "dpkg", "status.d"))
	doc, err := ScanDir(context.Background(), root, testOptions("link"))
	if err != nil || len(doc.Packages) != 0 {
		t.Errorf("symlinked database: %v, %d packages", err, len(doc.Packages))
	}
	broken := t.TempDir()
	write(t, filepath.Join(broken, "lib", "apk", "db", "installed"), "P:musl\nnot a line\n")
	if _, err := ScanDir(context.Background(), broken, testOptions("broken")); err == nil || !strings.Contains(err.Error(), "/lib/apk/db/installed: line 2") {
		t.Errorf("broken apk db: %v", err)
	}
}

func TestLicenseExpressions(t *testing.T) {
	for in, want := range map[string]string{
		"GPL-2+":                        "GPL-2.0-or-later",
		"GPL-2":                         "GPL-2.0-only",
		"LGPL-2.1+":                     "LGPL-2.1-or-later",
		"GFDL-NIV-1.3+":                 "LicenseRef-GFDL-NIV-1.3",
		"Expat":                         "MIT",
		"BSD-3-clause":                  "BSD-3-Clause",
		"GPL-2+ or Artistic":            "GPL-2.0-or-later OR Artistic-1.0",
		"GPL-3+ and BSD-2-clause":       "GPL-3.0-or-later AND BSD-2-Clause",
		"GPL-2+ or Artistic, and Expat": "(GPL-2.0-or-later OR Artistic-1.0) AND MIT",
		"GPL-2+ with OpenSSL exception": "LicenseRef-GPL-2-with-OpenSSL-exception",
		"public-domain":                 "LicenseRef-public-domain",
		"Perl":                          "(Artistic-1.0-Perl OR GPL-1.0-or-later)",
		"GPL-2+ or":                     "LicenseRef-GPL-2-or",
		"":                              "",
	} {
		if got := debLicenseExpr(in); got != want {
			t.Errorf("debLicenseExpr(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"MIT":                                  "MIT",
		"mit or apache-2.0":                    "MIT OR Apache-2.0",
		"(MIT OR Apache-2.0) AND BSD-3-Clause": "(MIT OR Apache-2.0) AND BSD-3-Clause",
		"GPL-2.0-only WITH Linux-syscall-note": "GPL-2.0-only WITH Linux-syscall-note",
		"GPL-2.0+":                             "GPL-2.0+",
		"SEE LICENSE IN LICENSE":               "LicenseRef-SEE-LICENSE-IN-LICENSE",
		"UNLICENSED":                           "LicenseRef-UNLICENSED",
		"LicenseRef-acme":                      "LicenseRef-acme",
		"(MIT":                                 "LicenseRef-MIT",
		"MIT AND":                              "LicenseRef-MIT-AND",
	} {
		if got := spdxExpr(in); got != want {
			t.Errorf("spdxExpr(%q) = %q, want %q", in, got, want)
		}
	}
	if got := joinAnd([]string{"A OR B", "C"}); got != "(A OR B) AND C" {
		t.Errorf("joinAnd: %q", got)
	}
}

func TestPURL(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{purl("deb", "debian", "libc6", "2.36-9+deb12u4", [2]string{"distro", "debian-12"}, [2]string{"arch", "amd64"}), "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"},
		{purl("deb", "debian", "tzdata", "1:2024a-0", [2]string{"arch", ""}), "pkg:deb/debian/tzdata@1:2024a-0"},
		{purl("golang", "github.com/spf13", "cobra", "v1.10.2"), "pkg:golang/github.com/spf13/cobra@v1.10.2"},
		{purl("npm", "@babel", "core", "7.0.0"), "pkg:npm/%40babel/core@7.0.0"},
		{purl("pypi", "", "zope-interface", ""), "pkg:pypi/zope-interface"},
	} {
		if c.got != c.want {
			t.Errorf("purl = %q, want %q", c.got, c.want)
		}
	}
}

// checkSPDX checks what SPDX 2.3 requires of the document's structure that a byte comparison
// would not notice: unique IDs, relationships between existing elements, declared LicenseRefs.
func checkSPDX(t *testing.T, b []byte) {
	t.Helper()
	var d spdxDocument
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.SPDXVersion != "SPDX-2.3" || d.DataLicense != "CC0-1.0" || d.DocumentNamespace == "" || d.CreationInfo.Created == "" {
		t.Errorf("document header: %+v", d)
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	for _, p := range d.Packages {
		if ids[p.SPDXID] {
			t.Errorf("duplicate SPDXID %s", p.SPDXID)
		}
		ids[p.SPDXID] = true
	}
	for _, f := range d.Files {
		if ids[f.SPDXID] || len(f.Checksums) == 0 || f.Checksums[0].Algorithm != "SHA1" {
			t.Errorf("file %s: duplicate id or no SHA1", f.FileName)
		}
		ids[f.SPDXID] = true
	}
	for id := range ids {
		if strings.Trim(strings.TrimPrefix(id, "SPDXRef-"), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
			t.Errorf("SPDXID %q has characters SPDX does not allow", id)
		}
	}
	for _, r := range d.Relationships {
		if !ids[r.Element] || !ids[r.Related] {
			t.Errorf("relationship %+v names a missing element", r)
		}
	}
	declared := map[string]bool{}
	for _, e := range d.ExtractedLicenses {
		declared[e.LicenseID] = true
	}
	for _, p := range d.Packages {
		for _, r := range licenseRefs(p.LicenseDeclared) {
			if !declared[r] {
				t.Errorf("package %s uses %s, which hasExtractedLicensingInfos does not declare", p.Name, r)
			}
		}
	}
}

func byName(d *Document) map[string]Package {
	out := map[string]Package{}
	for _, p := range d.Packages {
		out[p.Name] = p
	}
	return out
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tarOf packs dir into an uncompressed layer (whiteout files kept as the names they are).
func tarOf(t testing.TB, dir string) func() (io.ReadCloser, error) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	data := buf.Bytes()
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + g[i] + "\nwant: " + w[i]
		}
	}
	return "lengths differ: " + strconv.Itoa(len(g)) + " vs " + strconv.Itoa(len(w)) + " lines"
}

// TestScanImageFromStore: an image written to a real store and read back as the build's
// final image would be: its layers' blobs scanned without unpacking them.
func TestScanImageFromStore(t *testing.T) {
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var adds []mutate.Addendum
	for _, dir := range []string{"testdata/debian", "testdata/apps"} {
		l, err := tarball.LayerFromOpener(tarOf(t, dir), tarball.WithCompressedCaching)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.Addendum{Layer: l})
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := store.WriteImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := store.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions("store")
	opts.ImageDigest = ""
	doc, err := ScanImage(context.Background(), stored, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Packages) != 39+11 {
		t.Errorf("%d packages, want debian's 39 and the apps' 11", len(doc.Packages))
	}
	if p := byName(doc)["libffi-dev"]; p.License == "" {
		t.Error("libffi-dev has no license: its doc directory's symlink was not read from the layer")
	}
	if want := "/sha256-" + desc.Digest.Hex; !strings.HasSuffix(doc.Namespace, want) {
		t.Errorf("namespace %s does not end in the manifest digest %s", doc.Namespace, want)
	}
}

func TestDebCopyrightLicense(t *testing.T) {
	for in, want := range map[string]string{
		"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nLicense: GPL-2+\n\nFiles: *\nCopyright: 2000 A\nLicense: GPL-2+\n\nFiles: lib/*\nLicense: Expat\n\nLicense: Apache-2.0\n Its text, in a stand-alone paragraph no Files paragraph names.\n": "GPL-2.0-or-later AND MIT",
		"Format-Specification: http://svn.debian.org/wsvn/dep/web/deps/dep5.mdwn?op=file&rev=135\n\nFiles: *\nLicense: BSD-3-clause\n":                                                                                                                                          "BSD-3-Clause",
		"This is the Debian prepackaged version of foo.\n\nLicense: GPL-2\n":                                                                                 "",
		"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+ or Artistic\n\nFiles: x\nLicense: GPL-2+\n": "(GPL-2.0-or-later OR Artistic-1.0) AND GPL-2.0-or-later",
	} {
		if got := debCopyrightLicense([]byte(in)); got != want {
			t.Errorf("debCopyrightLicense(%.40q…) = %q, want %q", in, got, want)
		}
	}
}

// TestScanLayersEntries: a hard link to a Go binary or database counts at its own path, and a
// FIFO at a database path fails the scan with the path.
func TestScanLayersEntries(t *testing.T) {
	status, err := os.ReadFile("testdata/debian/var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	layer := func(entries ...*tar.Header) func() (io.ReadCloser, error) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range entries {
			tw.WriteHeader(h)
			if h.Typeflag == tar.TypeReg {
				tw.Write(status[:h.Size])
			}
		}
		tw.Close()
		return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }
	}
	reg := &tar.Header{Name: "var/lib/dpkg/status.d/all", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(status))}
	link := &tar.Header{Name: "var/lib/dpkg/status", Typeflag: tar.TypeLink, Linkname: "var/lib/dpkg/status.d/all"}
	doc, err := ScanLayers(context.Background(), []func() (io.ReadCloser, error){layer(reg), layer(link)}, testOptions("links"))
	if err != nil {
		t.Fatal(err)
	}
	var at []string
	for _, p := range doc.Packages {
		if p.Name == "bash" {
			at = append(at, p.Locations...)
		}
	}
	if !slices.Equal(at, []string{"/var/lib/dpkg/status", "/var/lib/dpkg/status.d/all"}) || len(doc.Files) != 2 {
		t.Errorf("hard link: bash at %v, %d files", at, len(doc.Files))
	}
	fifo := &tar.Header{Name: "lib/apk/db/installed", Typeflag: tar.TypeFifo, Mode: 0o644}
	var nr *rootfile.NotRegularError
	if _, err := ScanLayers(context.Background(), []func() (io.ReadCloser, error){layer(fifo)}, testOptions("fifo")); !errors.As(err, &nr) || !strings.Contains(err.Error(), "/lib/apk/db/installed") {
		t.Errorf("fifo in a layer: %v", err)
	}
}

// TestScanFS: any fs.FS works, including one that cannot read links.
func TestScanFS(t *testing.T) {
	fsys := fstest.MapFS{
		"lib/apk/db/installed":       {Data: []byte("P:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\n")},
		"usr/share/doc/libfoo-dev":   {Data: []byte("libfoo1"), Mode: fs.ModeSymlink},
		"usr/share/doc/other/readme": {Data: []byte("hi")},
	}
	doc, err := Scan(context.Background(), noLinks{fsys}, testOptions("mapfs"))
	if err != nil {
		t.Fatal(err)
	}
	if p := byName(doc)["musl"]; p.PURL != "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64" || p.License != "MIT" {
		t.Errorf("musl: %+v", p)
	}
}

// noLinks hides MapFS's ReadLink, as a plain fs.FS would.
type noLinks struct{ fs fs.FS }

func (n noLinks) Open(name string) (fs.File, error) { return n.fs.Open(name) }
