package registry

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	_ "crypto/sha256" // crypto.SHA256 for payloadDigest
	_ "crypto/sha512" // crypto.SHA384 and SHA512 for P-384 and P-521 keys
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
)

// What cosign writes: a simple-signing payload as a layer of a signature manifest, the
// signature over it in a layer annotation, the manifest at tag sha256-HEX.sig beside the
// image or, in its OCI 1.1 mode, as a referrer of the image with this artifact type.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureArtifactType  = "application/vnd.dev.cosign.artifact.sig.v1+json"
	signatureAnnotation    = "dev.cosignproject.cosign/signature"
	signatureType          = "cosign container image signature"
)

// maxPayload bounds a signature payload read from a registry (cosign's are a few hundred bytes).
const maxPayload = 1 << 20

// ErrNoSignature reports an image without a signature that verifies.
var ErrNoSignature = errors.New("no valid signature")

// SimpleSigning is the payload cosign signs: the image's digest and repository, and the
// optional claims given with `-a key=value`.
type SimpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// SignOptions say what Sign signs with and where the signature goes.
type SignOptions struct {
	Key         *ecdsa.PrivateKey
	Annotations map[string]string // optional claims in the payload, as cosign sign -a
	// Referrer also pushes the signature as an OCI 1.1 referrer of the image (cosign's
	// --registry-referrers-mode=oci-1-1); the sha256-HEX.sig tag is always written.
	Referrer bool
	// Store, when set, turns "not in the registry" for an image kiln has locally into
	// the advice to push it first.
	Store *cache.Store
}

// SignResult says what Sign did.
type SignResult struct {
	Digest   v1.Hash // the signed manifest (an index's own digest for a multi-platform image)
	Tag      string  // the signature tag, REPOSITORY:sha256-HEX.sig
	Referrer v1.Hash // the referrer manifest, when one was pushed
	Existing bool    // the tag already held an equal signature by this key, so it is unchanged
}

