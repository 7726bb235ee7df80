package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// retryPolicy bounds how often and how long a request is retried.
type retryPolicy struct {
	attempts int           // tries in all, first one included
	base     time.Duration // first backoff; doubles each time
	max      time.Duration // longest single wait, Retry-After included
}

// defaultRetry waits 0.5, 1, 2, 4 s: enough for a registry restart or a rate limit window.
var defaultRetry = retryPolicy{attempts: 5, base: 500 * time.Millisecond, max: 30 * time.Second}

// retryTransport retries idempotent-safe requests on 408, 429, 5xx and connection
// failures, waiting as long as Retry-After asks (up to max). Requests whose body cannot
// be replayed are sent once; go-containerregistry restarts those uploads itself.
type retryTransport struct {
	inner  http.RoundTripper
	policy retryPolicy
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
		resp, err := t.inner.RoundTrip(req)
		if !replayable || attempt >= t.policy.attempts || !shouldRetry(resp, err) {
			return resp, err
		}
		wait := t.backoff(attempt, resp)
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// shouldRetry reports transient failures: overload, gateway errors and broken connections.
func shouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		return isTransient(err)
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// isTransient reports network errors worth another try (never a cancelled context).
func isTransient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout())
}

// backoff is Retry-After when the server sent one, else exponential with jitter.
func (t *retryTransport) backoff(attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return min(d, t.policy.max)
		}
	}
	d := t.policy.base << (attempt - 1)
	d += time.Duration(rand.Int64N(int64(d)/10 + 1))
	return min(d, t.policy.max)
}

// retryAfter parses delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// baseTransport is go-containerregistry's default transport, with TLS verification off
// only when the registry was declared insecure.
func (o *options) baseTransport(insecure bool) http.RoundTripper {
	if o.transport != nil {
		return o.transport
	}
	if !insecure {
		return remote.DefaultTransport
	}
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user declared this registry insecure
	return t
}

// remoteOptions are the go-containerregistry options for one registry: kiln's retrying
// transport underneath, ggcr's own transport retries narrowed to restarting broken uploads.
func (o *options) remoteOptions(ctx context.Context, insecure bool) []remote.Option {
	inner := o.baseTransport(insecure)
	if o.counted != nil {
		inner = &countTransport{inner: inner, add: o.counted}
	}
	rt := &retryTransport{inner: inner, policy: o.retry}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(rt),
		remote.WithAuthFromKeychain(o.keychain),
		remote.WithPlatform(o.platform),
		remote.WithJobs(o.jobs),
		remote.WithUserAgent("kiln"),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(isTransient),
		remote.WithRetryBackoff(remote.Backoff{Duration: o.retry.base, Factor: 2, Jitter: 0.1, Steps: 3}),
	}
}

// countTransport adds the response body bytes read through it to add: underneath the
// retries, so a body read and then retried counts too, as it came over the wire.
type countTransport struct {
	inner http.RoundTripper
	add   func(n int64)
}

func (t *countTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if resp != nil && resp.Body != nil {
		resp.Body = &countBody{ReadCloser: resp.Body, add: t.add}
	}
	return resp, err
}

type countBody struct {
	io.ReadCloser
	add func(n int64)
}

func (b *countBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.add(int64(n))
	return n, err
}
