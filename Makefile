# kycpipe — run `make` (or `make help`) to list the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 2m
# Minimizing a new input stops fuzzing meanwhile (up to 60s by default).
FUZZMINIMIZE ?= 5s
# Fuzz targets: "package:FuzzName" pairs, run by `make fuzz`.
FUZZ_TARGETS ?= \
	./pkg/jumio:FuzzParseCallback \
	./pkg/jumio:FuzzDecodeWorkflowDetails \
	./pkg/messages:FuzzDecodeRequest \
	./pkg/messages:FuzzDecodeCallback \
	./pkg/messages:FuzzDecodeEvents \
	./pkg/pipeline:FuzzSubmit \
	./pkg/pipeline:FuzzCallback \
	./pkg/webhooks:FuzzVerify \
	./pkg/webhooks:FuzzCheckURL \
	./pkg/webhooks:FuzzParseRetryAfter

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## Run the whole pipeline locally: embedded NATS + Jumio simulator + ingest (console at /console/) + worker + retriever + notifier + webhook receiver
	@mkdir -p bin
	$(GO) build -o bin/devstack ./cmd/devstack
	@# exec: Ctrl-C reaches devstack, which stops cleanly (go run would exit 1)
	exec ./bin/devstack $(ARGS)

.PHONY: test
test: ## Run all tests with the race detector (includes short fuzz seed-corpus runs)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

CHROMIUM ?= /usr/bin/chromium

.PHONY: test-browser
test-browser: ## Console tests in headless Chromium (apt-get installs Debian's chromium when missing); screenshots to docs/console/
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "$(CHROMIUM) is missing: installing Debian's chromium with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || { echo "cannot install chromium (run as root, or install it yourself)"; exit 1; }; \
	fi
	$(GO) test -race -count=1 -timeout 10m -tags browser -run Browser ./internal/console/

GOVULNCHECK ?= golang.org/x/vuln/cmd/govulncheck@v1.8.0
GOVULNDB    ?= https://vuln.go.dev

.PHONY: lint
lint: ## Check formatting, run go vet and govulncheck (installed through the module proxy)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	@echo "govulncheck ./..."; out=$$($(GO) run $(GOVULNCHECK) -db $(GOVULNDB) ./... 2>&1); rc=$$?; echo "$$out" | tail -20; \
	if [ $$rc -eq 3 ]; then echo "govulncheck: known vulnerabilities are reachable from this code"; exit 1; \
	elif [ $$rc -ne 0 ]; then echo "govulncheck: could not check: the vulnerability database $(GOVULNDB) is unreachable (set GOVULNDB to a mirror, e.g. file:///path); not failing lint"; fi

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 2m; FUZZFLAGS=-parallel=1 to leave cores free)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $(FUZZFLAGS) $$pkg; \
	done

BENCH_ARGS ?=
.PHONY: bench
bench: ## Benchmarks (~15 min): baselines, reference server, ingest, end to end (one node and a 3-node cluster), latency bound, burst, tokens; writes docs/BENCHMARKS.md + docs/benchmarks.png
	$(GO) run ./cmd/bench $(BENCH_ARGS)

PEERS_ARGS ?=
.PHONY: bench-peers
bench-peers: ## kycpipe vs the same saga on River + PostgreSQL 15 (~10 min, installs postgresql-15 if missing; runs peers/river's tests first); writes the Peers section of docs/BENCHMARKS.md
	$(GO) run ./cmd/bench peers $(PEERS_ARGS)

SOAK_ARGS ?=
.PHONY: soak
soak: ## Chaos/soak runs with erasures and webhooks (~10 min each, SOAK_ARGS for options): single node, then a 3-node cluster
	$(GO) run ./cmd/soak --mode single $(SOAK_ARGS)
	$(GO) run ./cmd/soak --mode cluster $(SOAK_ARGS)

.PHONY: soak-short
soak-short: ## The short soak (TestShortSoak, ~2-3 min with the race build): kills, NATS restarts, erasures, webhooks
	$(GO) test -tags soak -race -count=1 -timeout 15m -run '^TestShortSoak$$' -v ./internal/soak/

# The network and disk tests run as root (as CI does) and need iproute2 and
# iptables from Debian's packages: installed here when missing.
NET_PREREQS = if ! command -v ip >/dev/null 2>&1 || ! command -v iptables >/dev/null 2>&1; then \
	echo "installing iproute2 and iptables"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 iptables >/dev/null; fi

.PHONY: test-net
test-net: ## Short network-partition tests (root; < 1 min; installs iproute2/iptables when missing)
	@$(NET_PREREQS)
	$(GO) test -tags chaosnet -count=1 -timeout 10m -run '^TestShortChaosNet$$' -v ./internal/chaosnet/

.PHONY: test-disk
test-disk: ## Full-disk tests on small tmpfs mounts (root; ~1.5 min)
	$(GO) test -tags chaosnet -count=1 -timeout 10m -run '^TestDiskFull' -v ./internal/chaosnet/

CHAOSNET_ARGS ?=
.PHONY: chaos-net
chaos-net: ## Network partitions on a 3-node cluster in network namespaces (root; ~10 min; CHAOSNET_ARGS for options)
	@$(NET_PREREQS)
	$(GO) run ./cmd/chaosnet $(CHAOSNET_ARGS)

SOAK_NET_ARGS ?=
.PHONY: soak-net
soak-net: ## The 60-minute soak on the namespaced 3-node cluster: kills, node losses, partitions, erasures, webhooks (root; SOAK_NET_ARGS for options)
	@$(NET_PREREQS)
	$(GO) run ./cmd/chaosnet --soak 60m --drain-timeout 10m $(SOAK_NET_ARGS)

UPGRADE_ARGS ?=
# The previous release is built from git history: a shallow clone is deepened first.
UNSHALLOW = if [ "$$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then \
	echo "shallow clone: fetching the history (the previous release is built from it)"; git fetch --unshallow --quiet; fi

.PHONY: test-upgrade
test-upgrade: ## Rolling upgrade from the previous release (9aa777e, built from git) to this tree on a 3-node cluster (~4 min; UPGRADE_ARGS e.g. -upgrade.seed=N -upgrade.work-dir=DIR)
	@$(UNSHALLOW)
	$(GO) test -tags upgrade -count=1 -timeout 15m -run '^TestRollingUpgrade$$' -v ./test/upgrade/ $(UPGRADE_ARGS)

.PHONY: golden
golden: ## Recapture the golden message corpus of this tree (testdata/golden/current) from its binaries; GOLDEN_VERSION=9aa777e for the previous release's
	@$(UNSHALLOW)
	$(GO) test -tags upgrade -count=1 -timeout 10m -run '^TestCaptureGolden$$' -v ./test/upgrade/ -golden.update -golden.version=$(or $(GOLDEN_VERSION),current)

.PHONY: build
build: ## Build every binary into ./bin (ingest, worker, retriever, notifier, kycctl, …)
	@mkdir -p bin
	$(GO) build -o bin/ ./cmd/...