// Sign signs the image ref names in its registry, as `cosign sign --key --tlog-upload=false`
// does: it resolves ref to a digest, signs a simple-signing payload for it with ECDSA
// and adds the signature to the image's signature tag, keeping the signatures there.
func Sign(ctx context.Context, ref string, so SignOptions, opts ...Option) (SignResult, error) {
	if so.Key == nil {
		return SignResult{}, errors.New("sign: no key")
	}
	o, err := makeOptions(opts)
	if err != nil {
		return SignResult{}, err
	}
	ctx, cancel := o.withTimeout(ctx)
	defer cancel()
	t, err := o.target(ctx, ref)
	if err != nil {
		if so.Store != nil {
			if _, _, lerr := so.Store.Lookup(ref); lerr == nil {
				return SignResult{}, fmt.Errorf("sign %s: the image is in kiln's store but not in its registry: push it first (`kiln push %s`), then sign the pushed name (%w)", ref, ref, err)
			}
		}
		return SignResult{}, fmt.Errorf("sign %s: %w", ref, err)
	}
	payload, err := json.Marshal(newPayload(t, so.Annotations))
	if err != nil {
		return SignResult{}, err
	}
	sig, err := ecdsa.SignASN1(rand.Reader, so.Key, payloadDigest(so.Key.Curve, payload))
	if err != nil {
		return SignResult{}, fmt.Errorf("sign %s: %w", ref, err)
	}
	add := mutate.Addendum{
		Layer:       static.NewLayer(payload, SimpleSigningMediaType),
		Annotations: map[string]string{signatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	}
	res := SignResult{Digest: t.desc.Digest, Tag: t.sigTag().String()}
	if res.Existing, err = t.appendSignature(so, add); err != nil {
		return SignResult{}, fmt.Errorf("sign %s: push signature to %s: %w", ref, res.Tag, explain(err, res.Tag, t.repo.RegistryStr()))
	}
	if so.Referrer {
		if res.Referrer, err = t.pushReferrer(add); err != nil {
			return SignResult{}, fmt.Errorf("sign %s: push referrer: %w", ref, explain(err, ref, t.repo.RegistryStr()))
		}
	}
	return res, nil
}

// VerifyOptions say what Verify checks signatures against.
type VerifyOptions struct {
	Key         *ecdsa.PublicKey
	Annotations map[string]string // claims every accepted payload must carry, as cosign verify -a
}

// Verification is what Verify found: the image's digest and the signatures that verified.
type Verification struct {
	Digest     v1.Hash
	Signatures []VerifiedSignature
}

// VerifiedSignature is one signature that verified.
type VerifiedSignature struct {
	Payload json.RawMessage // the signed simple-signing document, as cosign verify prints it
	Source  string          // the manifest it came from: the signature tag or a referrer
}

// Verify checks the cosign signatures of the image ref names, from its sha256-HEX.sig tag
// and its OCI 1.1 referrers: a signature counts when it verifies with the key over its
// payload, and the payload claims the image's digest and every wanted annotation. With
// none, the error wraps ErrNoSignature and says why each one found was refused.
func Verify(ctx context.Context, ref string, vo VerifyOptions, opts ...Option) (Verification, error) {
	if vo.Key == nil {
		return Verification{}, errors.New("verify: no key")
	}
	o, err := makeOptions(opts)
	if err != nil {
		return Verification{}, err
	}
	ctx, cancel := o.withTimeout(ctx)
	defer cancel()
	t, err := o.target(ctx, ref)
	if err != nil {
		return Verification{}, fmt.Errorf("verify %s: %w", ref, err)
	}
	cands, err := t.signatures()
	if err != nil {
		return Verification{}, fmt.Errorf("verify %s: fetch signatures: %w", ref, explain(err, ref, t.repo.RegistryStr()))
	}
	res := Verification{Digest: t.desc.Digest}
	var refused []string
	for i, c := range cands {
		payload, err := c.check(vo, t.desc.Digest)
		if err != nil {
			refused = append(refused, fmt.Sprintf("signature %d (%s): %v", i+1, c.source, err))
			continue
		}
		res.Signatures = append(res.Signatures, VerifiedSignature{Payload: payload, Source: c.source})
	}
	if len(res.Signatures) > 0 {
		return res, nil
	}
	if len(cands) == 0 {
		return res, fmt.Errorf("verify %s: %w: the image %s has no signatures (none at %s, no signature referrers): sign it with `kiln sign --key cosign.key %s`",
			ref, ErrNoSignature, t.desc.Digest, t.sigTag(), ref)
	}
	return res, fmt.Errorf("verify %s: %w: %d signature(s) found for %s, none verified with this key: %s",
		ref, ErrNoSignature, len(cands), t.desc.Digest, strings.Join(refused, "; "))
}

// signTarget is a resolved image: its repository, manifest descriptor and the remote options to reach it.
type signTarget struct {
	repo name.Repository
	desc v1.Descriptor
	ro   []remote.Option
}

// target resolves ref in its registry (never a mirror: signatures belong to the origin).
func (o *options) target(ctx context.Context, ref string) (signTarget, error) {
	n, err := cache.ParseName(ref)
	if err != nil {
		return signTarget{}, err
	}
	ep, err := o.reference(n)
	if err != nil {
		return signTarget{}, err
	}
	ro := o.remoteOptions(ctx, ep.insecure)
	got, err := remote.Get(ep.ref, ro...)
	if err != nil {
		return signTarget{}, explain(err, n.Short(), n.Registry())
	}
	return signTarget{repo: ep.ref.Context(), desc: got.Descriptor, ro: ro}, nil
}

// sigTag is cosign's tag for the image's signatures: sha256-HEX.sig.
func (t signTarget) sigTag() name.Tag {
	return t.repo.Tag(strings.Replace(t.desc.Digest.String(), ":", "-", 1) + ".sig")
}

func newPayload(t signTarget, annotations map[string]string) SimpleSigning {
	var p SimpleSigning
	p.Critical.Identity.DockerReference = t.repo.Name()
	p.Critical.Image.DockerManifestDigest = t.desc.Digest.String()
	p.Critical.Type = signatureType
	if len(annotations) > 0 {
		p.Optional = map[string]any{}
		for k, v := range annotations {
			p.Optional[k] = v
		}
	}
	return p
}

// payloadDigest hashes a payload as sigstore's ECDSA signer does for the key's curve.
func payloadDigest(c elliptic.Curve, payload []byte) []byte {
	h := crypto.SHA256
	switch c {
	case elliptic.P384():
		h = crypto.SHA384
	case elliptic.P521():
		h = crypto.SHA512
	}
	w := h.New()
	w.Write(payload)
	return w.Sum(nil)
}

// appendSignature adds the signature layer to the signature tag's manifest (creating it
// when absent), unless an equal claim signed by the same key is already there.
func (t signTarget) appendSignature(so SignOptions, add mutate.Addendum) (bool, error) {
	tag := t.sigTag()
	base, err := remote.Image(tag, t.ro...)
	switch {
	case isNotFound(err):
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	case err != nil:
		return false, err
	default:
		existing, err := manifestSignatures(base, tag.String())
		if err != nil {
			return false, err
		}
		vo := VerifyOptions{Key: &so.Key.PublicKey, Annotations: so.Annotations}
		for _, c := range existing {
			if p, err := c.check(vo, t.desc.Digest); err == nil && sameOptional(p, so.Annotations) {
				return true, nil
			}
		}
	}
	img, err := mutate.Append(base, add)
	if err != nil {
		return false, err
	}
	return false, remote.Write(tag, img, t.ro...)
}

// sameOptional reports whether a payload's optional claims are exactly want.
func sameOptional(payload []byte, want map[string]string) bool {
	var p SimpleSigning
	if json.Unmarshal(payload, &p) != nil || len(p.Optional) != len(want) {
		return false
	}
	got := map[string]string{}
	for k, v := range p.Optional {
		got[k] = fmt.Sprint(v)
	}
	return maps.Equal(got, want)
}

// pushReferrer pushes a manifest holding just this signature with the image as its
// subject, shaped as cosign's OCI 1.1 mode writes it: config and artifact type
// SignatureArtifactType. go-containerregistry also updates the referrers fallback tag
// when the registry has no referrers API.
func (t signTarget) pushReferrer(add mutate.Addendum) (v1.Hash, error) {
	img, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), add)
	if err != nil {
		return v1.Hash{}, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return v1.Hash{}, err
	}
	for _, l := range []v1.Layer{add.Layer, static.NewLayer(cfg, SignatureArtifactType)} {
		if err := remote.WriteLayer(t.repo, l, t.ro...); err != nil {
			return v1.Hash{}, err
		}
	}
	m = m.DeepCopy()
	m.Config.MediaType = SignatureArtifactType
	m.ArtifactType = SignatureArtifactType
	subject := t.desc
	subject.Platform, subject.Annotations, subject.URLs = nil, nil, nil
	m.Subject = &subject
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Put(t.repo.Digest(h.String()), rawManifest{raw: raw, mediaType: types.OCIManifestSchema1}, t.ro...); err != nil {
		return v1.Hash{}, err
	}
	return h, nil
}

