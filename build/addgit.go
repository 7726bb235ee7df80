package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// gitSource is one ADD <git URL>[#ref[:subdir]], checked out with the system git at plan
// time: the commit it resolves to is part of the step's key.
type gitSource struct {
	url, ref, subdir string
	keepGitDir       bool
	purpose          string // what fetches it, for messages: "ADD" when empty
	dir              string // the checkout
	commit           string
}

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

// fetch checks the repository out into a new directory under dir.
func (g *gitSource) fetch(ctx context.Context, dir string) error {
	d, err := os.MkdirTemp(dir, "git-")
	if err != nil {
		return err
	}
	g.dir = filepath.Join(d, "src")
	args := []string{"clone", "--quiet", "--depth", "1"}
	if g.ref != "" {
		args = append(args, "--branch", g.ref)
	}
	if _, err := runGit(ctx, "", append(args, "--", g.url, g.dir)...); err != nil {
		// A commit id cannot be cloned shallowly by name, and dumb HTTP has no shallow clones.
		_ = os.RemoveAll(g.dir)
		if _, err := runGit(ctx, "", "clone", "--quiet", "--no-checkout", "--", g.url, g.dir); err != nil {
			return fmt.Errorf("%s %s: %w", g.what(), g.url, err)
		}
		ref := g.ref
		if ref == "" {
			ref = "HEAD"
		}
		if _, err := runGit(ctx, g.dir, "checkout", "--quiet", "--detach", ref, "--"); err != nil {
			if _, err2 := runGit(ctx, g.dir, "checkout", "--quiet", "--detach", "origin/"+ref, "--"); err2 != nil {
				return fmt.Errorf("%s %s: ref %q: %w", g.what(), g.url, g.ref, err)
			}
		}
	}
	out, err := runGit(ctx, g.dir, "rev-parse", "HEAD")
	if err != nil {
		return fmt.Errorf("%s %s: %w", g.what(), g.url, err)
	}
	g.commit = strings.TrimSpace(out)
	if !g.keepGitDir {
		return os.RemoveAll(filepath.Join(g.dir, ".git"))
	}
	return nil
}

func (g *gitSource) what() string {
	if g.purpose == "" {
		return "ADD"
	}
	return g.purpose
}

// runGit runs the system git with no prompts and only network transports (no ext:: or
// file:: helpers that could run commands or read host paths).
func runGit(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ALLOW_PROTOCOL=http:https:git:ssh",
		"GIT_CONFIG_NOSYSTEM=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors := strings.TrimSpace(stderr.String()); errors != "" {
			return "", fmt.Errorf("git %s: %s", args[0], errors)
		}
		return "", fmt.Errorf("git %s: %w", args[0], err)
	}
	return string(out), nil
}

// selection lists the checkout (or its subdir) as a directory source owned like a context file.
func (g *gitSource) selection(ctx context.Context) (*selection, func(), error) {
	src := g.subdir
	if src == "" {
		src = "."
	}
	sel, closeFn, err := selectFrom(ctx, g.dir, "git repository "+g.url, []string{src})
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
