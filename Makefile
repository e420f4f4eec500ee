# The test command of the README. Suites that need Redis, PostgreSQL or MinIO
# use the service that their AVTO_TEST_* variable names, or the one found on
# its standard local port, and skip otherwise (internal/testenv); after go test
# a summary says which services the suites used or skipped, and why. CI
# (.ci/run) calls it with the service URLs exported and AVTO_REQUIRE_SERVICES=1.
#
#   make test                       everything, bench/ (a module of its own) too
#   make test PKGS=./store/... TESTFLAGS='-v -run Conformance'
GO ?= go
PKGS ?= ./...
TESTFLAGS ?=
# Nested modules, which go test ./... does not reach: tested and vetted when
# the whole tree is.
ifeq ($(PKGS),./...)
MODULES ?= bench
endif

.PHONY: test vet fmt-check fuzz showcase hello build compat fuzz-api console-screenshots

# The main module's go test runs last, so that its closing lines and its exit
# status close the run; the summary follows them. The report folder is new
# each run, so go test reruns the packages whose suites look for services
# rather than replay a result from before a service started or stopped.
test: vet fmt-check
	@report=$$(mktemp -d); trap 'rm -rf "$$report"' EXIT; status=0; \
	for m in $(MODULES); do \
	  echo "cd $$m && $(GO) test -race -timeout 25m $(TESTFLAGS) ./..."; \
	  (cd $$m && AVTO_TEST_REPORT_DIR="$$report" $(GO) test -race -timeout 25m $(TESTFLAGS) ./...) || status=$$?; \
	done; \
	echo "$(GO) test -race -timeout 25m $(TESTFLAGS) $(PKGS)"; \
	AVTO_TEST_REPORT_DIR="$$report" $(GO) test -race -timeout 25m $(TESTFLAGS) $(PKGS) || status=$$?; \
	sh internal/testenv/summary.sh "$$report"; \
	exit $$status

vet:
	$(GO) vet $(PKGS)
	@for m in $(MODULES); do echo "cd $$m && $(GO) vet ./..."; (cd $$m && $(GO) vet ./...) || exit 1; done

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# A short run of every fuzz target (FUZZTIME each); see scripts/fuzz.sh.
FUZZTIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

build:
	$(GO) build -o bin/ ./cmd/... ./examples/showcase ./examples/hello

showcase:
	$(GO) run ./examples/showcase

hello:
	$(GO) run ./examples/hello

# The Python compatibility suite (compat/python/run.sh): the showcase's
# orchestrator driven by workers written with the upstream Python SDK, once
# per pinned SDK version (virtual environments cached in ~/.cache/avtomatika).
compat:
	compat/python/run.sh

# The schema-driven API fuzzer (compat/schemathesis/run.sh): Schemathesis
# against /_public/openapi.json of a freshly started orchestrator for
# FUZZ_API_SECONDS (120), with client, admin and worker tokens; fails on a
# 5xx or an answer the document does not describe.
FUZZ_API_SECONDS ?= 120
fuzz-api:
	AVTO_FUZZ_API_SECONDS=$(FUZZ_API_SECONDS) compat/schemathesis/run.sh

# Screenshots of the web console's main pages into docs/console (README's
# Console section), taken by its browser test in Debian's Chromium.
console-screenshots:
	AVTO_TEST_CHROMIUM="$${AVTO_TEST_CHROMIUM:-$$(command -v chromium)}" AVTO_TEST_PLAYWRIGHT="$$(internal/console/e2e/install.sh)" \
	  AVTO_CONSOLE_SCREENSHOTS="$(CURDIR)/docs/console" \
	  $(GO) test -count=1 -run '^TestBrowser$$' ./internal/console/
