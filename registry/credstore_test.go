package registry

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// fakeHelper installs docker-credential-kilntest, a real helper speaking the protocol
// (store/get/erase on stdin/stdout) that keeps credentials in a file.
func fakeHelper(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	db := filepath.Join(bin, "creds")
	script := `#!/bin/sh
db=` + db + `
case "$1" in
store) cat > "$db" ;;
get) read url; if [ -f "$db" ] && grep -q "$url" "$db"; then sed 's/"Secret"/"Secret"/' "$db"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) read url; if [ -f "$db" ]; then rm "$db"; else echo "credentials not found in native keychain"; exit 1; fi ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-kilntest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return db
}

func TestCredentialsFileAndHelper(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("HOME", dir)
	cfgPath := filepath.Join(dir, "config.json")
	// Unknown fields survive kiln's edits.
	if err := os.WriteFile(cfgPath, []byte(`{"psFormat":"table {{.ID}}","auths":{"other.io":{"auth":"eDp5"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := storeCredentials("reg.example:5000", "bob", "pw"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(cfgPath)
	if !strings.Contains(string(data), "psFormat") || !strings.Contains(string(data), "other.io") {
		t.Errorf("config.json lost fields: %s", data)
	}
	auth, err := authn.DefaultKeychain.Resolve(name.MustParseReference("reg.example:5000/x").Context())
	if err != nil {
		t.Fatal(err)
	}
	if ac, err := auth.Authorization(); err != nil || ac.Username != "bob" || ac.Password != "pw" {
		t.Errorf("keychain reads %+v, %v", ac, err)
	}
	if err := eraseCredentials("reg.example:5000"); err != nil {
		t.Fatal(err)
	}
	if err := eraseCredentials("reg.example:5000"); err == nil {
		t.Error("second logout succeeded")
	}

	db := fakeHelper(t)
	cfg := map[string]any{"credHelpers": map[string]string{"helped.example": "kilntest"}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := storeCredentials("helped.example", "carol", "tok"); err != nil {
		t.Fatal(err)
	}
	stored, err := os.ReadFile(db)
	if err != nil || !strings.Contains(string(stored), `"carol"`) {
		t.Fatalf("helper got %s (%v)", stored, err)
	}
	if data, _ := os.ReadFile(cfgPath); strings.Contains(string(data), "carol") {
		t.Error("credentials went to config.json despite the helper")
	}
	if err := Logout(context.Background(), "helped.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("logout did not erase from the helper")
	}
}

func TestPodmanAuthFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "containers"), 0o700); err != nil {
		t.Fatal(err)
	}
	// "dave:pw" in base64.
	if err := os.WriteFile(filepath.Join(dir, "containers", "auth.json"), []byte(`{"auths":{"pod.example":{"auth":"ZGF2ZTpwdw=="}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", dir)
	t.Setenv("REGISTRY_AUTH_FILE", "")
	auth, err := podmanKeychain{}.Resolve(name.MustParseReference("pod.example/x").Context())
	if err != nil {
		t.Fatal(err)
	}
	if ac, err := auth.Authorization(); err != nil || ac.Username != "dave" || ac.Password != "pw" {
		t.Errorf("podman auth: %+v, %v", ac, err)
	}
}
