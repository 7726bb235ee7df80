package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrUnauthorized reports that the registry wants credentials kiln does not have.
var ErrUnauthorized = errors.New("authentication required")

// ErrDenied reports that the registry refused the credentials' access.
var ErrDenied = errors.New("access denied")

// ErrNotFound reports that the registry has no such image or repository.
var ErrNotFound = errors.New("image not found")

// explain turns a registry's HTTP error into a message that says what to do; other errors
// pass through. what is the image reference, registry its host.
func explain(err error, what, registry string) error {
	var dial *net.OpError
	if errors.As(err, &dial) && dial.Op == "dial" && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("registry %s is not reachable (%w): check its name and port, and that it runs and this machine (in a container or pod, its network and DNS) can reach it", registry, dial)
	}
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	err = dropTLSFallback(err, te)
	switch {
	case te.StatusCode == http.StatusUnauthorized || hasCode(te, transport.UnauthorizedErrorCode):
		return fmt.Errorf("%w to access %s: run `kiln login %s`, or point DOCKER_CONFIG at a directory whose config.json has its credentials (%s)", ErrUnauthorized, what, registry, brief(err, te))
	case te.StatusCode == http.StatusForbidden || hasCode(te, transport.DeniedErrorCode):
		return fmt.Errorf("%w to %s by %s: check that your account may use this repository (`kiln login %s`) (%s)", ErrDenied, what, registry, registry, brief(err, te))
	case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode) || hasCode(te, transport.NameUnknownErrorCode):
		return fmt.Errorf("%w: image %s not found in %s: check the name and tag (%s)", ErrNotFound, what, registry, brief(err, te))
	case te.StatusCode >= 500:
		return fmt.Errorf("registry %s failed (HTTP %d) for %s, also on retry: try again later, or ask its operator (%w)", registry, te.StatusCode, what, err)
	}
	return err
}

// brief is the registry's answer by code and message, without the detail objects that
// transport.Error prints as Go maps ("; map[Tag:1]").
func brief(err error, te *transport.Error) string {
	if len(te.Errors) == 0 {
		return err.Error()
	}
	parts := make([]string, 0, len(te.Errors))
	for _, d := range te.Errors {
		parts = append(parts, fmt.Sprintf("%s: %s", d.Code, d.Message))
	}
	return strings.Join(parts, "; ")
}

func hasCode(te *transport.Error, code transport.ErrorCode) bool {
	for _, d := range te.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// dropTLSFallback keeps only the registry's answer when go-containerregistry tried an insecure
// registry over HTTPS first and then got an HTTP status over plain HTTP: the HTTPS attempt's
// error ("server gave HTTP response to HTTPS client", "tls: first record does not look like a
// TLS handshake") says nothing about the failure and used to hide the real status behind it.
func dropTLSFallback(err error, te *transport.Error) error {
	if te.Request == nil || te.Request.URL == nil || te.Request.URL.Scheme != "http" {
		return err
	}
	if msg := err.Error(); msg != te.Error() && strings.Contains(msg, "https://") {
		return te
	}
	return err
}
