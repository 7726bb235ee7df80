// Package registry moves images between kiln's store and the outside world: registries
// (pull, push, login) and archives (docker-archive and oci-archive, as `docker save` and
// skopeo write them). It is a thin layer over go-containerregistry and imports only cache.
package registry
