// Package cache is kiln's on-disk store: an OCI image layout of blobs and tagged images,
// unpacked layer snapshots used as overlay lower dirs, the build cache index, and GC.
//
// There is no daemon, so many kiln processes may share one root. Every write is
// content-addressed or goes temp file → fsync → rename, so nothing half-written is ever
// visible under a final name. Cache records alone skip the fsync, and a build makes them
// durable with one syncfs (Flush) before it tags: a record a crash tears reads as a miss.
// File locks (flock) order the few shared mutations:
//
//	gc.lock            shared by every open Store, exclusive for GC (see OpenExclusive)
//	index.lock         exclusive while index.json (the tag list) is rewritten
//	locks/<hex>.lock   exclusive while one snapshot is unpacked, so concurrent callers unpack once
//	locks/state-*.lock exclusive across one read-modify-write of a state file (UpdateState)
//	tmp/o-<id>.lock    held by the Store whose staging is tmp/o-<id>/: a lock anyone can take
//	                   marks a dead owner, whose staging any Open removes
//
// The store owns every path under its root and hands out places (Containers, Logs, Mounts,
// Locks); no other package joins paths under Root. Anything that uses data holds a Lease
// (leases/<id>.json), and GC keeps what any live lease names: a container's lease is held by
// its directory, so `kiln rm` ends it. A running build holds its Store open, which keeps GC
// out altogether. The root and its directories are 0700: unpacked layers hold setuid files.
//
// Tags live in index.json as manifest descriptors annotated with the full normalized name
// (org.opencontainers.image.ref.name and io.containerd.image.name both hold
// "docker.io/library/hello:latest"). skopeo and umoci split an "oci:" reference at the
// first colon after the layout path, so these all work as long as the root path has no colon:
//
//	skopeo inspect oci:/var/lib/kiln:docker.io/library/hello:latest
//	umoci unpack --image /var/lib/kiln:docker.io/library/hello:latest bundle
//
// Images are stored byte for byte, since their digests are their identity. skopeo 1.9 and
// umoci 0.4 only see OCI-typed manifests in a layout, so an image pulled with Docker schema 2
// media types is invisible to them (kiln itself reads both); what kiln builds should be OCI.
//
// GC needs a Store from OpenExclusive, which fails with ErrInUse while any other Store is
// open on the root, instead of waiting: `kiln system prune` tells the user to retry.
package cache
