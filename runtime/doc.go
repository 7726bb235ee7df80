// Package runtime runs isolated containers for RUN steps and `kiln run`: it mounts the overlay
// rootfs itself, writes an OCI runtime-spec config.json with docker's defaults (namespaces,
// capabilities, seccomp, masked paths, rlimits, cgroup limits) and hands the bundle to a standard
// OCI runtime binary (crun or runc), as podman and buildah do. It never creates namespaces,
// seccomp filters or capability sets on its own.
package runtime
