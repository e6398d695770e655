#!/bin/sh
# build.sh: builds, with build tag cuda, the test binary of kernels/cuda or cmd/align (go test
# -c) or the align command (go build ./cmd/align) on a machine with neither a GPU nor the CUDA toolkit,
# for a GPU machine that has no Go.
#   cuda.h:             $CUDA_INCLUDE (default third_party/cuda-include, from `make vet-cuda`)
#   libcuda, libcublas, libcublasLt: stubs with the sonames of the real libraries
#                       (libcuda.so.1, $CUBLAS_SONAME and $CUBLASLT_SONAME, default
#                       libcublas.so.13 and libcublasLt.so.13), exporting every function the
#                       binary calls; the names come from the undefined references of a first
#                       link against empty stubs. On the GPU machine the dynamic loader binds
#                       them to the driver, cuBLAS and cuBLASLt (cublas-env.sh finds them).
# Usage: scripts/gpu/build.sh test|cmd-test|cli|cli-noembed OUT   (from the repository root;
# make cuda-test-binary, make cuda-cli-binary; cli-noembed adds -tags noembed: 37 MB smaller,
# reads the default models from the checkout's assets/, see assets/assets.go; cmd-test is
# the align command's test binary without the default models, for its *CUDAMatchesCPU tests)
set -eu
what=$1 out=$2
inc=${CUDA_INCLUDE:-third_party/cuda-include}
soname=${CUBLAS_SONAME:-libcublas.so.13}
ltsoname=${CUBLASLT_SONAME:-libcublasLt.so.13}
test -f "$inc/cuda.h" || { echo "build.sh: no cuda.h in $inc (make vet-cuda fetches it)" >&2; exit 1; }
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
link() {
	case $what in
	test) CGO_CFLAGS="-I$(cd "$inc" && pwd)" CGO_LDFLAGS="-L$stub" go test -c -tags cuda -o "$out" ./kernels/cuda ;;
	cli) CGO_CFLAGS="-I$(cd "$inc" && pwd)" CGO_LDFLAGS="-L$stub" go build -tags cuda -ldflags "-s -w" -o "$out" ./cmd/align ;;
	cli-noembed) CGO_CFLAGS="-I$(cd "$inc" && pwd)" CGO_LDFLAGS="-L$stub" go build -tags cuda,noembed -ldflags "-s -w" -o "$out" ./cmd/align ;;
	cmd-test) CGO_CFLAGS="-I$(cd "$inc" && pwd)" CGO_LDFLAGS="-L$stub" go test -c -tags cuda,noembed -ldflags "-s -w" -o "$out" ./cmd/align ;;
	*) echo "build.sh: build test, cmd-test, cli or cli-noembed, not $what" >&2; return 2 ;;
	esac
}
echo 'void align_stub_unused(void) {}' >"$stub/empty.c"
gcc -shared -fPIC -o "$stub/libcuda.so" "$stub/empty.c"
gcc -shared -fPIC -o "$stub/libcublas.so" "$stub/empty.c"
gcc -shared -fPIC -o "$stub/libcublasLt.so" "$stub/empty.c"
link >"$stub/link.log" 2>&1 || true
grep -o "undefined reference to \`[A-Za-z0-9_]*'" "$stub/link.log" | sed "s/.*\`//; s/'\$//" | sort -u >"$stub/syms"
test -s "$stub/syms" || { cat "$stub/link.log" >&2; echo "build.sh: the first link named no CUDA functions" >&2; exit 1; }
grep -v '^cublas' "$stub/syms" | sed 's/.*/void &(void) {}/' >"$stub/cuda.c"
grep '^cublas' "$stub/syms" | grep -v '^cublasLt' | sed 's/.*/void &(void) {}/' >"$stub/cublas.c"
grep '^cublasLt' "$stub/syms" | sed 's/.*/void &(void) {}/' >"$stub/cublasLt.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so" "$stub/cuda.c"
gcc -shared -fPIC -Wl,-soname,"$soname" -o "$stub/libcublas.so" "$stub/cublas.c"
gcc -shared -fPIC -Wl,-soname,"$ltsoname" -o "$stub/libcublasLt.so" "$stub/cublasLt.c"
link
echo "wrote $out ($(wc -l <"$stub/syms") driver, cuBLAS and cuBLASLt functions; needs libcuda.so.1, $soname and $ltsoname)"
