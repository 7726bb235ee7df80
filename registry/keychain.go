package registry

import (
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// defaultKeychain is docker's config (with its credential helpers) and then podman's
// auth.json, which go-containerregistry reads only when no docker config exists.
func defaultKeychain() authn.Keychain {
	return authn.NewMultiKeychain(authn.DefaultKeychain, podmanKeychain{})
}

// podmanKeychain reads ${XDG_RUNTIME_DIR}/containers/auth.json (or $REGISTRY_AUTH_FILE).
type podmanKeychain struct{}

func (podmanKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	path := os.Getenv("REGISTRY_AUTH_FILE")
	if path == "" {
		dir := os.Getenv("XDG_RUNTIME_DIR")
		if dir == "" {
			return authn.Anonymous, nil
		}
		path = filepath.Join(dir, "containers", "auth.json")
	}
	f, err := os.Open(path)
	if err != nil {
		return authn.Anonymous, nil // no podman login is not an error
	}
	defer f.Close()
	cf := configfile.New(path)
	if err := cf.LoadFromReader(f); err != nil {
		return nil, err
	}
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey
		}
		ac, ok := cf.AuthConfigs[key]
		if !ok && key == authn.DefaultAuthKey {
			ac, ok = cf.AuthConfigs["docker.io"]
		}
		if ok && (ac.Auth != "" || ac.Username != "" || ac.IdentityToken != "") {
			return authn.FromConfig(authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
				IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}), nil
		}
	}
	return authn.Anonymous, nil
}
