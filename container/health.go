package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/runtime"
)

// HealthConfig is a container's health check: the image's HEALTHCHECK under the run flags.
// Zero durations and retries mean docker's defaults.
type HealthConfig struct {
	Test          []string // ["CMD", argv...], ["CMD-SHELL", command] or ["NONE"] (no check)
	Interval      time.Duration
	Timeout       time.Duration
	StartPeriod   time.Duration
	StartInterval time.Duration
	Retries       int
	Shell         []string // the image's SHELL, for CMD-SHELL; nil = /bin/sh -c
}

// Docker's health check defaults and limits.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3
	minHealthDuration          = time.Millisecond
	maxHealthLog               = 5    // results kept in State.Health.Log
	maxHealthOutput            = 4096 // bytes of a check's output kept
	// healthKillGrace is how long a timed-out check has between SIGTERM and SIGKILL.
	healthKillGrace = 100 * time.Millisecond
	// healthOutputWait bounds the wait for a check's output once the check has ended.
	healthOutputWait = time.Second
)

// Enabled reports whether the config runs a check at all.
func (h *HealthConfig) Enabled() bool {
	return h != nil && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// HealthFlags are the `kiln run` flags over the image's HEALTHCHECK; nil/zero fields keep
// the image's values, as docker merges them.
type HealthFlags struct {
	Cmd                                           string // --health-cmd: a CMD-SHELL command
	Interval, Timeout, StartPeriod, StartInterval time.Duration
	Retries                                       int
	Disable                                       bool // --no-healthcheck
}

func (f HealthFlags) set() bool {
	return f.Cmd != "" || f.Interval != 0 || f.Timeout != 0 || f.StartPeriod != 0 || f.StartInterval != 0 || f.Retries != 0
}

// ResolveHealth is the container's health check: img's HEALTHCHECK (and SHELL) with f over
// it; nil when there is none.
func ResolveHealth(img v1.Image, f HealthFlags) (*HealthConfig, error) {
	if f.Disable && f.set() {
		return nil, errors.New("--no-healthcheck conflicts with --health-* options: give one or the other")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--health-interval", f.Interval}, {"--health-timeout", f.Timeout}, {"--health-start-period", f.StartPeriod}, {"--health-start-interval", f.StartInterval}} {
		if d.v != 0 && d.v < minHealthDuration {
			return nil, fmt.Errorf("invalid %s %v: use 0 (the default) or at least %v", d.name, d.v, minHealthDuration)
		}
	}
	if f.Retries < 0 {
		return nil, fmt.Errorf("invalid --health-retries %d: must not be negative", f.Retries)
	}
	if f.Disable {
		return &HealthConfig{Test: []string{"NONE"}}, nil
	}
	h, err := imageHealth(img)
	if err != nil {
		return nil, err
	}
	if h == nil && !f.set() {
		return nil, nil
	}
	if h == nil {
		h = &HealthConfig{}
	}
	if f.Cmd != "" {
		h.Test = []string{"CMD-SHELL", f.Cmd}
	}
	for _, o := range []struct {
		dst *time.Duration
		v   time.Duration
	}{{&h.Interval, f.Interval}, {&h.Timeout, f.Timeout}, {&h.StartPeriod, f.StartPeriod}, {&h.StartInterval, f.StartInterval}} {
		if o.v != 0 {
			*o.dst = o.v
		}
	}
	if f.Retries != 0 {
		h.Retries = f.Retries
	}
	if len(h.Test) == 0 {
		return nil, errors.New("--health-* options given, but the image has no HEALTHCHECK: give --health-cmd too")
	}
	return h, h.check()
}

// check refuses a test kiln cannot run, at create rather than at every check.
func (h *HealthConfig) check() error {
	switch h.Test[0] {
	case "NONE":
	case "CMD", "CMD-SHELL":
		if len(h.Test) < 2 || (h.Test[0] == "CMD-SHELL" && strings.TrimSpace(h.Test[1]) == "") {
			return fmt.Errorf("health check %q has no command", h.Test)
		}
	default:
		return fmt.Errorf("unknown health check type %q: use CMD, CMD-SHELL or NONE", h.Test[0])
	}
	return nil
}

// imageHealth reads HEALTHCHECK from the image's raw config: go-containerregistry's type has
// no StartInterval, which BuildKit and docker images carry.
func imageHealth(img v1.Image) (*HealthConfig, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	var cfg struct {
		Config struct {
			Healthcheck *struct {
				Test                                          []string
				Interval, Timeout, StartPeriod, StartInterval time.Duration
				Retries                                       int
			}
			Shell []string
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	ih := cfg.Config.Healthcheck
	if ih == nil || len(ih.Test) == 0 {
		return nil, nil
	}
	return &HealthConfig{Test: ih.Test, Interval: ih.Interval, Timeout: ih.Timeout, StartPeriod: ih.StartPeriod,
		StartInterval: ih.StartInterval, Retries: ih.Retries, Shell: cfg.Config.Shell}, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// argv is the command a check execs: CMD's own, or CMD-SHELL's through the image's shell.
func (h *HealthConfig) argv() []string {
	if h.Test[0] == "CMD" {
		return h.Test[1:]
	}
	shell := h.Shell
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(shell), h.Test[1])
}

// HealthStatus is docker's State.Health.Status.
type HealthStatus string

// The health states, docker's words; HealthNone is ps --filter's name for "no check".
const (
	HealthStarting  HealthStatus = "starting"
	HealthHealthy   HealthStatus = "healthy"
	HealthUnhealthy HealthStatus = "unhealthy"
	HealthNone      HealthStatus = "none"
)

// Health is State.Health: where the checks stand, and the last results, oldest first.
type Health struct {
	Status        HealthStatus   `json:"Status"`
	FailingStreak int            `json:"FailingStreak"`
	Log           []HealthResult `json:"Log"`
}

// HealthResult is one check's outcome; ExitCode -1 means it could not run or timed out.
type HealthResult struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

// healthAtStart is the health a (re)started container begins with: starting, with the
// previous results kept, as docker does.
func healthAtStart(h *HealthConfig, prev *Health) *Health {
	if !h.Enabled() {
		return nil
	}
	out := &Health{Status: HealthStarting, Log: []HealthResult{}}
	if prev != nil {
		out.Log = slices.Clone(prev.Log)
	}
	return out
}

// healthChecker runs one container run's checks; it owns the health while the run lasts and
// hands each new value to the monitor, which alone writes state.json.
type healthChecker struct {
	cfg     *HealthConfig
	ctr     *runtime.Container
	started time.Time
	health  Health
	updates chan<- Health
	pause   *pauseWatch // the monitor's freezes, which no check may overlap
}

// pauseWatch is what the checks see of the monitor's freezes: docker probes no paused
// container, and a check exec'd into a frozen cgroup would hang until its timeout and count as
// a failure the container never had. The monitor alone calls set.
type pauseWatch struct {
	changes atomic.Uint64 // freezes and thaws so far: odd while paused
}

// set records a freeze about to happen (true) or a thaw done (false).
func (p *pauseWatch) set(paused bool) {
	if (p.changes.Load()%2 == 1) != paused {
		p.changes.Add(1)
	}
}

// run checks every interval until ctx ends (the container stops); no check outlives it.
func (hc *healthChecker) run(ctx context.Context) {
	timer := time.NewTimer(hc.interval(time.Now()))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		pauses := hc.pause.changes.Load()
		if pauses%2 == 1 {
			timer.Reset(hc.interval(time.Now())) // paused: skipped, as docker's; FailingStreak stays
			continue
		}
		r := hc.probe(ctx)
		if ctx.Err() != nil {
			return // cut short by the stop: not the container's health
		}
		if hc.pause.changes.Load() != pauses {
			timer.Reset(hc.interval(time.Now())) // frozen mid-check: not the container's health
			continue
		}
		hc.record(r)
		h := hc.health
		h.Log = slices.Clone(h.Log)
		select {
		case hc.updates <- h:
		case <-ctx.Done():
			return
		}
		timer.Reset(hc.interval(time.Now()))
	}
}

// interval is docker's: the start interval while still starting within the start period.
func (hc *healthChecker) interval(now time.Time) time.Duration {
	if now.Sub(hc.started) < hc.cfg.StartPeriod && hc.health.Status == HealthStarting {
		return orDefault(hc.cfg.StartInterval, defaultHealthStartInterval)
	}
	return orDefault(hc.cfg.Interval, defaultHealthInterval)
}

// probe runs the check once; past its timeout it is killed.
func (hc *healthChecker) probe(ctx context.Context) HealthResult {
	timeout := orDefault(hc.cfg.Timeout, defaultHealthTimeout)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := HealthResult{Start: time.Now().UTC()}
	code, output, err := hc.exec(pctx)
	r.End, r.ExitCode, r.Output = time.Now().UTC(), int(code), output
	var ce *runtime.CommandError
	switch {
	case ctx.Err() == nil && errors.Is(pctx.Err(), context.DeadlineExceeded):
		msg := fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		if r.Output != "" {
			msg += ": " + r.Output
		}
		r.ExitCode, r.Output = -1, msg
	case errors.As(err, &ce):
		r.ExitCode, r.Output = int(ce.Status), ce.Msg
	case err != nil:
		r.ExitCode, r.Output = -1, err.Error()
	}
	return r
}

// exec runs the check's command and returns its status and output. The output goes through
// a pipe of kiln's own, which the runtime copies from with a bounded wait: a killed check's
// background child, still holding the output open, must not keep the check waiting.
func (hc *healthChecker) exec(ctx context.Context) (runtime.ExitStatus, string, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return -1, "", fmt.Errorf("health check output pipe: %w", err)
	}
	var out limitedBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(&out, pr) //nolint:errcheck // ends at EOF or at the deadline below
	}()
	code, err := hc.ctr.Exec(ctx, runtime.ExecSpec{Args: hc.cfg.argv(), Stdout: pw, Stderr: pw, StopGrace: healthKillGrace})
	pw.Close()
	pr.SetReadDeadline(time.Now().Add(healthOutputWait)) //nolint:errcheck // a pipe has deadlines
	<-copied
	pr.Close()
	return code, out.String(), err
}

