# cwmp-agent: a TR-069 (CWMP) CPE agent implementing TR-111.
# `make help` lists the targets.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# HTTP/2 is left out of every binary: CWMP runs over HTTP/1.1 (TR-069 3.4)
# and the agent never negotiates h2, so net/http's bundled copy is dead
# weight (about 0.5 MB of the device binary).
TAGS      := nethttpomithttp2
BIN       := bin/cwmp-agent
CMDS      := cwmp-agent cwmp-fleet cwmp-stun-server
DIST      := dist
FUZZTIME  ?= 20s
# The Kubernetes manifests' tests are a module of their own, so that no
# binary links kustomize or the Kubernetes API.
K8STEST   := deploy/kubernetes/test
IMAGE     ?= cwmp-agent:$(VERSION)
PLATFORMS := linux/amd64 linux/arm linux/arm64 linux/mips linux/mipsle

.PHONY: help build test race fuzz lint bench cross demo clean run image

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/cwmp-agent (the device), bin/cwmp-fleet and bin/cwmp-stun-server (static, version stamped)
	@set -e; for c in $(CMDS); do CGO_ENABLED=0 $(GO) build -tags $(TAGS) -trimpath -ldflags '$(LDFLAGS)' -o bin/$$c ./cmd/$$c; done

test: lint ## run every test with the race detector (root-only tests skip with a message when not root), then the Kubernetes manifests' tests
	$(GO) test -race -count=1 -timeout 25m ./...
	cd $(K8STEST) && $(GO) test -count=1 -timeout 10m ./...

race: ## run the tests with the race detector, without lint
	$(GO) test -race -count=1 ./...

fuzz: ## run every fuzz target for FUZZTIME each (default 20s)
	@set -e; for f in $$(grep -l '^func Fuzz' $$(git ls-files '*_test.go')); do \
		pkg=./$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/func //'); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

lint: ## gofmt check and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd $(K8STEST) && $(GO) vet ./...

bench: ## run every benchmark and write the performance report (bench/report.md, bench/report.json)
	$(GO) run ./tools/benchreport -out bench -count 3 -once 'BenchmarkFleet500k$$'

cross: ## build the static, stripped device binary for CPE platforms into dist/
	@mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=$(DIST)/cwmp-agent-$$os-$$arch; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=7 GOMIPS=softfloat \
			$(GO) build -tags $(TAGS) -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/cwmp-agent; \
		echo "$$out $$(stat -c %s $$out) bytes"; \
	done

image: ## build the container image (deploy/Dockerfile: the three programs on distroless, non-root)
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE) .

demo: ## run a virtual CPE against the built-in local test ACS and print the transcript
	$(GO) run ./cmd/cwmp-fleet demo

run: build ## run the agent with ./cwmp-agent.yaml
	$(BIN) run --config cwmp-agent.yaml

clean: ## remove build outputs
	rm -rf bin $(DIST) bench/*.tmp
