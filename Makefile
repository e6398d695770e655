# align: build, test and benchmark targets.
#   make setup   install what the build and tests need (Go modules; OpenBLAS from Debian when root)
#   make build   build bin/align
#   make sample  images from the embedded default generator into out/sample
#   make test    vet + the whole test suite (CPU; CUDA kernels through their CPU emulation)
#   make bench   GEMM, layer, training, sampling, fine-tuning and scoring benchmarks with ratios
#                against baselines measured in the same run
#   make bench-torch   the default model's training, sampling and Flow-DPO against PyTorch on the same CPU
#   make info    build and print backends, BLAS core and a GEMM probe
#   make data    download the emoji packages and build the image and clip datasets
#   make pretrain-image   one leg (<= 110 min) of the default image model's pre-training
#   make pretrain-image-balanced   one leg of its second stage (concepts alike, to 30000 steps)
#   make pretrain-video   one leg (<= 110 min) of the default video model's, inflated from the image model
#   make align-experiment Flow-DPO (TA-only, equal weights, (1-t)^2 beta), Flow-RWR and SFT against
#                the base on held-out prompts, judged by the training reward and a held-out judge
#   make dpo-beta-sweep   TA-only Flow-DPO for each beta in EXP_BETAS, same evaluation
#   make mix-experiment   VQ-only and TA-only Flow-DPO adapters mixed by weight (align sample
#                --adapter) for each TA weight of MIX_WEIGHTS, same evaluation
#   make dpo-rounds       a second round of TA-only Flow-DPO on pairs drawn from the first's model,
#                against the first and the first trained twice as long, same evaluation
#   make preference-experiment   a reward model taught an annotator's labelled pairs (reward train
#                --pairs) against one without, on held-out labels and in best-of-4 sampling
#   make finetune-validation   TA-only Flow-DPO on the embedded model watched by --validation-prompt
#                (README, "Watching a run"; about 4 minutes on 2 cores)

GO      ?= go
BIN     := bin/align
GOFLAGS ?=
export GOFLAGS

# Python companion (golden fixtures, peer benchmarks); never needed by `make test`.
PYENV   := third_party/py
PYTHON  := $(PYENV)/bin/python
PYPKGS  := jax==0.10.2 jaxlib==0.10.2 numpy==2.4.6 safetensors==0.8.0

.PHONY: all setup openblas build test test-race vet lint bench bench-torch torch-cpu info clean pyenv golden data pretrain-image pretrain-video sample align-experiment dpo-beta-sweep mix-experiment dpo-rounds steering-experiment steering-cost preference-experiment finetune-validation

all: build

setup: openblas
	$(GO) mod download

# OpenBLAS is optional: on AVX-512 CPUs the Go GEMM is the default, elsewhere OpenBLAS is
# used when present (faster than the Go GEMM's AVX2 kernel). It is loaded at run time, so
# installing it needs no rebuild. Installed only where we are root and apt exists.
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

test: setup vet lint
	$(GO) test -count=1 -timeout 20m ./...
	@# The vector loops' Go twins again, compiled for x86-64-v3, where the compiler may fuse a
	@# multiply and an add that the loops round apart (where this CPU can run such code).
	@if [ "$$($(GO) env GOARCH)" = amd64 ] && (for f in avx2 bmi1 bmi2 f16c fma abm movbe; do grep -qw $$f /proc/cpuinfo || exit 1; done); then \
		GOAMD64=v3 $(GO) test -count=1 -run 'Vector|ThreadIndependence|LayerNorm' ./kernels; \
	else echo "skipped: the GOAMD64=v3 build of the vector loops' tests (this CPU cannot run it)"; fi
	@# The packages that check batch and thread invariance again with OpenBLAS multiplying, as
	@# it does by default on CPUs without AVX2: what OpenBLAS does not give must skip
	@# (kernels.BatchInvariant), the rest pass. Without OpenBLAS this repeats the Go GEMM's run.
	ALIGN_BLAS=openblas $(GO) test -count=1 ./kernels ./diffusion ./guidance ./rewards ./cmd/align
	@# The batch and thread invariance tests again on 12 threads, more than the small batches'
	@# heads (a split within a head's work that 2 cores never take: attention's backward
	@# once summed it in another order, and align sample's images depended on --batch-size).
	GOMAXPROCS=12 $(GO) test -count=1 -run 'BatchSize|ThreadIndependen|Invarian' ./kernels ./diffusion ./cmd/align

# staticcheck (pinned; staticcheck.conf) in the three build configurations, default, noembed and
# cuda (cuda.h as for vet-cuda), merged: code that one configuration uses is not reported unused.
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint: vet-cuda
	@d=$$(mktemp -d) && trap 'rm -rf $$d' EXIT && \
	$(STATICCHECK) -f binary ./... > $$d/default && \
	$(STATICCHECK) -tags noembed -f binary ./... > $$d/noembed && \
	CGO_CFLAGS="-I$(CUDA_INC)" $(STATICCHECK) -tags cuda -f binary ./... > $$d/cuda && \
	$(STATICCHECK) -merge $$d/default $$d/noembed $$d/cuda && echo "✓ staticcheck: no findings"

# Benchmarks print their baselines from the same run: GEMM against OpenBLAS called directly
# and gonum; the DiT block against the GEMM rate and against JAX (from make pyenv); training
# and sampling of the default image model as samples/s (images/s), GFLOP/s and fraction of
# the GEMM rate, and the default video model's sampling (videos/s); Flow-DPO fine-tuning as pairs/s with LoRA and full, and full/LoRA; align
# score on 1,000 files natively and through ONNX Runtime (from make ort), and ONNX/native;
# then the two reward models alone. Each measures its own peak memory (internal/benchmem).
# Last, the CUDA device's host cost per DiT-B step and sampling run over a driver that does
# no work (kernels/cuda BenchmarkHostCost: what the Go side costs before any GPU).
# -benchtime is kept small so that the whole target stays within about 10 minutes on 2 cores.
bench: setup pyenv ort
	ALIGN_PYTHON=$(CURDIR)/$(PYTHON) $(GO) test -run '^$$' -bench 'GemmTable|DiTBlock|Attention' -benchtime 10x -timeout 30m ./kernels ./nn
	$(GO) test -run '^$$' -bench 'TrainStep' -benchtime 5x ./diffusion
	$(GO) test -run '^$$' -bench 'Sample$$|SampleVideo' -benchtime 2x ./diffusion
	ALIGN_BENCH_PRECISION=bf16 $(GO) test -run '^$$' -bench 'TrainStep|Sample$$|SampleVideo' -benchtime 3x ./diffusion
	ALIGN_BENCH_PRECISION=bf16 $(GO) test -run '^$$' -bench '^BenchmarkFinetune$$' -benchtime 5x ./dpo
	$(GO) test -run '^$$' -bench 'GemmBF16' -benchtime 3x ./kernels
	$(GO) test -run '^$$' -bench '^BenchmarkFinetune$$' -benchtime 5x ./dpo
	ALIGN_ONNXRUNTIME=$(CURDIR)/$(ORT_LIB) $(GO) test -run '^$$' -bench 'Score' -benchtime 2x ./rewards/scoring
	ALIGN_ONNXRUNTIME=$(CURDIR)/$(ORT_LIB) $(GO) test -run '^$$' -bench 'Score' -benchtime 20x ./rewards/onnx
	$(GO) test -run '^$$' -bench 'HostCost' -benchtime 20x ./kernels/cuda

# make bench-torch: the default image model's training step, sampling and Flow-DPO step against
# PyTorch eager on the same CPU (BenchmarkTorchCPU, BenchmarkTorchCPUFinetune), fp32 and, with
# AVX512_BF16, bf16. PyTorch goes into a
# venv of its own: the CPU-only wheel where download.pytorch.org answers, else PyPI's, which
# brings its CUDA libraries (its import needs them; 5.4 GB installed).
TORCH_DIR := third_party/torch
TORCH_PIP := torch==2.15.0
torch-cpu: $(TORCH_DIR)/bin/python

$(TORCH_DIR)/bin/python:
	python3 -m venv $(TORCH_DIR)
	$(TORCH_DIR)/bin/pip install -q $(TORCH_PIP) --index-url https://download.pytorch.org/whl/cpu \
		|| { echo "→ the CPU-only wheel is out of reach: PyPI's torch, with its CUDA libraries (5.4 GB installed)"; \
		     $(TORCH_DIR)/bin/pip install -q $(TORCH_PIP); }
	$(TORCH_DIR)/bin/pip install -q numpy
	$(TORCH_DIR)/bin/python -c "import torch; print('torch', torch.__version__)"

bench-torch: setup torch-cpu
	$(GO) test -run '^$$' -bench 'TorchCPU' -benchtime 1x -timeout 30m ./diffusion ./dpo

