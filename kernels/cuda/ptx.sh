#!/bin/sh
# ptx.sh: compiles the kernel families of this directory to PTX for sm_80 and sm_90:
#   OUT/sm_80/<family>.ptx (PTX ISA 7.0) and OUT/sm_90/<family>.ptx (PTX ISA 7.8).
# Usage: ./ptx.sh [OUT]   (OUT defaults to ptx, the committed, embedded copy)
# Compiler: clang-19 without the CUDA toolkit (CLANG=... to override), or nvcc with
# PTX_COMPILER=nvcc. The committed PTX comes from clang-19; TestPTXFresh regenerates it with
# this script and compares.
# Contraction of a*b+c into a fused multiply-add is off (-ffp-contract=off, nvcc -fmad=false):
# the emulation's g++ build does not fuse, so the GPU then rounds as the tested emulation
# does, and an expression such as x - x stays exactly zero (fused, x*y - x*y is the
# product's rounding error).
set -eu
cd "$(dirname "$0")"
OUT=${1:-ptx}
CLANG=${CLANG:-clang-19}
PTX_COMPILER=${PTX_COMPILER:-clang}
FAMILIES="activation adamw attention elementwise embedding layernorm layout loss modulate reduce rng softmax"
for arch in 80 90; do
	mkdir -p "$OUT/sm_$arch"
	if [ "$arch" = 90 ]; then isa=+ptx78; else isa=+ptx70; fi
	for f in $FAMILIES; do
		if [ "$PTX_COMPILER" = nvcc ]; then
			nvcc -ptx -arch=compute_$arch -O3 -fmad=false -o "$OUT/sm_$arch/$f.ptx" "$f.cu"
		else
			"$CLANG" -x cuda --cuda-device-only --cuda-gpu-arch=sm_$arch -nocudainc -nocudalib \
				-Xclang -target-feature -Xclang $isa -O3 -ffp-contract=off -S -DKERNELS_CLANG_PTX \
				-o "$OUT/sm_$arch/$f.ptx" "$f.cu"
		fi
	done
done
