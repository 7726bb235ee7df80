package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kiln-build/kiln/internal/testregistry"
)

func TestDockerRegistryPushPull(t *testing.T) {
	host := testregistry.Start(t)
	src := openStore(t)
	local := storeBusybox(t, src, "busybox")
	pushed, err := Push(context.Background(), src, "busybox", host+"/kiln/bb:v1")
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest != local.Digest {
		t.Errorf("pushed %s, stored %s", pushed.Digest, local.Digest)
	}
	dst := openStore(t)
	desc, err := Pull(context.Background(), dst, host+"/kiln/bb:v1")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != local.Digest {
		t.Errorf("pulled %s, pushed %s", desc.Digest, local.Digest)
	}
	assertPulled(t, dst, host+"/kiln/bb:v1", local.Digest)

	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("needs skopeo for the interop half")
	}
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+host+"/kiln/bb:v1").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect of what kiln pushed: %v\n%s", err, out)
	}
	var info struct{ Digest string }
	if err := json.Unmarshal(out, &info); err != nil || info.Digest != local.Digest.String() {
		t.Errorf("skopeo sees digest %q (%v), want %s", info.Digest, err, local.Digest)
	}
}

func TestPullWhatSkopeoPushed(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("needs skopeo")
	}
	host := testregistry.Start(t)
	src := openStore(t)
	local := storeBusybox(t, src, "busybox")
	// The store is an OCI layout: skopeo reads it directly.
	cmd := exec.Command("skopeo", "copy", "--dest-tls-verify=false",
		"oci:"+src.Root()+":docker.io/library/busybox:latest", "docker://"+host+"/skopeo/bb:1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	dst := openStore(t)
	desc, err := Pull(context.Background(), dst, host+"/skopeo/bb:1")
	if err != nil {
		t.Fatal(err)
	}
	assertPulled(t, dst, host+"/skopeo/bb:1", desc.Digest)
	if desc.Digest != local.Digest {
		t.Logf("skopeo rewrote the manifest: %s → %s", local.Digest, desc.Digest)
	}
}

func TestCrossRepositoryMount(t *testing.T) {
	backend := testregistry.Start(t)
	var mounts, uploads atomic.Int64
	target, _ := url.Parse("http://" + backend)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads") {
			if r.URL.Query().Get("mount") != "" {
				mounts.Add(1)
			}
		}
		if r.Method == http.MethodPatch || (r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads")) {
			uploads.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	s := openStore(t)
	storeBusybox(t, s, "busybox")
	if _, err := Push(context.Background(), s, "busybox", host+"/team-a/bb:1"); err != nil {
		t.Fatal(err)
	}
	before := uploads.Load()
	if _, err := Push(context.Background(), s, "busybox", host+"/team-b/bb:1"); err != nil {
		t.Fatal(err)
	}
	if mounts.Load() == 0 {
		t.Error("second push did not try a cross-repository mount")
	}
	// Only the config may be uploaded again (it is not a layer, so kiln records no source).
	if n := uploads.Load() - before; n > 2 {
		t.Errorf("second push uploaded %d blob requests; the layer should have been mounted", n)
	}
}

func TestLoginAgainstHtpasswd(t *testing.T) {
	host := testregistry.Start(t, "alice:s3cret")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, "docker"))
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	ctx := context.Background()
	s := openStore(t)
	storeBusybox(t, s, "busybox")
	if _, err := Push(ctx, s, "busybox", host+"/private/bb:1"); err == nil || !strings.Contains(err.Error(), "kiln login "+host) {
		t.Fatalf("push without login: %v", err)
	}
	if err := Login(ctx, host, "alice", "wrong"); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if _, err := os.Stat(filepath.Join(home, "docker", "config.json")); err == nil {
		t.Error("a failed login wrote credentials")
	}
	if err := Login(ctx, host, "alice", "s3cret"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(home, "docker", "config.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v mode %v, want 0600", err, fi)
	}
	if _, err := Push(ctx, s, "busybox", host+"/private/bb:1"); err != nil {
		t.Fatalf("push after login: %v", err)
	}
	if _, err := Pull(ctx, openStore(t), host+"/private/bb:1"); err != nil {
		t.Fatalf("pull after login: %v", err)
	}
	if err := Logout(ctx, host); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(ctx, openStore(t), host+"/private/bb:1"); err == nil {
		t.Error("pull after logout succeeded")
	}
}
