// Package registry moves images between kiln's store and the outside world: registries
// (pull, push, login) and archives (docker-archive and oci-archive, as `docker save` and
// skopeo write them). It is a thin layer over go-containerregistry and imports only cache.
//
// Pulls verify every blob before the store publishes it and write the manifest last and
// the tag after it, so an interrupted pull leaves no image and the next one resumes.
// Requests are retried on 408, 429 (honouring Retry-After), 5xx and broken connections;
// localhost and loopback registries use plain HTTP when they offer no TLS. Mirrors and
// insecure registries come from registries.toml (podman's registries.conf v2 shape, read
// with pelletier/go-toml/v2, which the module graph already had, in strict mode so typos
// are errors) or from options.
//
// Digests across archives: an oci-archive round trip keeps the manifest digest. A
// docker-archive holds uncompressed layers, so loading one recompresses them and the
// manifest digest may change; the image ID (config digest) and the layers' diff IDs stay.
//
// Small hints live in the store's state dir: registry-mounts.json (which remote
// repositories hold which blobs, for cross-repository mounts on push) and
// registry-encoded.json (layers already re-encoded for a push compression).
package registry