pyenv: $(PYTHON)
$(PYTHON):
	python3 -m venv $(PYENV)
	$(PYENV)/bin/pip install -q $(PYPKGS)

# Regenerates the committed golden fixtures (the Go tests only read them).
golden: pyenv
	$(PYTHON) scripts/golden/dit_block.py

# The emoji image and clip datasets (npm packages, checksummed) into data/emoji.
DATA := data/emoji
data: $(DATA)/manifest.json
$(DATA)/manifest.json:
	$(MAKE) build
	./$(BIN) data prepare --output-dir $(DATA)

# Pre-training of the default models, in legs of at most two hours joined by exact resume:
# run the same target again to continue where the last leg stopped. RUNS holds the
# checkpoints (about 150 MB each) and logs.
RUNS ?= runs
comma := ,
# The first leg sets the model ($(2)); later legs resume it, which keeps the checkpoint's model.
resume_or = $$(if ls $(1)/checkpoint-*.safetensors >/dev/null 2>&1; then echo --resume-from-checkpoint latest; else echo $(2); fi)
pretrain-image: build data
	./$(BIN) pretrain --data $(DATA) --max-train-steps 20000 --seed 1 --checkpointing-steps 500 \
		--time-limit 110m -o $(RUNS)/image-base $(call resume_or,$(RUNS)/image-base,--reward-dims vq$(comma)ta)

# A second stage of the default image model, after pretrain-image has finished its 20000
# steps. Its data order visits every sample once per epoch, so a people emoji with 50
# skin-tone and gender variants gets 25x the updates of an object with two renderings, and
# the quality measure (one prompt per concept, diffusion/eval/retrieval.go) asks for every
# concept alike. This continues RUNS/image-base from its latest checkpoint with concepts
# drawn alike (--concept-balance 1: p_i = 1/(concepts * n_c(i))) to 30000 steps; the
# constant learning rate makes the extension the same schedule, and the resume warning
# names both changes. The stage-1 weights stay the embedded model (assets/). Legs of at
# most 110 minutes, as above: run again to resume, which keeps α = 1 and the exact order.
.PHONY: pretrain-image-balanced
pretrain-image-balanced: build data
	./$(BIN) pretrain --data $(DATA) --max-train-steps 30000 --seed 1 --checkpointing-steps 500 \
		--time-limit 110m -o $(RUNS)/image-base --resume-from-checkpoint latest --concept-balance 1

# The default video model (8 frames of 32x32, tubelets of 2 frames x 4x4) starts from the
# image model embedded in bin/align (--init-from default: its weights inflated to tubelets,
# the clip captions' new words added; diffusion/inflate.go), not from scratch. Its steps
# cost 3.5x the image model's per sample (272 tokens against 80): 3.05 CPU-s against 0.88
# for a step of 32 (measured in one process), so on 2 idle cores 0.66 steps/s against the
# image model's 2.3 (its logs: 70-75 samples/s). 12000 steps of 32 clips, 20 passes over
# the 19149 training clips, are then 5.1 hours: three legs of 110 minutes (more while the
# cores are shared). Batch, learning rate, warmup and EMA are the image run's. The run
# records the image model it started from (path and sha256, in config.json and in every
# checkpoint): a later, better image model embedded in bin/align changes the start of a
# new run, not of this one, whose later legs resume without --init-from.
pretrain-video: build data
	sh scripts/pretrain-video.sh ./$(BIN) $(DATA) $(RUNS)/video-base --time-limit 110m

# The main job: images and clips from the embedded default generators (no download, no training).
sample: build
	./$(BIN) sample --prompt "grinning face" --prompt "red apple" --prompt "rocket" --prompt "dog face" \
		--prompt "hamburger" --prompt "sun with face" --prompt "pile of poo" --prompt "four leaf clover" \
		--num-images-per-prompt 2 --seed 1 -o out/sample
	./$(BIN) sample --video --prompt "a red apple moving right" --prompt "a rocket moving up" --prompt "a dog face bouncing" \
		--prompt "a sun with face rotating clockwise" --prompt "a hamburger zooming in" \
		--prompt "a grinning face moving down and left" --seed 1 -o out/sample-video
	@echo "→ out/sample/grid.png, out/sample-video/grid.gif"

# ---- Alignment experiment: Flow-DPO, Flow-RWR and SFT on the embedded image model ----
# Two reward models of one recipe on disjoint halves of the training concepts: the training
# reward (part 0/2, seed 0) scores the candidates that pairs come from, the held-out judge
# (part 1/2, seed 1) only judges. Pairs come from the prompts of prompt part 0/2 (K SDE
# candidates each, scored once; pairs for each weighting are selected from that scored set),
# evaluation from EXP_EVAL_PROMPTS prompts of part 1/2: concepts the generator knows, never
# used for pairs or fine-tuning. Every file is a make target, so an interrupted experiment
# continues where it stopped. The table lands in $(EXP)/table.md.
# VIDEO=1 builds the same files for the embedded video model in $(RUNS)/video-exp: clip prompts
# (align data prompts --video: the motions in turn), video reward models (vq, ta, mq), samples
# with --video; the steering experiment then adds MQ-only weights.
# EXP_SPLIT=set splits the reward models' data by artwork instead (in $(RUNS)/align-exp-set):
# the training reward on the Twemoji images (--image-set twitter, seed 0), the judge on the
# Noto ones (google, seed 1). Both then know every training concept, each from its own images:
# the evaluation's concepts are no longer unseen by the training reward. EXP_SCORED_FROM=FILE
# takes the candidates of an earlier scored set (the same generator, prompts and seed draw the
# same samples) and scores them again with this experiment's reward (align pairs --rescore).
VIDEO            ?=
VIDEO_FLAG        = $(if $(VIDEO),--video)
EXP_SPLIT        ?= concept
EXP_REWARD_PART_concept := --concept-part 0/2
EXP_JUDGE_PART_concept  := --concept-part 1/2
EXP_REWARD_PART_set     := --image-set twitter
EXP_JUDGE_PART_set      := --image-set google
EXP_REWARD_PART   = $(EXP_REWARD_PART_$(EXP_SPLIT))
EXP_JUDGE_PART    = $(EXP_JUDGE_PART_$(EXP_SPLIT))
EXP              ?= $(RUNS)/$(if $(VIDEO),video-exp,align-exp)$(if $(filter set,$(EXP_SPLIT)),-set)
# The generator every experiment samples, scores and fine-tunes: the embedded image model, or
# the embedded video model with VIDEO=1; EXP_MODEL=FILE takes another one (e.g. a video model
# trained on larger sprites, with DATA= its dataset: scripts/gpu/steering-experiment.sh).
EXP_MODEL        ?= $(if $(VIDEO),default-video,default)
EXP_SCORED_FROM  ?=
# Both reward models' TA learns from image pairs too: half of the decisive TA pairs compare
# the image with another one under its caption, drawn like the caption negatives (another
# skin tone, the same subcategory, another subcategory). Pair selection ranks samples of one
# prompt, and two models trained so agree on that ranking more (align eval agreement on the
# candidates: TA correlation 0.36 against 0.22, README). EXP_REWARD_FLAGS= trains them on
# caption pairs only, as for the README's steering table.
EXP_REWARD_FLAGS ?= --ta-image-share 0.5 --ta-image-negatives hard
EXP_PAIR_PROMPTS ?= 0
EXP_K            ?= 8
EXP_EVAL_PROMPTS ?= 200
EXP_IMAGES       ?= 2
EXP_STEPS        ?= 400
EXP_BETA         ?= 2000
EXP_BETAS        ?= 100 500 2000 5000
EXP_REWARD_STEPS ?= 3000
EXP_EVAL_SEED    ?= 1000
EXP_METHODS      := dpo-ta dpo-eq rwr-ta sft-ta dpo-ta-tsq
EXP_FINETUNE      = ./$(BIN) finetune --max-train-steps $(EXP_STEPS) --seed 0 --merge-lora $(call resume_or,$(@D),--model $(EXP_MODEL))
# Every file an experiment makes is kept: make would delete the ones it builds on the way
# (models, pairs, samples) otherwise, and .PRECIOUS patterns only match rules of the same
# pattern (the beta sweep's models were lost that way).
.SECONDARY:

align-experiment: $(EXP)/table.md $(EXP)/agreement.txt
dpo-beta-sweep: $(EXP)/table-beta.md

$(EXP)/prompts-pairs.txt: | build data
	./$(BIN) data prompts $(DATA) --part 0/2 --limit $(EXP_PAIR_PROMPTS) $(VIDEO_FLAG) -o $@
$(EXP)/prompts-eval.txt: | build data
	./$(BIN) data prompts $(DATA) --part 1/2 --limit $(EXP_EVAL_PROMPTS) $(VIDEO_FLAG) -o $@
