package build

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/suggest"

	"github.com/kiln-build/kiln/cache"
)

// CheckArg is the build arg that configures the build checks, as in docker; it wins over
// the Buildfile's "# check=" directive.
const CheckArg = "BUILDKIT_DOCKERFILE_CHECK"

// Check is one build-check warning: a BuildKit build-check rule the Buildfile breaks.
type Check struct {
	Rule        string   // BuildKit's rule name, e.g. "JSONArgsRecommended"
	Description string   // what the rule asks for
	URL         string   // the rule's documentation
	Message     string   // what is wrong at this place
	File        string   // the Buildfile's display name
	Line        int      // first line of the instruction; 0 when it has no location
	EndLine     int      // last line of the instruction
	Source      []string // the instruction's lines as written, Line to EndLine
}

// String is the one-line form: "Buildfile:5: JSONArgsRecommended: … (URL)".
func (c Check) String() string {
	s := c.Location() + ": " + c.Rule + ": " + c.Message
	if c.URL != "" {
		s += " (" + c.URL + ")"
	}
	return s
}

// Location is "Buildfile:LINE", or the file name alone when the check has no line.
func (c Check) Location() string {
	if c.Line > 0 {
		return fmt.Sprintf("%s:%d", c.File, c.Line)
	}
	return c.File
}

// parsedCheck is a rule the instructions parser reported; it is replayed through the build's
// checker once the build args (which may configure the checks) are known.
type parsedCheck struct {
	rule     string
	message  string
	loc      []parserRange
	comments []string
}

// parseRules are the rules BuildKit evaluates while parsing, by name, for the replay.
var parseRules = map[string]linter.LinterRuleI{}

func init() {
	for _, r := range []linter.LinterRuleI{&linter.RuleMaintainerDeprecated, &linter.RuleStageNameCasing,
		&linter.RuleFromAsCasing, &linter.RuleInvalidDefinitionDescription, &linter.RuleNoEmptyContinuation} {
		parseRules[r.RuleName()] = r
	}
}

// recorder is the linter Parse hands to BuildKit's instructions parser: every rule it meets is
// kept (skips in an instruction's own "# check=" comment apply already) for the checker.
func (f *File) recorder(comments []string) *linter.Linter {
	return linter.New(&linter.Config{ExperimentalAll: true, Warn: func(rule, _, _, msg string, loc []parser.Range) {
		f.parsed = append(f.parsed, parsedCheck{rule: rule, message: msg, loc: loc, comments: comments})
	}})
}

// parseCheckDirective reads the "# check=skip=…;error=true" directive, failing with its line
// when it is malformed.
func parseCheckDirective(name string, dt []byte) (*linter.Config, error) {
	v, _, loc, ok := parser.ParseDirective("check", dt)
	if !ok {
		return &linter.Config{}, nil
	}
	cfg, err := linter.ParseLintOptions(v)
	if err != nil {
		return nil, errAt(name, lineOf(loc), "", fmt.Errorf("invalid directive \"# check=%s\": %v; use # check=skip=RULE1,RULE2;error=true (or skip=all)", v, err))
	}
	return cfg, nil
}

// checker runs BuildKit's build-check rules at the places BuildKit's dockerfile2llb does,
// collecting what they find.
type checker struct {
	lint   *linter.Linter
	file   string
	lines  []string // the Buildfile's lines, for each check's source
	errors bool     // error=true: any check fails the build
	checks []Check
	report func(Check)
}

// newChecker configures the checks from --build-arg BUILDKIT_DOCKERFILE_CHECK or, without
// it, the Buildfile's directive, and replays what the parser found.
func newChecker(f *File, buildArgs map[string]string, report func(Check)) (*checker, error) {
	cfg := f.checkConfig
	if v, ok := buildArgs[CheckArg]; ok {
		var err error
		if cfg, err = linter.ParseLintOptions(v); err != nil {
			return nil, fmt.Errorf("--build-arg %s=%s: %v; use skip=RULE1,RULE2;error=true (or skip=all)", CheckArg, v, err)
		}
	}
	if cfg == nil {
		cfg = &linter.Config{}
	}
	c := &checker{file: f.Name, lines: f.lines, errors: cfg.ReturnAsError, report: report}
	cfg = &linter.Config{ExperimentalAll: cfg.ExperimentalAll, ExperimentalRules: cfg.ExperimentalRules,
		SkipAll: cfg.SkipAll, SkipRules: cfg.SkipRules, ReturnAsError: cfg.ReturnAsError, Warn: c.warn}
	c.lint = linter.New(cfg)
	for _, pc := range f.parsed {
		c.run(parseRules[pc.rule], pc.loc, pc.comments, pc.message)
	}
	return c, nil
}

