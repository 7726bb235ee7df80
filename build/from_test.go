package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildCopyFromStagesAndImages(t *testing.T) {
	for _, flat := range []bool{false, true} {
		name := "mounted"
		if flat {
			name = "flattened"
		}
		t.Run(name, func(t *testing.T) {
			forceFlatten = flat
			defer func() { forceFlatten = false }()
			f := newFixture(t)
			f.write(map[string]string{"a.txt": "A", "dir/b.txt": "B", "dir/sub/c.txt": "C"})
			img, ev, err := f.build(`FROM base AS files
COPY a.txt /out/a.txt
COPY dir/ /out/dir/
COPY --chown=7:8 a.txt /owned/a.txt

FROM scratch AS unused
COPY a.txt /never

FROM files AS more
COPY <<EOF /out/extra.txt
extra
EOF

FROM scratch
COPY --from=files /out/a.txt /a.txt
COPY --from=0 /out/dir /d/
COPY --from=more /out/*.txt /txt/
COPY --from=files /owned/a.txt /kept-owner
COPY --from=files --chown=1:2 /owned/a.txt /chowned
COPY --from=base /etc/passwd /passwd
`, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := f.files(img)
			wantFiles(t, got, map[string]string{
				"/a.txt":         "0 0644 0:0 A",
				"/d/b.txt":       "0 0644 0:0 B",
				"/d/sub/c.txt":   "0 0644 0:0 C",
				"/txt/a.txt":     "0 0644 0:0 A",
				"/txt/extra.txt": "0 0644 0:0 extra",
				"/kept-owner":    "0 0644 7:8 A",
				"/chowned":       "0 0644 1:2 A",
			})
			if !strings.Contains(got["/passwd"], "app:x:1000") {
				t.Errorf("COPY --from=base /etc/passwd = %q", got["/passwd"])
			}
			for n := range ev.kinds() {
				if strings.Contains(n, "/never") {
					t.Errorf("unused stage was built: %s", n)
				}
			}
		})
	}
}

func TestBuildCopyFromErrors(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"a": "a"})
	for bf, want := range map[string]string{
		"FROM base AS one\nCOPY --from=one /etc/passwd /x\n":                                          "defined before",
		"FROM base AS one\nCOPY --from=two /x /x\nFROM base AS two\nCOPY --from=one /etc/passwd /y\n": "defined before",
		"FROM base AS one\nFROM scratch\nCOPY --from=one /nope /x\n":                                  `"/nope" not found in stage one`,
		"FROM scratch\nCOPY --from=nosuchimage /x /x\n":                                               "nosuchimage",
	} {
		if _, _, err := f.build(bf, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", bf, err, want)
		}
	}
}

func TestCopyChmodExcludeParents(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"bin/run": "r", "bin/tool": "t", "src/a/x.go": "x", "src/a/x_test.go": "t", "src/b/y.go": "y", "docs/z.md": "z"})
	if err := os.Chmod(filepath.Join(f.dir, "bin/tool"), 0o640); err != nil {
		t.Fatal(err)
	}
	img, _, err := f.build(`FROM scratch
COPY --chmod=u+x,g-r bin/ /bin/
COPY --exclude=**/*_test.go --exclude=docs src/ docs/ /src/
COPY --parents src/a/x.go src/b /p/
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := f.files(img)
	wantFiles(t, got, map[string]string{
		"/bin/run":      "0 0704 0:0 r", // 0644 → u+x → 0744 → g-r → 0704
		"/bin/tool":     "0 0700 0:0 t", // 0640 → 0740 → 0700
		"/src/a/x.go":   "0 0644 0:0 x",
		"/src/b/y.go":   "0 0644 0:0 y",
		"/p/src/a/x.go": "0 0644 0:0 x",
		"/p/src/b/y.go": "0 0644 0:0 y",
		"/p/src/a":      "5 0755 0:0",
	})
	for _, p := range []string{"/src/a/x_test.go", "/src/z.md", "/z.md"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s was not excluded", p)
		}
	}
}

// TestCopyExcludeRelativeToSource: --exclude patterns match inside each source, as BuildKit
// does (moby/buildkit#5509): *.log drops dir3/drop.log but not dir3/sub/deep.log.
func TestCopyExcludeRelativeToSource(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"dir3/drop.log": "d", "dir3/keep.txt": "k", "dir3/sub/deep.log": "l", "dir3/sub/gone/x": "x",
		"home.txt": "h", "homer.bin": "b"})
	img, _, err := f.build(`FROM scratch
COPY --exclude=*.log --exclude=sub/gone dir3/ /excl/
COPY --exclude=*.txt hom* /h/
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := f.files(img)
	for _, p := range []string{"/excl/keep.txt", "/excl/sub/deep.log", "/h/homer.bin"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s missing: %v", p, got)
		}
	}
	for _, p := range []string{"/excl/drop.log", "/excl/sub/gone", "/excl/sub/gone/x", "/h/home.txt"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s was not excluded", p)
		}
	}
}

// TestCopyLinkSurvivesBaseChange: a COPY --link layer is keyed without its parent, so a new
// base image reuses it, and it sits on top of whatever base is used.
func TestCopyLinkSurvivesBaseChange(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"app": "binary", "one": "1", "two": "2"})
	bf := func(base string) string {
		return "FROM scratch AS b1\nCOPY one /base\nFROM scratch AS b2\nCOPY two /base\nFROM " + base + "\nCOPY --link --chown=5:6 app /opt/app\n"
	}
	if _, _, err := f.build(bf("b1"), nil); err != nil {
		t.Fatal(err)
	}
	img, ev, err := f.build(bf("b2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := ev.kinds()["[stage-2 1/1] COPY --link --chown=5:6 app /opt/app"]; k != EventCached {
		t.Errorf("COPY --link after a base change: %v (%v)", k, ev.kinds())
	}
	got := f.files(img)
	if got["/base"] != "0 0644 0:0 2" || got["/opt/app"] != "0 0644 5:6 binary" {
		t.Errorf("files: %v", got)
	}
	if _, _, err := f.build("FROM base\nCOPY --link --chown=app app /x\n", nil); err == nil || !strings.Contains(err.Error(), "numeric") {
		t.Errorf("--link with a user name: %v", err)
	}
}
