package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// checkCase is a Buildfile and what the build checks must say about it.
type checkCase struct {
	name      string
	buildfile string
	args      map[string]string
	ignore    []string          // .dockerignore patterns
	files     map[string]string // context files
	want      []string          // "Rule:line", in line order
	checks    bool              // plan as --check does (COPY sources need not exist)
}

// runChecks plans a Buildfile as a build does (base images from the test resolver, the
// context from files) and returns its checks as "Rule:line".
func runChecks(t *testing.T, tc checkCase) ([]string, []Check, error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range tc.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bctx, err := OpenContext(dir, tc.ignore, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bctx.Close()
	f, err := Parse("Buildfile", strings.NewReader(tc.buildfile))
	if err != nil {
		return nil, nil, err
	}
	res := testResolver(t)
	res["base:1.0"] = res["base"]
	var checks []Check
	_, err = Plan(context.Background(), f, PlanOptions{BuildArgs: tc.args, Context: bctx, Resolver: res,
		ChecksOnly: tc.checks, Check: func(c Check) { checks = append(checks, c) }})
	var got []string
	for _, c := range checks {
		got = append(got, c.Rule+":"+strconv.Itoa(c.Line))
	}
	slices.SortStableFunc(got, func(a, b string) int {
		la, _ := strconv.Atoi(a[strings.IndexByte(a, ':')+1:])
		lb, _ := strconv.Atoi(b[strings.IndexByte(b, ':')+1:])
		return la - lb
	})
	return got, checks, err
}

// TestCheckRules: each BuildKit rule kiln runs, on a Buildfile that breaks it and, where the
// rule has a subtle edge, on one that does not.
func TestCheckRules(t *testing.T) {
	for _, tc := range []checkCase{
		{name: "JSONArgsRecommended", buildfile: "FROM base\nCMD echo hi\nENTRYPOINT my-app\n",
			want: []string{"JSONArgsRecommended:2", "JSONArgsRecommended:3"}},
		{name: "JSONArgsRecommended/exec form or SHELL set", buildfile: "FROM base\nCMD [\"echo\"]\nSHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT my-app\n"},
		{name: "FromAsCasing", buildfile: "FROM base as build\nfrom base AS other\n",
			want: []string{"FromAsCasing:1", "FromAsCasing:2", "ConsistentInstructionCasing:2"}},
		{name: "StageNameCasing", buildfile: "FROM base AS Build\n", want: []string{"StageNameCasing:1"}},
		{name: "DuplicateStageName", buildfile: "FROM base AS a\nRUN true\nFROM base AS a\n",
			want: []string{"DuplicateStageName:3"}},
		{name: "InvalidDefaultArgInFrom/a stage is not an image", buildfile: "FROM base AS Build\nFROM Build\n",
			want: []string{"StageNameCasing:1"}},
		{name: "ReservedStageName", buildfile: "FROM base AS context\n", want: []string{"ReservedStageName:1"}},
		{name: "UndefinedVar", buildfile: "FROM base\nARG DECLARED\nENV A=$PATH\nLABEL l=$DECLARED$NOPE\nCOPY $PTH /x\n",
			want: []string{"UndefinedVar:4", "UndefinedVar:5"}},
		{name: "UndefinedVar/inherited from a stage", buildfile: "FROM base AS a\nARG V\nENV E=1\nFROM a\nRUN echo $V $E\n"},
		{name: "UndefinedArgInFrom", buildfile: "ARG VERSION=1.0\nFROM base:${VERSIO:-1.0}\n",
			want: []string{"UndefinedArgInFrom:2"}},
		{name: "InvalidDefaultArgInFrom", buildfile: "ARG TAG\nFROM base:${TAG}\n", args: map[string]string{"TAG": "1.0"},
			want: []string{"InvalidDefaultArgInFrom:2"}},
		{name: "WorkdirRelativePath", buildfile: "FROM base\nWORKDIR app\nWORKDIR more\n", want: []string{"WorkdirRelativePath:2"}},
		{name: "WorkdirRelativePath/absolute first", buildfile: "FROM base AS a\nWORKDIR /app\nFROM a\nWORKDIR sub\n"},
		{name: "SecretsUsedInArgOrEnv", buildfile: "FROM base\nARG API_TOKEN\nENV DB_PASSWORD=x PUBLIC_KEY=y\nRUN echo $API_TOKEN\n",
			args: map[string]string{"API_TOKEN": "s3cret"}, want: []string{"SecretsUsedInArgOrEnv:2", "SecretsUsedInArgOrEnv:3"}},
		{name: "LegacyKeyValueFormat", buildfile: "FROM base\nENV A 1\nLABEL b 2\nENV C=3\n",
			want: []string{"LegacyKeyValueFormat:2", "LegacyKeyValueFormat:3"}},
		{name: "MaintainerDeprecated", buildfile: "FROM base\nMAINTAINER me@example.com\n", want: []string{"MaintainerDeprecated:2"}},
		{name: "ConsistentInstructionCasing", buildfile: "FROM base\nrun true\nRUN true\nRun true\n",
			want: []string{"ConsistentInstructionCasing:2", "ConsistentInstructionCasing:4"}},
		{name: "MultipleInstructionsDisallowed", buildfile: "FROM base\nCMD [\"a\"]\nHEALTHCHECK NONE\nCMD [\"b\"]\nHEALTHCHECK NONE\nENTRYPOINT [\"c\"]\n",
			want: []string{"MultipleInstructionsDisallowed:2", "MultipleInstructionsDisallowed:3"}},
		{name: "CopyIgnoredFile", buildfile: "FROM base\nCOPY keep.txt secret.txt /\nADD secret.txt /y\nCOPY --from=base secret.txt /z\n",
			ignore: []string{"secret.txt"}, files: map[string]string{"keep.txt": "k"}, checks: true,
			want: []string{"CopyIgnoredFile:2", "CopyIgnoredFile:3"}},
		{name: "CopyIgnoredFile/exclusions are not checked", buildfile: "FROM base\nCOPY . /\n",
			ignore: []string{"*", "!keep.txt"}, files: map[string]string{"keep.txt": "k"}},
		{name: "FromPlatformFlagConstDisallowed", buildfile: "FROM --platform=" + HostPlatform + " base\n",
			want: []string{"FromPlatformFlagConstDisallowed:1"}},
		{name: "FromPlatformFlagConstDisallowed/named for it", buildfile: "FROM --platform=" + HostPlatform + " base AS build-linux\n"},
		{name: "RedundantTargetPlatform", buildfile: "FROM --platform=$TARGETPLATFORM base\n", want: []string{"RedundantTargetPlatform:1"}},
		{name: "NoEmptyContinuation", buildfile: "FROM base\nRUN echo a \\\n\n  b\n", want: []string{"NoEmptyContinuation:4"}},
		{name: "clean", buildfile: "FROM base AS build\nWORKDIR /src\nCOPY keep.txt .\nRUN cat keep.txt\nCMD [\"cat\", \"keep.txt\"]\n",
			files: map[string]string{"keep.txt": "k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := runChecks(t, tc)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("checks %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCheckMessage: a check carries BuildKit's rule name, message and URL, and prints as
// "Buildfile:LINE: Rule: message (URL)".
func TestCheckMessage(t *testing.T) {
	_, checks, err := runChecks(t, checkCase{buildfile: "FROM base\n\nCMD echo hi\n"})
	if err != nil || len(checks) != 1 {
		t.Fatalf("checks %v, err %v", checks, err)
	}
	want := "Buildfile:3: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (https://docs.docker.com/go/dockerfile/rule/json-args-recommended/)"
	if got := checks[0].String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	_, checks, _ = runChecks(t, checkCase{buildfile: "FROM base\nENV A 1 \\\n  B 2\nRUN true\n"})
	if len(checks) != 1 || !slices.Equal(checks[0].Source, []string{"ENV A 1 \\", "  B 2"}) || checks[0].EndLine != 3 {
		t.Errorf("checks %+v: want the two lines of ENV as its source", checks)
	}
}

// TestCheckDirective: "# check=" and --build-arg BUILDKIT_DOCKERFILE_CHECK skip rules or make
// them fail the build, as in docker; a malformed one is an error with its line.
func TestCheckDirective(t *testing.T) {
	const body = "FROM base\nCMD echo hi\nMAINTAINER me\n"
	for _, tc := range []struct {
		name, buildfile string
		args            map[string]string
		want            []string
		err             string
	}{
		{name: "none", buildfile: body, want: []string{"JSONArgsRecommended:2", "MaintainerDeprecated:3"}},
		{name: "skip", buildfile: "# check=skip=JSONArgsRecommended\n" + body, want: []string{"MaintainerDeprecated:4"}},
		{name: "skip two", buildfile: "# check=skip=JSONArgsRecommended,MaintainerDeprecated\n" + body},
		{name: "skip all", buildfile: "# check=skip=all\n" + body},
		{name: "comment above an instruction", buildfile: "FROM base\n# check=skip=JSONArgsRecommended\nCMD echo hi\nMAINTAINER me\n",
			want: []string{"MaintainerDeprecated:4"}},
		{name: "error=true", buildfile: "# check=error=true\n" + body, want: []string{"JSONArgsRecommended:3", "MaintainerDeprecated:4"},
			err: "Buildfile: build checks failed (check=error=true): JSONArgsRecommended, MaintainerDeprecated"},
		{name: "error=true and clean", buildfile: "# check=error=true;skip=JSONArgsRecommended,MaintainerDeprecated\n" + body},
		{name: "build arg wins", buildfile: "# check=error=true\n" + body, args: map[string]string{CheckArg: "skip=MaintainerDeprecated"},
			want: []string{"JSONArgsRecommended:3"}},
		{name: "malformed", buildfile: "# syntax=docker/dockerfile:1\n# check=skip-all\n" + body,
			err: `Buildfile:2: invalid directive "# check=skip-all": invalid check option "skip-all"; use # check=skip=RULE1,RULE2;error=true (or skip=all)`},
		{name: "malformed error value", buildfile: "# check=error=maybe\n" + body, err: "Buildfile:1: invalid directive"},
		{name: "malformed build arg", buildfile: body, args: map[string]string{CheckArg: "error"},
			err: `--build-arg BUILDKIT_DOCKERFILE_CHECK=error: invalid check option "error"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := runChecks(t, checkCase{buildfile: tc.buildfile, args: tc.args})
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("checks %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRunChecksPlansEveryStage: --check checks stages the target does not need, and needs
// neither the COPY sources nor the network for ADD.
func TestRunChecksPlansEveryStage(t *testing.T) {
	dir := t.TempDir()
	bf := "FROM base AS unused\nCMD echo hi\nFROM base\nCOPY missing.txt /\nADD https://example.invalid/x.tar.gz /x\nWORKDIR rel\n"
	if err := os.WriteFile(filepath.Join(dir, "Buildfile"), []byte(bf), 0o644); err != nil {
		t.Fatal(err)
	}
	checks, err := RunChecks(context.Background(), Options{ContextDir: dir, Resolver: testResolver(t)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range checks {
		got = append(got, c.Rule+":"+strconv.Itoa(c.Line))
	}
	if want := []string{"JSONArgsRecommended:2", "WorkdirRelativePath:6"}; !slices.Equal(got, want) {
		t.Errorf("checks %q, want %q", got, want)
	}
	// With --target, as docker, only the stages the target needs.
	checks, err = RunChecks(context.Background(), Options{ContextDir: dir, Resolver: testResolver(t), Target: "unused"})
	if err != nil || len(checks) != 1 || checks[0].Rule != "JSONArgsRecommended" {
		t.Errorf("--target unused: checks %v, err %v", checks, err)
	}
	// A build error stops the checks, with those found before it.
	if err := os.WriteFile(filepath.Join(dir, "Buildfile"), []byte("FROM base\nCMD echo hi\nEXPOSE notaport\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	checks, err = RunChecks(context.Background(), Options{ContextDir: dir, Resolver: testResolver(t)})
	var be *Error
	if !errors.As(err, &be) || be.Line != 3 || len(checks) != 1 {
		t.Errorf("checks %v, err %v: want JSONArgsRecommended and the EXPOSE error at line 3", checks, err)
	}
}