func (c *checker) warn(rule, description, url, msg string, loc []parser.Range) {
	ch := Check{Rule: rule, Description: description, URL: url, Message: msg, File: c.file}
	if len(loc) > 0 {
		ch.Line, ch.EndLine = loc[0].Start.Line, max(loc[len(loc)-1].End.Line, loc[0].Start.Line)
		if ch.Line >= 1 && ch.EndLine <= len(c.lines) {
			ch.Source = slices.Clone(c.lines[ch.Line-1 : ch.EndLine])
		}
	}
	c.checks = append(c.checks, ch)
	if c.report != nil {
		c.report(ch)
	}
}

// run applies rule at loc, honouring a "# check=" comment right above the instruction.
func (c *checker) run(rule linter.LinterRuleI, loc []parserRange, comments []string, msg string) {
	if c == nil || rule == nil {
		return
	}
	c.lint.WithMergedConfigFromComments(comments).Run(rule, loc, msg)
}

// err fails the build when the checks are errors (error=true) and any was found.
func (c *checker) err() error {
	if c == nil || !c.errors || len(c.checks) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var rules []string
	for _, ch := range c.checks {
		if !seen[ch.Rule] {
			seen[ch.Rule] = true
			rules = append(rules, ch.Rule)
		}
	}
	sort.Strings(rules)
	return fmt.Errorf("%s: build checks failed (check=error=true): %s; fix them, or skip rules with # check=skip=RULE",
		c.file, strings.Join(rules, ", "))
}

// reservedStageNames cannot name a stage without shadowing what they mean in FROM and --from.
var reservedStageNames = map[string]bool{"context": true, "scratch": true}

// checkFile runs the whole-file rules, as BuildKit does right after parsing: stage names,
// instruction casing, and base names with only the default ARG values.
func (c *checker) checkFile(f *File, lex *shell.Lex) {
	names := map[string]bool{}
	lower, upper := 0, 0
	count := func(cmd string) {
		switch cmd {
		case strings.ToLower(cmd):
			lower++
		case strings.ToUpper(cmd):
			upper++
		}
	}
	for _, st := range f.Stages {
		if st.Name != "" {
			if reservedStageNames[st.Name] {
				c.run(&linter.RuleReservedStageName, st.loc, st.comments, linter.RuleReservedStageName.Format(st.Name))
			}
			if names[st.Name] {
				c.run(&linter.RuleDuplicateStageName, st.loc, st.comments, linter.RuleDuplicateStageName.Format(st.Name))
			}
			names[st.Name] = true
		}
		count(st.origCmd)
		for _, in := range st.Instructions {
			count(in.Command.Name())
		}
	}
	majorityLower := lower > upper
	casing := func(cmd string, loc []parserRange, comments []string) {
		want := ""
		if majorityLower && strings.ToLower(cmd) != cmd {
			want = "lowercase"
		} else if !majorityLower && strings.ToUpper(cmd) != cmd {
			want = "uppercase"
		}
		if want != "" {
			c.run(&linter.RuleConsistentInstructionCasing, loc, comments, linter.RuleConsistentInstructionCasing.Format(cmd, want))
		}
	}
	for _, st := range f.Stages {
		casing(st.origCmd, st.loc, st.comments)
		for _, in := range st.Instructions {
			casing(in.Command.Name(), in.Command.Location(), in.Command.Comments())
		}
	}
	c.checkDefaultBases(f, lex)
}

