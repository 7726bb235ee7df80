package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/corpus"
)

// Tests named after the CVE classes of build tools and runtimes they pin, through the CLI:
// each fails on the vulnerable behaviour. Escapes aim at corpus.Canary.

// canaryState fingerprints the canary with mtimes, so an entry created and removed again shows.
func canaryState(t *testing.T) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(corpus.Canary, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %d", p, fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatalf("canary: %v", err)
	}
	sort.Strings(lines)
	return treeDigest(t, corpus.Canary) + "\n" + strings.Join(lines, "\n")
}

// freshCanary recreates the canary and returns its state.
func freshCanary(t *testing.T) string {
	t.Helper()
	makeCanary(t)
	return canaryState(t)
}

func checkCanary(t *testing.T, before, out string) {
	t.Helper()
	checkNotMounted(t, corpus.Canary)
	if after := canaryState(t); after != before {
		t.Errorf("the host canary %s changed:\nbefore:\n%s\nafter:\n%s", corpus.Canary, before, after)
	}
	if strings.Contains(out, corpus.CanarySecret) {
		t.Errorf("the build or container read the canary:\n%s", out)
	}
}

// build runs `kiln build` of buildfile (plus files) in a fresh context over root.
func buildIn(t *testing.T, root, buildfile string, files map[string]string, args ...string) (result, string) {
	t.Helper()
	ctxDir := t.TempDir()
	all := map[string]string{"Buildfile": buildfile}
	for k, v := range files {
		all[k] = v
	}
	writeTree(t, ctxDir, all)
	return buildDir(t, root, ctxDir, args...), ctxDir
}

// buildDir runs `kiln build` of the context dir over root.
func buildDir(t *testing.T, root, ctxDir string, args ...string) result {
	t.Helper()
	args = append(append([]string{"build", "--progress=plain"}, args...), ctxDir)
	return kilnWithin(t, commandDeadline, root, args...)
}

// TestCVE_2024_21626_BuildAndRunCwd: kiln run and RUN steps see no descriptor beyond stdio,
// and a working directory of /proc/self/fd/N (from -w, the image's WORKDIR or the Buildfile's)
// either fails or stays in the container: runc before 1.1.12 let it reach the host through a
// leaked descriptor.
func TestCVE_2024_21626_BuildAndRunCwd(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	canary := freshCanary(t)
	fds := "for i in $(seq 0 64); do [ -e /proc/self/fd/$i ] && echo -n \"$i \"; done; true"
	if r := ok(t, root, "run", "--rm", "busybox", "sh", "-c", fds); r.stdout != "0 1 2 " {
		t.Errorf("kiln run: the process holds descriptors %q, want only 0 1 2", r.stdout)
	}
	r, _ := buildIn(t, root, "FROM busybox\nRUN sh -c '"+fds+"' > /fds\n", nil, "-t", "fds")
	if r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	if got := ok(t, root, "run", "--rm", "fds", "cat", "/fds").stdout; got != "0 1 2 " {
		t.Errorf("RUN step: the process held descriptors %q, want only 0 1 2", got)
	}
	up := strings.Repeat("../", 12)
	probe := "cat " + up + corpus.Canary + "/secret; echo pwned > " + up + corpus.Canary + "/secret; pwd"
	for n := 3; n <= 8; n++ {
		wd := fmt.Sprintf("/proc/self/fd/%d", n)
		r := kilnWithin(t, commandDeadline, root, "run", "--rm", "-w", wd, "busybox", "sh", "-c", probe)
		checkCanary(t, canary, r.stdout+r.stderr)
		t.Logf("run -w %s: exit %d %s%s", wd, r.code, r.stdout, errorLine(r.stderr))
		r, _ = buildIn(t, root, "FROM busybox\nWORKDIR "+wd+"\nRUN "+probe+"\n", nil)
		checkCanary(t, canary, r.stdout+r.stderr)
		t.Logf("WORKDIR %s: exit %d %s", wd, r.code, errorLine(r.stderr))
		r, _ = buildIn(t, root, "FROM busybox\nRUN cd "+wd+" 2>/dev/null && "+probe+"; true\n", nil)
		checkCanary(t, canary, r.stdout+r.stderr)
	}
}

// TestCVE_2024_23652_BuildMountStubs: a RUN with mounts under a directory reached through a
// link swaps the link to the host canary while it runs; cleaning up the mount stubs must not
// follow it (BuildKit removed host files that way). Mount targets under a link to a host path
// are created, and removed, inside the rootfs.
func TestCVE_2024_23652_BuildMountStubs(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	canary := freshCanary(t)
	r, _ := buildIn(t, root, `FROM busybox
RUN mkdir -p /var/empty/a /var/dir && ln -s var /link
RUN --mount=type=cache,target=/link/empty/a/cache --mount=type=tmpfs,target=/link/dir/tmp/deep \
    --mount=type=bind,target=/link/empty/bind \
    rm /link && ln -s `+corpus.Canary+` /link && echo swapped
RUN mkdir -p `+corpus.Canary+`/empty `+corpus.Canary+`/dir && ln -s `+corpus.Canary+` /host
RUN --mount=type=cache,target=/host/empty/cache --mount=type=tmpfs,target=/host/newdir \
    --mount=type=bind,target=/host/dir/keep ls /host/ && echo mounted
`, map[string]string{"f": "x"}, "-t", "stubs")
	if r.code != 0 || !strings.Contains(r.stderr, "swapped") || !strings.Contains(r.stderr, "mounted") {
		t.Errorf("build: exit %d\n%s", r.code, r.stderr)
	}
	checkCanary(t, canary, r.stdout+r.stderr)
}