# EXP_INFLATE=1 (with VIDEO=1): the video reward and judge start from image reward models of
# their own concepts ($(EXP)/reward-image, $(EXP)/judge-image: the same part, seed and steps),
# inflated to tubelets (align reward train --init-from), so their TA reads the object as the
# image models do. The judge's image model never sees the training reward's concepts. On by
# default with VIDEO=1 (EXP_INFLATE= turns it off): the two then agree 3x as much on the TA
# ranking of a prompt's candidates, and best-of-4 TA-only raised the judge's TA to 58.0%
# against 50.7% without (README, video).
EXP_INFLATE      ?= $(if $(VIDEO),1)
exp_init = $(if $(and $(VIDEO),$(EXP_INFLATE)),$(EXP)/$(1)-image/model.safetensors)
$(EXP)/reward-image/model.safetensors $(EXP)/judge-image/model.safetensors: $(EXP)/%-image/model.safetensors: | build data
	./$(BIN) reward train --data $(DATA) $(EXP_$(if $(filter judge,$*),JUDGE,REWARD)_PART) --seed $(if $(filter judge,$*),1,0) \
		--max-train-steps $(EXP_REWARD_STEPS) $(EXP_REWARD_FLAGS) -o $(@D) $(call resume_or,$(@D),)
$(EXP)/reward/model.safetensors: $(call exp_init,reward) | build data
	./$(BIN) reward train $(VIDEO_FLAG) --data $(DATA) $(EXP_REWARD_PART) --seed 0 --max-train-steps $(EXP_REWARD_STEPS) $(EXP_REWARD_FLAGS) \
		$(if $<,--init-from $<) -o $(EXP)/reward $(call resume_or,$(EXP)/reward,)
$(EXP)/judge/model.safetensors: $(call exp_init,judge) | build data
	./$(BIN) reward train $(VIDEO_FLAG) --data $(DATA) $(EXP_JUDGE_PART) --seed 1 --max-train-steps $(EXP_REWARD_STEPS) $(EXP_REWARD_FLAGS) \
		$(if $<,--init-from $<) -o $(EXP)/judge $(call resume_or,$(EXP)/judge,)
# The scored run in EXP_SHARDS parts (align pairs --shard: the same samples as one run), so an
# interrupted experiment loses at most one part.
EXP_SHARDS       ?= 8
$(EXP)/scored-shard-%.jsonl: $(EXP)/prompts-pairs.txt $(EXP)/reward/model.safetensors
	./$(BIN) pairs --prompts $< --model $(EXP_MODEL) --reward $(EXP)/reward/model.safetensors --num-candidates $(EXP_K) --seed 0 --scored \
		--shard $*/$(EXP_SHARDS) --images-dir $(EXP)/scored-images -o $@
ifeq ($(EXP_SCORED_FROM),)
$(EXP)/scored.jsonl: $(foreach i,$(shell seq 0 $$(($(EXP_SHARDS)-1))),$(EXP)/scored-shard-$(i).jsonl)
	cat $^ > $@.tmp && mv $@.tmp $@
else
$(EXP)/scored.jsonl: $(EXP_SCORED_FROM) $(EXP)/reward/model.safetensors
	./$(BIN) pairs --from-scored $< --rescore --reward $(EXP)/reward/model.safetensors --scored -o $@
endif
# How far the judge can confirm what the training reward selects: both models' ranking of
# each prompt's candidates (align eval agreement).
$(EXP)/scored-judge.jsonl: $(EXP)/scored.jsonl $(EXP)/judge/model.safetensors
	./$(BIN) pairs --from-scored $< --rescore --reward $(EXP)/judge/model.safetensors --scored -o $@
$(EXP)/agreement.txt: $(EXP)/scored.jsonl $(EXP)/scored-judge.jsonl
	./$(BIN) eval agreement $^ > $@.tmp && mv $@.tmp $@
	@cat $@
$(EXP)/pairs-ta.jsonl: $(EXP)/scored.jsonl
	./$(BIN) pairs --from-scored $< --weights vq=0,ta=1 -o $@
$(EXP)/pairs-eq.jsonl: $(EXP)/scored.jsonl
	./$(BIN) pairs --from-scored $< --weights vq=1,ta=1 -o $@

$(EXP)/dpo-ta/model.safetensors: $(EXP)/pairs-ta.jsonl
	$(EXP_FINETUNE) --method dpo --beta-dpo $(EXP_BETA) --pairs $< -o $(@D)
$(EXP)/dpo-eq/model.safetensors: $(EXP)/pairs-eq.jsonl
	$(EXP_FINETUNE) --method dpo --beta-dpo $(EXP_BETA) --pairs $< -o $(@D)
$(EXP)/dpo-ta-tsq/model.safetensors: $(EXP)/pairs-ta.jsonl
	$(EXP_FINETUNE) --method dpo --beta-dpo $(EXP_BETA) --beta-schedule one-minus-t-sq --pairs $< -o $(@D)
$(EXP)/rwr-ta/model.safetensors: $(EXP)/scored.jsonl
	$(EXP_FINETUNE) --method rwr --weights vq=0,ta=1 --scored $< -o $(@D)
$(EXP)/sft-ta/model.safetensors: $(EXP)/pairs-ta.jsonl
	$(EXP_FINETUNE) --method sft --pairs $< -o $(@D)
$(EXP)/dpo-ta-b%/model.safetensors: $(EXP)/pairs-ta.jsonl
	$(EXP_FINETUNE) --method dpo --beta-dpo $* --pairs $< -o $(@D)
# More pairs from the same scored samples: the i-th best against the i-th worst of each
# prompt's candidates, i < k (align pairs --pairs-per-prompt k; k = 4 uses all 8).
$(EXP)/pairs-ta-k%.jsonl: $(EXP)/scored.jsonl
	./$(BIN) pairs --from-scored $< --weights vq=0,ta=1 --pairs-per-prompt $* -o $@
$(EXP)/dpo-ta-k%/model.safetensors: $(EXP)/pairs-ta-k%.jsonl
	$(EXP_FINETUNE) --method dpo --beta-dpo $(EXP_BETA) --pairs $< -o $(@D)
# Fewer, surer pairs: those whose TA z-scores differ by at least m (align pairs --min-margin m;
# the median margin of the best-against-worst pairs is 1.32).
$(EXP)/pairs-ta-m%.jsonl: $(EXP)/scored.jsonl
	./$(BIN) pairs --from-scored $< --weights vq=0,ta=1 --min-margin $* -o $@
$(EXP)/dpo-ta-m%/model.safetensors: $(EXP)/pairs-ta-m%.jsonl
	$(EXP_FINETUNE) --method dpo --beta-dpo $(EXP_BETA) --pairs $< -o $(@D)

# ALIGN_DEVICE=cuda runs every command on a GPU (with BIN=bin/align-cuda from make
# cuda-cli-binary): align takes --device's default from it (scripts/gpu/steering-experiment.sh).
export ALIGN_DEVICE
# The eval prompts' samples of generator $(1); EXP_SAMPLE: of EXP_MODEL.
exp_sample = ./$(BIN) sample $(VIDEO_FLAG) --model $(1) --prompts $(or $(2),$(EXP)/prompts-eval.txt) --num-images-per-prompt $(EXP_IMAGES) --seed $(EXP_EVAL_SEED)
EXP_SAMPLE = $(call exp_sample,$(EXP_MODEL))
$(EXP)/samples/base/samples.json: $(EXP)/prompts-eval.txt
	$(EXP_SAMPLE) -o $(@D)
$(EXP)/samples/%/samples.json: $(EXP)/%/model.safetensors $(EXP)/prompts-eval.txt
	$(call exp_sample,$<) -o $(@D)
$(EXP)/eval-%.json: $(EXP)/samples/%/samples.json $(EXP)/samples/base/samples.json $(EXP)/reward/model.safetensors $(EXP)/judge/model.safetensors
	./$(BIN) eval --baseline $(EXP)/samples/base --candidate $(<D) --reward $(EXP)/reward/model.safetensors \
		--judge $(EXP)/judge/model.safetensors --output $@
$(EXP)/table.md: $(foreach m,$(EXP_METHODS),$(EXP)/eval-$(m).json)
	./$(BIN) eval table $(foreach m,$(EXP_METHODS),$(m)=$(EXP)/eval-$(m).json) > $@.tmp && mv $@.tmp $@
	@cat $@
$(EXP)/table-beta.md: $(foreach b,$(EXP_BETAS),$(EXP)/eval-dpo-ta-b$(b).json)
	./$(BIN) eval table $(foreach b,$(EXP_BETAS),beta-$(b)=$(EXP)/eval-dpo-ta-b$(b).json) > $@.tmp && mv $@.tmp $@
	@cat $@

