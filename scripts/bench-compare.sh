#!/usr/bin/env bash
# Compares kiln with BuildKit (docker.io, DOCKER_BUILDKIT=1) and buildah on the same build
# contexts: cold build, no-op rebuild, rebuild after editing one file. Prints a Markdown
# report (medians of RUNS runs, ratios kiln/BuildKit and kiln/buildah) to docs/benchmarks.md.
# Needs root and Debian (installs docker.io and buildah); run through `make bench-compare`.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
TOOLS=${TOOLS:-"kiln buildkit buildah"}
OUT=${OUT:-docs/benchmarks.md}
WORK=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
KILN=$PWD/bin/kiln
# Debian's docker.io client has BuildKit built in; a newer client elsewhere on PATH may lack buildx.
DOCKER=/usr/bin/docker
# crun 1.8 refuses hybrid cgroup hosts; buildah then needs runc, as kiln picks on its own.
BUILDAH_RUNTIME=${BUILDAH_RUNTIME:-$(command -v runc || echo crun)}

sh scripts/install-deps.sh docker.io buildah podman uidmap busybox-static bc python3 docker-registry curl >&2
make build >&2

start_dockerd() {
	if $DOCKER info >/dev/null 2>&1; then return; fi
	(dockerd >"$WORK/dockerd.log" 2>&1 &)
	for _ in $(seq 100); do $DOCKER info >/dev/null 2>&1 && return; sleep 0.2; done
	echo "dockerd did not start; see $WORK/dockerd.log" >&2; exit 1
}

# The base image: kiln's busybox example, handed to the other tools as a docker-archive.
make_base() {
	cp /bin/busybox examples/busybox/busybox
	KILN_ROOT=$WORK/base $KILN build -q -t busybox examples/busybox >/dev/null
	KILN_ROOT=$WORK/base $KILN save -o "$WORK/busybox.tar" busybox
	if [[ $TOOLS == *buildkit* ]]; then $DOCKER load -q -i "$WORK/busybox.tar" >/dev/null; fi
	if [[ $TOOLS == *buildah* ]]; then
		buildah pull -q docker-archive:"$WORK/busybox.tar" >/dev/null
		buildah tag "$(buildah images -q docker.io/library/busybox:latest 2>/dev/null || buildah images -q | head -1)" busybox:latest 2>/dev/null || true
	fi
}

# Four contexts: small RUN+COPY; 20,000 small files plus one 200 MB file; an expensive RUN
# before the COPY of the file that gets edited; three independent 2 s stages (parallelism).
make_contexts() {
	mkdir -p "$WORK/ctx/small" "$WORK/ctx/big/files" "$WORK/ctx/slow" "$WORK/ctx/multi"
	printf 'FROM busybox\nRUN echo hello > /hello && mkdir -p /app\nCOPY app.sh /app/\nRUN chmod +x /app/app.sh\nCMD ["/app/app.sh"]\n' >"$WORK/ctx/small/Dockerfile"
	printf '#!/bin/sh\necho app\n' >"$WORK/ctx/small/app.sh"
	printf 'FROM busybox\nCOPY . /data/\n' >"$WORK/ctx/big/Dockerfile"
	for d in $(seq 0 99); do
		mkdir -p "$WORK/ctx/big/files/d$d"
		for f in $(seq 0 199); do echo "file $d/$f" >"$WORK/ctx/big/files/d$d/f$f"; done
	done
	head -c 200M /dev/urandom >"$WORK/ctx/big/large.bin"
	printf 'FROM busybox\nRUN sleep 2 && echo done > /expensive\nCOPY edit.txt /edit.txt\n' >"$WORK/ctx/slow/Dockerfile"
	echo v0 >"$WORK/ctx/slow/edit.txt"
	for st in a b c; do printf 'FROM busybox AS %s\nRUN sleep 2 && echo %s > /%s\n' $st $st $st; done >"$WORK/ctx/multi/Dockerfile"
	printf 'FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nCOPY --from=c /c /c\nCOPY edit.txt /edit.txt\n' >>"$WORK/ctx/multi/Dockerfile"
	echo v0 >"$WORK/ctx/multi/edit.txt"
}

