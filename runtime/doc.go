// Package runtime runs isolated containers for RUN steps and `kiln run`: it mounts the overlay
// rootfs itself, writes an OCI runtime-spec config.json with docker's defaults (namespaces,
// capabilities, seccomp, masked paths, rlimits, cgroup limits) and hands the bundle to a standard
// OCI runtime binary (crun or runc), as podman and buildah do. Exec, State and Kill reach a
// running container through the same runtime. The one namespace it makes itself is the network
// namespace of NetworkBridge, which it pins and wires up (veth, address, routes, NAT and
// published ports through netlink and iptables) before the runtime joins it.
package runtime
