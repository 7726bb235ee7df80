package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testgit"
	"github.com/kiln-build/kiln/internal/testimage"
)

// TestNotFoundMessagesNameTheThing: a registry's not-found answer shows the reference and
// the registry's words, never its detail object as a Go map; a context directory that does
// not exist says so.
func TestNotFoundMessagesNameTheThing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"1"}}]}`))
	}))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/team/none:1"
	r := kiln(t, t.TempDir(), nil, "pull", ref)
	if r.code == 0 || !strings.Contains(r.stderr, "image "+ref+" not found") || strings.Contains(r.stderr, "map[") {
		t.Errorf("pull of a missing image: exit %d %q", r.code, r.stderr)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	r = kiln(t, t.TempDir(), nil, "build", missing)
	if r.code == 0 || !strings.Contains(r.stderr, "build context "+missing+" does not exist") {
		t.Errorf("build of a missing context: exit %d %q", r.code, r.stderr)
	}
}

// TestGitContextMessages: a git context that cannot be had (no such repository, subdirectory
// or server) fails with exit 1, the URL and what to check; a token in the URL
// (https://USER:TOKEN@host/…, a CI job's way to a private repository) is sent but never
// printed: not in the progress, the image, or an error.
func TestGitContextMessages(t *testing.T) {
	testimage.RequireBusybox(t)
	testgit.Require(t)
	root, work := busyboxRoot(t), t.TempDir()
	writeTree(t, work, map[string]string{"Buildfile": "FROM busybox\nCOPY msg /msg\n", "msg": "v1"})
	url := testgit.Serve(t, testgit.Commit(t, work), "")
	creds := func(u string) string { return strings.Replace(u, "http://", "http://ci:s3cret@", 1) }
	leaks := func(r result) bool { return strings.Contains(r.stdout+r.stderr, "s3cret") }
	r := ok(t, root, "--debug", "build", "--progress=plain", "-t", "withtoken", creds(url)+"#main")
	if leaks(r) || leaks(ok(t, root, "image", "inspect", "withtoken")) {
		t.Errorf("the URL's token is printed:\n%s%s", r.stdout, r.stderr)
	}
	missing := strings.TrimSuffix(url, "/repo.git") + "/team/nope.git"
	if r := kiln(t, root, nil, "build", creds(missing)); r.code != 1 || leaks(r) ||
		!strings.Contains(r.stderr, "kiln: build context "+missing+": repository not found (check the path in the URL;") {
		t.Errorf("missing repository: exit %d %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "build", creds(url)+"#main:nodir"); r.code != 1 || leaks(r) || !strings.Contains(r.stderr, `"nodir" is not a directory`) {
		t.Errorf("missing subdirectory: exit %d %s", r.code, r.stderr)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/repo.git"
	l.Close()
	if r := kiln(t, root, nil, "build", creds(closed)+"#main"); r.code != 1 || leaks(r) || !strings.Contains(r.stderr, "kiln: build context "+closed+": ") ||
		!strings.Contains(r.stderr, "connection refused (check the host and port in the URL, and that the git server runs and is reachable from here") {
		t.Errorf("unreachable git server: exit %d %s", r.code, r.stderr)
	}
}
