package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// copyOp copies files from the build context into the stage's filesystem.
type copyOp struct {
	add      bool
	sel      *selection
	contents []instructions.SourceContent // heredoc files
	dest     string                       // absolute and clean
	destDir  bool                         // the destination is a directory (trailing slash or several sources)
	chown    string
	chmod    *chmodSpec
	unpack   bool // ADD extracts local tar archives
	from     *copyFrom
	exclude  []string // --exclude patterns
	urls     []*urlSource
	git      []*gitSource
	link     bool     // --link: the layer is made on an empty filesystem, so it does not depend on the parent
	parents  bool     // --parents: keep each source's path under the destination
	ctx      *Context // COPY --from a --build-context directory; nil = the build context
}

// copyFrom is the source of COPY --from: another stage's or an image's filesystem.
type copyFrom struct {
	vertex  *Vertex  // its tip; nil for an empty scratch stage
	what    string   // "stage build" or "image alpine", for messages
	sources []string // source paths inside it
}

func (sb *stageBuilder) copyCmd(ctx context.Context, c *instructions.CopyCommand) error {
	op := &copyOp{exclude: c.ExcludePatterns, parents: c.Parents, link: c.Link}
	if dir, err := sb.namedDir(c.From); err != nil || dir != nil {
		if err != nil {
			return err
		}
		op.ctx = dir
	} else if c.From == "" {
		sb.checkIgnored(false, c.SourcePaths)
	} else {
		from, err := sb.copyFrom(ctx, c.From, c.SourcesAndDest.SourcePaths)
		if err != nil {
			return err
		}
		op.from = from
	}
	return sb.planCopy(ctx, op, c.SourcesAndDest, c.Chown, c.Chmod)
}

// copyFrom resolves --from: an earlier stage (by name or index) or an image.
func (sb *stageBuilder) copyFrom(ctx context.Context, ref string, sources []string) (*copyFrom, error) {
	name, _, err := sb.lex.ProcessWord(ref, sb.env())
	if err != nil {
		return nil, fmt.Errorf("--from=%s: %w", ref, err)
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("--from=%s needs source paths (heredocs come from the Buildfile)", name)
	}
	if idx, ok := sb.p.stageByName(name); ok {
		if idx >= sb.st.Index {
			return nil, fmt.Errorf("--from=%s: a stage can only copy from stages defined before it", name)
		}
		bs, err := sb.p.stage(ctx, idx)
		if err != nil {
			return nil, err
		}
		return &copyFrom{vertex: bs.Tip, what: "stage " + stageLabel(&sb.p.f.Stages[idx]), sources: sources}, nil
	}
	if strings.EqualFold(name, "scratch") {
		return &copyFrom{what: "scratch", sources: sources}, nil
	}
	_, v, err := sb.source(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("--from=%s: not a stage of this Buildfile, and as an image: %w", name, err)
	}
	return &copyFrom{vertex: v, what: "image " + name, sources: sources}, nil
}

// namedDir is the --build-context directory a COPY --from names, unless a stage has that name.
func (sb *stageBuilder) namedDir(from string) (*Context, error) {
	if from == "" {
		return nil, nil
	}
	name, _, err := sb.lex.ProcessWord(from, sb.env())
	if err != nil {
		return nil, fmt.Errorf("--from=%s: %w", from, err)
	}
	if _, isStage := sb.p.stageByName(name); isStage {
		return nil, nil
	}
	return sb.p.namedDir(name), nil
}