// record applies a result by docker's rules: success is healthy; a failure counts towards
// retries, except while still starting within the start period.
func (hc *healthChecker) record(r HealthResult) {
	h := &hc.health
	if r.ExitCode == 0 {
		h.FailingStreak, h.Status = 0, HealthHealthy
	} else if h.Status != HealthStarting || r.Start.Sub(hc.started) >= hc.cfg.StartPeriod {
		h.FailingStreak++
		if h.FailingStreak >= orDefault(hc.cfg.Retries, defaultHealthRetries) {
			h.Status = HealthUnhealthy
		}
	}
	h.Log = append(h.Log, r)
	if n := len(h.Log); n > maxHealthLog {
		h.Log = slices.Clone(h.Log[n-maxHealthLog:])
	}
}

// limitedBuffer keeps the first maxHealthOutput bytes of a check's stdout and stderr, which
// the runtime writes from two goroutines.
type limitedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := min(maxHealthOutput-b.buf.Len(), len(p))
	if keep > 0 {
		b.buf.Write(p[:keep])
	}
	b.truncated = b.truncated || keep < len(p)
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + "..."
	}
	return b.buf.String()
}

// recordHealth is HealthConfig in container.json.
type recordHealth struct {
	Test            []string `json:"test"`
	IntervalNS      int64    `json:"intervalNs,omitempty"`
	TimeoutNS       int64    `json:"timeoutNs,omitempty"`
	StartPeriodNS   int64    `json:"startPeriodNs,omitempty"`
	StartIntervalNS int64    `json:"startIntervalNs,omitempty"`
	Retries         int      `json:"retries,omitempty"`
	Shell           []string `json:"shell,omitempty"`
}