// checkDefaultBases flags FROM lines whose base name is not a valid image reference when only
// the ARG defaults are used (no --build-arg), as BuildKit's InvalidDefaultArgInFrom; unlike
// BuildKit, a base that names a stage ("FROM Build") is not an image and is not flagged.
func (c *checker) checkDefaultBases(f *File, lex *shell.Lex) {
	var args kvList
	for k, v := range platformArgs() {
		args = args.set(k, v)
	}
	for _, a := range f.MetaArgs {
		for _, kv := range a.Args {
			if kv.Value == nil {
				continue
			}
			v, _, err := lex.ProcessWord(*kv.Value, args)
			if err != nil {
				return // the build fails on this ARG with a better message
			}
			args = args.set(kv.Key, v)
		}
	}
	for _, st := range f.Stages {
		res, err := lex.ProcessWordWithMatches(st.BaseName, args)
		if err != nil {
			return
		}
		if _, isStage := (&planner{f: f}).stageByName(res.Result); isStage || strings.EqualFold(res.Result, "scratch") {
			continue
		}
		if _, err := cache.ParseName(res.Result); err != nil {
			c.run(&linter.RuleInvalidDefaultArgInFrom, st.loc, st.comments, linter.RuleInvalidDefaultArgInFrom.Format(st.BaseName))
		}
	}
}

// checkFrom runs the rules on a FROM line's variables, for every stage whether built or not,
// as BuildKit does: undeclared ARGs, and a --platform that is constant or $TARGETPLATFORM.
func (c *checker) checkFrom(f *File, st *Stage, lex *shell.Lex, global kvList) {
	declared := map[string]bool{}
	for _, k := range global.Keys() {
		declared[k] = true
	}
	for _, a := range f.MetaArgs {
		for _, kv := range a.Args {
			declared[kv.Key] = true
		}
	}
	undeclared := func(unmatched map[string]struct{}) {
		keys := sortedKeys(declared)
		for _, arg := range sortedKeys(unmatched) {
			if declared[arg] {
				continue
			}
			hint, _ := suggest.Search(arg, keys, true)
			c.run(&linter.RuleUndefinedArgInFrom, st.loc, st.comments, linter.RuleUndefinedArgInFrom.Format(arg, hint))
		}
	}
	if res, err := lex.ProcessWordWithMatches(st.BaseName, global); err == nil {
		undeclared(res.Unmatched)
	}
	if st.Platform == "" {
		return
	}
	res, err := lex.ProcessWordWithMatches(st.Platform, global)
	if err != nil {
		return
	}
	undeclared(res.Unmatched)
	if len(res.Matched) == 1 && len(res.Unmatched) == 0 {
		if _, ok := res.Matched["TARGETPLATFORM"]; ok {
			if tp, _ := global.Get("TARGETPLATFORM"); res.Result == tp {
				c.run(&linter.RuleRedundantTargetPlatform, st.loc, st.comments, linter.RuleRedundantTargetPlatform.Format(st.Platform))
			}
		}
	}
	if len(res.Matched) > 0 || len(res.Unmatched) > 0 {
		return // not a constant
	}
	p, err := v1.ParsePlatform(res.Result)
	if err != nil || strings.Contains(st.Name, p.OS) || strings.Contains(st.Name, p.Architecture) {
		return // a stage named for its platform sets it on purpose
	}
	c.run(&linter.RuleFromPlatformFlagConstDisallowed, st.loc, st.comments, linter.RuleFromPlatformFlagConstDisallowed.Format(res.Result))
}

// nonEnvArgs are ARGs BuildKit reads itself; they never reach an environment.
var nonEnvArgs = map[string]bool{"BUILDKIT_SBOM_SCAN_CONTEXT": true, "BUILDKIT_SBOM_SCAN_STAGE": true}

// checkUndefined reports variables an instruction uses that nothing defines; ARGs declared in
// the stage without a value count as defined, as in BuildKit.
func (sb *stageBuilder) checkUndefined(unmatched map[string]struct{}, env kvList) {
	for _, name := range sortedKeys(unmatched) {
		if nonEnvArgs[name] || slices.Contains(sb.ps.declared, name) {
			continue
		}
		hint, _ := suggest.Search(name, env.Keys(), true)
		sb.check(&linter.RuleUndefinedVar, linter.RuleUndefinedVar.Format(name, hint))
	}
}