// TestCVE_2024_23651_CacheMountSymlinks: one RUN plants links to the host canary in a cache
// mount; later RUNs that mount the same cache (with uid/gid/mode, with source=, in parallel
// stages) must see them as links inside the container, and kiln must not chown, chmod,
// create or read anything through them.
func TestCVE_2024_23651_CacheMountSymlinks(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	canary := freshCanary(t)
	plant := "ln -s " + corpus.Canary + " /c/dir && ln -s " + corpus.Canary + "/secret /c/file && ln -s " + corpus.Canary + "/empty /c/sub"
	r, _ := buildIn(t, root, `FROM busybox AS a
RUN --mount=type=cache,id=shared,target=/c `+plant+`
RUN --mount=type=cache,id=shared,target=/c,uid=1000,gid=1000,mode=0777 cat /c/file /c/dir/secret 2>&1; echo pwned > /c/file; mkdir -p /c/dir/new /c/sub/new; ls -la /c
FROM busybox AS b
RUN --mount=type=cache,id=shared,target=/d,source=sub,uid=1000,mode=0777 ls -la /d; touch /d/x; echo pwned > /d/secret 2>&1; true
FROM busybox AS c
RUN --mount=type=cache,id=shared,target=/e,sharing=private cat /e/file 2>&1; echo pwned > /e/dir/secret 2>&1; true
FROM busybox
COPY --from=b /etc/passwd /b
COPY --from=c /etc/passwd /c
RUN --mount=type=cache,id=shared,target=/f,readonly ls /f/dir/ 2>&1; true
`, nil, "--no-cache")
	t.Logf("build: exit %d\n%s", r.code, r.stderr)
	checkCanary(t, canary, r.stdout+r.stderr)
	var st fs.FileInfo
	if st, _ = os.Stat(filepath.Join(corpus.Canary, "secret")); st != nil && st.Mode().Perm() != 0o644 {
		t.Errorf("canary secret mode %v: kiln chmodded through a link", st.Mode())
	}
}

// TestCVE_2024_9675_CacheIDTraversal: buildah let `--mount=type=cache,id=../../..` (and src=)
// name a directory outside its cache dir. Cache ids here only name a directory under the
// store's cache/mounts, whatever they contain.
func TestCVE_2024_9675_CacheIDTraversal(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	canary := freshCanary(t)
	var steps []string
	for _, id := range []string{"../../../../../../../.." + corpus.Canary, corpus.Canary, "..", "/", "a/../../../../../../.." + corpus.Canary} {
		steps = append(steps, "RUN --mount=type=cache,id="+id+",target=/c ls -la /c; cat /c/secret 2>&1; echo pwned > /c/secret; mkdir -p /c/new; rm -rf /c/dir; true")
	}
	steps = append(steps, "RUN --mount=type=cache,source=../../../../../../../.."+corpus.Canary+",target=/c cat /c/secret 2>&1; echo pwned > /c/secret; true")
	r, _ := buildIn(t, root, "FROM busybox\n"+strings.Join(steps, "\n")+"\n", nil, "--no-cache")
	t.Logf("build: exit %d\n%s", r.code, r.stderr)
	checkCanary(t, canary, r.stdout+r.stderr)
	// Every cache dir is a direct child of the store's cache/mounts.
	ents, err := os.ReadDir(filepath.Join(root, "cache", "mounts"))
	if err != nil && r.code == 0 {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), "..") || strings.Contains(e.Name(), "canary") {
			t.Errorf("cache dir named %q from a hostile id", e.Name())
		}
	}
}