# ---- Mixing fine-tunings: one Flow-DPO adapter per dimension, weighted per run ----
# VQ-only and TA-only Flow-DPO (LoRA, the same candidates, steps and beta as dpo-ta) merged into
# the generator as (1 - w) VQ + w TA (align sample --adapter PATH=WEIGHT) for each w of
# MIX_WEIGHTS, every mix evaluated against the base like the methods above, beside both
# adapters at weight 1 (mix-both: the two updates added), the TA adapter alone at each weight
# of MIX_EXTRAPOLATE (ta-xN: its update N times, beyond the run), the TA adapter's velocity
# extrapolated from the base's by each scale of MIX_GUIDANCE (ta-gN: --adapter-guidance-scale
# N, twice the passes) and dpo-eq (one run on the pairs of the equal-weight sum). Then TA-only
# Flow-DPO of every weight (dpo-ta-full: --full-finetune at MIX_FULL_LR, its steps and beta
# dpo-ta's) mixed as its task vector, W + w (W_ft - W), at each weight of MIX_FULL_WEIGHTS
# (full-taN), and at 1 beside the VQ adapter at 1 (full-both). With EXP_PAIR_PROMPTS=300 (in
# its own EXP) about 80 minutes on 2 cores, reward models included (README, "Mixing
# fine-tunings"):
#   make mix-experiment RUNS=runs EXP=runs/soup-exp EXP_PAIR_PROMPTS=300
MIX_WEIGHTS      ?= 0 0.25 0.5 0.75 1
MIX_EXTRAPOLATE  ?= 2 4
MIX_GUIDANCE     ?= 2
MIX_FULL_LR      ?= 1e-5
MIX_FULL_WEIGHTS ?= 0.5 1 2
mix-experiment: $(EXP)/table-mix.md
$(EXP)/pairs-vq.jsonl: $(EXP)/scored.jsonl
	./$(BIN) pairs --from-scored $< --weights vq=1,ta=0 -o $@
$(EXP)/dpo-vq/model.safetensors: $(EXP)/pairs-vq.jsonl
	$(EXP_FINETUNE) --method dpo --beta-dpo $(EXP_BETA) --pairs $< -o $(@D)
$(EXP)/samples/mix-ta%/samples.json: $(EXP)/dpo-vq/model.safetensors $(EXP)/dpo-ta/model.safetensors $(EXP)/prompts-eval.txt
	$(call exp_sample,$(EXP_MODEL) --adapter $(EXP)/dpo-vq/adapter.safetensors=$$(awk 'BEGIN { print 1 - $* }') \
		--adapter $(EXP)/dpo-ta/adapter.safetensors=$*) -o $(@D)
$(EXP)/samples/mix-both/samples.json: $(EXP)/dpo-vq/model.safetensors $(EXP)/dpo-ta/model.safetensors $(EXP)/prompts-eval.txt
	$(call exp_sample,$(EXP_MODEL) --adapter $(EXP)/dpo-vq/adapter.safetensors=1 --adapter $(EXP)/dpo-ta/adapter.safetensors=1) -o $(@D)
$(EXP)/samples/ta-x%/samples.json: $(EXP)/dpo-ta/model.safetensors $(EXP)/prompts-eval.txt
	$(call exp_sample,$(EXP_MODEL) --adapter $(EXP)/dpo-ta/adapter.safetensors=$*) -o $(@D)
$(EXP)/samples/ta-g%/samples.json: $(EXP)/dpo-ta/model.safetensors $(EXP)/prompts-eval.txt
	$(call exp_sample,$(EXP_MODEL) --adapter $(EXP)/dpo-ta/adapter.safetensors --adapter-guidance-scale $*) -o $(@D)
$(EXP)/dpo-ta-full/model.safetensors: $(EXP)/pairs-ta.jsonl
	./$(BIN) finetune --max-train-steps $(EXP_STEPS) --seed 0 $(call resume_or,$(@D),--model $(EXP_MODEL) --full-finetune) \
		--learning-rate $(MIX_FULL_LR) --method dpo --beta-dpo $(EXP_BETA) --pairs $< -o $(@D)
$(EXP)/samples/full-ta%/samples.json: $(EXP)/dpo-ta-full/model.safetensors $(EXP)/prompts-eval.txt
	$(call exp_sample,$(EXP_MODEL) --adapter $<=$*) -o $(@D)
$(EXP)/samples/full-both/samples.json: $(EXP)/dpo-vq/model.safetensors $(EXP)/dpo-ta-full/model.safetensors $(EXP)/prompts-eval.txt
	$(call exp_sample,$(EXP_MODEL) --adapter $(EXP)/dpo-vq/adapter.safetensors=1 --adapter $(EXP)/dpo-ta-full/model.safetensors=1) -o $(@D)
$(EXP)/table-mix.md: $(foreach w,$(MIX_WEIGHTS),$(EXP)/eval-mix-ta$(w).json) $(EXP)/eval-mix-both.json \
		$(foreach n,$(MIX_EXTRAPOLATE),$(EXP)/eval-ta-x$(n).json) $(foreach n,$(MIX_GUIDANCE),$(EXP)/eval-ta-g$(n).json) $(EXP)/eval-dpo-eq.json \
		$(foreach w,$(MIX_FULL_WEIGHTS),$(EXP)/eval-full-ta$(w).json) $(EXP)/eval-full-both.json
	./$(BIN) eval table $(foreach w,$(MIX_WEIGHTS),ta-weight-$(w)=$(EXP)/eval-mix-ta$(w).json) both-at-1=$(EXP)/eval-mix-both.json \
		$(foreach n,$(MIX_EXTRAPOLATE),ta-at-$(n)=$(EXP)/eval-ta-x$(n).json) \
		$(foreach n,$(MIX_GUIDANCE),ta-guidance-$(n)=$(EXP)/eval-ta-g$(n).json) dpo-eq=$(EXP)/eval-dpo-eq.json \
		$(foreach w,$(MIX_FULL_WEIGHTS),full-ta-at-$(w)=$(EXP)/eval-full-ta$(w).json) full-ta-and-vq=$(EXP)/eval-full-both.json > $@.tmp && mv $@.tmp $@
	@cat $@

# ---- Iterative Flow-DPO: the second round's pairs drawn from the first round's model ----
# dpo-ta is round 1 (pairs from the base's candidates). Round 2 samples and scores EXP_K new
# candidates per training prompt from dpo-ta's merged model, selects TA-only pairs the same
# way and fine-tunes that model on them (its own reference: the run's base is dpo-ta's
# model); dpo-ta-long trains on round 1's pairs for twice the steps instead, the control for
# the extra training. Both evaluated against the base like the methods above:
#   make dpo-rounds RUNS=runs EXP=runs/soup-exp EXP_PAIR_PROMPTS=300
dpo-rounds: $(EXP)/table-rounds.md
$(EXP)/scored-r2.jsonl: $(EXP)/prompts-pairs.txt $(EXP)/reward/model.safetensors $(EXP)/dpo-ta/model.safetensors
	./$(BIN) pairs --prompts $< --model $(EXP)/dpo-ta/model.safetensors --reward $(EXP)/reward/model.safetensors --num-candidates $(EXP_K) \
		--seed 0 --scored --images-dir $(EXP)/scored-r2-images -o $@
$(EXP)/pairs-ta-r2.jsonl: $(EXP)/scored-r2.jsonl
	./$(BIN) pairs --from-scored $< --weights vq=0,ta=1 -o $@
$(EXP)/dpo-ta-r2/model.safetensors: $(EXP)/pairs-ta-r2.jsonl $(EXP)/dpo-ta/model.safetensors
	./$(BIN) finetune --max-train-steps $(EXP_STEPS) --seed 0 --merge-lora $(call resume_or,$(@D),--model $(EXP)/dpo-ta/model.safetensors) \
		--method dpo --beta-dpo $(EXP_BETA) --pairs $< -o $(@D)
$(EXP)/dpo-ta-long/model.safetensors: $(EXP)/pairs-ta.jsonl
	./$(BIN) finetune --max-train-steps $$(($(EXP_STEPS) * 2)) --seed 0 --merge-lora $(call resume_or,$(@D),--model $(EXP_MODEL)) \
		--method dpo --beta-dpo $(EXP_BETA) --pairs $< -o $(@D)
$(EXP)/table-rounds.md: $(EXP)/eval-dpo-ta.json $(EXP)/eval-dpo-ta-r2.json $(EXP)/eval-dpo-ta-long.json
	./$(BIN) eval table round-1=$(EXP)/eval-dpo-ta.json round-2=$(EXP)/eval-dpo-ta-r2.json \
		round-1-twice-the-steps=$(EXP)/eval-dpo-ta-long.json > $@.tmp && mv $@.tmp $@
	@cat $@

