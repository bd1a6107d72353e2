# threadlift — see README.md.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
DEMO_ADDR ?=
FUZZTIME  ?= 60s

.PHONY: all build test demo lint staticcheck-version bench fuzz clean image release

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/threadlift ./cmd/threadlift
	$(GO) build -o $(BIN)/zendesk-fake ./cmd/zendesk-fake

## test: the whole suite with the race detector (what CI runs). The
## guarantees are proven on generated archives (internal/fixtures); the
## real archives of ../shared/corpora are an extra layer, run when there.
test:
	@[ -d ../shared/corpora ] || echo "corpus layer skipped: ../shared/corpora not found (the tests on generated archives run)"
	$(GO) test -race -count=1 -timeout 30m ./...

## demo: check, import the bundled sample archive into a local fake Zendesk,
## then verify it is all there exactly once.
demo: build
	@bash scripts/demo.sh $(DEMO_ADDR)

## lint: gofmt, go vet and staticcheck must be clean. staticcheck is
## pinned: make lint builds it with go run (cached after the first time),
## .ci/run installs the same version and passes STATICCHECK=staticcheck.
STATICCHECK_VERSION := v0.8.2
STATICCHECK        ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

staticcheck-version:
	@echo $(STATICCHECK_VERSION)

## bench: the performance targets (P1 throughput, P2 memory, P3 rate,
## P4 resume, P5 backfill, P6 memory slope, C1 checkpoint reads) as one table, then the Go benchmarks.
## P7 (every command's peak RSS at 1M messages, ~20 min) only when asked:
## make bench BENCH_FLAGS="-only P7". See bench/README.md.
## Quick run: make bench BENCH_SIZE=100MB BENCH_SMALL=20MB BENCH_P4_THREADS=10000
BENCH_SIZE       ?= 1GB
BENCH_SMALL      ?= 100MB
BENCH_SEED       ?= 1
BENCH_P3_THREADS ?= 2050
BENCH_P4_THREADS ?= 100000
BENCH_P5_MESSAGES ?= 400000
BENCH_P6_MESSAGES ?= 100000
BENCH_P7_MESSAGES ?= 1000000
BENCH_CACHE      ?=
BENCH_FLAGS      ?=
bench: build
	@mkdir -p $(BIN)/bench
	$(GO) build -o $(BIN)/bench/ ./bench/cmd/...
	$(BIN)/bench/benchtable -bin $(BIN) -go "$(GO)" -pywalk bench/pywalk.py \
	  -size $(BENCH_SIZE) -small-size $(BENCH_SMALL) -seed $(BENCH_SEED) \
	  -p3-threads $(BENCH_P3_THREADS) -p4-threads $(BENCH_P4_THREADS) \
	  -p5-messages $(BENCH_P5_MESSAGES) -p6-messages $(BENCH_P6_MESSAGES) \
	  -p7-messages $(BENCH_P7_MESSAGES) \
	  $(if $(BENCH_CACHE),-cache $(BENCH_CACHE)) $(BENCH_FLAGS)

## fuzz: run every fuzz target for FUZZTIME each (default 60s).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## image: the container image (Dockerfile) with the first container engine
## that answers (docker, podman, buildah); skipped with one line where none
## does. IMAGE=registry.example.com/threadlift:1.0.0 to name it.
IMAGE ?= threadlift:$(VERSION)
image:
	@engine=; for e in docker podman buildah; do \
	  if command -v $$e >/dev/null 2>&1 && $$e info >/dev/null 2>&1; then engine=$$e; break; fi; \
	done; \
	if [ -z "$$engine" ]; then echo "make image: skipped, no container engine answers here (docker, podman or buildah)"; exit 0; fi; \
	build="$$engine build"; [ "$$engine" = buildah ] && build="buildah bud"; \
	echo "$$build -t $(IMAGE) ."; \
	$$build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE) .

## release: static binaries for Linux, macOS and Windows on amd64 and arm64
## in bin/dist/, built as the image's is (scripts/build.sh), with SHA256SUMS.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
release:
	@rm -rf $(BIN)/dist && mkdir -p $(BIN)/dist
	@for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ "$$os" = windows ] && ext=.exe; \
	  out=$(BIN)/dist/threadlift-$(VERSION)-$$os-$$arch$$ext; echo "$$out"; \
	  GOOS=$$os GOARCH=$$arch VERSION=$(VERSION) COMMIT=$(COMMIT) sh scripts/build.sh $$out || exit 1; \
	done
	@cd $(BIN)/dist && if command -v sha256sum >/dev/null 2>&1; then sha256sum threadlift-* > SHA256SUMS; \
	  else shasum -a 256 threadlift-* > SHA256SUMS; fi
	@echo "$(BIN)/dist/SHA256SUMS"

clean:
	rm -rf $(BIN) .demo
