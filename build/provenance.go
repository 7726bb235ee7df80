package build

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
)

// ProvenanceMode is how much SLSA provenance a build attaches: BuildKit's --provenance modes.
type ProvenanceMode int

// The provenance modes. The zero value follows BuildKit's default: min for a build that is
// pushed or exported, none otherwise.
const (
	ProvenanceAuto ProvenanceMode = iota
	ProvenanceOff
	ProvenanceMin // what was built from what: sources, target, no build args or labels
	ProvenanceMax // also the build args, labels, secret ids, every step and the Buildfile itself
)

// Names the provenance is written under: BuildKit's, so its readers understand kiln's.
const (
	PredicateSLSA1    = "https://slsa.dev/provenance/v1"
	BuildTypeBuildKit = "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md"
	DefaultBuilderID  = "https://github.com/kiln-build/kiln"
)

// ParseProvenance reads a --provenance value as docker does: true, false, or
// mode=min|max[,version=v1][,builder-id=URI]; it returns the mode and the builder ID ("" = default).
func ParseProvenance(v string) (ProvenanceMode, string, error) {
	switch strings.ToLower(v) {
	case "true", "1":
		return ProvenanceMin, "", nil
	case "false", "0":
		return ProvenanceOff, "", nil
	}
	mode, builder := ProvenanceMin, ""
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch {
		case k == "mode" && val == "min":
			mode = ProvenanceMin
		case k == "mode" && val == "max":
			mode = ProvenanceMax
		case k == "version" && val == "v1":
		case k == "builder-id" && val != "":
			builder = val
		default:
			return 0, "", fmt.Errorf("--provenance=%s: want true, false or mode=min|max[,version=v1][,builder-id=URI]", v)
		}
	}
	return mode, builder, nil
}

// ProvenanceOptions say what provenance a pipeline attaches and who built it.
type ProvenanceOptions struct {
	Mode      ProvenanceMode
	BuilderID string // runDetails.builder.id; "" = DefaultBuilderID
	Version   string // kiln's version, runDetails.builder.version.kiln
}

// buildRecord is what a build saw, kept for its provenance.
type buildRecord struct {
	buildfile  string // path relative to the context ("Buildfile" for stdin)
	data       []byte // the Buildfile's bytes
	target     string
	args       map[string]string // without the ones that hold a secret
	labels     map[string]string // likewise
	withheld   bool              // a build arg or label was left out as a secret
	secrets    []string          // ids only
	contextDir string
	graph      *Graph
	started    time.Time
	finished   time.Time
	epoch      *time.Time
}

// newBuildRecord keeps what provenance needs of a finished build. Secrets never enter it: a
// build arg named like one (API_TOKEN) or a build arg or label whose value is a --secret's.
func newBuildRecord(o Options, data []byte, g *Graph, started time.Time) *buildRecord {
	r := &buildRecord{buildfile: relBuildfile(o.ContextDir, o.Buildfile), data: data, target: o.Target,
		secrets: sortedKeys(o.Secrets), contextDir: o.ContextDir, graph: g, started: started, finished: time.Now(), epoch: o.Epoch}
	isSecret := func(v string) bool {
		for _, sv := range o.Secrets {
			if len(sv) > 0 && v == string(sv) {
				return true
			}
		}
		return false
	}
	keep := func(m map[string]string, byName bool) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if isSecret(v) || byName && SecretArgName(k) {
				r.withheld = true
				continue
			}
			out[k] = v
		}
		return out
	}
	r.args, r.labels = keep(o.BuildArgs, true), keep(o.Labels, false)
	return r
}

