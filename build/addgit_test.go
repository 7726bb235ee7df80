package build

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testgit"
)

// gitRepo makes a repository served over git's smart HTTP protocol, with a branch
// "main" (README, src/a.txt) and a branch "next" where a.txt changed.
func gitRepo(t *testing.T) string {
	t.Helper()
	return gitRepoWith(t, nil)
}

// gitRepoWith is gitRepo with more files in the first commit (on both branches).
func gitRepoWith(t *testing.T, extra map[string]string) string {
	t.Helper()
	testgit.Require(t)
	work := t.TempDir()
	testgit.Git(t, work, "init", "-q", "-b", "main")
	writeTree(t, work, map[string]string{"README": "readme", "src/a.txt": "one"})
	writeTree(t, work, extra)
	testgit.Git(t, work, "add", ".")
	testgit.Git(t, work, "commit", "-q", "-m", "one")
	testgit.Git(t, work, "checkout", "-q", "-b", "next")
	writeTree(t, work, map[string]string{"src/a.txt": "two"})
	testgit.Git(t, work, "commit", "-q", "-am", "two")
	testgit.Git(t, work, "checkout", "-q", "main") // the default branch of the served repository
	return testgit.Serve(t, work, "")
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

// A tag, an annotated tag and a full commit id (not a ref tip) resolve as BuildKit's.
func TestAddGitRefs(t *testing.T) {
	work := t.TempDir()
	writeTree(t, work, map[string]string{"v": "1"})
	testgit.Commit(t, work)
	first := testgit.Git(t, work, "rev-parse", "HEAD")
	testgit.Git(t, work, "tag", "light")
	testgit.Git(t, work, "tag", "-a", "-m", "annotated", "ann")
	writeTree(t, work, map[string]string{"v": "2"})
	testgit.Git(t, work, "commit", "-q", "-am", "two")
	url := testgit.Serve(t, work, "")
	f := newFixture(t)
	img, _, err := f.build("FROM scratch\nADD "+url+"#light /l/\nADD "+url+"#ann /a/\nADD "+url+"#"+first+" /c/\nADD "+url+" /h/\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := f.files(img)
	for p, want := range map[string]string{"/l/v": "0 0644 0:0 1", "/a/v": "0 0644 0:0 1", "/c/v": "0 0644 0:0 1", "/h/v": "0 0644 0:0 2"} {
		if got[p] != want {
			t.Errorf("%s = %q, want %q", p, got[p], want)
		}
	}
	if _, _, err := f.build("FROM scratch\nADD "+url+"#"+strings.Repeat("ab", 20)+" /x/\n", nil); err == nil || !strings.Contains(err.Error(), "not in the repository") {
		t.Errorf("unknown commit: %v", err)
	}
}

// A hostile repository: a symlink out of the checkout, then a tree that writes through it.
// The checkout stays inside its directory, and ADD copies the link, not /tmp's file.
func TestAddGitSymlinkEscape(t *testing.T) {
	testgit.Require(t)
	outside := t.TempDir()
	work := t.TempDir()
	testgit.Git(t, work, "init", "-q", "-b", "main")
	if err := os.Symlink(outside, filepath.Join(work, "evil")); err != nil {
		t.Fatal(err)
	}
	testgit.Git(t, work, "add", ".")
	testgit.Git(t, work, "commit", "-q", "-m", "link")
	// A second commit whose tree has both the link and a file under it: git itself refuses
	// to make that worktree, so the tree is written by hand.
	blob := testgit.Git(t, work, "hash-object", "-w", "--stdin", "--path=y")
	link := testgit.Git(t, work, "rev-parse", "HEAD:evil")
	sub := mktree(t, work, "100644 blob "+blob+"\ty\n")
	root := mktree(t, work, "120000 blob "+link+"\tevil\n040000 tree "+sub+"\tevil\n")
	commit := testgit.Git(t, work, "commit-tree", root, "-p", "HEAD", "-m", "through the link")
	testgit.Git(t, work, "update-ref", "refs/heads/evil", commit)
	url := testgit.Serve(t, work, "")
	f := newFixture(t)
	for _, ref := range []string{"main", "evil", commit} {
		img, _, err := f.build("FROM scratch\nADD "+url+"#"+ref+" /r/\n", nil)
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("#%s: the checkout wrote outside it: %v", ref, ents)
		}
		if err != nil {
			t.Logf("#%s refused: %v", ref, err)
			continue
		}
		if got := f.files(img)["/r/evil"]; !strings.HasPrefix(got, "2 0777 0:0 ") {
			t.Errorf("#%s: /r/evil = %q, want the symlink itself", ref, got)
		}
	}
}

func mktree(t *testing.T, dir, entries string) string {
	t.Helper()
	cmd := exec.Command("git", "mktree")
	cmd.Dir, cmd.Stdin = dir, strings.NewReader(entries)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git mktree: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// Only the smart protocol and network transports: a dumb-HTTP server and file:// fail clearly.
func TestAddGitRefused(t *testing.T) {
	work, served := t.TempDir(), t.TempDir()
	writeTree(t, work, map[string]string{"v": "1"})
	testgit.Commit(t, work)
	bare := filepath.Join(served, "repo.git")
	testgit.Git(t, served, "clone", "-q", "--bare", work, bare)
	testgit.Git(t, bare, "update-server-info")
	srv := httptest.NewServer(http.FileServer(http.Dir(served)))
	t.Cleanup(srv.Close)
	f := newFixture(t)
	if _, _, err := f.build("FROM scratch\nADD "+srv.URL+"/repo.git /x/\n", nil); err == nil || !strings.Contains(err.Error(), "dumb HTTP") {
		t.Errorf("dumb HTTP: %v", err)
	}
	g := parseGitSource("file://"+bare, false)
	if err := g.fetch(t.Context(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("file://: %v", err)
	}
}