edit_file() { # the file each context's "edit" phase changes
	case $1 in
	small) echo "echo edited $RANDOM" >>"$WORK/ctx/small/app.sh" ;;
	big) echo "edited $RANDOM" >>"$WORK/ctx/big/files/d7/f7" ;;
	slow) echo "v$RANDOM" >"$WORK/ctx/slow/edit.txt" ;;
	multi) echo "v$RANDOM" >"$WORK/ctx/multi/edit.txt" ;;
	esac
}

reset_cache() { # cold: no build cache, base image still present
	case $1 in
	kiln) rm -rf "$WORK/kroot" && KILN_ROOT=$WORK/kroot $KILN load -i "$WORK/busybox.tar" >/dev/null ;;
	buildkit) $DOCKER builder prune -af >/dev/null; $DOCKER rmi -f bench >/dev/null 2>&1 || true ;;
	buildah) buildah rmi -f bench >/dev/null 2>&1 || true; buildah rmi --prune >/dev/null 2>&1 || true ;;
	esac
}

build_once() { # prints seconds; a failing build stops the benchmark with its output
	local tool=$1 ctx=$WORK/ctx/$2 start end rc=0
	start=$(date +%s.%N)
	case $tool in
	kiln) KILN_ROOT=$WORK/kroot $KILN build -q -t bench -f "$ctx/Dockerfile" "$ctx" >"$WORK/out" 2>&1 || rc=$? ;;
	buildkit) DOCKER_BUILDKIT=1 $DOCKER build -q -t bench "$ctx" >"$WORK/out" 2>&1 || rc=$? ;;
	buildah) buildah build --runtime "$BUILDAH_RUNTIME" --layers -q -t bench "$ctx" >"$WORK/out" 2>&1 || rc=$? ;;
	esac
	end=$(date +%s.%N)
	if [ "$rc" != 0 ]; then
		echo "$tool failed to build $2:" >&2
		cat "$WORK/out" >&2
		exit 1
	fi
	echo "$end - $start" | bc | sed 's/^\./0./'
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

if [[ $TOOLS == *buildkit* ]]; then start_dockerd; fi
make_base
make_contexts
declare -A RESULT
# SKIP_TABLE=1 measures only the speed goals below (the table then shows "-").
for ctx in ${SKIP_TABLE:+none} small big slow multi; do
	[[ -n ${SKIP_TABLE:-} ]] && break
	for tool in $TOOLS; do
		cold=() noop=() edit=()
		for _ in $(seq "$RUNS"); do
			reset_cache "$tool"
			cold+=("$(build_once "$tool" "$ctx")")
			noop+=("$(build_once "$tool" "$ctx")")
			edit_file "$ctx"
			edit+=("$(build_once "$tool" "$ctx")")
		done
		RESULT[$ctx,$tool,cold]=$(printf '%s\n' "${cold[@]}" | median)
		RESULT[$ctx,$tool,noop]=$(printf '%s\n' "${noop[@]}" | median)
		RESULT[$ctx,$tool,edit]=$(printf '%s\n' "${edit[@]}" | median)
		echo "$ctx $tool cold=${RESULT[$ctx,$tool,cold]} noop=${RESULT[$ctx,$tool,noop]} edit=${RESULT[$ctx,$tool,edit]}" >&2
	done
done

ratio() { [[ -n ${2:-} && $2 != 0 ]] && echo "scale=2; $1 / $2" | bc | sed 's/^\./0./' || echo "-"; }

# The speed goals of issue 11 beyond the table: one command's median over RUNS_START runs.
RUNS_START=${RUNS_START:-21}
time_cmd() { # prints the median seconds of running "$@" RUNS_START times (after one warm-up)
	local t=() start end
	"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@"; exit 1; }
	for _ in $(seq "$RUNS_START"); do
		start=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		end=$(date +%s.%N)
		t+=("$(echo "$end - $start" | bc)")
	done
	printf '%s\n' "${t[@]}" | median | sed 's/^\./0./'
}

