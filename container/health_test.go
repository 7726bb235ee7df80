package container

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testimage"
	"github.com/kiln-build/kiln/runtime"
)

func TestHealthRecordRules(t *testing.T) {
	start := time.Now()
	hc := &healthChecker{cfg: &HealthConfig{StartPeriod: time.Second, Retries: 2, StartInterval: 50 * time.Millisecond,
		Interval: time.Minute}, started: start, health: Health{Status: HealthStarting}}
	if got := hc.interval(start.Add(10 * time.Millisecond)); got != 50*time.Millisecond {
		t.Errorf("interval within the start period = %v, want the start interval", got)
	}
	fail := func(at time.Duration) HealthResult { return HealthResult{Start: start.Add(at), ExitCode: 1} }
	hc.record(fail(100 * time.Millisecond)) // within the start period: not counted
	if hc.health.FailingStreak != 0 || hc.health.Status != HealthStarting {
		t.Errorf("a failure within the start period counted: %+v", hc.health)
	}
	hc.record(fail(2 * time.Second))
	hc.record(fail(3 * time.Second))
	if hc.health.FailingStreak != 2 || hc.health.Status != HealthUnhealthy {
		t.Errorf("after retries failures: %+v", hc.health)
	}
	if got := hc.interval(start.Add(10 * time.Millisecond)); got != time.Minute {
		t.Errorf("interval once unhealthy = %v, want the interval", got)
	}
	hc.record(HealthResult{Start: start.Add(4 * time.Second)})
	if hc.health.FailingStreak != 0 || hc.health.Status != HealthHealthy {
		t.Errorf("after a success: %+v", hc.health)
	}
	for i := range 10 {
		hc.record(fail(time.Duration(5+i) * time.Second))
	}
	if n := len(hc.health.Log); n != maxHealthLog || !hc.health.Log[n-1].Start.Equal(start.Add(14*time.Second)) {
		t.Errorf("log keeps %d results, last %v", n, hc.health.Log[n-1].Start)
	}
	// A failing healthy container turns unhealthy after the retries, start period or not.
	if hc.health.Status != HealthUnhealthy || hc.health.FailingStreak != 10 {
		t.Errorf("after 10 failures: %+v", hc.health)
	}
}

func TestHealthArgv(t *testing.T) {
	for _, tc := range []struct {
		h    HealthConfig
		want string
	}{
		{HealthConfig{Test: []string{"CMD", "true", "x y"}}, "true|x y"},
		{HealthConfig{Test: []string{"CMD-SHELL", "test -f /x"}}, "/bin/sh|-c|test -f /x"},
		{HealthConfig{Test: []string{"CMD-SHELL", "exit 0"}, Shell: []string{"/bin/ash", "-ec"}}, "/bin/ash|-ec|exit 0"},
	} {
		if got := strings.Join(tc.h.argv(), "|"); got != tc.want {
			t.Errorf("%q: argv %q, want %q", tc.h.Test, got, tc.want)
		}
	}
	for _, bad := range [][]string{{"CMD"}, {"CMD-SHELL", " "}, {"HTTP", "x"}} {
		if err := (&HealthConfig{Test: bad}).check(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestHealthLimitedBuffer(t *testing.T) {
	var b limitedBuffer
	b.Write([]byte(strings.Repeat("a", maxHealthOutput-1)))
	b.Write([]byte("bc"))
	if got := b.String(); len(got) != maxHealthOutput+3 || !strings.HasSuffix(got, "ab...") {
		t.Errorf("truncated output ends %q (%d bytes)", got[len(got)-8:], len(got))
	}
}

// superviseHealthy starts a sleeping busybox container with health check h and /mnt bound
// to a host dir it returns, with its store; the test's cleanup stops it.
func superviseHealthy(t *testing.T, h *HealthConfig) (*Store, *Container, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: containers mount overlayfs and create namespaces")
	}
	lower, mnt := t.TempDir(), t.TempDir()
	testimage.BusyboxRootfs(t, lower)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"sleep", "60"}
	c, err := s.Create(context.Background(), Config{Image: "busybox", Args: args, Healthcheck: h,
		Spec: runtime.Spec{Lower: []string{lower}, Args: args, Network: runtime.NetworkNone,
			Mounts: []runtime.Mount{{Type: runtime.Bind, Source: mnt, Target: "/mnt"}}}})
	if err != nil {
		t.Fatal(err)
	}
	// Reloaded, so the health check has been through container.json.
	if c, err = s.Get(c.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	rt := testRuntime(t)
	go func() {
		_, err := s.Supervise(ctx, rt, c, Streams{})
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Supervise: %v", err)
		}
	})
	return s, c, mnt
}

