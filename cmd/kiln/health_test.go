package main

import (
	"strings"
	"testing"
)

// The image's HEALTHCHECK runs; --health-* flags override it; ps and inspect show the results.
func TestHealthCheckCLI(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	buildIn(t, root, "FROM busybox\nHEALTHCHECK --interval=200ms --retries=2 CMD test -f /tmp/ready\n", nil, "-t", "hc")
	ok(t, root, "run", "-d", "--name", "img", "hc", "sleep", "60")
	ok(t, root, "run", "-d", "--name", "flags", "--health-cmd", "echo nope; exit 1", "--health-interval", "200ms",
		"--health-retries", "1", "busybox", "sleep", "60")
	ok(t, root, "run", "-d", "--name", "off", "--no-healthcheck", "hc", "sleep", "60")
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "img", "flags", "off") })

	waitFor(t, "flags unhealthy", func() bool { return strings.HasSuffix(psRows(t, root)["flags"].Status, " (unhealthy)") })
	in := inspectOne(t, root, "flags")
	if h := in.State.Health; h == nil || h.Status != "unhealthy" || h.FailingStreak < 1 || h.Log[0].Output != "nope\n" || h.Log[0].ExitCode != 1 {
		t.Errorf("inspect State.Health: %+v", h)
	}
	if hc := in.Config.Healthcheck; hc == nil || strings.Join(hc.Test, "|") != "CMD-SHELL|echo nope; exit 1" || hc.Interval != 200e6 || hc.Retries != 1 {
		t.Errorf("inspect Config.Healthcheck: %+v", hc)
	}
	if st := psRows(t, root)["img"].Status; !strings.HasSuffix(st, " (health: starting)") && !strings.HasSuffix(st, " (unhealthy)") {
		t.Errorf("img before /tmp/ready: %q", st)
	}
	ok(t, root, "exec", "img", "touch", "/tmp/ready")
	waitFor(t, "img healthy", func() bool { return strings.HasSuffix(psRows(t, root)["img"].Status, " (healthy)") })
	if st := psRows(t, root)["off"].Status; strings.Contains(st, "health") || inspectOne(t, root, "off").State.Health != nil {
		t.Errorf("--no-healthcheck: %q", st)
	}
	for filter, want := range map[string]string{"healthy": "img\n", "unhealthy": "flags\n", "none": "off\n", "starting": ""} {
		if got := ok(t, root, "ps", "--filter", "health="+filter, "--format", "{{.Names}}").stdout; got != want {
			t.Errorf("ps --filter health=%s: %q, want %q", filter, got, want)
		}
	}
	for _, bad := range [][]string{
		{"ps", "--filter", "health=sick"},
		{"run", "--no-healthcheck", "--health-cmd", "true", "busybox", "true"},
		{"run", "--health-interval", "200ms", "busybox", "true"},
		{"run", "--health-retries", "-1", "--health-cmd", "true", "busybox", "true"},
		{"run", "--health-timeout", "1us", "--health-cmd", "true", "busybox", "true"},
	} {
		if r := kiln(t, root, nil, bad...); r.code == 0 || r.stderr == "" {
			t.Errorf("kiln %q: exit %d, %q", bad, r.code, r.stderr)
		}
	}
}
