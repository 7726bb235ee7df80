package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/internal/testregistry"
)

// kilnIn runs kiln in dir with extra environment (and never the caller's COSIGN_PASSWORD).
func kilnIn(t *testing.T, root, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, passwordEnv+"=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, append(env, execEnv+"=1", "KILN_ROOT="+root)...)
	cmd.Dir = dir
	return runKiln(t, cmd, args)
}

func TestGenerateKeyCLI(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	pw := []string{passwordEnv + "=pw"}
	r := kilnIn(t, root, dir, pw, "generate-key")
	if r.code != 0 || !strings.Contains(r.stdout, "Private key written to cosign.key") {
		t.Fatalf("generate-key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	key, err := os.ReadFile(filepath.Join(dir, "cosign.key"))
	if err != nil || !strings.Contains(string(key), "ENCRYPTED SIGSTORE PRIVATE KEY") {
		t.Fatalf("cosign.key: %v %q", err, key)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "cosign.key")); fi.Mode().Perm() != 0o600 {
		t.Errorf("cosign.key mode %v, want 0600", fi.Mode())
	}
	if r := kilnIn(t, root, dir, pw, "generate-key"); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("second generate-key: exit %d %q, want a refusal", r.code, r.stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "cosign.key")); string(again) != string(key) {
		t.Error("generate-key replaced cosign.key")
	}
	if r := kilnIn(t, root, dir, nil, "generate-key", "--output-key-prefix", "other"); r.code != 1 || !strings.Contains(r.stderr, "set COSIGN_PASSWORD") {
		t.Errorf("no password and no terminal: exit %d %q", r.code, r.stderr)
	}
	if r := kilnIn(t, root, dir, pw, "generate-key", "--output-key-prefix", "sub/dir/k"); r.code != 1 {
		t.Errorf("into a missing directory: exit %d", r.code)
	}
}

func TestSignVerifyCLI(t *testing.T) {
	addr := testregistry.Start(t)
	root, dir := busyboxRoot(t), t.TempDir()
	pw := []string{passwordEnv + "=pw"}
	for _, prefix := range []string{"cosign", "other"} {
		if r := kilnIn(t, root, dir, pw, "generate-key", "--output-key-prefix", prefix); r.code != 0 {
			t.Fatalf("generate-key: %s", r.stderr)
		}
	}
	ref := addr + "/team/app:1"
	digest := strings.Fields(ok(t, root, "push", "-q", "busybox", ref).stdout)[2]

	r := kilnIn(t, root, dir, pw, "sign", "--key", "cosign.key", "-a", "build=42", "--registry-referrers-mode=oci-1-1", ref)
	if r.code != 0 || !strings.Contains(r.stdout, digest+": signature pushed to "+addr+"/team/app:sha256-") || !strings.Contains(r.stdout, "signature referrer sha256:") {
		t.Fatalf("sign: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = kilnIn(t, root, dir, nil, "verify", "--key", "cosign.pub", "-a", "build=42", ref)
	if r.code != 0 {
		t.Fatalf("verify: exit %d\n%s", r.code, r.stderr)
	}
	var payloads []struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
		Optional map[string]string `json:"optional"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &payloads); err != nil || len(payloads) != 2 {
		t.Fatalf("verify printed %q (%v), want the tag's and the referrer's payloads", r.stdout, err)
	}
	if payloads[0].Critical.Image.Digest != digest || payloads[0].Optional["build"] != "42" {
		t.Errorf("payload %+v, want digest %s and build=42", payloads[0], digest)
	}
	if !strings.Contains(r.stderr, "Verification for "+ref+"@"+digest) {
		t.Errorf("verify stderr %q", r.stderr)
	}

	checks := []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"verify", "--key", "other.pub", ref}, nil, 1, "none verified with this key"},
		{[]string{"verify", "--key", "cosign.pub", "-a", "build=43", ref}, nil, 1, "annotation build=43"},
		{[]string{"verify", "--key", "cosign.key", ref}, nil, 1, "not a public key"},
		{[]string{"verify", ref}, nil, 2, "verify needs --key"},
		{[]string{"sign", "--key", "cosign.key", ref}, []string{passwordEnv + "=nope"}, 1, "wrong password"},
		{[]string{"sign", ref}, pw, 2, "keyless signing is not supported"},
		{[]string{"sign", "--key", "cosign.key", "--registry-referrers-mode=v2", ref}, pw, 2, "use legacy or oci-1-1"},
		{[]string{"sign", "--key", "cosign.key", addr + "/team/nothere:1"}, pw, 1, "not found"},
	}
	for _, c := range checks {
		if r := kilnIn(t, root, dir, c.env, c.args...); r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("kiln %s: exit %d %q, want %d and %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.want)
		}
	}

	// An image only in the store: the error says to push it first.
	ok(t, root, "tag", "busybox", addr+"/team/local:1")
	if r := kilnIn(t, root, dir, pw, "sign", "--key", "cosign.key", addr+"/team/local:1"); r.code != 1 || !strings.Contains(r.stderr, "push it first") {
		t.Errorf("sign a local-only image: exit %d %q", r.code, r.stderr)
	}

	// The tag moved to another image: nothing verifies any more.
	img, err := random.Image(32, 1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r2, img); err != nil {
		t.Fatal(err)
	}
	if r := kilnIn(t, root, dir, nil, "verify", "--key", "cosign.pub", ref); r.code != 1 || !strings.Contains(r.stderr, "has no signatures") || r.stdout != "" {
		t.Errorf("verify a retagged image: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := kilnIn(t, root, dir, nil, "verify", "--key", "cosign.pub", addr+"/team/app@"+digest); r.code != 0 {
		t.Errorf("verify the signed image by digest: exit %d %q", r.code, r.stderr)
	}
}
