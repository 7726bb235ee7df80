package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testgit"
	"github.com/kiln-build/kiln/internal/testimage"
	"github.com/kiln-build/kiln/internal/testregistry"
)

// TestKilnInKiln builds examples/kiln-in-kiln (a static kiln over busybox), runs it with kiln
// run as docker would (root, docker's default capabilities and seccomp, not privileged) and
// inside runs the command of examples/kubernetes/job-chroot.yaml, its hosts replaced by the
// test's loopback servers: it builds examples/app from a git context (served over smart HTTP)
// and pushes with a registry cache. kiln there finds no namespaces or mounts, picks the chroot
// rung by itself, and pushes the very image the host builds with the oci rung; a second
// container with an empty store builds from that cache alone.
func TestKilnInKiln(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: kiln run")
	}
	testimage.RequireBusybox(t)
	testgit.Require(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go tool to build a static kiln for the image")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	root := busyboxRoot(t)
	ctxDir := t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": readFile(t, "../../examples/kiln-in-kiln/Buildfile")})
	build := exec.Command(goBin, "build", "-trimpath", "-o", filepath.Join(ctxDir, "kiln"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build a static kiln: %v\n%s", err, out)
	}
	ok(t, root, "build", "--progress=plain", "-t", "kiln-in-kiln", ctxDir)

	app, err := filepath.Abs("../../examples/app")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ok(t, root, "build", "--progress=plain", "--iidfile", filepath.Join(out, "host.iid"), app)
	ok(t, root, "save", "busybox", "-o", filepath.Join(out, "busybox.tar"))
	host := readFile(t, filepath.Join(out, "host.iid"))

	// examples/app as the Job's repository, team/app.git on branch main, and its registry.
	work := t.TempDir()
	writeTree(t, work, map[string]string{"Buildfile": readFile(t, filepath.Join(app, "Buildfile")),
		"app.sh": readFile(t, filepath.Join(app, "app.sh"))})
	testgit.Commit(t, work)
	served := t.TempDir()
	if err := os.Mkdir(filepath.Join(served, "team"), 0o755); err != nil {
		t.Fatal(err)
	}
	testgit.Git(t, served, "clone", "-q", "--bare", work, "team/app.git")
	gitBase := testgit.ServeBare(t, served, "127.0.0.1:0")
	addr := testregistry.Start(t)
	job := jobCommand(t, "../../examples/kubernetes/job-chroot.yaml")
	if len(job) < 2 || job[0] != "kiln" || job[1] != "build" {
		t.Fatalf("job-chroot.yaml's command is not a kiln build: %q", job)
	}
	var script strings.Builder
	for i, arg := range job {
		arg = strings.ReplaceAll(arg, "https://git.example.com", gitBase)
		arg = strings.ReplaceAll(arg, "registry.example.com", addr)
		if strings.Contains(arg, "example.com") {
			t.Fatalf("job-chroot.yaml's command names a host the test does not serve: %q", arg)
		}
		script.WriteString(" '" + arg + "'")
		if i == 1 { // the test's one addition: where to read the image id
			script.WriteString(" --iidfile /out/inner.iid")
		}
	}
	jobCmd := script.String()[1:]
	inner := func(script string) result {
		return ok(t, root, "run", "--rm", "--network", "host", "-e", "SOURCE_DATE_EPOCH=1700000000",
			"-v", out+":/out", "kiln-in-kiln", "sh", "-c", script)
	}
	res := inner("grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status && kiln load -i /out/busybox.tar >/dev/null && " +
		jobCmd + " 2>&1 && echo run: && kiln run --rm busybox true 2>&1; true")
	// What kiln run gave the container: docker's default capabilities and seccomp, no privileges.
	for _, want := range []string{"CapEff:\t00000000a80425fb", "Seccomp:\t2"} {
		if !strings.Contains(res.stdout, want+"\n") {
			t.Errorf("the container is not under docker's defaults (want %q):\n%s", want, res.stdout)
		}
	}
	if !strings.Contains(res.stdout, "isolation: chroot (no namespaces or mounts here") || !strings.Contains(res.stdout, "self-test ok") {
		t.Errorf("kiln inside did not pick the chroot rung, or did not say so:\n%s", res.stdout)
	}
	_, after, _ := strings.Cut(res.stdout, "run:\n")
	if !strings.Contains(after, "chroot isolation") {
		t.Errorf("kiln run inside: want a clear refusal naming chroot isolation, got:\n%s", after)
	}
	if built, _ := os.ReadFile(filepath.Join(out, "inner.iid")); host == "" || host != string(built) {
		t.Errorf("the image built inside (%q) is not the host's (%q)\n%s", built, host, res.stdout)
	}
	// What the registry holds is that image: pulled into an empty store, it has the host's id.
	pushed := addr + "/team/app:1"
	puller := t.TempDir()
	ok(t, puller, "pull", pushed)
	if id := strings.TrimSpace(ok(t, puller, "image", "inspect", "--format", "{{.Id}}", pushed).stdout); id != host {
		t.Errorf("the image pushed from inside (%q) is not the host's (%q)", id, host)
	}
	// A fresh container, an empty store: every step comes from the registry cache.
	os.Remove(filepath.Join(out, "inner.iid"))
	res = inner("kiln load -i /out/busybox.tar >/dev/null && " + jobCmd + " 2>&1")
	if strings.Count(res.stdout, "CACHED") < 4 || strings.Contains(res.stdout, "self-test ok") {
		t.Errorf("the second build inside did not come from the registry cache:\n%s", res.stdout)
	}
	if again := readFile(t, filepath.Join(out, "inner.iid")); again != host {
		t.Errorf("the image rebuilt from the cache (%q) is not the host's (%q)", again, host)
	}
}

// jobCommand reads the container command of a Job manifest (the "- arg" lines under
// "command:"), so the test runs the example's very flags rather than a copy of them.
func jobCommand(t *testing.T, path string) []string {
	t.Helper()
	_, rest, found := strings.Cut(readFile(t, path), "command:\n")
	if !found {
		t.Fatalf("%s: no command", path)
	}
	var args []string
	for _, line := range strings.Split(rest, "\n") {
		arg, isItem := strings.CutPrefix(strings.TrimSpace(line), "- ")
		if !isItem {
			break
		}
		args = append(args, arg)
	}
	return args
}

// TestKubernetesJobsShareTheCommand: the rootless Job, which no test runs, builds with the
// very command TestKilnInKiln runs from the chroot Job.
func TestKubernetesJobsShareTheCommand(t *testing.T) {
	chroot := jobCommand(t, "../../examples/kubernetes/job-chroot.yaml")
	rootless := jobCommand(t, "../../examples/kubernetes/job-rootless.yaml")
	if len(chroot) < 2 || strings.Join(chroot, "\n") != strings.Join(rootless, "\n") {
		t.Errorf("the Jobs' commands differ:\nchroot:   %q\nrootless: %q", chroot, rootless)
	}
}
