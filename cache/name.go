package cache

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is how docker spells the default registry in normalized names; go-containerregistry
// calls it index.docker.io.
const dockerHub = "docker.io"

// Name is an image reference normalized by docker's rules: registry, repository and exactly
// one of tag or digest. Compare Names with ==.
type Name struct {
	registry string
	repo     string
	tag      string
	digest   string
}

// ParseName normalizes what a user typed: "hello" → "docker.io/library/hello:latest",
// "localhost:5000/a/b" → "localhost:5000/a/b:latest"; "x@sha256:…" stays a digest reference
// (a tag written together with a digest is dropped, the digest decides).
func ParseName(s string) (Name, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return Name{}, fmt.Errorf("invalid reference format: %s", nameProblem(s, err))
	}
	n := Name{registry: ref.Context().RegistryStr(), repo: ref.Context().RepositoryStr()}
	if n.registry == name.DefaultRegistry {
		n.registry = dockerHub
	}
	switch r := ref.(type) {
	case name.Digest:
		n.digest = r.DigestStr()
	case name.Tag:
		n.tag = r.TagStr()
	}
	if problem := dockerProblem(n); problem != "" {
		return Name{}, fmt.Errorf("invalid reference format: %q: %s", s, problem)
	}
	return n, nil
}

// Docker's reference grammar, stricter than go-containerregistry's character checks, so that
// kiln accepts exactly the names docker does.
var (
	pathComponentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagRE           = regexp.MustCompile(`^\w[\w.-]{0,127}$`)
	domainRE        = regexp.MustCompile(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
)

// maxNameLength is docker's limit on registry + "/" + repository.
const maxNameLength = 255

func dockerProblem(n Name) string {
	if !domainRE.MatchString(n.registry) {
		return "invalid registry host " + n.registry
	}
	for _, c := range strings.Split(n.repo, "/") {
		if !pathComponentRE.MatchString(c) {
			return fmt.Sprintf("repository path component %q must be lowercase letters and digits, separated by '.', '_', '__' or '-'", c)
		}
	}
	if len(n.Repository()) > maxNameLength {
		return fmt.Sprintf("repository name must not be longer than %d characters", maxNameLength)
	}
	if n.tag != "" && !tagRE.MatchString(n.tag) {
		return fmt.Sprintf("tag %q must start with a letter, digit or '_' and have at most 128 characters", n.tag)
	}
	return ""
}

// nameProblem digs the specific reason out of go-containerregistry, whose ParseReference only
// says "could not parse reference".
func nameProblem(s string, err error) string {
	var e2 error
	if strings.Contains(s, "@") {
		_, e2 = name.NewDigest(s)
	} else {
		_, e2 = name.NewTag(s)
	}
	if e2 != nil {
		err = e2
	}
	var bad *name.ErrBadName
	if errors.As(err, &bad) && s != "" {
		return fmt.Sprintf("%q: %s", s, strings.TrimPrefix(bad.Error(), "could not parse reference: "))
	}
	return fmt.Sprintf("%q", s)
}

// String is the full normalized form kiln stores: "docker.io/library/hello:latest".
func (n Name) String() string {
	if n.digest != "" {
		return n.Repository() + "@" + n.digest
	}
	return n.Repository() + ":" + n.tag
}

// Short is the familiar form docker shows: "hello:latest", "user/app:1", "localhost:5000/a/b:1".
func (n Name) Short() string {
	repo := n.Repository()
	if first, _, _ := strings.Cut(n.repo, "/"); n.registry == dockerHub && !looksLikeHost(first) {
		repo = n.repo
		if rest, ok := strings.CutPrefix(n.repo, "library/"); ok && !strings.Contains(rest, "/") {
			repo = rest
		}
	}
	if n.digest != "" {
		return repo + "@" + n.digest
	}
	return repo + ":" + n.tag
}

// looksLikeHost is docker's test for whether a name's first component is a registry, which
// the short form must not produce by accident ("docker.io/a.b/c" stays as typed).
func looksLikeHost(c string) bool {
	return strings.ContainsAny(c, ".:") || c == "localhost"
}

// Repository is the normalized name without tag or digest: "docker.io/library/hello".
func (n Name) Repository() string { return n.registry + "/" + n.repo }

// Registry is the registry host (and port): "docker.io", "localhost:5000".
func (n Name) Registry() string { return n.registry }

// Tag is the tag, or "" for a digest reference.
func (n Name) Tag() string { return n.tag }

// Digest is the "sha256:…" digest of a digest reference, or "" for a tag.
func (n Name) Digest() string { return n.digest }

// IsZero reports whether n is the zero Name (no reference at all).
func (n Name) IsZero() bool { return n == Name{} }
