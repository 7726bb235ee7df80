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

sh scripts/install-deps.sh docker.io buildah busybox-static bc >&2
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
for ctx in small big slow multi; do
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
} >"$OUT"
cat "$OUT"