# ---- Steering experiment: controllability of reward-steered sampling on the embedded image model ----
# (VIDEO=1: on the embedded video model, with video reward models and an MQ-only weighting.)
# For each weighting of STEER_WEIGHTINGS (vq: vq=1; ta: ta=1; mq: mq=1; eq: all 1) and each
# method of STEER_METHODS, one set of samples of the alignment experiment's eval prompts with its
# seed, images per prompt and sampling command ($(EXP_SAMPLE)), compared by align eval with
# unguided sampling of the same sampler, judged by the clean training reward ($(EXP)/reward, concept
# part 0/2) and the held-out judge ($(EXP)/judge, part 1/2):
#   nrg  Flow-NRG, w = STEER_NRG_SCALE, guided by the noise-aware latent reward model $(EXP)/latent
#        (the embedded generator's first blocks, trained on part 0/2 with seed 0 and the reward
#        models' pair recipe (EXP_REWARD_FLAGS) like the training reward, and with teacher pairs:
#        half of its training pairs compare two candidates of one prompt of the alignment
#        experiment's scored set ($(EXP)/scored.jsonl, part 0/2 prompts) as the training reward
#        scored them; STEER_LATENT_TEACHER= leaves them out; its BF16 copy); judged by the clean
#        models, never by the latent one it climbs. Euler, against $(EXP)/samples/base: each pair
#        starts from the same noise.
#   fk   FK steering with the clean training reward, STEER_PARTICLES particles, λ = STEER_FK_LAMBDA.
#        FK needs the SDE sampler, and SDE against Euler would count the sampler's own effect as
#        steering, so its baseline is $(EXP)/samples/base-sde: the SDE sampler unguided (as with
#        --particles 1), same seed. Particle j of image i draws noise stream i*k+j and the
#        baseline's image i stream i, so an FK pair is two independent draws (image 0 aside): its
#        win rate is P(FK image beats an unguided SDE image), NRG's the same noise with and without.
#   bon  best-of-STEER_BON_N with the clean training reward, Euler, against $(EXP)/samples/base
#        (candidate j of image i draws stream i*N+j: independent pairs as for fk).
# FK and best-of-N select by the training reward, so its columns are their own objective and the
# judge's the held-out check. The table, with reward evaluations and seconds per image (the
# baseline's in brackets): $(EXP)/table-steering.md. The curve: Flow-NRG with STEER_CURVE_W weights (TA-only; MQ-only with VIDEO=1) at each scale of
# STEER_NRG_SCALES, the base at w = 0, on a log axis (the scales double) -> $(EXP)/steering-curve.png.
# Every file is a target, so a rerun continues. A small run that checks the plumbing (minutes):
#   make steering-experiment EXP=/tmp/steer-mini EXP_EVAL_PROMPTS=4 EXP_IMAGES=1 EXP_REWARD_STEPS=5 \
#     EXP_PAIR_PROMPTS=4 EXP_K=2 EXP_SHARDS=1 STEER_LATENT_STEPS=5 \
#     STEER_LATENT_FLAGS="--eval-pairs 64 --val-pairs 64" STEER_PARTICLES=2 STEER_BON_N=2 STEER_NRG_SCALES="5 10"
# (the same with VIDEO=1 and EXP=/tmp/vsteer-mini: 7 minutes on 2 cores).
# The paper's w = 100 is for its models; with teacher pairs the latent model's gradients are
# larger, and at w = 100 TA-only guidance wrecks the images (README), so the table uses 10.
STEER_NRG_SCALE    ?= 10
STEER_NRG_SCALES   ?= 2.5 5 10 20 40 80
STEER_PARTICLES    ?= 4
STEER_FK_LAMBDA    ?= 10
STEER_BON_N        ?= 4
STEER_LATENT_STEPS ?= 3000
STEER_LATENT_FLAGS ?= $(EXP_REWARD_FLAGS)
STEER_LATENT_TEACHER ?= $(EXP)/scored.jsonl
STEER_WEIGHTINGS   ?= vq ta $(if $(VIDEO),mq) eq
STEER_METHODS      ?= nrg fk bon
# Dimensions not named weigh 0 (rewards.ParseWeights).
STEER_W_vq := vq=1
STEER_W_ta := ta=1
STEER_W_mq := mq=1
STEER_W_eq  = vq=1,ta=1$(if $(VIDEO),$(comma)mq=1)
STEER_NAME_vq  := VQ-only
STEER_NAME_ta  := TA-only
STEER_NAME_mq  := MQ-only
STEER_NAME_eq  := equal
STEER_NAME_nrg  = Flow-NRG w $(STEER_NRG_SCALE)
STEER_NAME_fk   = FK k $(STEER_PARTICLES) λ $(STEER_FK_LAMBDA) (vs SDE)
STEER_NAME_bon  = best-of-$(STEER_BON_N)
# The run of method $(1) with weighting $(2); Flow-NRG's carry their scale, so that the curve's
# run at STEER_NRG_SCALE is the table's.
steer_run = $(if $(filter nrg,$(1)),steer-nrg-s$(STEER_NRG_SCALE)-$(2),steer-$(1)-$(2))
STEER_CURVE  = $(filter-out 0,$(STEER_NRG_SCALES))
# The curve's weighting: TA-only on the image model, MQ-only on the video model.
STEER_CURVE_W ?= $(if $(VIDEO),mq,ta)
STEER_EVALS  = $(foreach m,$(STEER_METHODS),$(foreach w,$(STEER_WEIGHTINGS),$(EXP)/eval-$(call steer_run,$(m),$(w)).json))
STEER_NRG    = $(sort $(foreach w,$(STEER_WEIGHTINGS),$(EXP)/samples/steer-nrg-s$(STEER_NRG_SCALE)-$(w)/samples.json) \
		$(foreach s,$(STEER_CURVE),$(EXP)/samples/steer-nrg-s$(s)-$(STEER_CURVE_W)/samples.json))
STEER_FK     = $(foreach w,$(STEER_WEIGHTINGS),$(EXP)/samples/steer-fk-$(w)/samples.json)
STEER_BON    = $(foreach w,$(STEER_WEIGHTINGS),$(EXP)/samples/steer-bon-$(w)/samples.json)
STEER_MODELS = $(EXP)/reward/model.safetensors $(EXP)/judge/model.safetensors

steering-experiment: $(EXP)/table-steering.md $(EXP)/steering-curve.png
	@cat $(EXP)/table-steering.md
	@echo "→ $(EXP)/steering-curve.png"

$(EXP)/latent/model.safetensors: $(STEER_LATENT_TEACHER) | build data
	./$(BIN) reward train --latent $(VIDEO_FLAG) --generator $(EXP_MODEL) --data $(DATA) $(EXP_REWARD_PART) --seed 0 --max-train-steps $(STEER_LATENT_STEPS) \
		$(STEER_LATENT_FLAGS) $(if $(STEER_LATENT_TEACHER),--teacher-scored $(STEER_LATENT_TEACHER)) -o $(EXP)/latent $(call resume_or,$(EXP)/latent,)
# The stem is SCALE-WEIGHTING.
# Guidance uses the BF16 copy (the form the embedded latent model had when the README's table was made).
$(EXP)/latent-bf16.safetensors: $(EXP)/latent/model.safetensors
	./$(BIN) export safetensors --model $< --dtype bf16 -o $@
# The sampling flags of each method: steer_nrg with (scale, weighting), the others with a weighting.
steer_nrg = --reward $(EXP)/latent-bf16.safetensors --reward-guidance-scale $(1) --reward-weights $(STEER_W_$(2))
steer_fk  = --sampler sde --reward $(EXP)/reward/model.safetensors --particles $(STEER_PARTICLES) \
	--fk-lambda $(STEER_FK_LAMBDA) --reward-weights $(STEER_W_$(1))
steer_bon = --reward $(EXP)/reward/model.safetensors --best-of-n $(STEER_BON_N) --reward-weights $(STEER_W_$(1))
$(STEER_NRG): $(EXP)/samples/steer-nrg-s%/samples.json: $(EXP)/prompts-eval.txt $(EXP)/latent-bf16.safetensors
	$(EXP_SAMPLE) $(call steer_nrg,$(word 1,$(subst -, ,$*)),$(word 2,$(subst -, ,$*))) -o $(@D)
$(EXP)/samples/base-sde/samples.json: $(EXP)/prompts-eval.txt
	$(EXP_SAMPLE) --sampler sde -o $(@D)
$(STEER_FK): $(EXP)/samples/steer-fk-%/samples.json: $(EXP)/prompts-eval.txt $(EXP)/reward/model.safetensors
	$(EXP_SAMPLE) $(call steer_fk,$*) -o $(@D)