// provenance is the SLSA v1 predicate in the shape BuildKit's types give it.
type provenance struct {
	BuildDefinition struct {
		BuildType          string `json:"buildType"`
		ExternalParameters struct {
			ConfigSource configSource `json:"configSource"`
			Request      request      `json:"request"`
		} `json:"externalParameters"`
		InternalParameters struct {
			BuildConfig     *buildConfig `json:"buildConfig,omitempty"`
			BuilderPlatform string       `json:"builderPlatform"`
			TargetPlatform  string       `json:"targetPlatform,omitempty"`
		} `json:"internalParameters"`
		ResolvedDependencies []resource `json:"resolvedDependencies,omitempty"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version,omitempty"`
		} `json:"builder"`
		Metadata struct {
			InvocationID string     `json:"invocationID"`
			StartedOn    *time.Time `json:"startedOn,omitempty"`
			FinishedOn   *time.Time `json:"finishedOn,omitempty"`
			BuildKit     struct {
				VCS    map[string]string `json:"vcs,omitempty"`
				Source *source           `json:"source,omitempty"`
			} `json:"buildkit_metadata"`
			Completeness struct {
				Request              bool `json:"request"`
				ResolvedDependencies bool `json:"resolvedDependencies"`
			} `json:"buildkit_completeness"`
		} `json:"metadata"`
	} `json:"runDetails"`
}

type configSource struct {
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
	Path   string            `json:"path,omitempty"`
}

type request struct {
	Frontend string            `json:"frontend,omitempty"`
	Args     map[string]string `json:"args,omitempty"`
	Secrets  []idRef           `json:"secrets,omitempty"`
	Locals   []nameRef         `json:"locals,omitempty"`
}

type idRef struct {
	ID string `json:"id"`
}

type nameRef struct {
	Name string `json:"name"`
}

type resource struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest,omitempty"`
}

// buildConfig lists kiln's steps; BuildKit puts LLB ops under llbDefinition, which kiln has not.
type buildConfig struct {
	Steps []provStep `json:"steps"`
}

type provStep struct {
	ID          string   `json:"id"`
	Instruction string   `json:"instruction"`
	Stage       int      `json:"stage"`
	CacheKey    string   `json:"cacheKey"`
	Inputs      []string `json:"inputs,omitempty"`
}

// source maps steps to Buildfile lines and holds the Buildfile, as buildkit_metadata.source.
type source struct {
	Locations map[string]locations `json:"locations,omitempty"`
	Infos     []sourceInfo         `json:"infos,omitempty"`
}

type locations struct {
	Locations []location `json:"locations"`
}

type location struct {
	Ranges []lineRange `json:"ranges"`
}

type lineRange struct {
	Start position `json:"start"`
	End   position `json:"end"`
}

type position struct {
	Line int `json:"line"`
}

type sourceInfo struct {
	Filename string `json:"filename"`
	Language string `json:"language"`
	Data     []byte `json:"data"`
}

