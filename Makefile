# kiln — see README.md. `make demo` and `make test` install what they need (as root on Debian).
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/kiln
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# The store `make demo` uses; override with `make demo KILN_ROOT=/some/dir`.
KILN_ROOT ?= /var/lib/kiln
export KILN_ROOT

DEMO_DEBS := busybox-static crun runc iptables uidmap fuse-overlayfs slirp4netns tini
TEST_DEBS := busybox-static crun runc skopeo umoci docker-registry apache2-utils git iptables uidmap fuse-overlayfs slirp4netns tini
FUZZTIME ?= 10s
# Minimizing each new interesting input may take the engine up to a minute by default, during which it
# counts no executions: short runs then spend all their time minimizing. Bound it by executions.
FUZZMINIMIZE ?= 100x
# Fuzz targets as package:Target; `make fuzz FUZZTIME=2m` runs each longer.
FUZZ_TARGETS := ./build:FuzzParsePlan ./build:FuzzIgnoreSelect ./build/sbom:FuzzParseDatabases ./cache/layer:FuzzApply ./cache/layer:FuzzApplyEntries ./cache/layer:FuzzDecompress ./cache:FuzzParseName ./registry:FuzzLoad ./runtime:FuzzResolveUser ./container:FuzzDecodeRecord

.PHONY: build demo test unit fuzz stress bench bench-compare lint deps-demo deps-test clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kiln

deps-demo:
	@sh scripts/install-deps.sh $(DEMO_DEBS)

deps-test:
	@sh scripts/install-deps.sh $(TEST_DEBS)

demo: deps-demo build
	cp /bin/busybox examples/busybox/busybox
	$(BIN) build --progress=plain -t busybox examples/busybox
	$(BIN) build --progress=plain -t hello examples/hello
	$(BIN) build --progress=plain -t app examples/app
	cp $(BIN) examples/kiln-in-kiln/kiln
	$(BIN) build --progress=plain -t kiln-in-kiln examples/kiln-in-kiln
	$(BIN) images
	$(BIN) inspect hello
	$(BIN) run --rm hello
	$(BIN) run --rm app

# The packages run under the race detector. cmd/kiln's tests re-execute the test binary as kiln
# hundreds of times (corpus, kill loop, CLI verbs); race-instrumented that takes 15 minutes, so the
# CLI glue runs without it while every package with concurrent code is raced.
RACE_PKGS = $(shell $(GO) list ./... | grep -v '/cmd/kiln$$')

test: deps-test lint
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 20m ./cmd/kiln
	@$(MAKE) --no-print-directory fuzz

# The crash suite at full strength: 1,000 SIGKILLed builds (make test kills 100).
stress: deps-test
	KILN_KILLS=1000 $(GO) test -count=1 -timeout 60m -run '^TestKillLoop$$' -v ./cmd/kiln

unit:
	$(GO) test -short ./...

# The fuzz engine resizes its shared-memory file under TMPDIR; on a disk mounted with
# `discard` every resize blocks for seconds, so fuzz in tmpfs when there is one.
FUZZ_TMPDIR := $(shell test -d /dev/shm && echo /dev/shm || echo $${TMPDIR:-/tmp})

fuzz:
	@TMPDIR=$(FUZZ_TMPDIR) FUZZTIME=$(FUZZTIME) FUZZMINIMIZE=$(FUZZMINIMIZE) GO=$(GO) bash scripts/fuzz.sh $(FUZZ_TARGETS)

bench: deps-test
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 -timeout 60m ./...
	@$(MAKE) --no-print-directory bench-compare

# kiln vs BuildKit vs buildah on the same contexts; installs docker.io and buildah, writes docs/benchmarks.md.
bench-compare:
	bash scripts/bench-compare.sh

# gofmt, vet and staticcheck (pinned by go.mod's tool directive, so no network beyond the module proxy).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

clean:
	rm -rf bin examples/busybox/busybox examples/kiln-in-kiln/kiln
