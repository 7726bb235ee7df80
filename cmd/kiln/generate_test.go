package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unitLine is the value of key= in unit.
func unitLine(t *testing.T, unit, key string) string {
	t.Helper()
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	t.Fatalf("unit has no %s=:\n%s", key, unit)
	return ""
}

func TestGenerateSystemd(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "create", "--name", "web", "--restart", "on-failure:2", "--stop-timeout", "1", "busybox", "sh", "-c", "echo up; exec sleep 60")
	unit := ok(t, root, "generate", "systemd", "--name", "web").stdout
	exe, _ := os.Executable()
	kilnCmd := exe + " --root " + root
	for key, want := range map[string]string{"Restart": "on-failure", "ExecStart": kilnCmd + " start -a web",
		"ExecStop": kilnCmd + " stop -t 1 web", "RequiresMountsFor": root, "Type": "exec"} {
		if got := unitLine(t, unit, key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	if got := unitLine(t, ok(t, root, "generate", "systemd", "--restart-policy", "always", "web").stdout, "ExecStart"); !strings.HasSuffix(got, " start -a "+inspectOne(t, root, "web").ID) {
		t.Errorf("by id: ExecStart=%s", got)
	}

	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "generate", "systemd", "--name", "--files", "web")
	cmd.Env, cmd.Dir = append(os.Environ(), execEnv+"=1", "KILN_ROOT="+root), dir
	path := filepath.Join(dir, "container-web.service")
	if r := runKiln(t, cmd, nil); r.code != 0 || r.stdout != path+"\n" {
		t.Fatalf("--files: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != unit {
		t.Errorf("--files wrote %q, %v", data, err)
	}
	// systemd is not PID 1 here: the unit is checked, not booted.
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		var out bytes.Buffer
		v := exec.Command(analyze, "verify", path)
		v.Stdout, v.Stderr = &out, &out
		if err := v.Run(); err != nil || strings.Contains(out.String(), path) {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out.String())
		}
	}

	// What systemd would do: ExecStart in the foreground, ExecStop from elsewhere.
	start := strings.Fields(unitLine(t, unit, "ExecStart"))
	sc := exec.Command(start[0], start[1:]...)
	sc.Env = append(os.Environ(), execEnv+"=1")
	var out bytes.Buffer
	sc.Stdout, sc.Stderr = &out, &out
	if err := sc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sc.Wait() }()
	waitFor(t, "web running", func() bool { return strings.HasPrefix(psRows(t, root)["web"].Status, "Up ") })
	if r := kiln(t, root, nil, "start", "-a", "web"); r.code != 1 || !strings.Contains(r.stderr, "already running") {
		t.Errorf("second start -a: exit %d, %s", r.code, r.stderr)
	}
	stop := strings.Fields(unitLine(t, unit, "ExecStop"))
	ok(t, root, stop[3:]...)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 137 || out.String() != "up\n" {
			t.Errorf("start -a after stop: %v, output %q", err, out.String())
		}
	case <-time.After(20 * time.Second):
		sc.Process.Kill()
		t.Fatal("start -a still running after kiln stop")
	}

	for _, bad := range [][]string{{"generate", "systemd", "--restart-policy", "sometimes", "web"}, {"generate"},
		{"start", "-a", "web", "web"}, {"generate", "systemd", "nosuch"}} {
		if r := kiln(t, root, nil, bad...); r.code == 0 || r.stderr == "" {
			t.Errorf("kiln %q: exit %d, %q", bad, r.code, r.stderr)
		}
	}
}

// systemdWords splits an Exec= line as systemd does, for the quoting SystemdUnit writes.
func systemdWords(line string) []string {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quoted && ch == '\\' && i+1 < len(line):
			i++
			w.WriteByte(map[byte]byte{'n': '\n', 't': '\t', '\\': '\\', '"': '"'}[line[i]])
		case ch == '"':
			quoted, inWord = !quoted, true
		case !quoted && ch == ' ':
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
		case (ch == '$' || ch == '%') && i+1 < len(line) && line[i+1] == ch:
			i++
			w.WriteByte(ch)
			inWord = true
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// runUnitCommand runs an Exec= line of a unit as systemd would, from dir.
func runUnitCommand(line, dir string) *exec.Cmd {
	argv := systemdWords(strings.TrimPrefix(line, "-"))
	c := exec.Command(argv[0], argv[1:]...)
	c.Env, c.Dir = append(os.Environ(), execEnv+"=1"), dir
	return c
}

func TestGenerateSystemdNew(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	oldID := strings.TrimSpace(ok(t, root, "run", "-d", "--name", "app", "--restart", "always", "-e", "GREETING=hi there 100%",
		"busybox", "sh", "-c", "echo $GREETING; exec sleep 60").stdout)
	unit := ok(t, root, "generate", "systemd", "--new", "app").stdout
	start := unitLine(t, unit, "ExecStart")
	if want := ` run --rm --name=app "--env=GREETING=hi there 100%%" busybox sh -c "echo $$GREETING; exec sleep 60"`; !strings.HasSuffix(start, want) {
		t.Errorf("ExecStart=%s\nwant the suffix %s", start, want)
	}
	wd, _ := os.Getwd()
	if got := unitLine(t, unit, "WorkingDirectory"); got != wd {
		t.Errorf("WorkingDirectory=%s, want %s", got, wd)
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		path := filepath.Join(t.TempDir(), "container-app.service")
		if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || strings.Contains(string(out), path) {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
	// What systemd would do.
	if out, err := runUnitCommand(unitLine(t, unit, "ExecStartPre"), "/").CombinedOutput(); err != nil {
		t.Fatalf("ExecStartPre: %v\n%s", err, out)
	}
	sc := runUnitCommand(start, wd)
	var out bytes.Buffer
	sc.Stdout, sc.Stderr = &out, &out
	if err := sc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sc.Wait() }()
	waitFor(t, "a fresh app", func() bool {
		r := psRows(t, root)["app"]
		return strings.HasPrefix(r.Status, "Up ") && r.ID != oldID[:12]
	})
	waitFor(t, "app's output", func() bool { return kiln(t, root, nil, "logs", "app").stdout == "hi there 100%\n" })
	if out, err := runUnitCommand(unitLine(t, unit, "ExecStop"), "/").CombinedOutput(); err != nil {
		t.Fatalf("ExecStop: %v\n%s", err, out)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 137 {
			t.Errorf("kiln run after ExecStop: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		sc.Process.Kill()
		t.Fatal("kiln run still running after ExecStop")
	}
	if _, there := psRows(t, root)["app"]; there {
		t.Error("the --new container outlived its run (--rm)")
	}
	if r := kiln(t, root, nil, "generate", "systemd", "--new", "nosuch"); r.code == 0 {
		t.Error("generate --new of no container succeeded")
	}
}
