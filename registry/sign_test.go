package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/kiln-build/kiln/internal/testregistry"
)

// testKey makes a fresh key pair; TestKeyPairFiles covers the cosign file format, whose
// scrypt costs a second under -race, so the signing tests skip it.
func testKey(t *testing.T) (*ecdsa.PrivateKey, *ecdsa.PublicKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, &k.PublicKey
}

// pushRandom puts a small random image at ref and returns its digest.
func pushRandom(t *testing.T, ref string) v1.Hash {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// signRegistries are the registries signing is tested against: Debian's docker-registry
// (no referrers API: the fallback tag), and go-containerregistry's with and without one.
func signRegistries(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"docker-registry": func(t *testing.T) string { return testregistry.Start(t) },
		"ggcr-referrers": func(t *testing.T) string {
			srv := httptest.NewServer(ggcr.New(ggcr.Logger(nilLogger()), ggcr.WithReferrersSupport(true)))
			t.Cleanup(srv.Close)
			return strings.TrimPrefix(srv.URL, "http://")
		},
		"ggcr": func(t *testing.T) string {
			srv := httptest.NewServer(ggcr.New(ggcr.Logger(nilLogger())))
			t.Cleanup(srv.Close)
			return strings.TrimPrefix(srv.URL, "http://")
		},
	}
}

func TestSignVerify(t *testing.T) {
	for regName, start := range signRegistries(t) {
		t.Run(regName, func(t *testing.T) {
			ctx := context.Background()
			host := start(t)
			ref := host + "/team/app:v1"
			digest := pushRandom(t, ref)
			priv, pub := testKey(t)

			res, err := Sign(ctx, ref, SignOptions{Key: priv, Annotations: map[string]string{"env": "ci"}, Referrer: true}, WithConfig(nil))
			if err != nil {
				t.Fatal(err)
			}
			if res.Digest != digest || res.Existing || res.Referrer == (v1.Hash{}) {
				t.Fatalf("sign result %+v, want digest %s, new, with a referrer", res, digest)
			}
			if want := host + "/team/app:sha256-" + digest.Hex + ".sig"; res.Tag != want {
				t.Errorf("signature tag %s, want %s", res.Tag, want)
			}
			v, err := Verify(ctx, ref, VerifyOptions{Key: pub, Annotations: map[string]string{"env": "ci"}}, WithConfig(nil))
			if err != nil {
				t.Fatal(err)
			}
			if v.Digest != digest || len(v.Signatures) != 2 { // the tag's and the referrer's
				t.Fatalf("verified %s with %d signatures, want %s with 2", v.Digest, len(v.Signatures), digest)
			}
			var p SimpleSigning
			if err := json.Unmarshal(v.Signatures[0].Payload, &p); err != nil {
				t.Fatal(err)
			}
			if p.Critical.Image.DockerManifestDigest != digest.String() || p.Critical.Identity.DockerReference != host+"/team/app" ||
				p.Critical.Type != "cosign container image signature" || p.Optional["env"] != "ci" {
				t.Errorf("payload %s", v.Signatures[0].Payload)
			}
			if _, err := Verify(ctx, host+"/team/app@"+digest.String(), VerifyOptions{Key: pub}, WithConfig(nil)); err != nil {
				t.Errorf("verify by digest: %v", err)
			}

			// Signing again with the same key and claims leaves the tag as it is.
			again, err := Sign(ctx, ref, SignOptions{Key: priv, Annotations: map[string]string{"env": "ci"}}, WithConfig(nil))
			if err != nil || !again.Existing {
				t.Errorf("second sign: %+v, %v; want an existing signature", again, err)
			}
			// Another key's signature is appended beside the first, as cosign does.
			priv2, pub2 := testKey(t)
			if _, err := Sign(ctx, ref, SignOptions{Key: priv2}, WithConfig(nil)); err != nil {
				t.Fatal(err)
			}
			if n := sigLayers(t, res.Tag); n != 2 {
				t.Errorf("signature tag holds %d signatures, want 2", n)
			}
			for _, k := range []*ecdsa.PublicKey{pub, pub2} {
				if _, err := Verify(ctx, ref, VerifyOptions{Key: k}, WithConfig(nil)); err != nil {
					t.Errorf("verify after a second signer: %v", err)
				}
			}

			_, wrong := testKey(t)
			_, err = Verify(ctx, ref, VerifyOptions{Key: wrong}, WithConfig(nil))
			if !errors.Is(err, ErrNoSignature) || !strings.Contains(err.Error(), "does not verify with this key") {
				t.Errorf("wrong key: %v, want ErrNoSignature saying the key does not verify", err)
			}
			_, err = Verify(ctx, ref, VerifyOptions{Key: pub, Annotations: map[string]string{"env": "prod"}}, WithConfig(nil))
			if !errors.Is(err, ErrNoSignature) || !strings.Contains(err.Error(), "annotation env=prod") {
				t.Errorf("wrong annotation: %v", err)
			}
		})
	}
}

func sigLayers(t *testing.T, tag string) int {
	t.Helper()
	r, err := name.ParseReference(tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if l.MediaType != SimpleSigningMediaType || l.Annotations[signatureAnnotation] == "" {
			t.Errorf("signature layer %+v", l)
		}
	}
	return len(m.Layers)
}

