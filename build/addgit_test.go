package build

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitRepo makes a bare repository served over git's dumb HTTP protocol, with a branch
// "main" (README, src/a.txt) and a branch "next" where a.txt changed.
func gitRepo(t *testing.T) string {
	t.Helper()
	return gitRepoWith(t, nil)
}

// gitRepoWith is gitRepo with more files in the first commit (on both branches).
func gitRepoWith(t *testing.T, extra map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	work, served := t.TempDir(), t.TempDir()
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git(work, "init", "-q", "-b", "main")
	writeTree(t, work, map[string]string{"README": "readme", "src/a.txt": "one"})
	writeTree(t, work, extra)
	git(work, "add", ".")
	git(work, "commit", "-q", "-m", "one")
	git(work, "checkout", "-q", "-b", "next")
	writeTree(t, work, map[string]string{"src/a.txt": "two"})
	git(work, "commit", "-q", "-am", "two")
	git(work, "checkout", "-q", "main") // the default branch of the served repository
	bare := filepath.Join(served, "repo.git")
	git(served, "clone", "-q", "--bare", work, bare)
	git(bare, "update-server-info")
	srv := httptest.NewServer(http.FileServer(http.Dir(served)))
	t.Cleanup(srv.Close)
	return srv.URL + "/repo.git"
}

func TestAddGit(t *testing.T) {
	url := gitRepo(t)
	f := newFixture(t)
	img, _, err := f.build("FROM scratch\nADD "+url+" /repo/\nADD "+url+"#next:src /next/\nADD --keep-git-dir "+url+"#main /kept/\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := f.files(img)
	for p, want := range map[string]string{"/repo/README": "0 0644 0:0 readme", "/repo/src/a.txt": "0 0644 0:0 one", "/next/a.txt": "0 0644 0:0 two"} {
		if got[p] != want {
			t.Errorf("%s = %q, want %q", p, got[p], want)
		}
	}
	if _, ok := got["/repo/.git"]; ok {
		t.Error(".git kept without --keep-git-dir")
	}
	if _, ok := got["/kept/.git/HEAD"]; !ok {
		t.Error("--keep-git-dir dropped .git")
	}
	if _, _, err := f.build("FROM scratch\nADD "+url+"#nosuchref /x/\n", nil); err == nil || !strings.Contains(err.Error(), "nosuchref") {
		t.Errorf("unknown ref: %v", err)
	}
}
