package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// ConfigEnv names a registries.toml to use instead of the default locations.
const ConfigEnv = "KILN_REGISTRIES_CONF"

// Config is registries.toml: per-registry mirrors and insecure flags, in the shape of
// podman's registries.conf v2 so that its users recognise it:
//
//	[[registry]]
//	location = "docker.io"
//	[[registry.mirror]]
//	location = "127.0.0.1:5000"
//	insecure = true
type Config struct {
	Registries []RegistryConfig `toml:"registry"`
}

// RegistryConfig configures one registry, or one namespace of it ("quay.io/team").
type RegistryConfig struct {
	Location string         `toml:"location"`
	Insecure bool           `toml:"insecure"` // plain HTTP or unverified TLS allowed
	Mirrors  []MirrorConfig `toml:"mirror"`   // tried in order for pulls, before Location
}

// MirrorConfig is one pull mirror; its location replaces the registry's location prefix.
type MirrorConfig struct {
	Location string `toml:"location"`
	Insecure bool   `toml:"insecure"`
}

// DefaultConfigPaths lists where registries.toml is looked for; the first that exists wins.
func DefaultConfigPaths() []string {
	var paths []string
	if p := os.Getenv(ConfigEnv); p != "" {
		return []string{p}
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if home, err := os.UserHomeDir(); dir == "" && err == nil {
		dir = filepath.Join(home, ".config")
	}
	if dir != "" {
		paths = append(paths, filepath.Join(dir, "kiln", "registries.toml"))
	}
	return append(paths, "/etc/kiln/registries.toml")
}

// LoadDefaultConfig reads the first existing file of DefaultConfigPaths; nil when none exists.
func LoadDefaultConfig() (*Config, error) {
	for _, p := range DefaultConfigPaths() {
		cfg, err := LoadConfig(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return cfg, err
	}
	return nil, nil
}

// LoadConfig reads and checks one registries.toml; unknown keys are errors, so typos show.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("registries config %s: %w", path, err)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("registries config %s: %w", path, err)
	}
	return &cfg, nil
}

func (c *Config) validate() error {
	for i := range c.Registries {
		r := &c.Registries[i]
		loc, err := cleanLocation(r.Location)
		if err != nil {
			return fmt.Errorf("registry %d: %w", i+1, err)
		}
		r.Location = loc
		for j := range r.Mirrors {
			m := &r.Mirrors[j]
			if m.Location, err = cleanLocation(m.Location); err != nil {
				return fmt.Errorf("registry %s: mirror %d: %w", r.Location, j+1, err)
			}
		}
	}
	return nil
}

// cleanLocation normalises "https://Docker.io/" to "docker.io"; index.docker.io is docker.io.
func cleanLocation(s string) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s = strings.TrimRight(s, "/")
	if s == "" || strings.ContainsAny(s, " @\t") {
		return "", fmt.Errorf("invalid location %q: want host[:port][/namespace]", s)
	}
	host, rest, _ := strings.Cut(s, "/")
	host = strings.ToLower(host)
	if host == "index.docker.io" || host == "registry-1.docker.io" {
		host = "docker.io"
	}
	if rest != "" {
		return host + "/" + rest, nil
	}
	return host, nil
}

// AddMirrors appends mirrors (tried in order) for registry, creating its entry if needed.
func (c *Config) AddMirrors(registry string, mirrors ...string) error {
	loc, err := cleanLocation(registry)
	if err != nil {
		return err
	}
	var r *RegistryConfig
	for i := range c.Registries {
		if c.Registries[i].Location == loc {
			r = &c.Registries[i]
		}
	}
	if r == nil {
		c.Registries = append(c.Registries, RegistryConfig{Location: loc})
		r = &c.Registries[len(c.Registries)-1]
	}
	for _, m := range mirrors {
		ml, err := cleanLocation(m)
		if err != nil {
			return fmt.Errorf("mirror of %s: %w", loc, err)
		}
		r.Mirrors = append(r.Mirrors, MirrorConfig{Location: ml})
	}
	return nil
}

// match finds the entry with the longest location that prefixes repository.
func (c *Config) match(repository string) (*RegistryConfig, bool) {
	if c == nil {
		return nil, false
	}
	var best *RegistryConfig
	for i := range c.Registries {
		r := &c.Registries[i]
		if repository != r.Location && !strings.HasPrefix(repository, r.Location+"/") {
			continue
		}
		if best == nil || len(r.Location) > len(best.Location) {
			best = r
		}
	}
	return best, best != nil
}

// insecureHost reports whether host (with port) is configured insecure, as a registry or a mirror.
func (c *Config) insecureHost(host string) bool {
	if c == nil {
		return false
	}
	for _, r := range c.Registries {
		if r.Insecure && locationHost(r.Location) == host {
			return true
		}
		for _, m := range r.Mirrors {
			if m.Insecure && locationHost(m.Location) == host {
				return true
			}
		}
	}
	return false
}

func locationHost(loc string) string {
	host, _, _ := strings.Cut(loc, "/")
	return host
}
