package registry

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// wrongLength serves the real response but declares a Content-Length off by delta bytes:
// longer than the body (the stream ends early) or shorter (the body is cut).
func (fr *faultyRegistry) wrongLength(match func(*http.Request) bool, delta int) fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r) {
			return false
		}
		body := fr.replay(w, r, func(n int) int { return max(n+delta, 0) })
		if delta > 0 {
			w.Write(body)
			resetConn(w) // the client waits for bytes that never come
			return true
		}
		w.Write(body[:max(len(body)+delta, 0)])
		return true
	}
}

// stall sends the headers and half the body of matching responses, then holds the
// connection open until the client gives up.
func (fr *faultyRegistry) stall(match func(*http.Request) bool) fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r) {
			return false
		}
		body := fr.replay(w, r, func(n int) int { return n })
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return true
	}
}

// TestPullPermanentFaultsTagNothing: faults that retries cannot cure end the pull with an
// error (within its deadline, never a hang), and the store gains no tag and no manifest.
func TestPullPermanentFaultsTagNothing(t *testing.T) {
	for label, mk := range map[string]func(fr *faultyRegistry) fault{
		"500 on every blob":        func(*faultyRegistry) fault { return failN(1<<30, isBlobGet, status(500, "")) },
		"reset on every blob":      func(*faultyRegistry) fault { return failN(1<<30, isBlobGet, resetConn) },
		"every blob truncated":     func(fr *faultyRegistry) fault { return fr.mangled(1<<30, isBlobGet, nil, true) },
		"length longer than body":  func(fr *faultyRegistry) fault { return fr.wrongLength(isBlobGet, 100) },
		"length shorter than body": func(fr *faultyRegistry) fault { return fr.wrongLength(isBlobGet, -100) },
		"slow body":                func(fr *faultyRegistry) fault { return fr.stall(isBlobGet) },
		"manifest cut short":       func(fr *faultyRegistry) fault { return fr.wrongLength(isManifest, -10) },
	} {
		t.Run(label, func(t *testing.T) {
			fr := newFaultyRegistry(t)
			_, digest := fr.seed(t, "lib/bb:1")
			fr.setFault(mk(fr))
			s := openStore(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := Pull(ctx, s, fr.host()+"/lib/bb:1", fastRetry(), WithTimeout(2*time.Second))
			if err == nil {
				t.Fatal("pull succeeded through a permanent fault")
			}
			if ctx.Err() != nil {
				t.Fatalf("pull ran into the test's deadline instead of failing by itself: %v", err)
			}
			assertNoImage(t, s)
			if _, err := s.Image(digest); err == nil {
				t.Error("the manifest of a failed pull is in the store")
			}
			if msg := err.Error(); strings.Contains(msg, "TLS handshake") {
				t.Errorf("error talks of TLS for a plain-HTTP registry's fault: %v", err)
			}
		})
	}
}

func isManifest(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }

// TestPushPermanentFaultsLeaveNoTag: when blobs cannot be uploaded, push fails and the
// registry never gets the manifest, so no half-pushed image is tagged there.
func TestPushPermanentFaultsLeaveNoTag(t *testing.T) {
	uploads := func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/blobs/uploads") }
	for label, f := range map[string]fault{
		"500 on every upload":   failN(1<<30, uploads, status(500, "")),
		"reset on every upload": failN(1<<30, uploads, resetConn),
	} {
		t.Run(label, func(t *testing.T) {
			fr := newFaultyRegistry(t)
			fr.setFault(f)
			src := openStore(t)
			storeBusybox(t, src, "busybox")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := Push(ctx, src, "busybox", fr.host()+"/team/bb:v1", fastRetry()); err == nil {
				t.Fatal("push succeeded through a permanent fault")
			} else if ctx.Err() != nil {
				t.Fatalf("push ran into the test's deadline: %v", err)
			}
			fr.setFault(nil)
			ref, err := name.ParseReference(fr.host() + "/team/bb:v1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := remote.Head(ref); err == nil {
				t.Error("the registry has the tag of a failed push")
			}
		})
	}
}