func healthRecord(h *HealthConfig) *recordHealth {
	if h == nil {
		return nil
	}
	return &recordHealth{Test: h.Test, IntervalNS: int64(h.Interval), TimeoutNS: int64(h.Timeout),
		StartPeriodNS: int64(h.StartPeriod), StartIntervalNS: int64(h.StartInterval), Retries: h.Retries, Shell: h.Shell}
}

func (r *recordHealth) config() *HealthConfig {
	if r == nil {
		return nil
	}
	return &HealthConfig{Test: r.Test, Interval: time.Duration(r.IntervalNS), Timeout: time.Duration(r.TimeoutNS),
		StartPeriod: time.Duration(r.StartPeriodNS), StartInterval: time.Duration(r.StartIntervalNS), Retries: r.Retries, Shell: r.Shell}
}

// startHealth starts the run's checks, if it has any; the returned func ends them and waits
// until none is left running.
func (m *monitor) startHealth(ctx context.Context, ctr *runtime.Container) func() {
	if !m.c.Healthcheck.Enabled() || m.state.Health == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	updates := make(chan Health)
	hc := &healthChecker{cfg: m.c.Healthcheck, ctr: ctr, started: m.state.StartedAt, health: *m.state.Health, updates: updates,
		pause: &m.pause}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hc.run(ctx)
	}()
	m.health, m.stopHealth = updates, cancel
	return func() {
		cancel()
		<-done
		m.health, m.stopHealth = nil, nil
	}
}

// endHealth stops the checks of a container being stopped: a check must not race its exit.
func (m *monitor) endHealth() {
	if m.stopHealth != nil {
		m.stopHealth()
	}
	m.health = nil
}

// describe is the health part of docker's STATUS column: " (healthy)", " (health: starting)".
func (h *Health) describe() string {
	switch {
	case h == nil:
		return ""
	case h.Status == HealthStarting:
		return " (health: starting)"
	}
	return " (" + string(h.Status) + ")"
}

// HealthStatus is the container's health for ps --filter health=: none without checks.
func (s State) HealthStatus() HealthStatus {
	if s.Health == nil {
		return HealthNone
	}
	return s.Health.Status
}
