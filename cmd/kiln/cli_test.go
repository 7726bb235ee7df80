package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/runtime"
)

// The test binary doubles as the kiln binary: tests that need real processes (concurrency,
// exit codes, signals) re-execute it with this variable set.
const execEnv = "KILN_CLI_TEST_EXEC"

func TestMain(m *testing.M) {
	// First, as in main: a rootless re-exec (the pause process too) must never run the tests.
	runtime.UserNamespaceHook()
	runtime.ChrootHook()
	if os.Getenv(execEnv) == "1" {
		ctx, stop := signalContext() // as main: signals (SIGPIPE too) as kiln handles them
		code := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// result is what one kiln invocation printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// kiln runs the CLI in a child process over root.
func kiln(t *testing.T, root string, stdin io.Reader, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), execEnv+"=1", "KILN_ROOT="+root)
	cmd.Stdin = stdin
	return runKiln(t, cmd, args)
}

// runKiln runs cmd, a kiln invocation with args, and collects what it printed and returned.
func runKiln(t *testing.T, cmd *exec.Cmd, args []string) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run kiln %v: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok runs kiln and fails the test unless it exits 0.
func ok(t *testing.T, root string, args ...string) result {
	t.Helper()
	r := kiln(t, root, nil, args...)
	if r.code != 0 {
		t.Fatalf("kiln %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// writeTree creates files (name → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeDigest fingerprints every path, mode and file content under dir except tmp/ and
// locks/, which kiln may legitimately touch on a failed command.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && (rel == "tmp" || rel == "locks") {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, info.Mode())
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			line += " " + hex.EncodeToString(sum[:])
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// imageRows decodes `kiln images --format json`: one JSON object per line, like docker.
func imageRows(t *testing.T, root string) []imageRow {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(ok(t, root, "images", "--format", "json").stdout))
	var rows []imageRow
	for dec.More() {
		var r imageRow
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("images --format json: %v", err)
		}
		rows = append(rows, r)
	}
	return rows
}

// errorLine is kiln's "kiln: ..." error line in stderr, after any progress output.
func errorLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "kiln: ") {
			return l
		}
	}
	return ""
}

func TestUsageErrorsExit2(t *testing.T) {
	root := t.TempDir()
	for _, args := range [][]string{
		{"build"},
		{"--no-such-flag"},
		{"no-such-command"},
		{"tag", "only-one"},
		{"build", "--progress=fancy", "."},
	} {
		r := kiln(t, root, nil, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "kiln: ") {
			t.Errorf("kiln %v: exit %d, stderr %q; want exit 2 and a kiln: message", args, r.code, r.stderr)
		}
	}
}

func TestBuildListInspectTagRmi(t *testing.T) {
	root, ctxDir := t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{
		"Buildfile": "FROM scratch\nCOPY a.txt /a.txt\nCOPY dir/ /dir/\nENV A=1\nCMD [\"/a\"]\nLABEL x=y\n",
		"a.txt":     "alpha\n",
		"dir/b.txt": "beta\n",
	})
	r := ok(t, root, "build", "--progress=plain", "-t", "demo", "-t", "demo:v2", ctxDir)
	if !strings.Contains(r.stderr, "naming to demo:latest") {
		t.Errorf("build output lacks the tag:\n%s", r.stderr)
	}
	again := ok(t, root, "build", "--progress=plain", "-t", "demo", ctxDir)
	if got := strings.Count(again.stderr, "CACHED"); got != 2 {
		t.Errorf("second build: %d CACHED steps, want 2:\n%s", got, again.stderr)
	}
	nocache := ok(t, root, "build", "--progress=plain", "--no-cache", "-t", "demo", ctxDir)
	if strings.Contains(nocache.stderr, "CACHED") {
		t.Errorf("--no-cache build reused steps:\n%s", nocache.stderr)
	}

	rows := imageRows(t, root)
	if len(rows) != 2 || rows[0].Repository != "demo" {
		t.Fatalf("images: %+v", rows)
	}
	var info []map[string]any
	if err := json.Unmarshal([]byte(ok(t, root, "inspect", "demo").stdout), &info); err != nil {
		t.Fatal(err)
	}
	cfg, _ := info[0]["Config"].(map[string]any)
	if fmt.Sprint(cfg["Cmd"]) != "[/a]" || fmt.Sprint(cfg["Labels"]) != "map[x:y]" {
		t.Errorf("inspect config: %v", cfg)
	}

	ok(t, root, "tag", "demo", "demo:v1")
	ok(t, root, "rmi", "demo:v1", "demo:v2")
	q := ok(t, root, "images", "-q").stdout
	if n := len(strings.Fields(q)); n != 1 {
		t.Errorf("after rmi: %d images, want 1:\n%s", n, q)
	}
	if r := kiln(t, root, nil, "inspect", "demo:v1"); r.code != 1 || !strings.HasPrefix(r.stderr, "kiln: ") {
		t.Errorf("inspect of removed tag: exit %d, %q", r.code, r.stderr)
	}
}

