// Package layer writes, diffs and extracts OCI layer tarballs.
//
// Writing is deterministic (sorted entries, PAX headers, numeric owners, clamped times) so the
// same tree always gives the same diff ID. Diff turns an overlayfs upper dir into a layer,
// walking only that dir. Apply is the inverse and a security boundary: layers come from
// untrusted registries, so every path is resolved inside the target dir (openat2 with
// RESOLVE_IN_ROOT, then *at syscalls on the parent directory's descriptor), never through
// a joined path string. Decompress bounds what a blob may expand to (Limits, overridable
// with KILN_LAYER_MAX_SIZE and KILN_LAYER_MAX_RATIO), so a small blob cannot fill the disk.
package layer
