package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
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
