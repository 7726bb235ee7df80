package registry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/cache"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "registries.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	p := writeConfig(t, `
[[registry]]
location = "https://index.docker.io/"
[[registry.mirror]]
location = "127.0.0.1:5000"
[[registry.mirror]]
location = "mirror.example.com/hub"
insecure = true

[[registry]]
location = "quay.io/team"
insecure = true
`)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	o := &options{config: cfg}
	n, _ := cache.ParseName("busybox:1.36")
	eps, err := o.pullEndpoints(n)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ep := range eps {
		got = append(got, ep.ref.String())
	}
	want := []string{"127.0.0.1:5000/library/busybox:1.36", "mirror.example.com/hub/library/busybox:1.36", "docker.io/library/busybox:1.36"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("endpoints %v, want %v", got, want)
	}
	if !eps[0].insecure || !eps[1].insecure || eps[2].insecure {
		t.Errorf("insecure flags %v %v %v, want loopback and declared mirror only", eps[0].insecure, eps[1].insecure, eps[2].insecure)
	}
	if !o.isInsecure("quay.io") || o.isInsecure("gcr.io") {
		t.Error("insecure registry not recognised")
	}
}

func TestLoadConfigRejectsTypos(t *testing.T) {
	for _, text := range []string{
		"[[registry]]\nlocation = \"docker.io\"\nmirrors = [\"x\"]\n", // podman spells it [[registry.mirror]]
		"[[registry]]\nlocation = \"\"\n",
		"not toml at all [",
	} {
		if _, err := LoadConfig(writeConfig(t, text)); err == nil {
			t.Errorf("accepted %q", text)
		}
	}
}

func TestDefaultConfigFromEnv(t *testing.T) {
	t.Setenv(ConfigEnv, writeConfig(t, "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"localhost:5000\"\n"))
	cfg, err := LoadDefaultConfig()
	if err != nil || cfg == nil || len(cfg.Registries) != 1 {
		t.Fatalf("config %+v, %v", cfg, err)
	}
	t.Setenv(ConfigEnv, filepath.Join(t.TempDir(), "absent.toml"))
	if cfg, err := LoadDefaultConfig(); err != nil || cfg != nil {
		t.Errorf("absent config: %+v, %v", cfg, err)
	}
}

// TestMirrorServesDockerHub is the offline case: `FROM busybox` served by a local
// registry configured as Docker Hub's mirror; Docker Hub itself is never reached.
func TestMirrorServesDockerHub(t *testing.T) {
	fr := newFaultyRegistry(t)
	_, want := fr.seed(t, "library/busybox:latest")
	s := openStore(t)
	cfg := &Config{}
	if err := cfg.AddMirrors("docker.io", "127.0.0.1:1", fr.host()); err != nil { // the first mirror is down
		t.Fatal(err)
	}
	img, err := NewResolver(s, WithConfig(cfg), fastRetry()).Resolve(context.Background(), "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d != want {
		t.Errorf("resolved %s, want %s", d, want)
	}
	assertPulled(t, s, "busybox", want)
	// WithConfig(nil) after WithMirrors drops them: origin only (checked without dialing it).
	o, err := makeOptions([]Option{WithMirrors("docker.io", fr.host()), WithConfig(nil)})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := cache.ParseName("busybox")
	if eps, _ := o.pullEndpoints(n); len(eps) != 1 || eps[0].mirror {
		t.Errorf("endpoints %+v, want the origin only", eps)
	}
}