$(STEER_BON): $(EXP)/samples/steer-bon-%/samples.json: $(EXP)/prompts-eval.txt $(EXP)/reward/model.safetensors
	$(EXP_SAMPLE) $(call steer_bon,$*) -o $(@D)
# NRG and best-of-N are evaluated against the base by the alignment experiment's rule
# ($(EXP)/eval-%.json), FK against the unguided SDE samples here.
$(foreach w,$(STEER_WEIGHTINGS),$(EXP)/eval-steer-fk-$(w).json): $(EXP)/eval-steer-fk-%.json: \
		$(EXP)/samples/steer-fk-%/samples.json $(EXP)/samples/base-sde/samples.json $(STEER_MODELS)
	./$(BIN) eval --baseline $(EXP)/samples/base-sde --candidate $(<D) --reward $(EXP)/reward/model.safetensors \
		--judge $(EXP)/judge/model.safetensors --output $@
$(EXP)/table-steering.md: $(STEER_EVALS)
	{ echo "Reward-steered sampling against unguided sampling with the same seed ($(EXP_EVAL_SEED)) on held-out prompts"; \
	  echo "($(EXP_IMAGES) images per prompt): win rate [95% CI] and mean z-score change under the clean training reward (part 0/2) and the"; \
	  echo "held-out judge (part 1/2). Flow-NRG is guided by the latent reward model (part 0/2), FK and best-of-N select"; \
	  echo "by the clean training reward. Baselines: unguided Euler sampling for Flow-NRG (each pair from the same noise)"; \
	  echo "and best-of-N (its candidates draw other noise streams: independent pairs); the unguided SDE sampler for FK,"; \
	  echo "which needs SDE steps (independent pairs too). reward / image: clean-reward calls (FK, best-of-N; every"; \
	  echo "particle or candidate) and latent-reward gradients (Flow-NRG) per image; s / image: sampling wall time, the"; \
	  echo "baseline's in brackets."; echo; \
	  ./$(BIN) eval table --cost $(foreach m,$(STEER_METHODS),$(foreach w,$(STEER_WEIGHTINGS),\
		"$(STEER_NAME_$(m)), $(STEER_NAME_$(w))=$(EXP)/eval-$(call steer_run,$(m),$(w)).json")); } > $@.tmp && mv $@.tmp $@
$(EXP)/steering-curve.png: $(foreach s,$(STEER_CURVE),$(EXP)/eval-steer-nrg-s$(s)-$(STEER_CURVE_W).json)
	./$(BIN) eval plot $(foreach s,$(STEER_CURVE),$(s)=$(EXP)/eval-steer-nrg-s$(s)-$(STEER_CURVE_W).json) --log-x \
		--x-label "reward guidance scale w" --title "Flow-NRG, $(STEER_NAME_$(STEER_CURVE_W)) weights: mean z-score against w" -o $@

# ---- Cost of the steering methods, timed on their own ----
# The steering runs' wall times count whatever else shared the cores while they ran; this
# target samples the first STEER_COST_PROMPTS eval prompts with each method (weights
# STEER_COST_W; the reward calls per image do not depend on them) one after the other and
# prints seconds per image: run it with nothing else on the machine.
#   make steering-cost VIDEO=1 EXP=runs/video-exp
STEER_COST_PROMPTS ?= 16
STEER_COST_W       ?= $(STEER_CURVE_W)
STEER_COST_RUNS    := base base-sde nrg fk bon
STEER_COST_FLAGS_base     :=
STEER_COST_FLAGS_base-sde := --sampler sde
STEER_COST_FLAGS_nrg       = $(call steer_nrg,$(STEER_NRG_SCALE),$(STEER_COST_W))
STEER_COST_FLAGS_fk        = $(call steer_fk,$(STEER_COST_W))
STEER_COST_FLAGS_bon       = $(call steer_bon,$(STEER_COST_W))
STEER_COST_NAME_base      := unguided (Euler)
STEER_COST_NAME_base-sde  := unguided (SDE)
STEER_COST_NAME_nrg        = $(STEER_NAME_nrg)
STEER_COST_NAME_fk         = FK k $(STEER_PARTICLES) λ $(STEER_FK_LAMBDA)
STEER_COST_NAME_bon        = $(STEER_NAME_bon)
steering-cost: $(EXP)/prompts-eval.txt $(EXP)/latent-bf16.safetensors $(EXP)/reward/model.safetensors | build
	mkdir -p $(EXP)/cost && head -n $(STEER_COST_PROMPTS) $(EXP)/prompts-eval.txt > $(EXP)/cost/prompts.txt
	$(foreach r,$(STEER_COST_RUNS),$(call exp_sample,$(EXP_MODEL),$(EXP)/cost/prompts.txt) \
		$(STEER_COST_FLAGS_$(r)) -o $(EXP)/cost/$(r) &&) true
	{ echo "Seconds per image of each method, $(STEER_COST_PROMPTS) held-out prompts x $(EXP_IMAGES), one run after the other:"; \
	  echo; echo "| method | s / image |"; echo "|---|---|"; \
	  $(foreach r,$(STEER_COST_RUNS),awk -v n=$$(( $(STEER_COST_PROMPTS) * $(EXP_IMAGES) )) -v name="$(STEER_COST_NAME_$(r))" \
		'/"seconds":/ { gsub(/[^0-9.e+-]/, "", $$2); printf "| %s | %.3g |\n", name, $$2 / n }' $(EXP)/cost/$(r)/samples.json &&) true; \
	} > $(EXP)/cost/table.md.tmp && mv $(EXP)/cost/table.md.tmp $(EXP)/cost/table.md
	@cat $(EXP)/cost/table.md

# ---- Learning labelled preferences (align reward train --pairs) ----
# PREF_PROMPTS training prompts x 4 samples of the default image model; every two samples of
# a prompt labelled for vq by a simulated annotator that prefers warm images
# (scripts/analysis/warmth_labels.py; the emoji data's pairs never teach warmth); two reward
# models of the same seed and steps, with and without the labelled pairs, the embedded one,
# and the embedded one taught the pairs in 500 steps (--init-from default), measured on the
# 10% of pairs held out; then best-of-4 with the two trained from scratch (vq only) and
# without on PREF_EVAL_PROMPTS held-out concepts, and the mean warmth of the picks.
#   make preference-experiment RUNS=runs
PREF              ?= $(RUNS)/pref
PREF_PROMPTS      ?= 400
PREF_EVAL_PROMPTS ?= 100
pref_sample = ./$(BIN) sample --prompts $(PREF)/prompts-eval.txt --num-inference-steps 16 --seed 2 $(1) -o $(2)
preference-experiment: | build data
	mkdir -p $(PREF)
	test -f $(PREF)/warm.jsonl || { ./$(BIN) data prompts $(DATA) --limit $(PREF_PROMPTS) -o $(PREF)/prompts.txt && \
		./$(BIN) sample --prompts $(PREF)/prompts.txt --num-images-per-prompt 4 --num-inference-steps 16 --seed 1 -o $(PREF)/samples && \
		python3 scripts/analysis/warmth_labels.py $(PREF)/samples -o $(PREF)/warm.jsonl; }
	test -f $(PREF)/rm-warm/model.safetensors || ./$(BIN) reward train --data $(DATA) --pairs $(PREF)/warm.jsonl --seed 0 \
		-o $(PREF)/rm-warm $(call resume_or,$(PREF)/rm-warm,)
	test -f $(PREF)/rm-base/model.safetensors || ./$(BIN) reward train --data $(DATA) --seed 0 -o $(PREF)/rm-base $(call resume_or,$(PREF)/rm-base,)
	test -f $(PREF)/rm-warm-ft/model.safetensors || ./$(BIN) reward train --data $(DATA) --pairs $(PREF)/warm.jsonl --seed 0 \
		--max-train-steps 500 -o $(PREF)/rm-warm-ft $(call resume_or,$(PREF)/rm-warm-ft,--init-from default)
	$(foreach m,default $(PREF)/rm-base/model.safetensors $(PREF)/rm-warm/model.safetensors $(PREF)/rm-warm-ft/model.safetensors,\
		./$(BIN) reward eval --model $(m) --preferences $(PREF)/warm.jsonl --split heldout &&) true
	./$(BIN) data prompts $(DATA) --split heldout --limit $(PREF_EVAL_PROMPTS) -o $(PREF)/prompts-eval.txt
	$(call pref_sample,,$(PREF)/bon-none)
	$(foreach m,base warm,$(call pref_sample,--best-of-n 4 --reward $(PREF)/rm-$(m)/model.safetensors --reward-weights vq=1,$(PREF)/bon-$(m)) &&) true
	$(foreach m,none base warm,python3 scripts/analysis/warmth_labels.py $(PREF)/bon-$(m) &&) true

