package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kiln-build/kiln/cache/layer"
)

// gitSource is one ADD <git URL>[#ref[:subdir]] or git build context, checked out with
// go-git at plan time (no system git needed, so kiln-in-kiln images can fetch): the commit
// it resolves to is part of the step's key.
type gitSource struct {
	url, ref, subdir string
	keepGitDir       bool
	purpose          string // what fetches it, for messages: "ADD" when empty
	dir              string // the checkout
	commit           string
}

// gitTimeout bounds one fetch, as a stuck server must not hang a build forever.
const gitTimeout = 10 * time.Minute

// isGitURL follows BuildKit: scp-like and git/ssh URLs, or http(s) URLs ending in .git.
func isGitURL(s string) bool {
	for _, p := range []string{"git://", "git@", "ssh://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	u, _, _ := strings.Cut(s, "#")
	return (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) && strings.HasSuffix(u, ".git")
}

func parseGitSource(s string, keep bool) *gitSource {
	u, frag, _ := strings.Cut(s, "#")
	ref, sub, _ := strings.Cut(frag, ":")
	return &gitSource{url: u, ref: ref, subdir: sub, keepGitDir: keep}
}

// commitID is a full object id: BuildKit fetches such a ref as a commit, not a name.
var commitID = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// fetch checks the repository out into a new directory under dir: a depth-1 fetch of a
// branch or tag (the remote's HEAD without a ref), or of a commit id, detached.
func (g *gitSource) fetch(ctx context.Context, dir string) error {
	if err := g.fetchRepo(ctx, dir); err != nil {
		return fmt.Errorf("%s %s: %w", g.what(), redactURL(g.url), err) // a token in the URL stays out of logs
	}
	return nil
}

func (g *gitSource) fetchRepo(ctx context.Context, dir string) error {
	ep, err := transport.NewEndpoint(g.url)
	if err != nil {
		return err
	}
	switch ep.Protocol {
	case "http", "https", "git", "ssh":
	default:
		return fmt.Errorf("transport %q is not allowed (use http, https, git or ssh)", ep.Protocol)
	}
	var auth transport.AuthMethod
	if ep.Protocol == "ssh" {
		if auth, err = sshAuth(ep.User); err != nil {
			return err
		}
	}
	limits, err := layer.LimitsFromEnv()
	if err != nil {
		return err
	}
	d, err := os.MkdirTemp(dir, "git-")
	if err != nil {
		return err
	}
	g.dir = filepath.Join(d, "src")
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	// Both trees are bound to the checkout: a symlink in the repository cannot make the
	// checkout write outside it, and the bytes written are capped as a context is.
	written := new(atomic.Int64)
	wt := &cappedFS{Filesystem: osfs.New(g.dir, osfs.WithBoundOS()), n: written, max: limits.MaxSize}
	dot := &cappedFS{Filesystem: osfs.New(filepath.Join(g.dir, git.GitDirName), osfs.WithBoundOS()), n: written, max: limits.MaxSize}
	repo, err := git.Init(filesystem.NewStorage(dot, cache.NewObjectLRUDefault()), wt)
	if err != nil {
		return err
	}
	remote, err := repo.CreateRemote(&config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{g.url}})
	if err != nil {
		return err
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth})
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (the server speaks only git's dumb HTTP protocol, or is not a git server; kiln needs the smart protocol)", err)
	}
	if err != nil {
		return explainGitErr(err)
	}
	want, hash, err := resolveRemoteRef(refs, g.ref)
	if err != nil {
		return err
	}
	const local = "refs/kiln/checkout"
	opts := &git.FetchOptions{Auth: auth, Depth: 1, Tags: git.NoTags,
		RefSpecs: []config.RefSpec{config.RefSpec("+" + want + ":" + local)}}
	if want == "" { // a commit id: by id where the server allows it, else the whole history
		opts.RefSpecs = []config.RefSpec{config.RefSpec(hash.String() + ":" + local)}
	}
	err = remote.FetchContext(ctx, opts)
	if errors.Is(err, git.ErrExactSHA1NotSupported) {
		opts.Depth, opts.RefSpecs = 0, []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
		err = remote.FetchContext(ctx, opts)
	}
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return explainGitErr(err)
	}
	w, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := w.Checkout(&git.CheckoutOptions{Hash: hash, Force: true}); err != nil {
		if errors.Is(err, plumbing.ErrObjectNotFound) && want == "" {
			return fmt.Errorf("commit %s is not in the repository", hash)
		}
		return fmt.Errorf("check out %s: %w", hash, err)
	}
	g.commit = hash.String()
	if !g.keepGitDir {
		return os.RemoveAll(filepath.Join(g.dir, git.GitDirName))
	}
	return nil
}

