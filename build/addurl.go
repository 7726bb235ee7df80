package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
)

// urlSource is one ADD <http(s) URL>.
type urlSource struct {
	url      string
	checksum string    // --checksum=sha256:…, verified on download; the key uses it without downloading
	name     string    // base name of the URL path: the file name inside a destination directory
	planned  *download // fetched while planning (no checksum: the content is the key)
}

// download is a fetched URL's content.
type download struct {
	file   string
	digest string
	size   int64
	mtime  time.Time
}

// planURLs splits ADD sources into URLs and local paths, downloading URLs that have no
// checksum now: their content is part of the step's key.
func (sb *stageBuilder) planURLs(ctx context.Context, sources []string, checksum string) ([]*urlSource, []string, error) {
	var urls []*urlSource
	var local []string
	for _, src := range sources {
		if !isURL(src) {
			local = append(local, src)
			continue
		}
		if isGitURL(src) {
			local = append(local, src) // planGit takes these
			continue
		}
		if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
			return nil, nil, fmt.Errorf("source %q: unsupported URL scheme (use http, https or a git URL)", src)
		}
		u, err := url.Parse(src)
		if err != nil {
			return nil, nil, fmt.Errorf("source %q: %w", src, err)
		}
		us := &urlSource{url: src, name: path.Base(u.Path)}
		if us.name == "/" || us.name == "." {
			us.name = ""
		}
		urls = append(urls, us)
	}
	if checksum != "" {
		if len(urls) != 1 || len(local) != 0 {
			return nil, nil, errors.New("--checksum needs exactly one URL source")
		}
		hexsum, ok := strings.CutPrefix(checksum, "sha256:")
		if !ok || len(hexsum) != 64 || strings.Trim(hexsum, "0123456789abcdef") != "" {
			return nil, nil, fmt.Errorf("invalid --checksum=%s: use sha256:<64 hex digits>", checksum)
		}
		urls[0].checksum = checksum
		return urls, local, nil
	}
	if sb.p.opts.ChecksOnly {
		return urls, local, nil
	}
	for _, us := range urls {
		d, err := us.fetch(ctx, sb.p.downloadDir())
		if err != nil {
			return nil, nil, err
		}
		us.planned = d
	}
	return urls, local, nil
}

// key is what the step's key records: the checksum or the downloaded content's digest.
func (us *urlSource) key() string {
	if us.checksum != "" {
		return us.checksum
	}
	return us.planned.digest
}

// fetch downloads the URL into dir, hashing it, and checks the checksum when there is one.
// Last-Modified becomes the file's mtime, as docker does.
func (us *urlSource) fetch(ctx context.Context, dir string) (*download, error) {
	if us.planned != nil {
		return us.planned, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, us.url, nil)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", us.url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", us.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ADD %s: the server answered %s", us.url, resp.Status)
	}
	f, err := os.CreateTemp(dir, "url-*")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), resp.Body)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: download: %w", us.url, err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if us.checksum != "" && digest != us.checksum {
		return nil, fmt.Errorf("ADD %s: checksum mismatch: the download has %s, --checksum says %s", us.url, digest, us.checksum)
	}
	d := &download{file: f.Name(), digest: digest, size: n, mtime: time.Unix(0, 0).UTC()}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		d.mtime = lm
	}
	return d, nil
}

// root makes the downloaded file a copy source: mode 0600 unless --chmod, never unpacked.
func (us *urlSource) root(d *download) copyRoot {
	e := fileEntry{abs: d.file, mode: fs.FileMode(0o600), size: d.size, mtime: d.mtime, digest: d.digest}
	return copyRoot{name: us.name, path: us.name, entries: []fileEntry{e}, noUnpack: true}
}

// downloadDir is where ADD URLs are kept for the duration of the build.
func (p *planner) downloadDir() string {
	if p.opts.DownloadDir != "" {
		return p.opts.DownloadDir
	}
	return os.TempDir()
}
