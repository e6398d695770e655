# align: build, test and benchmark targets.
#   make setup   install what the build and tests need (Go modules; OpenBLAS from Debian when root)
#   make build   build bin/align
#   make test    vet + the whole test suite (CPU; CUDA kernels through their CPU emulation)
#   make bench   GEMM and layer benchmarks with ratios against baselines measured in the same run
#   make info    build and print backends, BLAS core and a GEMM probe
#   make data    download the emoji packages and build the image and clip datasets

GO      ?= go
BIN     := bin/align
GOFLAGS ?=
export GOFLAGS

# Python companion (golden fixtures, peer benchmarks); never needed by `make test`.
PYENV   := third_party/py
PYTHON  := $(PYENV)/bin/python
PYPKGS  := jax==0.10.2 jaxlib==0.10.2 numpy==2.4.6 safetensors==0.8.0

.PHONY: all setup openblas build test vet bench info clean pyenv golden data

all: build

setup: openblas
	$(GO) mod download

# OpenBLAS is optional (the pure-Go GEMM is the fallback: on par for large products with
# AVX-512, slower on small ones and without AVX-512); it is loaded at run
# time, so installing it needs no rebuild. Installed only where we are root and apt exists.
openblas:
	@if ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0'; then \
		echo "✓ OpenBLAS present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "→ installing OpenBLAS (libopenblas0-pthread) from Debian"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread >/dev/null) \
			|| echo "✗ OpenBLAS install failed; the pure-Go GEMM will be used"; \
	else \
		echo "✗ OpenBLAS not found and not root: the pure-Go GEMM will be used"; \
	fi

build:
	$(GO) build -o $(BIN) ./cmd/align

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed on:"; gofmt -l .; exit 1)

test: setup vet
	$(GO) test -count=1 -timeout 20m ./...

# Benchmarks print their baselines from the same run: GEMM against OpenBLAS called directly
# and gonum; the DiT block against the GEMM rate and against JAX (from make pyenv).
bench: setup pyenv
	ALIGN_PYTHON=$(CURDIR)/$(PYTHON) $(GO) test -run '^$$' -bench 'GemmTable|DiTBlock|Attention' -benchtime 10x -timeout 30m ./kernels ./nn

pyenv: $(PYTHON)
$(PYTHON):
	python3 -m venv $(PYENV)
	$(PYENV)/bin/pip install -q $(PYPKGS)

# Regenerates the committed golden fixtures (the Go tests only read them).
golden: pyenv
	$(PYTHON) scripts/golden/dit_block.py

# The emoji image and clip datasets (npm packages, checksummed) into data/emoji.
data: build
	./$(BIN) data prepare --output-dir data/emoji

info: setup build
	./$(BIN) info

clean:
	rm -rf bin
