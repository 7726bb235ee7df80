package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/corpus"
	"github.com/kiln-build/kiln/internal/testimage"
)

// corpusDir holds the committed malicious-layer corpus (see internal/corpus).
const corpusDir = "../../testdata/malicious"

// commandDeadline bounds every kiln command of the hostile suites: a hang fails the test.
const commandDeadline = 90 * time.Second

// kilnWithin runs kiln like kiln() but fails the test if it does not end within d; it is
// then sent SIGTERM (which must end kiln cleanly), and SIGKILL 10 s later.
func kilnWithin(t *testing.T, d time.Duration, root string, args ...string) result {
	t.Helper()
	return kilnEnvWithin(t, d, root, nil, args...)
}

// kilnEnvWithin is kilnWithin with extra environment variables.
func kilnEnvWithin(t *testing.T, d time.Duration, root string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), execEnv+"=1", "KILN_ROOT="+root), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Errorf("kiln %s: still running after %s (hang)\nstderr:\n%s", strings.Join(args, " "), d, errb.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil && ctx.Err() == nil {
		t.Fatalf("run kiln %v: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// makeCanary creates the directory every corpus escape aims at, for the test's duration, and
// returns its fingerprint.
func makeCanary(t *testing.T) string {
	t.Helper()
	t.Cleanup(func() { os.RemoveAll(corpus.Canary) })
	return resetCanary(t)
}

// resetCanary recreates the canary after a case changed it.
func resetCanary(t *testing.T) string {
	t.Helper()
	if err := os.RemoveAll(corpus.Canary); err != nil {
		t.Fatal(err)
	}
	for name, content := range corpus.CanaryFiles {
		p := filepath.Join(corpus.Canary, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		writeTree(t, corpus.Canary, map[string]string{name: content})
	}
	return treeDigest(t, corpus.Canary)
}

// ociPieces reads an oci-archive's raw blobs (by digest, unverified) and its manifest.
func ociPieces(t *testing.T, archive []byte) (manifest []byte, blobs map[string][]byte) {
	t.Helper()
	members, err := corpus.Members(archive)
	if err != nil {
		t.Fatal(err)
	}
	blobs = map[string][]byte{}
	for name, data := range members {
		if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			blobs["sha256:"+hex] = data
		}
	}
	var idx struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(members["index.json"], &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("corpus index.json: %v %s", err, members["index.json"])
	}
	return blobs[idx.Manifests[0].Digest], blobs
}

// rawBlobs serves blobs as stored, without checking them against their digests: a hostile
// registry.
type rawBlobs map[string][]byte

func (b rawBlobs) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	data, ok := b[h.String()]
	if !ok {
		return nil, registry.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// hostileRegistry starts an in-process registry that serves whatever blobs it is given.
func hostileRegistry(t *testing.T) (addr string, blobs rawBlobs) {
	t.Helper()
	blobs = rawBlobs{}
	srv := httptest.NewServer(registry.New(registry.WithBlobHandler(blobs), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), blobs
}

// putCase publishes the case's oci-archive pieces as addr/corpus/NAME:latest, unverified.
func putCase(t *testing.T, addr string, blobs rawBlobs, c corpus.Case) string {
	t.Helper()
	archive, err := os.ReadFile(filepath.Join(corpusDir, c.FileName(corpus.OCIArchive)))
	if err != nil {
		t.Fatal(err)
	}
	manifest, pieces := ociPieces(t, archive)
	for d, b := range pieces {
		blobs[d] = b
	}
	ref := addr + "/corpus/" + c.Name + ":latest"
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/v2/corpus/"+c.Name+"/manifests/latest", bytes.NewReader(manifest))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest of %s: %s", c.Name, resp.Status)
	}
	return ref
}

// TestMaliciousCorpus takes every case of testdata/malicious through `kiln load` (each
// archive kind) and through a registry (`kiln pull` from a registry that serves the blobs
// unverified), then `kiln run`s it with busybox bind-mounted, and checks the case's outcome:
// nothing outside the container changes, a refused image is not tagged, nothing hangs and
// nothing stays mounted.
func TestMaliciousCorpus(t *testing.T) {
	requireContainers(t)
	canary := makeCanary(t)
	addr, blobs := hostileRegistry(t)
	// One export dir for every case: each case's tree lands on the links earlier ones left.
	exportDir := filepath.Join(t.TempDir(), "export")
	for _, c := range corpus.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			for _, via := range []string{string(corpus.DockerArchive), string(corpus.OCIArchive), "registry"} {
				if via != "registry" && !c.Has(corpus.Format(via)) {
					continue
				}
				t.Run(via, func(t *testing.T) {
					root := t.TempDir()
					var ingest result
					ref := c.Ref()
					if via == "registry" {
						ref = putCase(t, addr, blobs, c)
						ingest = kilnEnvWithin(t, commandDeadline, root, c.Env, "pull", ref)
					} else {
						ingest = kilnEnvWithin(t, commandDeadline, root, c.Env, "load", "-i", filepath.Join(corpusDir, c.FileName(corpus.Format(via))))
					}
					checkCase(t, c, root, ref, ingest)
					if ingest.code == 0 && via == string(corpus.DockerArchive) {
						exportCase(t, root, ref, exportDir, c.Env)
					}
					checkNothingLeft(t, root)
					checkNotMounted(t, corpus.Canary)
					checkSetuidUnreachable(t, root)
					assertNoContainerDirs(t, root)
					if got := treeDigest(t, corpus.Canary); got != canary {
						t.Errorf("the canary %s changed:\nbefore:\n%s\nafter:\n%s", corpus.Canary, canary, got)
						canary = resetCanary(t)
					}
				})
			}
		})
	}
}

