package registry

import (
	"errors"
	"fmt"
	"net/http"
	goruntime "runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// PullPolicy says when Resolve goes to the registry.
type PullPolicy int

const (
	// PullMissing uses the local image when there is one and pulls otherwise (the default).
	PullMissing PullPolicy = iota
	// PullAlways asks the registry every time, reusing what is stored when the digest is unchanged.
	PullAlways
	// PullNever uses only the local store.
	PullNever
)

// ParsePullPolicy reads a --pull value: missing, always or never (true/false as docker's --pull).
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch s {
	case "missing", "":
		return PullMissing, nil
	case "always", "true", "newer":
		return PullAlways, nil
	case "never", "false":
		return PullNever, nil
	}
	return 0, fmt.Errorf("unknown pull policy %q: use missing, always or never", s)
}

// String is the flag spelling of p.
func (p PullPolicy) String() string {
	switch p {
	case PullAlways:
		return "always"
	case PullNever:
		return "never"
	}
	return "missing"
}

// Option configures Pull, Push, Login and NewResolver.
type Option func(*options) error

type options struct {
	policy      PullPolicy
	platform    v1.Platform
	progress    ProgressFunc
	timeout     time.Duration
	keychain    authn.Keychain
	transport   http.RoundTripper
	insecure    []string
	config      *Config
	configSet   bool
	compression Compression
	compressSet bool // WithCompression was given; else layers go as stored
	jobs        int
	retry       retryPolicy
	noStore     bool          // Resolve reads a missing image's manifest and config remotely and stores nothing
	counted     func(n int64) // when set, every response body byte read from a registry is added here
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		platform: v1.Platform{OS: "linux", Architecture: goruntime.GOARCH},
		keychain: defaultKeychain(),
		jobs:     4,
		retry:    defaultRetry,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if !o.configSet {
		cfg, err := LoadDefaultConfig()
		if err != nil {
			return nil, err
		}
		o.config = cfg
	}
	return o, nil
}

// WithPullPolicy sets when Resolve contacts the registry.
func WithPullPolicy(p PullPolicy) Option {
	return func(o *options) error { o.policy = p; return nil }
}

// WithoutStore makes Resolve store nothing: an image missing from the store is read from
// its registry, manifest and config only, never its layers (what build --check needs).
func WithoutStore() Option {
	return func(o *options) error { o.noStore = true; return nil }
}

// WithPlatform picks the image of a multi-platform index (default linux/GOARCH of the host).
func WithPlatform(p v1.Platform) Option {
	return func(o *options) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("platform %q needs an OS and an architecture, e.g. linux/amd64", p.String())
		}
		o.platform = p
		return nil
	}
}

// WithProgress receives per-layer progress events; f is called from several goroutines.
func WithProgress(f ProgressFunc) Option {
	return func(o *options) error { o.progress = f; return nil }
}

// WithTimeout bounds a whole pull, push or login.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("timeout must not be negative")
		}
		o.timeout = d
		return nil
	}
}

// WithKeychain replaces the credential lookup (default: docker's and podman's auth files).
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) error { o.keychain = k; return nil }
}

// WithTransport replaces the HTTP transport under kiln's retries and auth (proxies, tests).
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error { o.transport = rt; return nil }
}

// countingInto adds every response body byte read from registries to f (the bytes a
// build pulled for its caches: manifests, configs and blobs alike).
func countingInto(f func(n int64)) Option {
	return func(o *options) error { o.counted = f; return nil }
}

// WithInsecureRegistry lets these hosts ("host:port") use plain HTTP or unverified TLS.
func WithInsecureRegistry(hosts ...string) Option {
	return func(o *options) error { o.insecure = append(o.insecure, hosts...); return nil }
}

// WithConfig uses cfg (mirrors, insecure registries) instead of the registries.toml files;
// nil means no configuration at all.
func WithConfig(cfg *Config) Option {
	return func(o *options) error { o.config, o.configSet = cfg, true; return nil }
}

// WithMirrors adds mirrors for one registry ("docker.io"), tried in order before it.
func WithMirrors(registry string, mirrors ...string) Option {
	return func(o *options) error {
		if !o.configSet {
			cfg, err := LoadDefaultConfig()
			if err != nil {
				return err
			}
			o.config, o.configSet = cfg, true
		}
		if o.config == nil {
			o.config = &Config{}
		}
		return o.config.AddMirrors(registry, mirrors...)
	}
}

// WithCompression sets how Push encodes layers (default: as stored, uncompressed ones as
// gzip); layers already in that encoding are pushed as stored.
func WithCompression(c Compression) Option {
	return func(o *options) error { o.compression, o.compressSet = c, true; return nil }
}

// WithJobs bounds how many layers move at once (default 4).
func WithJobs(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("jobs must be at least 1, not %d", n)
		}
		o.jobs = n
		return nil
	}
}
