package build

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/kiln-build/kiln/cache/layer"
)

// StdinContext is the context argument that reads the context (a tar, plain or compressed)
// or a lone Buildfile from standard input, as `docker build -`.
const StdinContext = "-"

// IsRemoteContext reports whether a context argument is not a local directory: standard
// input or a git URL. A -f with such a context names a file inside it.
func IsRemoteContext(arg string) bool { return arg == StdinContext || isGitURL(arg) }

// maxContextEntries bounds the entries of a context tar, so a hostile stream of empty
// entries cannot exhaust inodes.
const maxContextEntries = 1 << 20

// localContext makes a context from standard input or a git URL a directory under the
// store's staging and points the options at it; release removes it.
func (o *Options) localContext(ctx context.Context) (func(), error) {
	if !IsRemoteContext(o.ContextDir) {
		return func() {}, nil
	}
	tmp, err := o.Store.TempDir("context-")
	if err != nil {
		return nil, err
	}
	release := func() { _ = os.RemoveAll(tmp) }
	dir := filepath.Join(tmp, "ctx")
	if o.ContextDir == StdinContext {
		err = o.stdinContext(ctx, tmp, dir)
	} else {
		err = o.gitContext(ctx, tmp)
	}
	if err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// stdinContext spools standard input, then extracts it when it is a tar archive; otherwise
// it is the Buildfile and the context is empty (docker's `build - < Dockerfile`).
func (o *Options) stdinContext(ctx context.Context, tmp, dir string) error {
	if o.Buildfile == "-" {
		return errors.New("the context and -f cannot both come from standard input")
	}
	if o.Stdin == nil {
		return errors.New("build context - given but there is no standard input")
	}
	limits, err := layer.LimitsFromEnv()
	if err != nil {
		return err
	}
	spool := filepath.Join(tmp, "Buildfile") // named so when it is one
	if err := spoolStdin(o.Stdin, spool, limits.MaxSize); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	archive, err := checkContextTar(ctx, spool, limits.MaxSize)
	if err != nil {
		return err
	}
	if !archive {
		if o.Buildfile != "" {
			return fmt.Errorf("-f %s names a file in the context, but standard input is not a tar archive (a lone Buildfile goes without -f)", o.Buildfile)
		}
		o.ContextDir, o.Buildfile = dir, spool
		return nil
	}
	f, err := os.Open(spool)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompressAny(bufio.NewReader(f))
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := layer.Apply(ctx, r, dir, layer.ApplyOptions{Whiteouts: layer.DeleteWhiteouts}); err != nil {
		return fmt.Errorf("build context from standard input: %w", err)
	}
	_ = os.Remove(spool)
	return o.inContext(dir)
}

func spoolStdin(r io.Reader, name string, max int64) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	src := r
	if max > 0 {
		src = io.LimitReader(r, max+1)
	}
	n, err := io.Copy(f, src)
	if err != nil {
		return fmt.Errorf("read the build context from standard input: %w", err)
	}
	if max > 0 && n > max {
		return fmt.Errorf("the build context on standard input is over %d bytes (raise %s)", max, layer.MaxSizeEnv)
	}
	return nil
}

// checkContextTar reports whether the file is a tar archive (plain, gzip, zstd, bzip2 or
// xz) and checks its sanity before anything is extracted: entry count and expanded size.
func checkContextTar(ctx context.Context, name string, max int64) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if !isTar(f) {
		return false, nil // a Buildfile
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	r2, err := decompressAny(bufio.NewReader(f))
	if err != nil {
		return false, err
	}
	defer r2.Close()
	var entries, size int64
	err = layer.EachEntry(ctx, r2, func(hdr *tar.Header, _ io.Reader) error {
		entries++
		size += hdr.Size
		switch {
		case entries > maxContextEntries:
			return fmt.Errorf("more than %d entries", maxContextEntries)
		case max > 0 && size > max:
			return fmt.Errorf("expands past %d bytes (raise %s)", max, layer.MaxSizeEnv)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("build context from standard input: %w", err)
	}
	return true, nil
}

// gitContext checks a git URL (#ref:subdir) out and makes its subdir the context.
func (o *Options) gitContext(ctx context.Context, tmp string) error {
	sub, err := checkoutContext(ctx, o.ContextDir, tmp)
	if err != nil {
		return err
	}
	return o.inContext(sub)
}

// checkoutContext checks a git URL (#ref:subdir) out under tmp with the one git fetcher ADD
// uses and returns the subdir, confined to the checkout: a git build context or named context.
func checkoutContext(ctx context.Context, url, tmp string) (string, error) {
	g := parseGitSource(url, false)
	g.purpose = "build context"
	if err := g.fetch(ctx, tmp); err != nil {
		return "", err
	}
	sub, err := securejoin.SecureJoin(g.dir, g.subdir)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("build context %s: %q is not a directory of the repository", redactURL(g.url), g.subdir)
	}
	return sub, nil
}

// inContext makes dir the context and resolves -f inside it.
func (o *Options) inContext(dir string) error {
	o.ContextDir = dir
	if o.Buildfile == "" {
		return nil
	}
	p, err := securejoin.SecureJoin(dir, o.Buildfile)
	if err != nil {
		return err
	}
	o.Buildfile = p
	return nil
}