// checkCase checks what kiln did with one case after it was loaded or pulled into root.
func checkCase(t *testing.T, c corpus.Case, root, ref string, ingest result) {
	t.Helper()
	if ingest.code != 0 {
		if rows := imageRows(t, root); len(rows) != 0 {
			t.Errorf("a refused image was tagged: %+v", rows)
		}
		if c.Expect != corpus.RefusedAtLoad && c.Expect != corpus.Refused && c.Expect != corpus.RefusedOrContained {
			t.Fatalf("refused at load (exit %d), want %s:\n%s", ingest.code, c.Expect, ingest.stderr)
		}
		if line := errorLine(ingest.stderr); line == "" || !strings.Contains(line, c.Want) {
			t.Errorf("load error %q lacks %q", line, c.Want)
		}
		t.Logf("refused at load: %s", errorLine(ingest.stderr))
		return
	}
	if c.Expect == corpus.RefusedAtLoad {
		t.Fatalf("loaded, want refused at load:\n%s%s", ingest.stdout, ingest.stderr)
	}
	// A loaded image is whole: every blob its manifest names is in the store.
	if r := kilnWithin(t, commandDeadline, root, "inspect", ref); r.code != 0 {
		t.Errorf("loaded image cannot be inspected: %s", errorLine(r.stderr))
	}
	checkStoreWhole(t, root)
	args := append([]string{"run", "--rm", "--pull=never", "-v", testimage.BusyboxPath + ":" + corpus.Busybox + ":ro"}, c.RunFlags...)
	args = append(args, ref, corpus.Busybox, "sh", "-c", c.RunScript())
	r := kilnEnvWithin(t, commandDeadline, root, c.Env, args...)
	if strings.Contains(r.stdout+r.stderr, corpus.CanarySecret) {
		t.Errorf("the container saw the canary's content:\n%s%s", r.stdout, r.stderr)
	}
	refused := r.code != 0 && errorLine(r.stderr) != ""
	switch {
	case (c.Expect == corpus.RefusedAtRun || c.Expect == corpus.Refused) && !refused:
		t.Errorf("run: exit %d, want refused with %q\nstdout:\n%s\nstderr:\n%s", r.code, c.Want, r.stdout, r.stderr)
	case refused && c.Want != "" && (c.Expect == corpus.RefusedAtRun || c.Expect == corpus.Refused) && !strings.Contains(errorLine(r.stderr), c.Want):
		t.Errorf("run refused with %q, want %q", errorLine(r.stderr), c.Want)
	case c.Expect == corpus.Contained && (r.code != 0 || !strings.Contains(r.stdout, c.Want)):
		t.Errorf("run: exit %d, want exit 0 and %q in the output\nstdout:\n%s\nstderr:\n%s", r.code, c.Want, r.stdout, r.stderr)
	case c.Expect == corpus.RefusedOrContained && !refused && (r.code != 0 || !strings.Contains(r.stdout, c.Want)):
		t.Errorf("run: exit %d, want a kiln error or exit 0 with %q\nstdout:\n%s\nstderr:\n%s", r.code, c.Want, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "OPENED") {
		t.Errorf("the container opened a device node from the image:\n%s", r.stdout)
	}
	if refused {
		t.Logf("refused at run: %s", errorLine(r.stderr))
	} else {
		t.Logf("ran: exit %d\n%s", r.code, r.stdout)
	}
}

// checkSetuidUnreachable fails for a setuid or setgid file under the store root that another
// user could reach: some directory on the way, the root included, must deny them search (x).
func checkSetuidUnreachable(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		info, err := d.Info()
		if err != nil || info.Mode()&(fs.ModeSetuid|fs.ModeSetgid) == 0 {
			return err
		}
		for dir := filepath.Dir(p); ; dir = filepath.Dir(dir) {
			if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o001 == 0 {
				return nil
			}
			if dir == root {
				t.Errorf("setuid/setgid file %s is reachable by other users", p)
				return nil
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkNotMounted fails for a mount at or under dir on the host.
func checkNotMounted(t *testing.T, dir string) {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			t.Errorf("mount on the host at %s: %s", f[4], line)
		}
	}
}

// exportCase runs `kiln build -o type=local` and `-o type=tar` of an image that is just the
// case: the flattened tree must stay inside the export dir, whatever it already holds.
func exportCase(t *testing.T, root, ref, exportDir string, env []string) {
	t.Helper()
	ctxDir := t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM " + ref + "\n"})
	for _, out := range []string{"type=local,dest=" + exportDir, "type=tar,dest=" + filepath.Join(ctxDir, "out.tar")} {
		r := kilnEnvWithin(t, commandDeadline, root, env, "build", "-q", "--pull=never", "-o", out, ctxDir)
		if r.code != 0 && errorLine(r.stderr) == "" {
			t.Errorf("export %s: exit %d without an error line:\n%s", out, r.code, r.stderr)
		}
		t.Logf("export %s: exit %d %s", out, r.code, errorLine(r.stderr))
	}
}