# kiln run --rm busybox true next to runc on the same rootfs: with kiln's own config.json (docker's
# seccomp profile, capabilities, cgroups: what kiln adds around the runtime) and with `runc spec`'s
# default (no seccomp), and docker run when BuildKit's daemon is up.
bench_run() {
	local kr=$WORK/runroot bundle=$WORK/runc-bundle plain=$WORK/runc-plain id
	rm -rf "$kr" && KILN_ROOT=$kr $KILN load -i "$WORK/busybox.tar" >/dev/null
	# A run that is kept leaves its bundle (config.json) behind, and its filesystem to export.
	KILN_ROOT=$kr $KILN run --name bench-config --network none busybox true
	id=$(KILN_ROOT=$kr $KILN inspect -f '{{.Id}}' bench-config)
	mkdir -p "$bundle/rootfs" "$plain"
	KILN_ROOT=$kr $KILN export bench-config | tar -C "$bundle/rootfs" -x
	cp "$kr/containers/$id/bundle/"{config.json,hosts,hostname,resolv.conf} "$bundle/"
	python3 - "$bundle" "$kr/containers/$id/bundle" <<'PY'
import json, sys
bundle, orig = sys.argv[1], sys.argv[2]
c = json.load(open(bundle + "/config.json"))
c["root"] = {"path": bundle + "/rootfs", "readonly": True}
c["linux"]["cgroupsPath"] = "kiln/bench-runc"
for m in c["mounts"]:
    m["source"] = m["source"].replace(orig, bundle)
json.dump(c, open(bundle + "/config.json", "w"))
PY
	(cd "$plain" && runc spec && python3 -c "
import json; c=json.load(open('config.json')); c['root']={'path':'$bundle/rootfs','readonly':True}
c['process']['terminal']=False; c['process']['args']=['true']; json.dump(c,open('config.json','w'))")
	RUN_KILN=$(time_cmd env KILN_ROOT="$kr" "$KILN" run --rm --network none busybox true)
	RUN_KILN_BRIDGE=$(time_cmd env KILN_ROOT="$kr" "$KILN" run --rm busybox true)
	RUN_RUNC=$(time_cmd runc --root "$WORK/runc-state" run --bundle "$bundle" bench-runc)
	RUN_PLAIN=$(time_cmd runc --root "$WORK/runc-state" run --bundle "$plain" bench-plain)
	RUN_DOCKER=-
	if [[ $TOOLS == *buildkit* ]]; then RUN_DOCKER=$(time_cmd $DOCKER run --rm --network none busybox true); fi
	echo "run: kiln=$RUN_KILN kiln-bridge=$RUN_KILN_BRIDGE runc-same-config=$RUN_RUNC runc-spec=$RUN_PLAIN docker=$RUN_DOCKER" >&2
}

# Ten COPY steps over a 51 MB base against one (cold, the base present): each step's view of the
# base must not re-read it.
bench_copies() {
	local d=$WORK/ctx/copies base=$WORK/copyroot
	mkdir -p "$d/base" "$d/one" "$d/ten"
	printf 'FROM busybox\nRUN head -c 51000000 /dev/urandom > /base.bin\n' >"$d/base/Dockerfile"
	rm -rf "$base" && KILN_ROOT=$base $KILN load -i "$WORK/busybox.tar" >/dev/null
	KILN_ROOT=$base $KILN build -q -t base51 "$d/base" >/dev/null
	for i in $(seq 0 9); do echo "$i" >"$d/one/f$i"; echo "$i" >"$d/ten/f$i"; done
	printf 'FROM base51\nCOPY f0 /f0\n' >"$d/one/Dockerfile"
	{ echo "FROM base51"; for i in $(seq 0 9); do echo "COPY f$i /f$i"; done; } >"$d/ten/Dockerfile"
	COPY_ONE=$(time_cmd env KILN_ROOT="$base" "$KILN" build -q --no-cache -f "$d/one/Dockerfile" "$d/one")
	COPY_TEN=$(time_cmd env KILN_ROOT="$base" "$KILN" build -q --no-cache -f "$d/ten/Dockerfile" "$d/ten")
	echo "copies: one=$COPY_ONE ten=$COPY_TEN" >&2
}

# A second CI machine importing a registry cache: all bytes it fetches against the final image's
# layer bytes (the CLI test measures it through a counting proxy in front of docker-registry).
bench_fleet() {
	FLEET=$(go test -count=1 -run '^TestLazyCacheImport$' -v ./cmd/kiln 2>&1 | grep -o 'second machine: [0-9]* bytes fetched (everything) in [^;]*; the final image.s layers are [0-9]* bytes' | head -1)
	echo "fleet: $FLEET" >&2
}

# Issue 13's figures: a second CI machine's build time and bytes pulled, kiln's lazy registry
# cache and inline cache against BuildKit's inline cache (`docker build --cache-from`), on the
# same Buildfile (a 20 MB builder layer, a 1 MB result) and the same docker-registry. Bytes are
# summed from the registry's access log: every GET response body (manifests, configs, blobs).
# Machine A builds and exports; machine B is a fresh kiln store, or docker with its build cache
# pruned and the built image removed (the base image stays, as in kiln's store). Docker is a
# private daemon (its own data root and socket; no bridge, so its RUN steps use --network none),
# so no other docker state is touched.
bench_fleet_compare() {
	local d=$WORK/fleet reg dk regpid dpid mark start end
	mkdir -p "$d/ctx" "$d/reg" "$d/docker"
	printf 'FROM busybox AS builder\nRUN head -c 20000000 /dev/urandom > /big && echo small > /small\nFROM busybox\nCOPY --from=builder /small /small\nCOPY f /f\n' >"$d/ctx/Dockerfile"
	echo f >"$d/ctx/f"
	reg=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$d/reg/data" "$reg" >"$d/reg/config.yml"
	docker-registry serve "$d/reg/config.yml" >"$d/reg/access.log" 2>&1 &
	regpid=$!
	# Loopback registries are insecure by default for docker (127.0.0.0/8), BuildKit's cache import included.
	dockerd --data-root "$d/docker/data" --exec-root "$d/docker/exec" --pidfile "$d/docker/pid" -H "unix://$d/docker/sock" \
		--containerd-namespace kiln-fleet --containerd-plugins-namespace kiln-fleet-plugins --bridge=none --iptables=false --ip-masq=false >"$d/docker/log" 2>&1 &
	dpid=$!
	trap 'kill '"$dpid $regpid"' 2>/dev/null; wait '"$dpid $regpid"' || true; rm -rf "$WORK"' EXIT
	dk="$DOCKER -H unix://$d/docker/sock"
	for _ in $(seq 100); do curl -sf "http://$reg/v2/" >/dev/null && $dk info >/dev/null 2>&1 && break; sleep 0.2; done
	$dk info >/dev/null || { echo "private dockerd did not start; see $d/docker/log" >&2; exit 1; }
	$dk load -q -i "$WORK/busybox.tar" >/dev/null
	pulled() { awk -v from="$1" 'NR > from && $6 == "\"GET" {s += $10} END {print s + 0}' "$d/reg/access.log"; }
	second() { # second NAME CMD...: times CMD, counts the bytes it pulled and its cached steps
		mark=$(wc -l <"$d/reg/access.log")
		start=$(date +%s.%N)
		"${@:2}" >"$d/$1.out" 2>&1 || { echo "fleet: $1 failed:" >&2; cat "$d/$1.out" >&2; exit 1; }
		end=$(date +%s.%N)
		FLEET_CMP[$1]="$(echo "$end - $start" | bc | sed 's/^\./0./') | $(pulled "$mark") | $(grep -c CACHED "$d/$1.out")"
		echo "fleet-compare $1: ${FLEET_CMP[$1]}" >&2
	}
	declare -gA FLEET_CMP

	rm -rf "$d/kA" && KILN_ROOT=$d/kA $KILN load -i "$WORK/busybox.tar" >/dev/null
	KILN_ROOT=$d/kA $KILN build -q --cache-to "type=registry,ref=$reg/fleet/kiln:buildcache,mode=max" -t app "$d/ctx" >/dev/null
	KILN_ROOT=$d/kA $KILN build -q --cache-to type=inline -t "$reg/fleet/kiln:inline" --push "$d/ctx" >/dev/null
	rm -rf "$d/kB" && KILN_ROOT=$d/kB $KILN load -i "$WORK/busybox.tar" >/dev/null
	second kiln-registry env KILN_ROOT="$d/kB" "$KILN" build --progress=plain --cache-from "$reg/fleet/kiln:buildcache" -t app "$d/ctx"
	rm -rf "$d/kC" && KILN_ROOT=$d/kC $KILN load -i "$WORK/busybox.tar" >/dev/null
	second kiln-inline env KILN_ROOT="$d/kC" "$KILN" build --progress=plain --cache-from "$reg/fleet/kiln:inline" -t app "$d/ctx"

	DOCKER_BUILDKIT=1 $dk build -q --network none --build-arg BUILDKIT_INLINE_CACHE=1 -t "$reg/fleet/buildkit:inline" "$d/ctx" >/dev/null
	$dk push -q "$reg/fleet/buildkit:inline" >/dev/null
	$dk builder prune -af >/dev/null
	$dk rmi -f "$reg/fleet/buildkit:inline" >/dev/null
	second buildkit-inline env DOCKER_BUILDKIT=1 $dk build --network none --progress=plain --cache-from "$reg/fleet/buildkit:inline" -t "$reg/fleet/buildkit:inline" "$d/ctx"
	FLEET_DOCKER=$($dk version -f '{{.Server.Version}}')
	kill "$dpid" "$regpid" && wait "$dpid" "$regpid" || true
	trap 'rm -rf "$WORK"' EXIT
}

fleet_compare_table() { # the section bench_fleet_compare measured
	echo "## A second CI machine: kiln's cache against BuildKit's"
	echo
	echo "One run. Buildfile: a builder stage writing a 20 MB random file and a small one, a final stage of"
	echo "busybox + \`COPY --from=builder /small\` + \`COPY f\`. Machine A builds and exports its cache to a loopback"
	echo "docker-registry; machine B (a fresh kiln store; docker $FLEET_DOCKER with \`docker builder prune -af\` and"
	echo "the image removed, both with the base image) builds the same context with \`--cache-from\`. Bytes pulled:"
	echo "every GET response body in the registry's access log during B's build (manifests, configs, blobs)."
	echo
	echo "| machine B | cache | build seconds | bytes pulled | steps CACHED |"
	echo "|---|---|---|---|---|"
	echo "| kiln (lazy import) | \`--cache-to type=registry,mode=max\` | ${FLEET_CMP[kiln-registry]:-- | - | -} |"
	echo "| kiln (lazy import) | \`--cache-to type=inline\` | ${FLEET_CMP[kiln-inline]:-- | - | -} |"
	echo "| BuildKit (\`docker build --cache-from\`) | \`BUILDKIT_INLINE_CACHE=1\` | ${FLEET_CMP[buildkit-inline]:-- | - | -} |"
}

# Rootless (issue 12): kiln run --rm and a small build as an unprivileged user (useradd gives it
# subordinate ids), next to rootless podman (runc: crun refuses hybrid cgroup hosts) on the same image.
bench_rootless() {
	local u=kiln-bench home=/var/tmp/kiln-bench-user
	id "$u" >/dev/null 2>&1 || useradd --home-dir "$home" "$u"
	rm -rf "$home" && mkdir -p "$home/xdg" && cp "$KILN" "$WORK/busybox.tar" "$home/" && cp -r examples/app "$home/app"
	chown -R "$u:" "$home" && chmod 0700 "$home/xdg"
	local as=(setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --init-groups env -i HOME="$home"
		XDG_RUNTIME_DIR="$home/xdg" PATH=/usr/sbin:/usr/bin:/sbin:/bin)
	"${as[@]}" "$home/kiln" load -i "$home/busybox.tar" >/dev/null
	"${as[@]}" podman load -i "$home/busybox.tar" >/dev/null 2>&1
	ROOTLESS_RUN=$(time_cmd "${as[@]}" "$home/kiln" run --rm --network none busybox true)
	ROOTLESS_PODMAN=$(time_cmd "${as[@]}" podman --runtime runc run --rm --network none localhost/busybox true)
	ROOTLESS_COLD=$(time_cmd "${as[@]}" "$home/kiln" build -q --no-cache -t app "$home/app")
	ROOTLESS_NOOP=$(time_cmd "${as[@]}" "$home/kiln" build -q -t app "$home/app")
	local kr=$WORK/runroot
	ROOT_COLD=$(time_cmd env KILN_ROOT="$kr" "$KILN" build -q --no-cache -t app examples/app)
	ROOT_NOOP=$(time_cmd env KILN_ROOT="$kr" "$KILN" build -q -t app examples/app)
	"${as[@]}" podman rm -af >/dev/null 2>&1 || true
	echo "rootless: run=$ROOTLESS_RUN podman=$ROOTLESS_PODMAN cold=$ROOTLESS_COLD/$ROOT_COLD noop=$ROOTLESS_NOOP/$ROOT_NOOP" >&2
}

rootless_table() {
	echo "## Rootless"
	echo
	echo "Medians of $RUNS_START runs, seconds, as an unprivileged user with subordinate ids (\`useradd\`), store and"
	echo "runtime dir in its home. podman $(podman --version 2>/dev/null | cut -d' ' -f3) with runc (crun refuses this"
	echo "hybrid cgroup host). The build is examples/app (two RUN steps and a COPY over busybox)."
	echo
	echo "| | root | rootless | rootless podman |"
	echo "|---|---|---|---|"
	echo "| \`run --rm --network none busybox true\` | $RUN_KILN | $ROOTLESS_RUN | $ROOTLESS_PODMAN |"
	echo "| build examples/app, cold (\`--no-cache\`) | $ROOT_COLD | $ROOTLESS_COLD | - |"
	echo "| build examples/app, no-op | $ROOT_NOOP | $ROOTLESS_NOOP | - |"
}

bench_run
bench_copies
bench_fleet
bench_rootless
if [[ $TOOLS == *buildkit* ]]; then bench_fleet_compare; fi
{
	echo "# Benchmarks: kiln vs BuildKit vs buildah"
	echo
	echo "Measured by \`scripts/bench-compare.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r);"
	echo "median of $RUNS runs, seconds, wall clock. kiln $($KILN version | cut -d' ' -f2),"
	echo "$($DOCKER --version 2>/dev/null || echo docker: n/a), $(buildah --version 2>/dev/null || echo buildah: n/a)."
	echo "Contexts: **small** (RUN + COPY + RUN), **big** (COPY of 20,000 small files and one 200 MB file),"
	echo "**slow** (a 2 s RUN before a COPY of the edited file), **multi** (three independent stages of"
	echo "\`RUN sleep 2\` copied into a fourth: stages run in parallel). Phases: cold (no build cache, base image"
	echo "present), no-op rebuild, rebuild after editing one file."
	echo
	echo "| context | phase | kiln | BuildKit | buildah | kiln/BuildKit | kiln/buildah |"
	echo "|---|---|---|---|---|---|---|"
	for ctx in small big slow multi; do
		for ph in cold noop edit; do
			k=${RESULT[$ctx,kiln,$ph]:-} b=${RESULT[$ctx,buildkit,$ph]:-} h=${RESULT[$ctx,buildah,$ph]:-}
			echo "| $ctx | $ph | ${k:--} | ${b:--} | ${h:--} | $(ratio "$k" "$b") | $(ratio "$k" "$h") |"
		done
	done
	echo
	echo "## Speed goals"
	echo
	echo "Medians of $RUNS_START runs, seconds."
	echo
	echo "| goal | measured | ratio |"
	echo "|---|---|---|"
	echo "| \`kiln run --rm --network none busybox true\` ≤ 1.3× the bare OCI runtime | kiln $RUN_KILN; runc with kiln's config.json $RUN_RUNC; runc with \`runc spec\`'s (no seccomp) $RUN_PLAIN; docker run $RUN_DOCKER | $(ratio "$RUN_KILN" "$RUN_RUNC")× runc (same config), $(ratio "$RUN_KILN" "$RUN_PLAIN")× runc (its default spec) |"
	echo "| \`kiln run --rm busybox true\` (bridge network) | $RUN_KILN_BRIDGE | $(ratio "$RUN_KILN_BRIDGE" "$RUN_RUNC")× runc (same config, no network) |"
	echo "| three independent 2 s stages ≤ 0.8× BuildKit | multi cold: kiln ${RESULT[multi,kiln,cold]:--}, BuildKit ${RESULT[multi,buildkit,cold]:--} | $(ratio "${RESULT[multi,kiln,cold]:-}" "${RESULT[multi,buildkit,cold]:-}") |"
	echo "| ten COPY steps over a 51 MB base ≤ 2× one | one $COPY_ONE, ten $COPY_TEN | $(ratio "$COPY_TEN" "$COPY_ONE") |"
	echo "| no-op rebuild of 20,000 files ≤ 0.20 s (2× a 0.10 s floor) | big noop: kiln ${RESULT[big,kiln,noop]:--} | - |"
	echo "| a second CI machine fetches no more than the final image's layers | ${FLEET:-not measured} | - |"
	echo
	echo "runc's own cost with docker's seccomp profile is most of the gap to \`runc spec\`'s default: runc compiles"
	echo "the profile with libseccomp at every start, for the x86_64, i386 and x32 ABIs, as docker's profile lists them."
	echo
	rootless_table
	if [[ $TOOLS == *buildkit* ]]; then echo; fleet_compare_table; fi
} >"$OUT"
cat "$OUT"
