#!/bin/bash
# run-tests.sh: on a GPU machine, runs the test binary from build.sh: the GPU tests
# (conformance of every kernel, a DiT training step and a sampling run against the CPU
# device), the kernel and DiT benchmarks (PyTorch peer where python3 has torch with CUDA)
# and the whole package; logs into LOGDIR (the DiT benchmark verbose: its profiles in full).
# With CMD_BINARY (bin/cmd.test), after the benchmarks, the align command's sampling,
# pretraining, fine-tuning, reward training and scoring on the GPU against the CPU (its
# *CUDAMatchesCPU tests), and sampling with --gemm-tuning (TestGemmTuningFlag).
# RUN_BUDGET (seconds, default 570) bounds the whole run: each stage's time limit is cut to
# what is left of it, and a stage with less than 15 s left is skipped, so that the run ends,
# its summary printed, before a caller's own limit (a device call of 600 s) kills it.
# Usage: scripts/gpu/run-tests.sh BINARY LOGDIR [CMD_BINARY]   (from the repository root)
set -u
bin=$(realpath "$1")
logs=$(mkdir -p "$2" && realpath "$2")
cmdbin=${3:+$(realpath "$3")}
budget=${RUN_BUDGET:-570}
# limit N prints the time limit of a stage that wants N seconds: N, or what is left of the
# budget; it fails (the stage is skipped) with less than 15 s left.
limit() {
	local left=$((budget - SECONDS))
	if [ "$left" -lt 15 ]; then
		echo "skipped: ${left} s of the ${budget} s budget left" >&2
		return 1
	fi
	echo $((left < $1 ? left : $1))
}
. "$(dirname "$0")/cublas-env.sh" "$bin"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
cd kernels/cuda
t=$(limit 150) && timeout "$t" "$bin" -test.v -test.count=1 -test.run 'GPU' >"$logs/test-gpu.log" 2>&1
echo "GPU tests: rc=$? (${SECONDS} s in)"
grep -E "^(--- |ok|FAIL|PASS)|params, batch|largest relative|samples, [0-9]+ steps|compute capability|out of tolerance|disagree|bisection" "$logs/test-gpu.log" | head -60
t=$(limit 100) && timeout "$t" "$bin" -test.run '^$' -test.bench 'LayerNorm|Attention|Gemm|Bandwidth' -test.benchtime 20x >"$logs/bench-kernels.log" 2>&1
echo "kernel benchmarks: rc=$? (${SECONDS} s in)"
t=$(limit 330) && timeout "$t" "$bin" -test.v -test.run '^$' -test.bench 'DiTBase' -test.benchtime 5x -test.timeout 30m >"$logs/bench-dit.log" 2>&1
echo "DiT benchmarks: rc=$? (${SECONDS} s in)"
grep -E "^Benchmark.*ns/op|align train|buys|dense BF16 peak|Flow-DPO|PyTorch" "$logs/bench-dit.log" | sort -u
# where the BF16 step's time goes, by kind of work (the profile timed in the stream)
awk '/training step, batch [0-9]+, bf16:/ {p = 1} p && /by kind/ {print} p && /sampling, / {exit}' "$logs/bench-dit.log"
if [ -n "$cmdbin" ]; then
	(t=$(limit 120) && cd ../../cmd/align && timeout "$t" "$cmdbin" -test.v -test.count=1 -test.run 'CUDAMatchesCPU|GemmTuningFlag' >"$logs/test-cmd.log" 2>&1)
	echo "align command on the GPU against the CPU: rc=$? (${SECONDS} s in)"
	grep -E "^(--- |ok|FAIL|PASS)|levels from|the CPU" "$logs/test-cmd.log" | head -20
fi
t=$(limit 90) && timeout "$t" "$bin" -test.count=1 -test.timeout 20m >"$logs/test-all.log" 2>&1
echo "whole package: rc=$? (${SECONDS} s in)"
tail -3 "$logs/test-all.log"