// resolveRemoteRef finds ref among the remote's references as git clone --branch does
// (a branch, then a tag, peeled to its commit), or takes it as a commit id; no ref is the
// remote's HEAD. It returns the name to fetch ("" for a commit id) and the commit.
func resolveRemoteRef(refs []*plumbing.Reference, ref string) (string, plumbing.Hash, error) {
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name()] = r
	}
	if ref == "" {
		head := byName[plumbing.HEAD]
		if head != nil && head.Type() == plumbing.SymbolicReference {
			head = byName[head.Target()]
		}
		if head == nil || head.Hash().IsZero() {
			return "", plumbing.ZeroHash, errors.New("the repository has no HEAD branch (name a ref with #REF)")
		}
		return head.Name().String(), head.Hash(), nil
	}
	for _, n := range []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref), plumbing.ReferenceName(ref)} {
		r := byName[n]
		if r == nil || r.Type() != plumbing.HashReference {
			continue
		}
		h := r.Hash()
		if peeled := byName[n+"^{}"]; peeled != nil { // an annotated tag: its commit
			h = peeled.Hash()
		}
		return n.String(), h, nil
	}
	if commitID.MatchString(ref) {
		return "", plumbing.NewHash(ref), nil
	}
	return "", plumbing.ZeroHash, fmt.Errorf("ref %q: no such branch or tag (a commit takes its full id)", ref)
}

// sshAuth signs with the ssh agent at SSH_AUTH_SOCK and checks host keys against
// known_hosts; an unknown host is refused, never prompted for.
func sshAuth(user string) (transport.AuthMethod, error) {
	if os.Getenv("SSH_AUTH_SOCK") == "" {
		return nil, errors.New("an ssh URL needs an ssh agent: set SSH_AUTH_SOCK (or use an https URL)")
	}
	if user == "" {
		user = "git"
	}
	a, err := gitssh.NewSSHAgentAuth(user)
	if err != nil {
		return nil, fmt.Errorf("ssh agent: %w", err)
	}
	hk, err := gitssh.NewKnownHostsCallback()
	if err != nil {
		return nil, fmt.Errorf("no known_hosts to check the server's key (add it to ~/.ssh/known_hosts): %w", err)
	}
	a.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := hk(host, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("host %s is not in known_hosts (add its key to ~/.ssh/known_hosts, e.g. with ssh-keyscan)", host)
			}
			return fmt.Errorf("host %s's key does not match known_hosts: %w", host, err)
		}
		return err
	}
	return a, nil
}

// explainGitErr names what a user can do about go-git's terser transport errors.
func explainGitErr(err error) error {
	msg := err.Error()
	var dial *net.OpError
	switch {
	case errors.As(err, &dial) && dial.Op == "dial" && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w (check the host and port in the URL, and that the git server runs and is reachable from here: in a container or pod, its network and DNS, or a proxy in HTTPS_PROXY)", err)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("%w (over http kiln sends only credentials in the URL, https://USER:TOKEN@host/...; or use an ssh URL with an agent)", err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		const hint = " (check the path in the URL; a private repository may answer so without credentials: put them in the URL, https://USER:TOKEN@host/..., or use an ssh URL with an agent)"
		if strings.HasSuffix(msg, ": ") { // go-git appends the server's reason, often none
			return fmt.Errorf("%w%s", transport.ErrRepositoryNotFound, hint)
		}
		return fmt.Errorf("%w%s", err, hint)
	case strings.Contains(msg, "invalid pkt-len") || strings.Contains(msg, "unexpected content-type") ||
		strings.Contains(msg, "pkt-line"):
		return fmt.Errorf("%w (the server speaks only git's dumb HTTP protocol, or is not a git server; kiln needs the smart protocol)", err)
	}
	return err
}

// cappedFS counts the bytes written through it into a total shared by the checkout and
// its .git, so a huge repository fails at the limit instead of filling the disk.
type cappedFS struct {
	billy.Filesystem
	n   *atomic.Int64
	max int64
}

func (c *cappedFS) wrap(f billy.File, err error) (billy.File, error) {
	if err != nil || c.max <= 0 {
		return f, err
	}
	return &cappedFile{File: f, fs: c}, nil
}

func (c *cappedFS) Create(name string) (billy.File, error) { return c.wrap(c.Filesystem.Create(name)) }

func (c *cappedFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	return c.wrap(c.Filesystem.OpenFile(name, flag, perm))
}

func (c *cappedFS) TempFile(dir, prefix string) (billy.File, error) {
	return c.wrap(c.Filesystem.TempFile(dir, prefix))
}

func (c *cappedFS) Chroot(path string) (billy.Filesystem, error) {
	fs, err := c.Filesystem.Chroot(path)
	if err != nil {
		return nil, err
	}
	return &cappedFS{Filesystem: fs, n: c.n, max: c.max}, nil
}

type cappedFile struct {
	billy.File
	fs *cappedFS
}

func (f *cappedFile) Write(p []byte) (int, error) {
	if f.fs.n.Add(int64(len(p))) > f.fs.max {
		return 0, fmt.Errorf("the repository is over %d bytes (raise %s)", f.fs.max, layer.MaxSizeEnv)
	}
	return f.File.Write(p)
}

func (g *gitSource) what() string {
	if g.purpose == "" {
		return "ADD"
	}
	return g.purpose
}

// selection lists the checkout (or its subdir) as a directory source owned like a context file.
func (g *gitSource) selection(ctx context.Context) (*selection, func(), error) {
	src := g.subdir
	if src == "" {
		src = "."
	}
	sel, closeFn, err := selectFrom(ctx, g.dir, "git repository "+redactURL(g.url), []string{src})
	if err != nil {
		return nil, nil, err
	}
	for ri := range sel.roots {
		for ei := range sel.roots[ri].entries {
			sel.roots[ri].entries[ei].owned = false // docker: files from git are root's unless --chown
		}
	}
	return sel, closeFn, nil
}