func (sb *stageBuilder) addCmd(ctx context.Context, c *instructions.AddCommand) error {
	op := &copyOp{add: true, unpack: c.Unpack == nil || *c.Unpack, exclude: c.ExcludePatterns, link: c.Link}
	urls, local, err := sb.planURLs(ctx, c.SourcePaths, c.Checksum)
	if err != nil {
		return err
	}
	if local, err = sb.planGit(ctx, op, local, c.KeepGitDir != nil && *c.KeepGitDir); err != nil {
		return err
	}
	sb.checkIgnored(true, local)
	op.urls = urls
	sd := c.SourcesAndDest
	count := len(sd.SourcePaths) + len(sd.SourceContents)
	sd.SourcePaths = local
	if err := op.setDest(c.SourcesAndDest, sb.ps.Config.Config.WorkingDir); err != nil {
		return err
	}
	for _, u := range urls {
		if u.name == "" && (op.destDir || count > 1) {
			return fmt.Errorf("source %q: the URL has no file name; give the destination as a file path", u.url)
		}
	}
	return sb.planCopy(ctx, op, sd, c.Chown, c.Chmod)
}

func isURL(s string) bool {
	for _, p := range []string{"http://", "https://", "git://", "git@", "ssh://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// planCopy validates a COPY/ADD, selects and hashes its sources and adds its vertex.
func (sb *stageBuilder) planCopy(ctx context.Context, op *copyOp, sd instructions.SourcesAndDest, chown, chmod string) error {
	if err := op.setDest(sd, sb.ps.Config.Config.WorkingDir); err != nil {
		return err
	}
	if err := validateChown(chown); err != nil {
		return err
	}
	if op.link && chown != "" && !numericOwner(chown) {
		return fmt.Errorf("--link with --chown=%s: names cannot be looked up without the parent filesystem; use numeric uid:gid", chown)
	}
	mode, err := parseChmod(chmod)
	if err != nil {
		return err
	}
	op.chown, op.chmod, op.contents = chown, mode, sd.SourceContents
	if len(sd.SourcePaths) > 0 && op.from == nil && !sb.p.opts.ChecksOnly {
		bctx := sb.p.opts.Context
		if op.ctx != nil {
			bctx = op.ctx
		}
		if bctx == nil {
			return errors.New("no build context to copy from")
		}
		if op.sel, err = bctx.Select(ctx, sd.SourcePaths); err != nil {
			return err
		}
		if len(op.exclude) > 0 { // Select summed the selection already; --exclude changes it
			if err := op.sel.exclude(op.exclude); err != nil {
				return err
			}
			op.sel.digest = op.sel.sum()
		}
	}
	var deps []*Vertex
	if op.from != nil && op.from.vertex != nil {
		deps = []*Vertex{op.from.vertex}
	}
	v := sb.p.add(ctx, sb.vertex(op, deps...))
	sb.ps.Tip = v
	sb.step(v)
	return nil
}

// setDest resolves the destination against WORKDIR, keeping whether it names a directory.
func (op *copyOp) setDest(sd instructions.SourcesAndDest, workdir string) error {
	dest := sd.DestPath
	if dest == "" {
		return errors.New("no destination specified")
	}
	op.destDir = strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if n := len(sd.SourcePaths) + len(sd.SourceContents); n > 1 && !op.destDir {
		return errors.New("when using COPY with more than one source file, the destination must be a directory and end with a /")
	}
	if !path.IsAbs(dest) {
		if workdir == "" {
			workdir = "/"
		}
		dest = path.Join(workdir, dest)
	}
	op.dest = path.Clean(dest)
	if op.dest == "/" {
		op.destDir = true
	}
	return nil
}

// cacheKey covers the instruction's flags, the selected files' digest and, for --from,
// the source's key (deps[0]): the same key means the same files.
func (op *copyOp) cacheKey(_ context.Context, deps []string) opKey {
	return opKey{kind: CopyOp, inputs: op.keyInputs(deps), files: op.sel.fileDigests, parentFree: op.link}
}

func (op *copyOp) keyInputs(deps []string) []KeyInput {
	instr := "COPY"
	if op.add {
		instr = "ADD"
	}
	in := []KeyInput{{Name: "instruction", Value: instr}, {Name: "dest", Value: op.dest},
		{Name: "dest-is-dir", Value: strconv.FormatBool(op.destDir)}, {Name: "chown", Value: op.chown}}
	if op.chmod != nil {
		in = append(in, KeyInput{Name: "chmod", Value: op.chmod.raw})
	}
	if op.add {
		in = append(in, KeyInput{Name: "unpack", Value: strconv.FormatBool(op.unpack)})
	}
	for _, u := range op.urls {
		in = append(in, KeyInput{Name: "url:" + u.url, Value: u.key()})
	}
	for _, g := range op.git {
		in = append(in, KeyInput{Name: "git:" + g.url + "#" + g.ref + ":" + g.subdir,
			Value: fmt.Sprintf("%s keep-git-dir=%t", g.commit, g.keepGitDir)})
	}
	if len(op.exclude) > 0 {
		in = append(in, KeyInput{Name: "exclude", Value: strings.Join(op.exclude, "\x00")})
	}
	if op.parents {
		in = append(in, KeyInput{Name: "parents", Value: "true"})
	}
	if op.link {
		in = append(in, KeyInput{Name: "link", Value: "true"})
	}
	if op.sel != nil {
		in = append(in, KeyInput{Name: "context", Value: op.sel.digest})
	}
	if f := op.from; f != nil {
		src := "scratch"
		if f.vertex != nil {
			src = deps[0]
		}
		in = append(in, KeyInput{Name: "from", Value: src}, KeyInput{Name: "from-sources", Value: strings.Join(f.sources, "\x00")})
	}
	for _, c := range op.contents {
		sum := sha256.Sum256([]byte(c.Data))
		in = append(in, KeyInput{Name: "heredoc:" + c.Path, Value: "sha256:" + hex.EncodeToString(sum[:])})
	}
	return in
}

// validateChown checks the user[:group] syntax and the range of numeric ids; names are
// resolved in the image later.
func validateChown(s string) error {
	if s == "" {
		return nil
	}
	u, g, hasGroup := strings.Cut(s, ":")
	if u == "" || (hasGroup && g == "") || strings.Count(s, ":") > 1 {
		return fmt.Errorf("invalid --chown=%s: use user, uid, user:group or uid:gid", s)
	}
	for _, id := range []string{u, g} {
		if err := checkID(id); err != nil {
			return fmt.Errorf("invalid --chown=%s: %w", s, err)
		}
	}
	return nil
}

// maxID is the largest uid or gid a file can have: 2^32-1 is chown(2)'s "leave unchanged".
const maxID = 1<<32 - 2

// checkID refuses a number (or what looks like one, signed) outside 0..maxID, so that no id
// wraps to root; names pass, they are looked up in the image.
func checkID(s string) error {
	digits := strings.TrimLeft(s, "+-")
	if !isNumeric(digits) {
		return nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err != nil || n > maxID {
		return fmt.Errorf("id %s is out of range 0..%d", s, uint64(maxID))
	}
	return nil
}

// numericOwner reports whether a --chown value is uid or uid:gid in digits.
func numericOwner(s string) bool {
	u, g, _ := strings.Cut(s, ":")
	return isNumeric(u) && (g == "" || isNumeric(g))
}

// planGit checks out the git sources among sources and returns the others.
func (sb *stageBuilder) planGit(ctx context.Context, op *copyOp, sources []string, keep bool) ([]string, error) {
	var local []string
	for _, src := range sources {
		if !isGitURL(src) {
			local = append(local, src)
			continue
		}
		g := parseGitSource(src, keep)
		if sb.p.opts.ChecksOnly {
			op.git = append(op.git, g)
			continue
		}
		if err := g.fetch(ctx, sb.p.downloadDir()); err != nil {
			return nil, err
		}
		op.git = append(op.git, g)
	}
	if keep && len(op.git) == 0 {
		return nil, errors.New("--keep-git-dir applies only to git sources")
	}
	return local, nil
}