// provenanceFor writes the SLSA v1 predicate of a build's image.
func provenanceFor(ctx context.Context, r *buildRecord, img *Image, po ProvenanceOptions) (cache.Attestation, error) {
	var p provenance
	bd := &p.BuildDefinition
	bd.BuildType = BuildTypeBuildKit
	sum := sha256.Sum256(r.data)
	bd.ExternalParameters.ConfigSource = configSource{Path: r.buildfile, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
	req := request{Frontend: "dockerfile.v0", Args: map[string]string{}, Locals: []nameRef{{Name: "context"}, {Name: "dockerfile"}}}
	if r.target != "" {
		req.Args["target"] = r.target
	}
	if po.Mode == ProvenanceMax {
		for k, v := range r.args {
			req.Args["build-arg:"+k] = v
		}
		for k, v := range r.labels {
			req.Args["label:"+k] = v
		}
		for _, id := range r.secrets {
			req.Secrets = append(req.Secrets, idRef{ID: id})
		}
		bd.InternalParameters.BuildConfig, p.RunDetails.Metadata.BuildKit.Source = r.steps()
	}
	if len(req.Args) == 0 {
		req.Args = nil
	}
	bd.ExternalParameters.Request = req
	bd.InternalParameters.BuilderPlatform = HostPlatform
	bd.InternalParameters.TargetPlatform = platformString(img.Config)
	deps, err := r.dependencies()
	if err != nil {
		return cache.Attestation{}, err
	}
	bd.ResolvedDependencies = deps

	rd := &p.RunDetails
	rd.Builder.ID = po.BuilderID
	if rd.Builder.ID == "" {
		rd.Builder.ID = DefaultBuilderID
	}
	if po.Version != "" {
		rd.Builder.Version = map[string]string{"kiln": po.Version}
	}
	md := &rd.Metadata
	started, finished := r.started.UTC(), r.finished.UTC()
	if r.epoch != nil { // a reproducible build's provenance is reproducible too
		started, finished = r.epoch.UTC(), r.epoch.UTC()
	}
	md.StartedOn, md.FinishedOn = &started, &finished
	md.InvocationID = r.invocationID(img)
	md.BuildKit.VCS = contextVCS(ctx, r.contextDir)
	// As BuildKit: min leaves out the build args and labels, and the context's files are not
	// listed one by one, so the dependencies are never complete.
	md.Completeness.Request = !r.withheld && (po.Mode == ProvenanceMax || len(r.args)+len(r.labels) == 0)
	md.Completeness.ResolvedDependencies = false
	raw, err := json.Marshal(p)
	if err != nil {
		return cache.Attestation{}, fmt.Errorf("encode provenance: %w", err)
	}
	return cache.Attestation{PredicateType: PredicateSLSA1, Predicate: raw}, nil
}

// steps lists every vertex as a step (mode=max) and maps each to its Buildfile line.
func (r *buildRecord) steps() (*buildConfig, *source) {
	ids := map[*Vertex]string{}
	bc := &buildConfig{}
	src := &source{Locations: map[string]locations{}}
	for i, v := range r.graph.Vertices {
		id := fmt.Sprintf("step%d", i)
		ids[v] = id
		st := provStep{ID: id, Instruction: stepText(v.Name), Stage: v.Stage, CacheKey: v.Key}
		if v.Parent != nil {
			st.Inputs = append(st.Inputs, ids[v.Parent])
		}
		for _, d := range v.Deps {
			st.Inputs = append(st.Inputs, ids[d])
		}
		bc.Steps = append(bc.Steps, st)
		if v.Line > 0 {
			src.Locations[id] = locations{Locations: []location{{Ranges: []lineRange{{Start: position{v.Line}, End: position{v.Line}}}}}}
		}
	}
	src.Infos = []sourceInfo{{Filename: r.buildfile, Language: "Dockerfile", Data: r.data}}
	return bc, src
}

// stepText drops the progress numbering ("[2/4] ") from a vertex name.
func stepText(name string) string {
	if strings.HasPrefix(name, "[") {
		if _, rest, ok := strings.Cut(name, "] "); ok {
			return rest
		}
	}
	return name
}

// dependencies are the images (by digest), URLs (by checksum) and git sources (by commit)
// the build read, each once, in graph order.
func (r *buildRecord) dependencies() ([]resource, error) {
	var out []resource
	seen := map[string]bool{}
	add := func(res resource) {
		key := res.URI + fmt.Sprint(res.Digest)
		if !seen[key] {
			seen[key] = true
			out = append(out, res)
		}
	}
	for _, v := range r.graph.Vertices {
		switch op := v.op.(type) {
		case *sourceOp:
			d, err := v1.NewHash(op.digest)
			if err != nil {
				return nil, fmt.Errorf("provenance: image %s: %w", op.ref, err)
			}
			plat := ""
			if cf, err := op.image.ConfigFile(); err == nil {
				plat = platformString(cf)
			}
			add(resource{URI: imagePURL(op.ref, plat), Digest: map[string]string{d.Algorithm: d.Hex}})
		case *copyOp:
			for _, u := range op.urls {
				algo, hexsum, _ := strings.Cut(u.key(), ":")
				add(resource{URI: redactURL(u.url), Digest: map[string]string{algo: hexsum}})
			}
			for _, g := range op.git {
				uri := redactURL(g.url)
				if g.ref != "" {
					uri += "#" + g.ref
				}
				add(resource{URI: uri, Digest: commitDigest(g.commit)})
			}
		}
	}
	return out, nil
}

func commitDigest(commit string) map[string]string {
	if len(commit) == 64 {
		return map[string]string{"sha256": commit}
	}
	return map[string]string{"sha1": commit}
}

// invocationID is random, except in a reproducible build (SOURCE_DATE_EPOCH), where it is
// derived from what was built so that the attestation is byte-for-byte the same.
func (r *buildRecord) invocationID(img *Image) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [25]byte
	if r.epoch != nil {
		h := sha256.Sum256([]byte(img.Manifest.Digest.String() + "\x00" + r.target + "\x00" + r.epoch.String()))
		copy(b[:], h[:])
	} else {
		_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// platformString is os/arch[/variant] of an image config, as containerd formats platforms.
func platformString(cf *v1.ConfigFile) string {
	if cf == nil || cf.OS == "" {
		return HostPlatform
	}
	p := cf.OS + "/" + cf.Architecture
	if cf.Variant != "" && !(cf.Architecture == "arm64" && cf.Variant == "v8") {
		p += "/" + cf.Variant
	}
	return p
}

// imagePURL is BuildKit's package URL of an image reference: pkg:docker/NS/NAME@TAG with the
// digest and platform as qualifiers. A reference that is no name (an image ID) stays as is.
func imagePURL(ref, platform string) string {
	n, err := cache.ParseName(ref)
	if err != nil || strings.HasPrefix(ref, "sha256:") {
		return ref
	}
	short := n.Short()
	repo, version := short, ""
	var quals []string
	if d := n.Digest(); d != "" {
		repo = strings.TrimSuffix(short, "@"+d)
		quals = append(quals, "digest="+url.QueryEscape(d))
	} else {
		repo = strings.TrimSuffix(short, ":"+n.Tag())
		version = "@" + url.PathEscape(n.Tag())
	}
	segs := strings.Split(repo, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	if platform != "" {
		quals = append(quals, "platform="+url.QueryEscape(platform))
	}
	out := "pkg:docker/" + strings.Join(segs, "/") + version
	if len(quals) > 0 {
		out += "?" + strings.Join(quals, "&")
	}
	return out
}

// redactURL drops credentials from a URL (https://user:token@host/…) before it is recorded.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}

// SecretArgName reports whether a build arg's name says it holds a secret (API_TOKEN,
// DB_PASSWORD), by BuildKit's SecretsUsedInArgOrEnv rule; such values stay out of provenance.
func SecretArgName(name string) bool {
	return secretName.MatchString(name) && !secretNameSafe.MatchString(name)
}

// contextVCS is the git remote and commit of a context that is a git checkout ("-dirty" when
// it has changes), as buildx sends them in vcs:source and vcs:revision; nil otherwise.
func contextVCS(ctx context.Context, dir string) map[string]string {
	git := func(args ...string) (string, bool) {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...).Output()
		return strings.TrimSpace(string(out)), err == nil
	}
	rev, ok := git("rev-parse", "HEAD")
	if !ok || rev == "" {
		return nil
	}
	if status, ok := git("status", "--porcelain", "--untracked-files=no"); ok && status != "" {
		rev += "-dirty"
	}
	vcs := map[string]string{"revision": rev}
	if remote, ok := git("remote", "get-url", "origin"); ok && remote != "" {
		vcs["source"] = redactURL(remote)
	}
	return vcs
}

// relBuildfile is the Buildfile's path as provenance records it: relative to the context
// when inside it, so that the document does not depend on where the checkout lives.
func relBuildfile(contextDir, path string) string {
	if path == "" || path == "-" {
		return "Buildfile"
	}
	absCtx, err1 := filepath.Abs(contextDir)
	absFile, err2 := filepath.Abs(path)
	if err1 == nil && err2 == nil {
		if rel, err := filepath.Rel(absCtx, absFile); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.Base(path)
}
