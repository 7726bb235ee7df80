package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Login checks user and password against registry ("host[:port]"; "docker.io" for Docker
// Hub) and stores them where docker and go-containerregistry look: the configured
// credential helper, else base64 in $DOCKER_CONFIG/config.json (~/.docker/config.json).
func Login(ctx context.Context, registry, user, pass string, opts ...Option) error {
	o, err := makeOptions(opts)
	if err != nil {
		return err
	}
	ctx, cancel := o.withTimeout(ctx)
	defer cancel()
	if user == "" || pass == "" {
		return errors.New("login needs a username and a password (or token)")
	}
	host, err := loginHost(registry)
	if err != nil {
		return err
	}
	if err := o.verifyLogin(ctx, host, user, pass); err != nil {
		return fmt.Errorf("login to %s: %w", host, err)
	}
	if err := storeCredentials(host, user, pass); err != nil {
		return fmt.Errorf("login to %s: save credentials: %w", host, err)
	}
	return nil
}

// Logout forgets the credentials kiln (or docker) stored for registry.
func Logout(ctx context.Context, registry string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	host, err := loginHost(registry)
	if err != nil {
		return err
	}
	if err := eraseCredentials(host); err != nil {
		return fmt.Errorf("logout from %s: %w", host, err)
	}
	return nil
}

// loginHost reduces what the user typed to the registry host docker keys credentials by.
func loginHost(registry string) (string, error) {
	if registry == "" {
		return "docker.io", nil
	}
	loc, err := cleanLocation(registry)
	if err != nil {
		return "", err
	}
	return locationHost(loc), nil
}

// verifyLogin pings the registry, fetches a token when it uses them, and makes one
// authenticated request, so wrong credentials fail here rather than at the next pull.
func (o *options) verifyLogin(ctx context.Context, host, user, pass string) error {
	nopts := []name.Option{}
	insecure := o.isInsecure(host)
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nopts...)
	if err != nil {
		return err
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
	rt := &retryTransport{inner: o.baseTransport(insecure), policy: o.retry}
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, nil)
	if err != nil {
		return loginError(err, host)
	}
	scheme := "https"
	if insecure {
		scheme = reg.Scheme()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return loginError(err, host)
	}
	return nil
}

// loginError says plainly that the credentials were refused.
func loginError(err error, host string) error {
	var te *transport.Error
	if errors.As(err, &te) {
		err = dropTLSFallback(err, te)
	}
	if te != nil && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%w: %s refused the username or password (%v)", ErrUnauthorized, host, err)
	}
	if strings.Contains(err.Error(), "UNAUTHORIZED") {
		return fmt.Errorf("%w: %s refused the username or password (%v)", ErrUnauthorized, host, err)
	}
	return err
}
