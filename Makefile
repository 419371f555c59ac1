# runtimeguard: `make demo` runs the main job, `make test` runs every test.
# Tools (kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kubectl, opa, helm, cert-manager) are
# built pinned from the Go module proxy into bin/ (git-ignored) and rebuilt only when their
# pinned version changes. Each target that runs tools builds exactly the ones
# e2e/tools/tools.txt lists for it (`e2e/tools/build.sh --for <target>`); the Go code resolves
# them from the same list (package e2e/tools), and a recipe names one with $(call tool,...).

# go1.26.10 fixes standard-library vulnerabilities reachable in 1.26.8 (see `make vuln`); the go
# command fetches it from the module proxy once. Override with GOTOOLCHAIN=local at your risk.
export GOTOOLCHAIN ?= go1.26.10

# Every Go build here is static and path-free like the image's (`make build`): then go vet, the
# tests and go run share one compile of the dependencies with bin/runtimeguard, which saves a
# cold `make test` a whole compile of them. The race detector needs cgo: `make unit` turns it
# back on for its -race run. The tools build as their own projects do (e2e/tools/build.sh).
export CGO_ENABLED ?= 0
export GOFLAGS ?= -trimpath

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
BIN := $(CURDIR)/bin
GO ?= go
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '/e2e$$')
POLICY_DIRS := policies $(wildcard policies/examples/*/)
FUZZTIME ?= 10s
LEAK_TEST := TestBadInputDoesNotLeak

.DEFAULT_GOAL := help

# $(call tool,ENTRY,NAME) is $(BIN)/NAME, or an error when e2e/tools/tools.txt does not list
# NAME for ENTRY (so `make ENTRY` would not build it).
tool = $(if $(filter $(2),$(shell e2e/tools/build.sh --list $(1))),$(BIN)/$(2),$(error $(1) uses $(2), which e2e/tools/tools.txt does not list for $(1): add it there))

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# What `runtimeguard version`, the start-up log line and runtimeguard_build_info report.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
VERSION_PKG := github.com/runtimeguard/runtimeguard/version
LDFLAGS := -s -w -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).commit=$(COMMIT)

.PHONY: build
build: ## Build bin/runtimeguard (static, like the image), stamped with VERSION and COMMIT.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/runtimeguard ./cmd/runtimeguard

.PHONY: tools
tools: ## Build the pinned control plane, opa, helm and cert-manager into bin/ (cold: ~25 min on 2 cores).
	e2e/tools/build.sh all

.PHONY: node-tools
node-tools: ## Build a real node's runtime into bin/: containerd, runc, gVisor, crictl, offline images (used by test-node and demo-node; smoke: e2e/tools/node-smoke.sh).
	e2e/tools/build.sh --for node-tools

# Root only: containerd and the kubelet run in a private mount namespace, Pods in cgroups under
# one parent of their own; the host is left as it was (checked by the tests).
.PHONY: test-node
test-node: build ## Real node: kubelet + containerd + runc/gVisor run the Pods runtimeguard admits (root; part of `make test`).
	@[ "$$(id -u)" = 0 ] || { echo "make test-node (part of make test) needs root: containerd, the kubelet and runsc manage mounts and cgroups (the host is left as it was). Run it as root, e.g. in a root shell or a throwaway VM."; exit 1; }
	e2e/tools/build.sh --for test-node
	RUNTIMEGUARD_NODE_E2E=1 $(GO) test -count=1 -timeout 10m -v ./e2e/node/
	RUNTIMEGUARD_NODE_E2E=1 $(GO) test -count=1 -timeout 15m -v -run '^TestRealNode$$' ./e2e/ 2>&1 | grep -vE '^[IWE][0-9]{4} '

.PHONY: dev-certs
dev-certs: build ## Write a throwaway CA and serving certificate into bin/dev-certs.
	$(BIN)/runtimeguard dev-certs --dir $(BIN)/dev-certs

.PHONY: lint
lint: ## gofmt, go vet, opa fmt and opa check --strict.
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^e2e/tools/[^/]*/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	e2e/tools/build.sh --for lint
	$(call tool,lint,opa) fmt --list --fail policies
	$(call tool,lint,opa) check --strict policies
	@for d in $(filter-out policies,$(POLICY_DIRS)); do echo "opa check --strict policies/runtimeguard.rego policies/data.yaml $$d"; $(call tool,lint,opa) check --strict policies/runtimeguard.rego policies/data.yaml $$d; done

.PHONY: opa-test
opa-test: ## Rego unit tests; per-file coverage floors on the shipped policy (runtimeguard.rego 90%, explain.rego 95%).
	e2e/tools/build.sh --for opa-test
	e2e/tools/opa-test.sh $(call tool,opa-test,opa) $(BIN)
	$(call tool,opa-test,opa) test policies

# The chart's native admission policies (native.mode) are generated from the default policy's
# data; charts/native_test.go fails when they are stale.
NATIVE_POLICIES := charts/runtimeguard/files/native-policies.yaml
.PHONY: chart-native
chart-native: build ## Regenerate the chart's native admission policies from policies/data.yaml.
	{ echo "# Generated by make chart-native (runtimeguard generate native) from policies/data.yaml: do not edit."; \
	  $(BIN)/runtimeguard generate native --webhook-namespace RUNTIMEGUARD_RELEASE_NAMESPACE 2>/dev/null; } > $(NATIVE_POLICIES)

.PHONY: policy-suites
policy-suites: build ## Declarative policy suites (*.suite.yaml) through `runtimeguard test`, and the native policies checked against them.
	$(BIN)/runtimeguard test --native policies

# The leak test sends 200 bodies of up to 7 MiB per case and measures the heap: the race
# detector makes that ~50x slower (minutes) and distorts the heap, so it runs without it.
.PHONY: unit
unit: ## Go unit tests, chart tests and certs integration tests (everything but e2e), with the race detector.
	e2e/tools/build.sh --for unit
	CGO_ENABLED=1 $(GO) test -race -count=1 -skip '^$(LEAK_TEST)$$' $(UNIT_PKGS)
	$(GO) test -count=1 -run '^$(LEAK_TEST)$$' ./webhook/

.PHONY: fuzz-short
fuzz-short: ## Fuzz the request decoding and the Rego input builder briefly.
	$(GO) test -run '^$$' -fuzz '^FuzzAdmissionReview$$' -fuzztime $(FUZZTIME) ./webhook/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePod$$' -fuzztime $(FUZZTIME) ./webhook/policy/

.PHONY: fuzz
fuzz: ## Fuzz longer (FUZZTIME=5m by default here).
	$(MAKE) fuzz-short FUZZTIME=5m

.PHONY: e2e
e2e: build ## End-to-end suite against a real kube-apiserver, etcd, kube-controller-manager and kube-scheduler.
	e2e/tools/build.sh --for e2e
	@# go test's exit status decides (PIPESTATUS[0]), not the log: tee and the filter cannot
	@# mask a failure, nor a stray "ok" line fake a pass.
	@set +e; $(GO) test -count=1 -timeout 30m -v ./e2e/ 2>&1 | tee $(BIN)/e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|measure:)|_test.go'; \
	st=("$${PIPESTATUS[@]}"); set -e; \
	if [ "$${st[0]}" -ne 0 ] || [ "$${st[1]}" -ne 0 ]; then \
		echo "e2e failed: see bin/e2e.log (go test exit status $${st[0]}, tee $${st[1]})"; \
		grep -E -- '^\s*--- FAIL|^panic:|^FAIL|^e2e setup failed' $(BIN)/e2e.log || true; \
		exit 1; \
	fi
	@cat $(BIN)/e2e-measurements.txt

