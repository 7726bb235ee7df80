package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/testimage"
	"github.com/kiln-build/kiln/internal/testregistry"
)

// TestKilnInKiln builds examples/kiln-in-kiln (a static kiln over busybox), runs it with kiln
// run as docker would (root, docker's default capabilities and seccomp, not privileged) and
// inside builds examples/app: kiln there finds no namespaces or mounts, picks the chroot rung
// by itself, and makes the very image the host builds with the oci rung. It pushes with a
// registry cache, the flags of examples/kubernetes, and a second container with an empty store
// builds from that cache alone.
func TestKilnInKiln(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: kiln run")
	}
	testimage.RequireBusybox(t)
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

	addr := testregistry.Start(t)
	flags := fmt.Sprintf("--push -t %[1]s/team/app:1 --cache-to type=registry,ref=%[1]s/team/app:cache,mode=max --cache-from type=registry,ref=%[1]s/team/app:cache", addr)
	inner := func(script string) result {
		return ok(t, root, "run", "--rm", "--network", "host", "-e", "SOURCE_DATE_EPOCH=1700000000",
			"-v", out+":/out", "-v", app+":/src:ro", "kiln-in-kiln", "sh", "-c", script)
	}
	res := inner("grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status && kiln load -i /out/busybox.tar >/dev/null && " +
		"kiln build --progress=plain --iidfile /out/inner.iid " + flags + " /src 2>&1 && echo run: && kiln run --rm busybox true 2>&1; true")
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
	host, built := readFile(t, filepath.Join(out, "host.iid")), readFile(t, filepath.Join(out, "inner.iid"))
	if host == "" || host != built {
		t.Errorf("the image built inside (%q) is not the host's (%q)\n%s", built, host, res.stdout)
	}
	// A fresh container, an empty store: every step comes from the registry cache.
	os.Remove(filepath.Join(out, "inner.iid"))
	res = inner("kiln load -i /out/busybox.tar >/dev/null && kiln build --progress=plain --iidfile /out/inner.iid " + flags + " /src 2>&1")
	if strings.Count(res.stdout, "CACHED") < 4 || strings.Contains(res.stdout, "self-test ok") {
		t.Errorf("the second build inside did not come from the registry cache:\n%s", res.stdout)
	}
	if again := readFile(t, filepath.Join(out, "inner.iid")); again != host {
		t.Errorf("the image rebuilt from the cache (%q) is not the host's (%q)", again, host)
	}
}
