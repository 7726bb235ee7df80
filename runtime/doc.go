// Package runtime runs isolated containers for RUN steps and `kiln run`: it mounts the overlay
// rootfs itself, writes an OCI runtime-spec config.json with docker's defaults (namespaces,
// capabilities, seccomp, masked paths, rlimits, cgroup limits) and hands the bundle to a standard
// OCI runtime binary (crun or runc), as podman and buildah do.
//
// A process makes one Runtime with New (state dir, runtime binary); Start gives a *Container to
// Wait for, Kill, inspect (State) and Exec into, and Run is Start plus Wait. The runtime's choice
// and version are probed once per binary and boot and cached on disk, so a warm start execs the
// OCI runtime for the container alone. The one namespace it makes itself is the network
// namespace of NetworkBridge, which it pins and wires up (veth, address, routes, NAT and
// published ports through netlink and iptables) before the runtime joins it; NetworkSlirp's
// namespace it pins too and hands to slirp4netns.
//
// Isolation is a ladder (IsolationOCI as root, IsolationRootless otherwise). Rootless, the whole
// kiln process runs inside a user and mount namespace shared by all the user's kilns
// (EnterUserNamespace, UserNamespaceHook): it is root there, so unpacking, overlay and the OCI
// runtime work as they do as root, minus the bridge network; cgroup limits go in the cgroup v2
// subtree systemd delegates to the user (rootlessCgroup), and are refused, naming why, without one.
package runtime