// waitHealth polls the stored state until ok holds of it.
func waitHealth(t *testing.T, c *Container, what string, ok func(State) bool) State {
	t.Helper()
	var st State
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if st, err = c.State(); err != nil {
			t.Fatal(err)
		}
		if st.Health != nil && ok(st) {
			return st
		}
	}
	t.Fatalf("never %s: %+v, health %+v", what, st, st.Health)
	return st
}

func TestHealthCheckTurnsHealthy(t *testing.T) {
	_, c, mnt := superviseHealthy(t, &HealthConfig{Test: []string{"CMD-SHELL", "cat /mnt/ready"},
		Interval: 200 * time.Millisecond, Retries: 1000})
	st := waitHealth(t, c, "a failed check while starting", func(st State) bool { return len(st.Health.Log) > 0 })
	if h := st.Health; h.Status != HealthStarting || h.FailingStreak < 1 || h.Log[0].ExitCode != 1 ||
		!strings.Contains(h.Log[0].Output, "/mnt/ready") || h.Log[0].End.Before(h.Log[0].Start) {
		t.Fatalf("before the file: %+v", h)
	}
	if got := st.Describe(time.Now()); !strings.HasSuffix(got, " (health: starting)") {
		t.Errorf("STATUS %q", got)
	}
	if err := os.WriteFile(filepath.Join(mnt, "ready"), []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st = waitHealth(t, c, "healthy", func(st State) bool { return st.Health.Status == HealthHealthy })
	last := st.Health.Log[len(st.Health.Log)-1]
	if st.Health.FailingStreak != 0 || last.ExitCode != 0 || last.Output != "ok\n" {
		t.Errorf("healthy: %+v", st.Health)
	}
	if got := st.Describe(time.Now()); !strings.HasSuffix(got, " (healthy)") {
		t.Errorf("STATUS %q", got)
	}
}

func TestHealthCheckFailsToUnhealthy(t *testing.T) {
	_, c, _ := superviseHealthy(t, &HealthConfig{Test: []string{"CMD", "sh", "-c", "echo nope; exit 3"},
		Interval: 200 * time.Millisecond, Retries: 2})
	st := waitHealth(t, c, "unhealthy", func(st State) bool { return st.Health.Status == HealthUnhealthy })
	if h := st.Health; h.FailingStreak != 2 || len(h.Log) != 2 || h.Log[1].ExitCode != 3 || h.Log[1].Output != "nope\n" {
		t.Errorf("unhealthy after 2 retries: %+v", h)
	}
	if got := st.Describe(time.Now()); !strings.HasSuffix(got, " (unhealthy)") {
		t.Errorf("STATUS %q", got)
	}
	st = waitHealth(t, c, "6 failures", func(st State) bool { return st.Health.FailingStreak >= 6 })
	if len(st.Health.Log) != maxHealthLog {
		t.Errorf("log keeps %d results", len(st.Health.Log))
	}
}

func TestHealthCheckTimeoutKills(t *testing.T) {
	_, c, mnt := superviseHealthy(t, &HealthConfig{Test: []string{"CMD-SHELL", "echo started >/mnt/out; sleep 20; echo done >/mnt/out"},
		Interval: 200 * time.Millisecond, Timeout: 300 * time.Millisecond, Retries: 1})
	st := waitHealth(t, c, "unhealthy", func(st State) bool { return st.Health.Status == HealthUnhealthy })
	r := st.Health.Log[0]
	if r.ExitCode != -1 || !strings.HasPrefix(r.Output, "Health check exceeded timeout (300ms)") {
		t.Errorf("timed-out check: %+v", r)
	}
	if took := r.End.Sub(r.Start); took > 5*time.Second {
		t.Errorf("a check past its 300ms timeout took %v", took)
	}
	// The killed check never finished its command.
	if data, _ := os.ReadFile(filepath.Join(mnt, "out")); string(data) != "started\n" {
		t.Errorf("check's file: %q", data)
	}
}

// TestHealthChecksSkipWhilePaused pauses one of two containers that run the same check: while
// the other's checks show that several intervals went by, the paused one runs none and keeps
// its health, as docker's; once unpaused its checks go on.
func TestHealthChecksSkipWhilePaused(t *testing.T) {
	h := &HealthConfig{Test: []string{"CMD-SHELL", "echo x >>/mnt/checks"}, Interval: 100 * time.Millisecond,
		Timeout: 10 * time.Second, Retries: 1}
	s, c, mnt := superviseHealthy(t, h)
	_, witness, witnessMnt := superviseHealthy(t, h)
	checks := func(mnt string) int {
		data, err := os.ReadFile(filepath.Join(mnt, "checks"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return strings.Count(string(data), "\n")
	}
	healthy := func(st State) bool { return st.Health.Status == HealthHealthy }
	waitHealth(t, c, "healthy", healthy)
	waitHealth(t, witness, "healthy", healthy)

	if err := s.Pause(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	paused, ran := time.Now().UTC(), checks(mnt)
	// A check that ended just before the pause may still be recorded; none may start after it.
	stillPaused := func() {
		t.Helper()
		st, err := c.State()
		if err != nil {
			t.Fatal(err)
		}
		if n := checks(mnt); n != ran {
			t.Fatalf("%d checks ran while paused", n-ran)
		}
		if h := st.Health; !st.Paused || h.Status != HealthHealthy || h.FailingStreak != 0 {
			t.Fatalf("while paused: %+v, health %+v", st, h)
		}
		for _, r := range st.Health.Log {
			if r.Start.After(paused) || r.ExitCode != 0 {
				t.Fatalf("a check while paused: %+v (paused at %v)", r, paused)
			}
		}
	}
	from := checks(witnessMnt)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); checks(witnessMnt) < from+5; <-tick.C {
		stillPaused()
		if time.Now().After(deadline) {
			t.Fatalf("the unpaused container ran %d checks in 30s", checks(witnessMnt)-from)
		}
	}
	stillPaused()

	if err := s.Unpause(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	unpaused := time.Now().UTC()
	st := waitHealth(t, c, "a check after the unpause", func(st State) bool {
		last := st.Health.Log[len(st.Health.Log)-1]
		return last.Start.After(unpaused)
	})
	if h := st.Health; st.Paused || h.Status != HealthHealthy || h.FailingStreak != 0 || h.Log[len(h.Log)-1].ExitCode != 0 {
		t.Errorf("after unpause: %+v, health %+v", st, h)
	}
	if n := checks(mnt); n <= ran {
		t.Errorf("no check ran after the unpause: %d before the pause, %d after", ran, n)
	}
}

func TestHealthChecksStopWithContainer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	lower, mnt := t.TempDir(), t.TempDir()
	testimage.BusyboxRootfs(t, lower)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"sleep", "60"}
	c, err := s.Create(context.Background(), Config{Image: "busybox", Args: args,
		Healthcheck: &HealthConfig{Test: []string{"CMD-SHELL", "echo x >>/mnt/checks"}, Interval: 100 * time.Millisecond},
		Spec: runtime.Spec{Lower: []string{lower}, Args: args, Network: runtime.NetworkNone,
			Mounts: []runtime.Mount{{Type: runtime.Bind, Source: mnt, Target: "/mnt"}}}})
	if err != nil {
		t.Fatal(err)
	}
	rt := testRuntime(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Supervise(context.Background(), rt, c, Streams{})
		done <- err
	}()
	waitHealth(t, c, "healthy", func(st State) bool { return st.Health.Status == HealthHealthy })
	if err := s.Stop(context.Background(), rt, c, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, _ := c.State()
	if st.Running() || st.Health == nil || st.Health.Status != HealthHealthy || st.Describe(time.Now()) == "" ||
		strings.Contains(st.Describe(time.Now()), "health") {
		t.Errorf("after stop: %+v %q", st, st.Describe(time.Now()))
	}
	// No check was recorded after the exit: the checks ended before the exit was written.
	for _, r := range st.Health.Log {
		if r.End.After(st.FinishedAt) {
			t.Errorf("a check ended at %v, after the exit at %v", r.End, st.FinishedAt)
		}
	}
	if err := s.Remove(context.Background(), rt, c, false); err != nil {
		t.Fatal(err)
	}
}

func TestRecordKeepsHealthAndCreateCommand(t *testing.T) {
	want := fullConfig()
	want.Healthcheck = &HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: time.Second, Timeout: 2 * time.Second,
		StartPeriod: 3 * time.Second, StartInterval: 4 * time.Second, Retries: 5, Shell: []string{"/bin/ash", "-c"}}
	want.CreateCommand, want.CreateDir = []string{"run", "--name=x", "busybox"}, "/home/u"
	dir := t.TempDir()
	if err := writeRecord(dir, want); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := decodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Healthcheck, want.Healthcheck) || !reflect.DeepEqual(got.CreateCommand, want.CreateCommand) || got.CreateDir != want.CreateDir {
		t.Errorf("round trip: %+v %q %q", got.Healthcheck, got.CreateCommand, got.CreateDir)
	}
}