// checkInstruction runs the rules on the current instruction that BuildKit runs while
// dispatching it.
func (sb *stageBuilder) checkInstruction() {
	switch c := sb.instr.Command.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			if kv.NoDelim {
				sb.check(&linter.RuleLegacyKeyValueFormat, linter.RuleLegacyKeyValueFormat.Format(c.Name()))
			}
			sb.checkSecretName("ENV", kv.Key)
		}
	case *instructions.LabelCommand:
		for _, kv := range c.Labels {
			if kv.NoDelim {
				sb.check(&linter.RuleLegacyKeyValueFormat, linter.RuleLegacyKeyValueFormat.Format(c.Name()))
			}
		}
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			sb.checkSecretName("ARG", kv.Key)
		}
	case *instructions.WorkdirCommand:
		// Only the first WORKDIR of the build counts: a base image's workdir may change under it.
		if !sb.ps.workdirSet && !path.IsAbs(c.Path) {
			sb.check(&linter.RuleWorkdirRelativePath, linter.RuleWorkdirRelativePath.Format(c.Path))
		}
		sb.ps.workdirSet = true
	case *instructions.CmdCommand:
		sb.checkOnce(&sb.cmdAt)
		sb.checkJSONArgs(c.PrependShell)
	case *instructions.EntrypointCommand:
		sb.checkOnce(&sb.entrypointAt)
		sb.checkJSONArgs(c.PrependShell)
	case *instructions.HealthCheckCommand:
		sb.checkOnce(&sb.healthcheckAt)
	}
}

// checkJSONArgs flags a shell-form CMD or ENTRYPOINT, unless SHELL chose the shell on purpose.
func (sb *stageBuilder) checkJSONArgs(shellForm bool) {
	if shellForm && len(sb.ps.Config.Config.Shell) == 0 {
		name := sb.instr.Command.Name()
		sb.check(&linter.RuleJSONArgsRecommended, linter.RuleJSONArgsRecommended.Format(name))
	}
}

// checkOnce flags the earlier of two CMD, ENTRYPOINT or HEALTHCHECK in a stage: it is the one
// that has no effect.
func (sb *stageBuilder) checkOnce(prev *[]parserRange) {
	if *prev != nil {
		sb.p.checks.run(&linter.RuleMultipleInstructionsDisallowed, *prev, sb.instr.Command.Comments(),
			linter.RuleMultipleInstructionsDisallowed.Format(sb.instr.Command.Name()))
	}
	*prev = sb.loc()
}

var (
	secretName     = regexp.MustCompile(`(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)`)
	secretNameSafe = regexp.MustCompile(`(?i)(?:_|^)(?:public|file|version)(?:_|$)`)
)

// checkSecretName flags an ARG or ENV whose name says it holds a secret: its value would be
// kept in the image's config or history. BuildKit's word lists.
func (sb *stageBuilder) checkSecretName(instr, key string) {
	if SecretArgName(key) {
		sb.check(&linter.RuleSecretsUsedInArgOrEnv, linter.RuleSecretsUsedInArgOrEnv.Format(instr, key))
	}
}

// checkIgnored flags a COPY or ADD source from the context that .dockerignore excludes; with
// "!" patterns BuildKit cannot tell statically, so it does not check.
func (sb *stageBuilder) checkIgnored(add bool, sources []string) {
	bctx := sb.p.opts.Context
	if bctx == nil || bctx.pm == nil || bctx.pm.Exclusions() {
		return
	}
	cmd := "Copy"
	if add {
		cmd = "Add"
	}
	for _, src := range sources {
		src = path.Clean(src)
		if src == "." || src == "/" {
			if !ignoresRoot(bctx) {
				continue
			}
		}
		rel := strings.TrimPrefix(src, "/")
		if rel == "" {
			rel = "."
		}
		bctx.pmMu.Lock()
		ig, err := bctx.pm.MatchesOrParentMatches(rel)
		bctx.pmMu.Unlock()
		if err == nil && ig {
			sb.check(&linter.RuleCopyIgnoredFile, linter.RuleCopyIgnoredFile.Format(cmd, src))
		}
	}
}

// ignoresRoot reports whether a pattern excludes everything at the context's root.
func ignoresRoot(c *Context) bool {
	for _, p := range c.pm.Patterns() {
		if s := p.String(); !p.Exclusion() && (s == "*" || s == "**" || s == "**/*") {
			return true
		}
	}
	return false
}

// check runs rule on the current instruction.
func (sb *stageBuilder) check(rule linter.LinterRuleI, msg string) {
	sb.p.checks.run(rule, sb.loc(), sb.instr.Command.Comments(), msg)
}

// loc is the current instruction's place: a base image's ONBUILD trigger is the FROM line.
func (sb *stageBuilder) loc() []parserRange {
	if sb.onbuild {
		return sb.st.loc
	}
	return sb.instr.Command.Location()
}
