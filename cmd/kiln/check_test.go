package main

import (
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/build"
	"github.com/kiln-build/kiln/internal/testregistry"
)

// TestBuildCheck: `kiln build --check` prints the build checks as docker does and exits 1 when
// any fails, 0 with "Check complete, no warnings found." otherwise, building nothing.
func TestBuildCheck(t *testing.T) {
	root, ctxDir := t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCMD [\"/app\"]\n"})
	r := ok(t, root, "build", "--check", ctxDir)
	if strings.TrimSpace(r.stdout) != "Check complete, no warnings found." {
		t.Errorf("clean Buildfile: %q", r.stdout)
	}

	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch AS App\nCMD /app\nENV A 1\n"})
	r = kiln(t, root, nil, "build", "--check", ctxDir)
	for _, want := range []string{
		"Check complete, 3 warnings have been found!\n",
		"\nWARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\nStage name 'App' should be lowercase\nBuildfile:1\n",
		"\nWARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/\n" +
			"JSON arguments recommended for CMD to prevent unintended behavior related to OS signals\nBuildfile:2\n" +
			"--------------------\n   2 | >>> CMD /app\n--------------------\n",
		"WARNING: LegacyKeyValueFormat",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.code != 1 || r.stderr != "" {
		t.Errorf("--check with warnings: exit %d, stderr %q; want 1 and nothing", r.code, r.stderr)
	}
	if rows := imageRows(t, root); len(rows) != 0 {
		t.Errorf("--check built an image: %+v", rows)
	}
	if r := ok(t, root, "build", "--check", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all", ctxDir); !strings.Contains(r.stdout, "no warnings found") {
		t.Errorf("skip=all: %s", r.stdout)
	}

	// A build error: exit 1 with the error, and the checks found before it.
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCMD /app\nEXPOSE nonsense\n"})
	r = kiln(t, root, nil, "build", "--check", ctxDir)
	if r.code != 1 || !strings.Contains(r.stdout, "WARNING: JSONArgsRecommended") || !strings.Contains(errorLine(r.stderr), "Buildfile:3: EXPOSE") {
		t.Errorf("--check on a broken Buildfile: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestBuildChecksInBuild: a build prints each check as it is found, with Buildfile:LINE, rule,
// message and URL, and sums them up at the end; "# check=error=true" makes them fail the
// build; a malformed directive is an error at its line.
func TestBuildChecksInBuild(t *testing.T) {
	root, ctxDir := t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nARG GITHUB_TOKEN\nCMD /app\n"})
	r := ok(t, root, "build", "--progress=plain", "--build-arg", "GITHUB_TOKEN=ghp_x", "-t", "app", ctxDir)
	for _, want := range []string{
		"WARNING: Buildfile:2: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"GITHUB_TOKEN\") (https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/)\n",
		"WARNING: Buildfile:3: JSONArgsRecommended: JSON arguments recommended for CMD",
		"2 warnings found (kiln build --check shows each with its source):\n" +
			" - Buildfile:2: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"GITHUB_TOKEN\")\n" +
			" - Buildfile:3: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("build output lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "ghp_x") {
		t.Errorf("the build arg's value was printed:\n%s", r.stderr)
	}
	if r := ok(t, root, "build", "--progress=json", ctxDir); !strings.Contains(r.stderr, `"kind":"check"`) ||
		!strings.Contains(r.stderr, `"rule":"JSONArgsRecommended"`) {
		t.Errorf("json progress lacks the check:\n%s", r.stderr)
	}

	writeTree(t, ctxDir, map[string]string{"Buildfile": "# check=error=true\nFROM scratch\nCMD /app\n"})
	r = kiln(t, root, nil, "build", "--progress=plain", ctxDir)
	if r.code != 1 || !strings.Contains(r.stderr, " - Buildfile:3: JSONArgsRecommended") ||
		errorLine(r.stderr) != "kiln: Buildfile: build checks failed (check=error=true): JSONArgsRecommended; fix them, or skip rules with # check=skip=RULE" {
		t.Errorf("error=true: exit %d\n%s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "build", "--check", ctxDir); r.code != 1 {
		t.Errorf("--check with error=true: exit %d", r.code)
	}
	ok(t, root, "build", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=JSONArgsRecommended;error=true", ctxDir)

	writeTree(t, ctxDir, map[string]string{"Buildfile": "# check=skip=JSONArgsRecommended;error=yes\nFROM scratch\n"})
	for _, args := range [][]string{{"build", ctxDir}, {"build", "--check", ctxDir}} {
		r = kiln(t, root, nil, args...)
		if r.code != 1 || !strings.HasPrefix(errorLine(r.stderr), `kiln: Buildfile:1: invalid directive "# check=skip=JSONArgsRecommended;error=yes"`) {
			t.Errorf("kiln %v with a malformed directive: exit %d\n%s", args, r.code, r.stderr)
		}
	}
}

// TestBuildCheckStoresNothing: --check reads a base image missing from the store from its
// registry (its ENV defines variables the checks must know) and leaves the store as it was.
func TestBuildCheckStoresNothing(t *testing.T) {
	addr := testregistry.Start(t)
	baseCtx := t.TempDir()
	writeTree(t, baseCtx, map[string]string{"Buildfile": "FROM scratch\nENV BASEVAR=1\nCOPY f /f\n", "f": "x"})
	ref := addr + "/lib/base:1"
	ok(t, t.TempDir(), "build", "-q", "-t", ref, "--push", baseCtx)

	root, ctxDir := t.TempDir(), t.TempDir()
	ok(t, root, "images")
	before := treeDigest(t, root)
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM " + ref + "\nENV A=$BASEVAR B=$NOPE\n"})
	r := kiln(t, root, nil, "build", "--check", ctxDir)
	if r.code != 1 || !strings.Contains(r.stdout, "Usage of undefined variable '$NOPE'") || strings.Contains(r.stdout, "'$BASEVAR'") {
		t.Errorf("--check over a registry base: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if after := treeDigest(t, root); after != before {
		t.Errorf("--check changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestChecksRendered: the live TTY view shows a check as a WARNING line, and a check planned
// twice (--check-reproducible) is shown and counted once.
func TestChecksRendered(t *testing.T) {
	var out strings.Builder
	v := &ttyView{w: &out, start: time.Now(), steps: map[int]*ttyStep{}}
	c := &checkCollector{seen: map[string]bool{}}
	report := c.wrap(v.handle)
	chk := build.Check{Rule: "WorkdirRelativePath", Message: `Relative workdir "app" can have unexpected results if the base image changes`,
		URL: "https://docs.docker.com/go/dockerfile/rule/workdir-relative-path/", File: "Buildfile", Line: 4, EndLine: 4}
	for range 2 {
		report(build.Event{Kind: build.EventCheck, Time: time.Now(), Check: &chk})
	}
	want := "WARNING: Buildfile:4: WorkdirRelativePath: Relative workdir \"app\" can have unexpected results if the base image changes (https://docs.docker.com/go/dockerfile/rule/workdir-relative-path/)"
	if len(v.warns) != 1 || "WARNING: "+v.warns[0] != want || !strings.Contains(out.String(), want) {
		t.Errorf("tty warnings %q, want one %q", v.warns, want)
	}
	if len(c.checks) != 1 {
		t.Errorf("collected %d checks, want 1", len(c.checks))
	}
	var sum strings.Builder
	checkSummary(&sum, c.checks)
	if got := sum.String(); got != "1 warning found (kiln build --check shows each with its source):\n - Buildfile:4: WorkdirRelativePath: "+chk.Message+"\n" {
		t.Errorf("summary %q", got)
	}
}