# ---- Watching a fine-tuning run (align finetune --validation-prompt) ----
# 48 TA-only pairs of the embedded model (the 8 prompts of make sample, 6 times over, 4
# candidates each), Flow-DPO for 200 steps validated every 50 on the same 8 prompts with 4
# seeds each: each dimension's mean z-score and win rate against step 0 on stderr, in
# $(VAL)/dpo/validation.jsonl and validation.png (docs/finetune-validation.png).
#   make finetune-validation RUNS=runs
VAL ?= $(RUNS)/validation
# The prompts, "_" standing for a space.
VAL_PROMPTS := grinning_face red_apple rocket dog_face hamburger sun_with_face pile_of_poo four_leaf_clover
finetune-validation: | build
	mkdir -p $(VAL)
	test -f $(VAL)/pairs.jsonl || { for i in 1 2 3 4 5 6; do printf '%s\n' $(foreach p,$(VAL_PROMPTS),"$(subst _, ,$(p))"); done > $(VAL)/prompts.txt && \
		./$(BIN) pairs --prompts $(VAL)/prompts.txt --num-candidates 4 --seed 1 --weights ta=1 -o $(VAL)/pairs.jsonl; }
	test -f $(VAL)/dpo/adapter.safetensors || ./$(BIN) finetune --method dpo --pairs $(VAL)/pairs.jsonl --max-train-steps 200 \
		--checkpointing-steps 50 --seed 1 --num-validation-images 4 -o $(VAL)/dpo \
		$(foreach p,$(VAL_PROMPTS),--validation-prompt "$(subst _, ,$(p))") $(call resume_or,$(VAL)/dpo,)

info: setup build
	./$(BIN) info

clean:
	rm -rf bin

# ---- CUDA backend (kernels/cuda) ----
#   make ptx         regenerate the committed PTX (kernels/cuda/ptx/sm_80, sm_90) from the .cu files
#                    with clang-19 (PTX_COMPILER=nvcc uses nvcc instead, where present)
#   make ptx-tools   clang-19 from Debian and NVIDIA's ptxas (pip package nvidia-cuda-nvcc-cu12, into
#                    third_party/): `make test` then checks that the PTX is fresh and that it assembles
#   make vet-cuda    go vet of the tagged GPU code without a GPU or toolkit (cuda.h from pip when absent)
#   make build-cuda  bin/align-cuda with the CUDA device (build tag cuda; CUDA 12 toolkit, a GPU to run)
#   make test-cuda   the kernels/cuda tests with the GPU besides the emulation: conformance of every kernel,
#                    a DiT training step and a sampling run, each against the CPU device; then the align
#                    command's sampling, pretraining, fine-tuning and scoring on the GPU against the CPU
#   make cuda-test-binary  bin/cuda.test, the kernels/cuda test binary with the CUDA device, and bin/cmd.test,
#                    the align command's (its *CUDAMatchesCPU tests), built here without a GPU or toolkit (cuda.h
#                    from pip, stub libcuda/libcublas/libcublasLt) for a GPU machine without Go:
#                    scripts/gpu/run-tests.sh bin/cuda.test LOGDIR bin/cmd.test runs the GPU tests and benchmarks
#   make cuda-cli-binary   bin/align-cuda the same way: the align command with --device cuda
#   make cuda-cli-binary-noembed  bin/align-cuda-noembed: the same without the default models (37 MB
#                    less to copy), which it reads from the checkout's assets/ (scripts/gpu/pretrain-video.sh)
#   make bench-cuda  GPU benchmarks, each with its reference from the same run: kernels (and the CPU device on
#                    the same shapes), GB/s against the memory bandwidth, GEMM against cuBLAS called directly,
#                    training and sampling of a 132M-parameter DiT, and the same model in PyTorch where
#                    ALIGN_PYTHON (default python3) has torch with CUDA
#   make test-sanitize  the kernels/cuda tests and the align command's on the emulated device under
#                    AddressSanitizer and UndefinedBehaviorSanitizer: a GPU faults on a misaligned vector
#                    access and reads garbage past a buffer where x86 would not; here each fails the test
#                    with the kernel's file and line (CI runs it after make test)
#   make sass-stats  without a GPU: registers, shared memory, spills and each loop's instruction mix
#                    (instructions per HMMA) of the tensor-core attention kernels as ptxas assembles
#                    them for sm_90 (SASS_FAMILY, SASS_KERNELS to pick others; cuobjdump and nvdisasm
#                    from pip)
CUDA_PKG     := ./kernels/cuda
CLANG        ?= clang-19
PTX_COMPILER ?= clang
CUDA_HOME    ?= /usr/local/cuda
NVCC_PIP     := nvidia-cuda-nvcc-cu12==12.9.86
PTXAS_DIR    := third_party/cuda-nvcc
CUDA_H_PIP   := nvidia-cuda-runtime-cu12==12.9.79
CUDA_H_DIR   := third_party/cuda-include
# Where vet-cuda finds cuda.h: the toolkit's, or the one it fetched.
CUDA_INC      = $(if $(wildcard $(CUDA_HOME)/include/cuda.h),$(CUDA_HOME)/include,$(CURDIR)/$(CUDA_H_DIR))
CUDA_CGO     := CGO_CFLAGS="-I$(CUDA_HOME)/include" CGO_LDFLAGS="-L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib64/stubs"

.PHONY: ptx ptx-tools cuda-check vet-cuda build-cuda test-cuda bench-cuda cuda-test-binary cuda-cli-binary cuda-cli-binary-noembed sass-stats test-sanitize

test: ptx-tools

ptx: ptx-tools
	PTX_COMPILER=$(PTX_COMPILER) CLANG=$(CLANG) sh kernels/cuda/ptx.sh

ptx-tools:
	@if command -v $(CLANG) >/dev/null; then \
		echo "✓ $(CLANG) present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "→ installing $(CLANG) from Debian (the PTX freshness test compiles the kernels with it)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(CLANG) >/dev/null) \
			|| echo "✗ $(CLANG) install failed: TestPTXFresh fails under CI and is skipped elsewhere"; \
	else \
		echo "✗ $(CLANG) not found and not root: TestPTXFresh is skipped"; \
	fi
	@if [ -x $(PTXAS_DIR)/nvidia/cuda_nvcc/bin/ptxas ]; then \
		echo "✓ ptxas present"; \
	elif python3 -m pip --version >/dev/null 2>&1; then \
		echo "→ fetching ptxas ($(NVCC_PIP), 40 MB) into $(PTXAS_DIR)"; \
		(mkdir -p $(PTXAS_DIR) && python3 -m pip download -q --no-deps -d $(PTXAS_DIR) $(NVCC_PIP) && cd $(PTXAS_DIR) \
			&& python3 -c "import glob, zipfile; zipfile.ZipFile(glob.glob('*.whl')[0]).extract('nvidia/cuda_nvcc/bin/ptxas')" \
			&& chmod +x nvidia/cuda_nvcc/bin/ptxas && rm -f *.whl) \
			|| echo "✗ ptxas fetch failed: TestPTXAssembles is skipped"; \
	else \
		echo "✗ no pip: TestPTXAssembles is skipped"; \
	fi

cuda-check:
	@if command -v nvidia-smi >/dev/null; then nvidia-smi -L; else echo "✗ nvidia-smi not found: is the NVIDIA driver installed?"; fi
	@test -f $(CUDA_HOME)/include/cuda.h || { echo "✗ $(CUDA_HOME)/include/cuda.h not found: install a CUDA 12 toolkit or set CUDA_HOME"; exit 1; }
	@grep -q 'gorgonia.org/cu ' go.mod || { echo "→ adding gorgonia.org/cu v0.9.6 to go.mod"; $(GO) get gorgonia.org/cu@v0.9.6; }

vet-cuda:
	@grep -q 'gorgonia.org/cu ' go.mod || { echo "→ adding gorgonia.org/cu v0.9.6 to go.mod"; $(GO) get gorgonia.org/cu@v0.9.6; }
	@if [ -f $(CUDA_HOME)/include/cuda.h ]; then inc=$(CUDA_HOME)/include; else \
		inc=$(CURDIR)/$(CUDA_H_DIR); \
		if [ ! -f $$inc/cuda.h ]; then \
			echo "→ fetching cuda.h ($(CUDA_H_PIP), 3.5 MB) into $(CUDA_H_DIR)"; \
			mkdir -p $$inc && python3 -m pip download -q --no-deps -d $$inc $(CUDA_H_PIP) && cd $$inc \
				&& python3 -c "import glob, zipfile; z = zipfile.ZipFile(glob.glob('*.whl')[0]); open('cuda.h', 'wb').write(z.read('nvidia/cuda_runtime/include/cuda.h'))" \
				&& rm -f *.whl && cd $(CURDIR) || exit 1; \
		fi; \
	fi; \
	echo "go vet -tags cuda $(CUDA_PKG) (headers from $$inc)"; \
	CGO_CFLAGS="-I$$inc" $(GO) vet -tags cuda $(CUDA_PKG)

