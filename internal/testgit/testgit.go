// Package testgit makes git repositories for tests and serves them over git's smart HTTP
// protocol (the host's git http-backend), the protocol kiln's git fetcher speaks.
package testgit

import (
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Git runs the host's git in dir with a fixed identity, failing the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@e", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit makes dir a repository on branch main whose one commit holds dir's files, and
// returns dir.
func Commit(t testing.TB, dir string) string {
	t.Helper()
	Require(t)
	Git(t, dir, "init", "-q", "-b", "main")
	Git(t, dir, "add", ".")
	Git(t, dir, "commit", "-q", "-m", "one")
	return dir
}

// Require skips the test when the host has no git (Debian's git, in TEST_DEBS).
func Require(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git to make and serve test repositories (apt-get install git)")
	}
}

// Serve publishes the work tree's repository as repo.git over smart HTTP on loopback and
// returns its URL. The server listens on addr ("127.0.0.1:0" when empty), so a test can
// bind where a container reaches it.
func Serve(t testing.TB, work, addr string) string {
	t.Helper()
	Require(t)
	served := t.TempDir()
	bare := filepath.Join(served, "repo.git")
	Git(t, served, "clone", "-q", "--bare", work, bare)
	return ServeBare(t, served, addr) + "/repo.git"
}

// ServeBare serves every bare repository under dir over smart HTTP and returns the base URL.
func ServeBare(t testing.TB, dir, addr string) string {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("needs git to serve test repositories (apt-get install git)")
	}
	h := &cgi.Handler{Path: gitBin, Args: []string{"http-backend"},
		Env:    []string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
		Stderr: logWriter{t}}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// logWriter sends git http-backend's complaints (a repository a test asks for on purpose and
// that is not there) to the test's log rather than into go test's own output.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("git http-backend: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}
