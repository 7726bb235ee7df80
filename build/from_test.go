package build

import (
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
			for path, want := range map[string]string{
				"/a.txt":         "0 0644 0:0 A",
				"/d/b.txt":       "0 0644 0:0 B",
				"/d/sub/c.txt":   "0 0644 0:0 C",
				"/txt/a.txt":     "0 0644 0:0 A",
				"/txt/extra.txt": "0 0644 0:0 extra",
				"/kept-owner":    "0 0644 7:8 A",
				"/chowned":       "0 0644 1:2 A",
			} {
				if got[path] != want {
					t.Errorf("%s = %q, want %q", path, got[path], want)
				}
			}
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