.PHONY: soak
soak: build ## Soak: the webhook at 200 admissions/s over TLS for 30 min; fails on any error, RSS or goroutine growth.
	$(GO) run ./e2e/soak -duration 30m

.PHONY: soak-short
soak-short: build ## The 2-minute soak that `make test` runs.
	$(GO) run ./e2e/soak -duration 2m

.PHONY: vuln
vuln: ## govulncheck against a vulnerability database built offline from golang.org/x/vulndb (cached in bin/vulndb).
	e2e/tools/vuln/run.sh ./...

.PHONY: static-check
static-check: build ## Check the binary is static and runs (what the distroless image needs; no Docker engine here).
	@out=$$(file $(BIN)/runtimeguard); echo "$$out"; case "$$out" in *"statically linked"*) ;; *) echo "not a static binary"; exit 1 ;; esac
	@if ldd $(BIN)/runtimeguard 2>/dev/null | grep -q '=>'; then echo "bin/runtimeguard links shared libraries"; exit 1; fi
	@$(BIN)/runtimeguard eval --cluster policies/examples/cluster/cluster.yaml policies/examples/pods/pods.yaml -o json > /dev/null || [ $$? -eq 1 ]
	@echo "bin/runtimeguard is static and runs"

.PHONY: test
test: lint opa-test policy-suites unit e2e test-node soak-short static-check fuzz-short vuln ## Every test: lint, Rego, Go, chart, e2e, real node (root), 2-min soak, static binary, short fuzz, govulncheck.
	@echo "make test: all passed"

.PHONY: demo
demo: build ## Start a local control plane with the webhook enforcing policy, apply examples, print what happened.
	e2e/tools/build.sh --for demo
	$(GO) run ./e2e/demo $(DEMO_ARGS)

.PHONY: demo-node
demo-node: build ## The demo on a real node: kubelet + containerd run an untrusted Pod in gVisor and print its kernel (root; builds the node tools: ~6 min cold after the control plane's).
	e2e/tools/build.sh --for demo-node
	$(GO) run ./e2e/demo -real-node

.PHONY: bench
bench: build ## Benchmarks: decision path, load generator vs Go baseline vs opa run --server, scaling, memory (docs/benchmarks.md).
	e2e/tools/build.sh --for bench
	BIN=$(BIN) GO=$(GO) e2e/bench/run.sh

.PHONY: clean
clean: ## Remove bin/ (tools included: the next build is cold).
	rm -rf $(BIN)
