package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// dockerConfigPath is where docker keeps config.json: $DOCKER_CONFIG, else ~/.docker.
func dockerConfigPath() (string, error) {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the docker config: set DOCKER_CONFIG or HOME: %w", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// authKey is the config.json key for host: Docker Hub keeps its historical URL.
func authKey(host string) string {
	if host == "docker.io" {
		return authn.DefaultAuthKey
	}
	return host
}

// dockerConfig is config.json with every field kept as it was, so kiln edits only "auths".
type dockerConfig map[string]json.RawMessage

func readDockerConfig(path string) (dockerConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return dockerConfig{}, nil
	}
	if err != nil {
		return nil, err
	}
	cfg := dockerConfig{}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	return cfg, nil
}

// helper is the credential helper configured for host: credHelpers, then credsStore.
func (c dockerConfig) helper(host string) string {
	var helpers map[string]string
	_ = json.Unmarshal(c["credHelpers"], &helpers)
	if h := helpers[authKey(host)]; h != "" {
		return h
	}
	if h := helpers[host]; h != "" {
		return h
	}
	var store string
	_ = json.Unmarshal(c["credsStore"], &store)
	return store
}

func (c dockerConfig) auths() map[string]json.RawMessage {
	a := map[string]json.RawMessage{}
	_ = json.Unmarshal(c["auths"], &a)
	return a
}

// storeCredentials saves to the credential helper when one is configured, as docker does.
func storeCredentials(host, user, pass string) error {
	path, err := dockerConfigPath()
	if err != nil {
		return err
	}
	cfg, err := readDockerConfig(path)
	if err != nil {
		return err
	}
	if h := cfg.helper(host); h != "" {
		creds := &credentials.Credentials{ServerURL: authKey(host), Username: user, Secret: pass}
		if err := client.Store(client.NewShellProgramFunc("docker-credential-"+h), creds); err != nil {
			return fmt.Errorf("credential helper docker-credential-%s: %w", h, err)
		}
		return nil
	}
	auths := cfg.auths()
	entry, err := json.Marshal(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))})
	if err != nil {
		return err
	}
	auths[authKey(host)] = entry
	return cfg.save(path, auths)
}

// eraseCredentials removes host from the helper (if any) and from auths.
func eraseCredentials(host string) error {
	path, err := dockerConfigPath()
	if err != nil {
		return err
	}
	cfg, err := readDockerConfig(path)
	if err != nil {
		return err
	}
	found := false
	if h := cfg.helper(host); h != "" {
		if err := client.Erase(client.NewShellProgramFunc("docker-credential-"+h), authKey(host)); err == nil {
			found = true
		} else if !credentials.IsErrCredentialsNotFoundMessage(err.Error()) {
			return fmt.Errorf("credential helper docker-credential-%s: %w", h, err)
		}
	}
	auths := cfg.auths()
	for _, k := range []string{authKey(host), host, "https://" + host} {
		if _, ok := auths[k]; ok {
			delete(auths, k)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("not logged in to %s", host)
	}
	return cfg.save(path, auths)
}

// save writes config.json temp → fsync → rename, mode 0600 (it holds secrets).
func (c dockerConfig) save(path string, auths map[string]json.RawMessage) error {
	a, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	c["auths"] = a
	data, err := json.MarshalIndent(c, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target // keep a symlinked config.json a symlink, as docker does
	}
	return atomicfile.Write(path, data, atomicfile.Options{Perm: 0o600})
}