// TestBadInputLeavesStoreUntouched checks that each kind of bad input fails with exit 1 and
// one clear message, and changes nothing in the store.
func TestBadInputLeavesStoreUntouched(t *testing.T) {
	root, ctxDir := t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	ok(t, root, "build", "-t", "base", ctxDir)
	corrupt := filepath.Join(t.TempDir(), "corrupt.tar")
	if err := os.WriteFile(corrupt, bytes.Repeat([]byte("not a tar "), 200), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, buildfile, want string
		args                  []string
	}{
		{"missing buildfile", "", "not found", []string{"build", "-f", filepath.Join(ctxDir, "nope"), ctxDir}},
		{"syntax error", "FROM scratch\nCOPY\n", "Buildfile:2", nil},
		{"unknown instruction", "FROM scratch\nCOPPY a /a\n", "COPY", nil},
		{"copy missing", "FROM scratch\nCOPY missing.txt /\n", `"missing.txt" not found in build context`, nil},
		{"copy outside", "FROM scratch\nCOPY ../x /\n", "outside", nil},
		{"bad chmod", "FROM scratch\nCOPY --chmod=u+q a /a\n", "chmod", nil},
		{"bad chown", "FROM scratch\nCOPY --chown=nobody a /a\n", "nobody", nil},
		{"missing image", "FROM nothere\nCOPY a /a\n", "kiln load", []string{"build", "--pull=never", "-t", "bad", ""}},
		{"invalid tag", "FROM scratch\n", "invalid tag", []string{"build", "-t", "UPPER/Case", ctxDir}},
		{"corrupt archive", "", "load", []string{"load", "-i", corrupt}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := ctxDir
			if tc.buildfile != "" {
				dir = t.TempDir()
				writeTree(t, dir, map[string]string{"Buildfile": tc.buildfile, "a": "a"})
			}
			args := append([]string(nil), tc.args...)
			switch {
			case args == nil:
				args = []string{"build", "-t", "bad", dir}
			case args[len(args)-1] == "": // the case's own context dir goes last
				args[len(args)-1] = dir
			}
			before := treeDigest(t, root)
			r := kiln(t, root, nil, args...)
			if r.code != 1 && r.code != 2 {
				t.Fatalf("exit %d, want 1 (or 2 for usage)\n%s", r.code, r.stderr)
			}
			if line := errorLine(r.stderr); !strings.Contains(line, tc.want) {
				t.Errorf("error line %q lacks %q", line, tc.want)
			}
			if after := treeDigest(t, root); after != before {
				t.Errorf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestConcurrentProcesses runs 16 kiln processes that build and tag on one root at once.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns 16 processes")
	}
	root := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 16 {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{
			"Buildfile": "FROM scratch\nCOPY f /f\n",
			"f":         fmt.Sprintf("content %d\n", i%4),
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r result
			if i%2 == 0 {
				r = kiln(t, root, nil, "build", "-q", "-t", fmt.Sprintf("img%d", i), dir)
			} else {
				r = kiln(t, root, nil, "build", "-q", "-t", fmt.Sprintf("img%d", i), dir)
				if r.code == 0 {
					r = kiln(t, root, nil, "tag", fmt.Sprintf("img%d", i), fmt.Sprintf("alias%d", i))
				}
			}
			if r.code != 0 {
				errs <- fmt.Sprintf("process %d: exit %d: %s", i, r.code, r.stderr)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	rows := imageRows(t, root)
	if len(rows) != 24 {
		t.Errorf("got %d tags, want 24 (16 builds + 8 aliases)", len(rows))
	}
	raw, err := os.ReadFile(filepath.Join(root, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(raw) {
		t.Errorf("index.json is not valid JSON:\n%s", raw)
	}
}

func TestBuildOutputs(t *testing.T) {
	root, ctxDir, out := t.TempDir(), t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{
		"Buildfile": "FROM scratch AS base\nCOPY a /a\nCOPY d/ /d/\nFROM base\nCOPY b /b\n",
		"a":         "A", "b": "B", "d/x": "X",
	})
	local := filepath.Join(out, "rootfs")
	ok(t, root, "build", "-q", "-o", "type=local,dest="+local, ctxDir)
	for name, want := range map[string]string{"a": "A", "b": "B", "d/x": "X"} {
		if b, err := os.ReadFile(filepath.Join(local, name)); err != nil || string(b) != want {
			t.Errorf("type=local %s = %q, %v", name, b, err)
		}
	}
	tarFile := filepath.Join(out, "fs.tar")
	ok(t, root, "build", "-q", "--output", "type=tar,dest="+tarFile, ctxDir)
	if fi, err := os.Stat(tarFile); err != nil || fi.Size() < 1024 {
		t.Errorf("type=tar: %v %v", fi, err)
	}
	md := filepath.Join(out, "md.json")
	for _, typ := range []string{"docker", "oci"} {
		archive := filepath.Join(out, typ+".tar")
		ok(t, root, "build", "-q", "-t", "exported:"+typ, "--metadata-file", md, "-o", "type="+typ+",dest="+archive, ctxDir)
		other := t.TempDir()
		r := ok(t, other, "load", "-i", archive)
		if !strings.Contains(r.stdout, "exported:"+typ) {
			t.Errorf("type=%s archive loaded as %q", typ, r.stdout)
		}
	}
	var meta map[string]string
	raw, err := os.ReadFile(md)
	if err != nil || json.Unmarshal(raw, &meta) != nil || !strings.HasPrefix(meta["containerimage.digest"], "sha256:") {
		t.Errorf("metadata file %s: %v", raw, err)
	}
	if r := kiln(t, root, nil, "build", "-o", "type=bogus,dest=x", ctxDir); r.code != 2 {
		t.Errorf("bad --output: exit %d", r.code)
	}
}

func TestBuildCompressions(t *testing.T) {
	root, ctxDir := t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY a /a\n", "a": strings.Repeat("data ", 1000)})
	for _, c := range []string{"zstd", "estargz", "uncompressed"} {
		ok(t, root, "build", "-q", "--compression", c, "--compression-level", "3", "--no-cache", "-t", "c:"+c, ctxDir)
		var info []struct {
			Layers []struct {
				MediaType   string            `json:"mediaType"`
				Annotations map[string]string `json:"annotations"`
			}
		}
		if err := json.Unmarshal([]byte(ok(t, root, "inspect", "c:"+c).stdout), &info); err != nil || len(info) != 1 || len(info[0].Layers) != 1 {
			t.Fatalf("inspect c:%s: %v %+v", c, err, info)
		}
		l := info[0].Layers[0]
		switch c {
		case "zstd":
			if !strings.HasSuffix(l.MediaType, "+zstd") {
				t.Errorf("zstd layer has media type %s", l.MediaType)
			}
		case "estargz":
			if l.Annotations["containerd.io/snapshot/stargz/toc.digest"] == "" {
				t.Errorf("estargz layer lacks the TOC digest annotation: %+v", l)
			}
		case "uncompressed":
			if !strings.HasSuffix(l.MediaType, ".tar") {
				t.Errorf("uncompressed layer has media type %s", l.MediaType)
			}
		}
	}
	if r := kiln(t, root, nil, "build", "--compression", "lz4", ctxDir); r.code != 2 {
		t.Errorf("unknown compression: exit %d", r.code)
	}
}
