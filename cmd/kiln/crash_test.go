package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// killCount is how many builds TestKillLoop SIGKILLs: 100 in `make test`, KILN_KILLS=1000 in `make stress`.
func killCount(t *testing.T) int {
	if v := os.Getenv("KILN_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("KILN_KILLS=%q: want a positive number", v)
		}
		return n
	}
	return 100
}

// TestKillLoop SIGKILLs builds with RUN and COPY steps at random points of their progress (after
// the k-th line of plain progress, k random, so kills land in every phase: resolve, context,
// container start, diff, commit, tag). After the loop, the next build must succeed with the right
// result, and the store must be whole: a valid index.json whose manifests exist, every blob
// matching its digest, no mount and no process left behind.
func TestKillLoop(t *testing.T) {
	requireContainers(t)
	if testing.Short() {
		t.Skip("kills 100 builds")
	}
	root, ctxDir := busyboxRoot(t), t.TempDir()
	t.Setenv(secretEnv, "kill-loop-secret-4b1d")
	kills, n := 0, killCount(t)
	for i := range n {
		writeTree(t, ctxDir, map[string]string{
			"Buildfile": "FROM busybox\nARG N\nRUN --mount=type=secret,id=s,required cat /run/secrets/s >/dev/null && echo $N > /a\n" +
				"COPY f /f\nRUN cat /a /f > /g\nCMD [\"cat\", \"/g\"]\n",
			"f": fmt.Sprintf("try %d\n", i),
		})
		if killBuildAfter(t, root, ctxDir, i, rand.IntN(10)) { // a whole build prints 10 lines
			kills++
		}
	}
	t.Logf("%d of %d builds killed mid-way", kills, n)
	if kills < n/2 {
		t.Errorf("only %d of %d builds were killed before they finished: the loop does not exercise crashes", kills, n)
	}
	ok(t, root, "build", "-q", "--secret", "id=s,env="+secretEnv, "--build-arg", "N=last", "-t", "k", ctxDir)
	if out := ok(t, root, "run", "--rm", "k").stdout; out != fmt.Sprintf("last\ntry %d\n", n-1) {
		t.Errorf("after killed builds the image prints %q", out)
	}
	checkStoreWhole(t, root)
	checkNothingLeft(t, root)
	checkNoSecret(t, root)
	// Every kiln process sweeps dead processes' staging when it opens the store: after the
	// last commands nothing of the killed builds is left under tmp/.
	if left, _ := os.ReadDir(filepath.Join(root, "tmp")); len(left) > 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("tmp/ holds %d entries after the killed builds: %v", len(left), names)
	}
}

// secretEnv holds the killed builds' secret, which must never reach the store's disk.
const secretEnv = "KILN_TEST_KILL_SECRET"

// checkNoSecret fails when any file under root holds the secret's plaintext.
func checkNoSecret(t *testing.T, root string) {
	t.Helper()
	secret := []byte(os.Getenv(secretEnv))
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil && bytes.Contains(data, secret) {
			t.Errorf("%s holds the build secret", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// killBuildAfter starts a build and SIGKILLs it once it has printed lines lines of progress;
// it reports whether the kill came before the build ended by itself.
func killBuildAfter(t *testing.T, root, ctxDir string, i, lines int) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "build", "--progress=plain", "--secret", "id=s,env="+secretEnv, "--build-arg", fmt.Sprintf("N=%d", i), "-t", "k", ctxDir)
	cmd.Env = append(os.Environ(), execEnv+"=1", "KILN_ROOT="+root)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for seen := 0; seen < lines && sc.Scan(); seen++ {
	}
	killed := cmd.Process.Kill() == nil
	_, _ = io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	ee, isExit := err.(*exec.ExitError)
	return killed && isExit && !ee.Exited()
}

// checkStoreWhole verifies index.json and every blob of the store at root.
func checkStoreWhole(t *testing.T, root string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatalf("index.json: %v\n%s", err, raw)
	}
	blobs := filepath.Join(root, "blobs", "sha256")
	for _, m := range index.Manifests {
		hex, _ := strings.CutPrefix(m.Digest, "sha256:")
		if _, err := os.Stat(filepath.Join(blobs, hex)); err != nil {
			t.Errorf("index.json names %s, which the store lacks: %v", m.Digest, err)
		}
	}
	ents, err := os.ReadDir(blobs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if got := fileDigest(t, filepath.Join(blobs, e.Name())); got != e.Name() {
			t.Errorf("blob %s holds content with digest %s", e.Name(), got)
		}
	}
}

func fileDigest(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkNothingLeft fails for a mount under root, or a process whose root or working directory
// is under it (a container or a monitor that outlived its kiln).
func checkNothingLeft(t *testing.T, root string) {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, root) {
			t.Errorf("mount left under the store: %s", line)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		for _, link := range []string{"root", "cwd"} {
			if dest, err := os.Readlink(filepath.Join(p, link)); err == nil && strings.HasPrefix(dest, root) {
				cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
				t.Errorf("process %s (%s) left with its %s at %s", filepath.Base(p), strings.ReplaceAll(string(cmdline), "\x00", " "), link, dest)
			}
		}
	}
}

// TestConcurrentIdenticalBuilds runs 16 builds of one Buildfile with RUN steps at once on one
// store: all succeed and, with SOURCE_DATE_EPOCH, all give the same image ID.
func TestConcurrentIdenticalBuilds(t *testing.T) {
	requireContainers(t)
	if testing.Short() {
		t.Skip("runs 16 builds at once")
	}
	root, ctxDir := busyboxRoot(t), t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	writeTree(t, ctxDir, map[string]string{
		"Buildfile": "FROM busybox\nRUN echo one > /one\nCOPY f /f\nRUN cat /one /f > /g\n",
		"f":         "same\n",
	})
	ids := make([]string, 16)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			iid := filepath.Join(t.TempDir(), "iid")
			if r := kiln(t, root, nil, "build", "-q", "--iidfile", iid, "-t", fmt.Sprintf("c%d", i), ctxDir); r.code != 0 {
				t.Errorf("build %d: exit %d: %s", i, r.code, r.stderr)
				return
			}
			data, err := os.ReadFile(iid)
			if err != nil {
				t.Error(err)
			}
			ids[i] = string(data)
		})
	}
	wg.Wait()
	for i, id := range ids {
		if id != ids[0] {
			t.Errorf("build %d gave image %s, build 0 gave %s", i, id, ids[0])
		}
	}
	checkStoreWhole(t, root)
	checkNothingLeft(t, root)
}