cuda-test-binary: vet-cuda
	sh scripts/gpu/build.sh test bin/cuda.test
	sh scripts/gpu/build.sh cmd-test bin/cmd.test

cuda-cli-binary: vet-cuda
	sh scripts/gpu/build.sh cli bin/align-cuda

cuda-cli-binary-noembed: vet-cuda
	sh scripts/gpu/build.sh cli-noembed bin/align-cuda-noembed

build-cuda: cuda-check
	$(CUDA_CGO) $(GO) build -tags cuda -o bin/align-cuda ./cmd/align

test-cuda: cuda-check
	$(CUDA_CGO) $(GO) test -tags cuda -count=1 -v -timeout 20m $(CUDA_PKG)
	$(CUDA_CGO) $(GO) test -tags cuda -count=1 -run 'CUDAMatchesCPU' -v ./cmd/align

# The race detector over every package: the CPU device's parallel loops and pools, the
# scoring pipeline's workers, the trainers and the commands (-short leaves out the CUDA
# emulation's run with one OS thread per CUDA thread, whose cgo threads it cannot see into).
# CI runs it after make test, about 4 min on 2 cores.
test-race: setup ort
	$(GO) test -race -short -count=1 -timeout 30m ./...

# -fsanitize=undefined includes the alignment check; vptr needs RTTI the kernels do not use.
SANITIZE_CXXFLAGS := -O1 -fsanitize=undefined -fno-sanitize=vptr -fno-sanitize-recover=all
test-sanitize: setup
	CGO_CXXFLAGS="$(SANITIZE_CXXFLAGS)" CGO_LDFLAGS="-fsanitize=undefined" $(GO) test -asan -count=1 -timeout 20m $(CUDA_PKG)
	CGO_CXXFLAGS="$(SANITIZE_CXXFLAGS)" CGO_LDFLAGS="-fsanitize=undefined" $(GO) test -asan -count=1 -run 'CUDAMatchesCPU|ProfileFlag' ./cmd/align

bench-cuda: cuda-check
	$(CUDA_CGO) $(GO) test -tags cuda -run '^$$' -bench 'LayerNorm|Attention|Gemm|Bandwidth' -benchtime 20x $(CUDA_PKG)
	$(CUDA_CGO) $(GO) test -tags cuda -run '^$$' -bench 'DiTBase' -benchtime 5x -timeout 30m $(CUDA_PKG)

SASS_PIP      := nvidia-cuda-cuobjdump==13.5.37 nvidia-cuda-nvdisasm==13.5.37
SASS_DIR      := third_party/cuda-sass
SASS_BIN      := $(SASS_DIR)/nvidia/cu13/bin
SASS_FAMILY   ?= attention
SASS_KERNELS  ?= attention_forward_mma attention_backward_dkv_mma attention_backward_dq_mma

sass-stats: ptx-tools
	@if [ ! -x $(SASS_BIN)/nvdisasm ]; then \
		echo "→ fetching cuobjdump and nvdisasm ($(SASS_PIP)) into $(SASS_DIR)"; \
		mkdir -p $(SASS_DIR) && cd $(SASS_DIR) && python3 -m pip download -q --no-deps -d . $(SASS_PIP) \
			&& python3 -c "import glob, zipfile; [zipfile.ZipFile(w).extract('nvidia/cu13/bin/' + t) for t in ('cuobjdump', 'nvdisasm') for w in glob.glob('*' + t + '*.whl')]" \
			&& chmod +x nvidia/cu13/bin/* && rm -f *.whl; \
	fi
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	$(PTXAS_DIR)/nvidia/cuda_nvcc/bin/ptxas -arch=sm_90 -v kernels/cuda/ptx/sm_90/$(SASS_FAMILY).ptx -o $$d/k.cubin 2>&1 \
		| awk '/Compiling entry function/ { gsub(/\047/, "", $$7); k = $$7 } /Used [0-9]+ registers/ { sm = 0; if (match($$0, /[0-9]+ bytes smem/)) sm = substr($$0, RSTART, RLENGTH - 11); print k ": " $$5 " registers, " sm " bytes shared" } /spill/ && !/ 0 bytes spill stores/ { print k ": " $$0 }' \
		| grep -E "^($$(echo $(SASS_KERNELS) | tr ' ' '|')):" && \
	PATH=$(CURDIR)/$(SASS_BIN):$$PATH cuobjdump -sass $$d/k.cubin > $$d/k.sass 2>/dev/null && \
	python3 scripts/ptx/sass_loops.py $$d/k.sass $(SASS_KERNELS)

# ---- ONNX Runtime (rewards/onnx) ----
#   make ort   ONNX Runtime's CPU library (libonnxruntime.so.1) from the onnxruntime-node npm
#              package, checksummed, into third_party/onnxruntime (never committed). It is loaded
#              at run time with dlopen; `make test` needs it so that the ONNX tests really run
#              (they skip without it, except under CI=true where they fail).
ORT_VERSION := 1.30.0
ORT_SHA256  := ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
ORT_DIR     := third_party/onnxruntime
ORT_LIB     := $(ORT_DIR)/libonnxruntime.so.1

.PHONY: ort

test: ort

ort: $(ORT_LIB)

# npm pack does not run the package's postinstall script (which would fetch CUDA providers).
$(ORT_LIB):
	mkdir -p $(ORT_DIR)
	cd $(ORT_DIR) && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null
	tar -xzf $(ORT_DIR)/onnxruntime-node-$(ORT_VERSION).tgz -C $(ORT_DIR) --strip-components=5 \
	    package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	rm -f $(ORT_DIR)/onnxruntime-node-$(ORT_VERSION).tgz
	echo "$(ORT_SHA256)  $(ORT_LIB)" | sha256sum -c - || { rm -f $(ORT_LIB); exit 1; }

# ffmpeg decodes video files (MP4, MOV, WebM, MKV, AVI) for align score and the pairs files:
# a static x86-64 Linux build from the @ffmpeg-installer/linux-x64 npm package (GPLv3, run as
# a separate program, never linked), checksummed. align finds it here, beside its binary, in
# $$ALIGN_FFMPEG or on the PATH; the video tests need one (CI=true fails without it).
FFMPEG_VERSION := 4.1.0
FFMPEG_SHA256  := 6d0c625dbd3f604ed2618981ba6fee7e29678855ab741d654cfc9effb0226624
FFMPEG_DIR     := third_party/ffmpeg
FFMPEG_BIN     := $(FFMPEG_DIR)/ffmpeg

.PHONY: ffmpeg
test: ffmpeg

ffmpeg:
	@if [ -x $(FFMPEG_BIN) ]; then \
		echo "✓ ffmpeg present ($(FFMPEG_BIN))"; \
	elif [ "$$(uname -sm)" != "Linux x86_64" ]; then \
		echo "✗ no ffmpeg build for $$(uname -sm) here: install ffmpeg on the PATH for video files"; \
	else \
		echo "→ fetching ffmpeg $(FFMPEG_VERSION) (@ffmpeg-installer/linux-x64, npm)"; \
		mkdir -p $(FFMPEG_DIR) && cd $(FFMPEG_DIR) && npm pack --silent @ffmpeg-installer/linux-x64@$(FFMPEG_VERSION) >/dev/null && \
		tar -xzf ffmpeg-installer-linux-x64-$(FFMPEG_VERSION).tgz --strip-components=1 package/ffmpeg && \
		rm -f ffmpeg-installer-linux-x64-$(FFMPEG_VERSION).tgz && \
		{ echo "$(FFMPEG_SHA256)  ffmpeg" | sha256sum -c --quiet - || { rm -f ffmpeg; exit 1; }; } && chmod +x ffmpeg; \
	fi

# ---- quality measure (align retrieval; the README's numbers) ----
#   make retrieval   nearest-training-image hit rate of 200 held-in prompts (28 Euler steps,
#                    guidance 4, seed 0) for RETRIEVAL_MODEL, with the grid of samples and
#                    their neighbours in RETRIEVAL_GRID; a video model gets the direction measure
#                    (give it RETRIEVAL_GRID=clips.gif)
RETRIEVAL_MODEL ?= $(RUNS)/image-base/model.safetensors
RETRIEVAL_GRID  ?= $(RUNS)/retrieval-grid.png

.PHONY: retrieval

retrieval: build data
	./$(BIN) retrieval --model $(RETRIEVAL_MODEL) --data $(DATA) --num-prompts 200 --num-inference-steps 28 \
		--guidance-scale 4 --seed 0 --save-grid $(RETRIEVAL_GRID)
