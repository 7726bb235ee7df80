package build

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/testimage"
	"github.com/kiln-build/kiln/runtime"
)

// scanningRunner runs steps in real containers and, when a step prints "scan-now" (while its
// container still runs, since the runtime copies the output before it tears down), searches
// every file under the store root for needle.
type scanningRunner struct {
	Runner
	root, needle string
	mu           sync.Mutex
	scanned      bool
	found        []string
}

func (r *scanningRunner) Run(ctx context.Context, req RunRequest) error {
	req.Output = &scanWriter{r: r, w: req.Output}
	return r.Runner.Run(ctx, req)
}

type scanWriter struct {
	r *scanningRunner
	w io.Writer
}

func (w *scanWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("scan-now")) {
		w.r.scan()
	}
	return w.w.Write(p)
}

func (r *scanningRunner) scan() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scanned = true
	filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error { //nolint:errcheck // best effort over a live tree
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(r.needle)) {
			r.found = append(r.found, p)
		}
		return nil
	})
}

// A secret mounted into a RUN step never reaches the store's disk, not even while the step runs
// (a SIGKILL then used to leave it in tmp/run-*/secret-N: issue 10.5).
func TestRunSecretNeverOnDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs RUN steps in containers")
	}
	testimage.RequireBusybox(t)
	f := newFixture(t)
	desc, err := f.store.WriteImage(context.Background(), testimage.Busybox(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := cache.ParseName("busybox")
	if err := f.store.Tag(context.Background(), n, desc); err != nil {
		t.Fatal(err)
	}
	const secret = "pl41nt3xt-s3cr3t-value"
	rt, err := runtime.New(runtime.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// The file form, and the env= form, whose value is in the OCI config (kept in memory).
	for _, bf := range []string{
		"FROM busybox\nRUN --mount=type=secret,id=token,mode=0400 grep -q 3cr3t-val /run/secrets/token && echo scan-now\n", // a fragment: the command is on disk
		"FROM busybox\nRUN --mount=type=secret,id=token,env=TOKEN sh -c 'case $TOKEN in *3cr3t-val*) echo scan-now;; esac'\n",
	} {
		r := &scanningRunner{Runner: RuntimeRunner{Runtime: rt}, root: f.store.Root(), needle: secret}
		var out strings.Builder
		_, _, err = f.build(bf, func(o *Options) {
			o.Runner, o.LogDir = r, filepath.Join(f.store.Root(), "logs")
			o.Secrets = map[string][]byte{"token": []byte(secret)}
			o.Report = func(e Event) { out.Write(e.Data) }
		})
		if err != nil {
			t.Fatalf("build: %v\n%s", err, out.String())
		}
		if !r.scanned {
			t.Fatalf("the step never printed scan-now: the secret was not there\n%s", out.String())
		}
		if len(r.found) > 0 {
			t.Errorf("%s: the secret's plaintext is on disk under the store: %v", bf, r.found)
		}
	}
}
