package container

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/runtime"
)

// Config is what a container is, fixed when it is created. On disk it is the versioned
// record of record.go (container.json), never this struct.
type Config struct {
	ID          string
	Name        string
	Image       string  // the reference the user gave
	ImageDigest v1.Hash // the manifest resolved from Image, leased in the store while the container exists
	Args        []string
	Command     *Command // Args as docker keeps it apart, for commit; nil in older kilns' records
	Created     time.Time
	Restart     RestartPolicy
	StopSignal  string            // the image's STOPSIGNAL; "" = SIGTERM
	AutoRemove  bool              // --rm: removed as soon as it stays exited
	Labels      map[string]string // --label: shown by inspect, matched by ps --filter label=
	StopTimeout *int              // --stop-timeout seconds: kiln stop's default grace; nil = 10
	Exposed     []string          // the image's EXPOSE and --expose ports ("80/tcp"), as docker's ExposedPorts
	Healthcheck *HealthConfig     // the image's HEALTHCHECK under the run flags; nil = none
	OpenStdin   bool              // -i: stdin stays open (a detached container's for kiln attach clients)
	// CreateCommand is the `kiln run` command line that made the container, every flag as
	// --name=value, and CreateDir where it ran: what a unit of generate systemd --new runs.
	CreateCommand []string
	CreateDir     string
	// Spec is the runtime spec every start reuses; its streams are never stored.
	Spec runtime.Spec
	// Volumes are made (and filled from the image) by Create, which adds their mounts to Spec.
	Volumes []VolumeMount
	// Network names the user-defined network Spec.Bridge is ("" for the built-in ones), and
	// NetworkAliases are --network-alias: with the name and short id, Create makes them
	// Spec.DNSNames.
	Network        string
	NetworkAliases []string
}

// Command is a container's ENTRYPOINT and CMD (docker's container Config): Args is the two
// joined, and commit writes them into the new image.
type Command struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
}

// RestartMode names docker's restart policies.
type RestartMode string

// The restart policies of `kiln run --restart`.
const (
	RestartNo            RestartMode = "no"
	RestartOnFailure     RestartMode = "on-failure"
	RestartAlways        RestartMode = "always"
	RestartUnlessStopped RestartMode = "unless-stopped"
)

// RestartPolicy says when the monitor starts a container again after it exits.
type RestartPolicy struct {
	Name              RestartMode `json:"Name"`
	MaximumRetryCount int         `json:"MaximumRetryCount,omitempty"` // on-failure only; 0 = unlimited
}

// ParseRestartPolicy reads docker's --restart syntax: no, on-failure[:N], always, unless-stopped.
func ParseRestartPolicy(v string) (RestartPolicy, error) {
	name, max, hasMax := strings.Cut(v, ":")
	p := RestartPolicy{Name: RestartMode(name)}
	switch p.Name {
	case "", RestartNo:
		p.Name = RestartNo
	case RestartAlways, RestartUnlessStopped:
	case RestartOnFailure:
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return p, fmt.Errorf("invalid restart policy %q: the maximum retry count must be a non-negative number", v)
			}
			p.MaximumRetryCount = n
		}
		return p, nil
	default:
		return p, fmt.Errorf("invalid restart policy %q: use no, on-failure[:max-retries], always or unless-stopped", v)
	}
	if hasMax {
		return p, fmt.Errorf("invalid restart policy %q: only on-failure takes a maximum retry count", v)
	}
	return p, nil
}

// String is the policy in --restart syntax.
func (p RestartPolicy) String() string {
	if p.Name == RestartOnFailure && p.MaximumRetryCount > 0 {
		return fmt.Sprintf("%s:%d", p.Name, p.MaximumRetryCount)
	}
	return string(p.Name)
}

// shouldRestart applies the policy to an exit: restarts counts the restarts done so far and
// stopped says a user stopped the container (stop, kill, rm -f), which no policy overrides.
func (p RestartPolicy) shouldRestart(code, restarts int, stopped bool) bool {
	if stopped {
		return false
	}
	switch p.Name {
	case RestartAlways, RestartUnlessStopped:
		return true
	case RestartOnFailure:
		return code != 0 && (p.MaximumRetryCount == 0 || restarts < p.MaximumRetryCount)
	}
	return false
}

// DefaultStopTimeout is how long kiln stop waits before SIGKILL without -t or --stop-timeout, as docker.
const DefaultStopTimeout = 10 * time.Second

// StopTimeoutOr is kiln stop's grace for c: given (-t) when set, else the container's
// --stop-timeout, else DefaultStopTimeout.
func (c Config) StopTimeoutOr(given *time.Duration) time.Duration {
	switch {
	case given != nil:
		return *given
	case c.StopTimeout != nil:
		return time.Duration(*c.StopTimeout) * time.Second
	}
	return DefaultStopTimeout
}