// rawManifest is a manifest pushed byte for byte.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mediaType, nil }

// candidate is one signature found in a registry, not yet checked.
type candidate struct {
	source    string
	signature string // the base64 annotation
	payload   func() ([]byte, error)
}

// signatures gathers the signature layers of the signature tag and of every referrer
// with cosign's signature artifact type.
func (t signTarget) signatures() ([]candidate, error) {
	var out []candidate
	tag := t.sigTag()
	img, err := remote.Image(tag, t.ro...)
	switch {
	case err == nil:
		c, err := manifestSignatures(img, tag.String())
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	case !isNotFound(err):
		return nil, err
	}
	idx, err := remote.Referrers(t.repo.Digest(t.desc.Digest.String()), append(t.ro, remote.WithFilter("artifactType", SignatureArtifactType))...)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.ArtifactType != SignatureArtifactType { // the fallback tag's index is not filtered by the registry
			continue
		}
		r := t.repo.Digest(d.Digest.String())
		img, err := remote.Image(r, t.ro...)
		if err != nil {
			return nil, fmt.Errorf("referrer %s: %w", d.Digest, err)
		}
		c, err := manifestSignatures(img, "referrer "+d.Digest.String())
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}

// manifestSignatures lists the simple-signing layers of a signature manifest.
func manifestSignatures(img v1.Image, source string) ([]candidate, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var out []candidate
	for _, l := range m.Layers {
		if l.MediaType != SimpleSigningMediaType {
			continue
		}
		c := candidate{source: source, signature: l.Annotations[signatureAnnotation]}
		c.payload = func() ([]byte, error) {
			if l.Size > maxPayload {
				return nil, fmt.Errorf("payload of %d bytes is over the %d-byte limit", l.Size, maxPayload)
			}
			layer, err := img.LayerByDigest(l.Digest)
			if err != nil {
				return nil, err
			}
			rc, err := layer.Compressed() // the payload blob itself: verified against its digest by go-containerregistry
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(io.LimitReader(rc, maxPayload))
		}
		out = append(out, c)
	}
	return out, nil
}

// check verifies the signature over the payload with the key, then the payload's claims;
// it returns the payload.
func (c candidate) check(vo VerifyOptions, digest v1.Hash) ([]byte, error) {
	if c.signature == "" {
		return nil, fmt.Errorf("no %s annotation", signatureAnnotation)
	}
	sig, err := base64.StdEncoding.DecodeString(c.signature)
	if err != nil {
		return nil, fmt.Errorf("signature is not base64: %w", err)
	}
	payload, err := c.payload()
	if err != nil {
		return nil, fmt.Errorf("read payload: %w", err)
	}
	if !ecdsa.VerifyASN1(vo.Key, payloadDigest(vo.Key.Curve, payload), sig) {
		return nil, errors.New("signature does not verify with this key (another key signed it, or the payload was changed)")
	}
	var p SimpleSigning
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("payload is not simple-signing JSON: %w", err)
	}
	if p.Critical.Type != signatureType {
		return nil, fmt.Errorf("payload type %q, want %q", p.Critical.Type, signatureType)
	}
	if p.Critical.Image.DockerManifestDigest != digest.String() {
		return nil, fmt.Errorf("payload signs %s, not this image (%s)", p.Critical.Image.DockerManifestDigest, digest)
	}
	for k, want := range vo.Annotations {
		v, ok := p.Optional[k]
		if !ok || fmt.Sprint(v) != want {
			return nil, fmt.Errorf("annotation %s=%s not in the payload", k, want)
		}
	}
	return payload, nil
}

// isNotFound reports a registry's "no such manifest".
func isNotFound(err error) bool {
	return err != nil && errors.Is(explain(err, "", ""), ErrNotFound)
}