// TestCVE_2024_1753_BindMountEscape: buildah let `RUN --mount=type=bind,source=/,rw` bind the
// host's root read-write. A bind's source is confined to the context (or the --from stage),
// links in the context resolve inside it, and rw writes are thrown away: neither the host nor
// the context changes.
func TestCVE_2024_1753_BindMountEscape(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	canary := freshCanary(t)
	up := strings.Repeat("../", 12)
	for name, step := range map[string]string{
		"source=/ rw":        "RUN --mount=type=bind,source=/,target=/h,rw ls /h; cat /h/" + up + corpus.Canary + "/secret 2>&1; echo pwned > /h/ctx.txt; echo new > /h/new; rm -f /h/Buildfile; true",
		"source=../ climbs":  "RUN --mount=type=bind,source=" + up + corpus.Canary + ",target=/h,rw cat /h/secret 2>&1; echo pwned > /h/secret; true",
		"source=abs outside": "RUN --mount=type=bind,source=" + corpus.Canary + ",target=/h,rw cat /h/secret 2>&1; echo pwned > /h/secret; true",
		"source=link out":    "RUN --mount=type=bind,source=link,target=/h,rw cat /h/secret 2>&1; echo pwned > /h/secret; true",
		"source=filelink":    "RUN --mount=type=bind,source=filelink,target=/h,rw cat /h 2>&1; echo pwned > /h; true",
		"from stage climbs":  "RUN --mount=type=bind,from=busybox,source=" + up + corpus.Canary + ",target=/h,rw cat /h/secret 2>&1; echo pwned > /h/secret; true",
		"from stage link":    "RUN ln -s " + corpus.Canary + " /out\nFROM busybox\nCOPY --from=0 /etc/passwd /p\nRUN --mount=type=bind,from=0,source=/out,target=/h,rw cat /h/secret 2>&1; echo pwned > /h/secret; true",
	} {
		t.Run(name, func(t *testing.T) {
			ctxDir := t.TempDir()
			writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\n" + step + "\n", "ctx.txt": "context\n"})
			for link, target := range map[string]string{"link": corpus.Canary, "filelink": corpus.Canary + "/secret"} {
				if err := os.Symlink(target, filepath.Join(ctxDir, link)); err != nil {
					t.Fatal(err)
				}
			}
			before := treeDigest(t, ctxDir)
			r := buildDir(t, root, ctxDir, "--no-cache")
			t.Logf("exit %d\n%s", r.code, r.stderr)
			checkCanary(t, canary, r.stdout+r.stderr)
			if after := treeDigest(t, ctxDir); after != before {
				t.Errorf("the context changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestCVE_2026_28406_TarTraversal: kaniko's unpacker joined tar names to the destination
// unchecked, so `../` entries wrote outside it. An ADD of a local tar and a base image whose
// layer has such entries must stay inside the image (or be refused), and the host canary is
// untouched.
func TestCVE_2026_28406_TarTraversal(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	canary := freshCanary(t)
	up := strings.Repeat("../", 12)
	for name, entries := range map[string][]tar.Header{
		"dotdot":           {{Name: up + corpus.Canary + "/pwned", Typeflag: tar.TypeReg, Size: 6}},
		"absolute":         {{Name: corpus.Canary + "/secret", Typeflag: tar.TypeReg, Size: 6}},
		"symlink then":     {{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: corpus.Canary}, {Name: "esc/secret", Typeflag: tar.TypeReg, Size: 6}},
		"relative link":    {{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: up + corpus.Canary}, {Name: "esc/new", Typeflag: tar.TypeReg, Size: 6}},
		"hardlink out":     {{Name: "h", Typeflag: tar.TypeLink, Linkname: up + corpus.Canary + "/secret"}},
		"hardlink abs":     {{Name: "h", Typeflag: tar.TypeLink, Linkname: corpus.Canary + "/secret"}},
		"nested dotdot":    {{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "a/" + up + corpus.Canary + "/pwned", Typeflag: tar.TypeReg, Size: 6}},
		"dir through link": {{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: corpus.Canary}, {Name: "esc/newdir/", Typeflag: tar.TypeDir, Mode: 0o777}},
	} {
		t.Run("ADD "+name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range entries {
				h := h
				if h.Mode == 0 {
					h.Mode = 0o644
				}
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
				if h.Size > 0 {
					tw.Write([]byte("pwned\n"))
				}
			}
			tw.Close()
			r, _ := buildIn(t, root, "FROM busybox\nADD evil.tar /\nRUN cat /esc/secret /h 2>&1; true\n", map[string]string{"evil.tar": buf.String()}, "--no-cache", "-t", "added")
			t.Logf("exit %d\n%s", r.code, r.stderr)
			checkCanary(t, canary, r.stdout+r.stderr)
			if r.code == 0 {
				out := kilnWithin(t, commandDeadline, root, "run", "--rm", "added", "sh", "-c", "cat /esc/secret /h 2>&1; true")
				checkCanary(t, canary, out.stdout+out.stderr)
			}
		})
	}
	t.Run("FROM a layer with ../", func(t *testing.T) {
		ok(t, root, "load", "-i", filepath.Join(corpusDir, "traversal-dotdot.oci.tar"))
		r, _ := buildIn(t, root, "FROM kiln-corpus/traversal-dotdot\nRUN echo built\n", nil, "--pull=never", "-t", "derived")
		if r.code == 0 {
			t.Errorf("a build on a base layer with ../ entries succeeded:\n%s", r.stderr)
		}
		checkCanary(t, canary, r.stdout+r.stderr)
		if rr := kiln(t, root, nil, "inspect", "derived"); rr.code == 0 {
			t.Error("the refused build was tagged")
		}
	})
}