func TestVerifyTampered(t *testing.T) {
	for regName, start := range signRegistries(t) {
		if regName == "ggcr-referrers" {
			continue // the tag scheme is what is tampered with here
		}
		t.Run(regName, func(t *testing.T) {
			ctx := context.Background()
			host := start(t)
			ref := host + "/team/app:v1"
			signed := pushRandom(t, ref)
			priv, pub := testKey(t)
			res, err := Sign(ctx, ref, SignOptions{Key: priv}, WithConfig(nil))
			if err != nil {
				t.Fatal(err)
			}
			sigRef, _ := name.ParseReference(res.Tag)
			sigImg, err := remote.Image(sigRef)
			if err != nil {
				t.Fatal(err)
			}

			// The tag now names another image: it has no signature of its own.
			other := pushRandom(t, ref)
			_, err = Verify(ctx, ref, VerifyOptions{Key: pub}, WithConfig(nil))
			if !errors.Is(err, ErrNoSignature) || !strings.Contains(err.Error(), "has no signatures") {
				t.Errorf("retagged image: %v, want no signatures", err)
			}
			// The old signature copied to the new image's tag claims the old digest.
			otherTag, _ := name.ParseReference(host + "/team/app:sha256-" + other.Hex + ".sig")
			if err := remote.Write(otherTag, sigImg); err != nil {
				t.Fatal(err)
			}
			_, err = Verify(ctx, ref, VerifyOptions{Key: pub}, WithConfig(nil))
			if !errors.Is(err, ErrNoSignature) || !strings.Contains(err.Error(), "payload signs "+signed.String()) {
				t.Errorf("copied signature: %v, want a digest mismatch", err)
			}
			// The payload changed (to claim the new digest) under the old signature.
			m, _ := sigImg.Manifest()
			layers, _ := sigImg.Layers()
			payload, _ := layers[0].Compressed()
			var p SimpleSigning
			if err := json.NewDecoder(payload).Decode(&p); err != nil {
				t.Fatal(err)
			}
			p.Critical.Image.DockerManifestDigest = other.String()
			forged, _ := json.Marshal(p)
			forgedImg, err := mutate.Append(empty.Image, mutate.Addendum{
				Layer:       static.NewLayer(forged, SimpleSigningMediaType),
				Annotations: m.Layers[0].Annotations,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(otherTag, forgedImg); err != nil {
				t.Fatal(err)
			}
			_, err = Verify(ctx, ref, VerifyOptions{Key: pub}, WithConfig(nil))
			if !errors.Is(err, ErrNoSignature) || !strings.Contains(err.Error(), "does not verify") {
				t.Errorf("forged payload: %v, want a failed signature", err)
			}
			// The original image, by digest, still verifies.
			if _, err := Verify(ctx, host+"/team/app@"+signed.String(), VerifyOptions{Key: pub}, WithConfig(nil)); err != nil {
				t.Errorf("original image: %v", err)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(nilLogger())))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	priv, _ := testKey(t)

	s := openStore(t)
	storeBusybox(t, s, host+"/team/local:v1")
	_, err := Sign(ctx, host+"/team/local:v1", SignOptions{Key: priv, Store: s}, WithConfig(nil))
	if err == nil || !strings.Contains(err.Error(), "push it first") {
		t.Errorf("local-only image: %v, want advice to push it first", err)
	}
	_, err = Sign(ctx, host+"/team/absent:v1", SignOptions{Key: priv, Store: s}, WithConfig(nil))
	if !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), "push it first") {
		t.Errorf("missing image: %v, want not found", err)
	}
}

func TestKeyPairFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := WriteKeyPair(priv, pub, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v (%v), want 0600", fi.Mode(), err)
	}
	privPEM, err := ReadKeyFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(privPEM), "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----") {
		t.Errorf("private key file starts %q", strings.SplitN(string(privPEM), "\n", 2)[0])
	}
	if _, err := ParsePrivateKey(privPEM, []byte("wrong")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v, want ErrWrongPassword", err)
	}
	key, err := ParsePrivateKey(privPEM, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := ReadKeyFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParsePublicKey(pubPEM); err != nil || !k.Equal(&key.PublicKey) {
		t.Errorf("cosign.pub does not hold the private key's public half (%v)", err)
	}
	if _, err := ParsePublicKey(privPEM); err == nil || !strings.Contains(err.Error(), "not a public key") {
		t.Errorf("private key as public: %v", err)
	}
	if _, err := ParsePrivateKey([]byte("junk"), nil); err == nil || !strings.Contains(err.Error(), "not a PEM file") {
		t.Errorf("junk key: %v", err)
	}

	before, _ := os.ReadFile(priv)
	err = WriteKeyPair(priv, filepath.Join(dir, "other.pub"), []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwrite: %v, want a refusal", err)
	}
	if after, _ := os.ReadFile(priv); string(after) != string(before) {
		t.Error("the existing private key was replaced")
	}
	if _, err := os.Stat(filepath.Join(dir, "other.pub")); !os.IsNotExist(err) {
		t.Errorf("refused write left other.pub: %v", err)
	}
	if _, err := ReadKeyFile(dir); err == nil {
		t.Error("a directory read as a key file")
	}
}
