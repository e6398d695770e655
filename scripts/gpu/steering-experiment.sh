#!/bin/bash
# steering-experiment.sh: on a GPU machine without Go or network, the steering experiment
# (make steering-experiment) with every command on the GPU (ALIGN_DEVICE=cuda), its runs
# in parallel: the small models leave most of the GPU idle in one process. The dataset is
# built there from the packages' members as in pretrain-video.sh.
# Usage: scripts/gpu/steering-experiment.sh BINARY SOURCES.tar.xz LIMIT [MAKE VARIABLES...]
#   BINARY          make cuda-cli-binary-noembed, a path under the repository root
#   SOURCES.tar.xz  `align data sources -o DIR; tar -C DIR -cf - . | xz -9 > SOURCES.tar.xz`
#   LIMIT           seconds; make is then interrupted and a second call continues (every file
#                   of the experiment is a make target; reward training resumes from checkpoints)
#   e.g. scripts/gpu/steering-experiment.sh bin/align-cuda-noembed sources.tar.xz 470 VIDEO=1 \
#          EXP=runs/video-exp EXP_SHARDS=1 EXP_PAIR_PROMPTS=400     # the README's video table
# MAKE names a make binary where the machine has none on its PATH. CLIP_SPRITE_SCALE=s builds
# the clips with sprites s times as large (align data prepare --clip-sprite-scale) into
# data/emoji-s<s> and runs the experiment on that dataset; pass the video model trained on it
# as EXP_MODEL=FILE (scripts/gpu/pretrain-video.sh with the same CLIP_SPRITE_SCALE).
set -u
bin=$1 src=$2 limit=$3
shift 3
. "$(dirname "$0")/cublas-env.sh" "$bin"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
scale=${CLIP_SPRITE_SCALE:-1}
data=data/emoji
[ "$scale" = 1 ] || data=data/emoji-s$scale
if [ ! -f "$data/manifest.json" ]; then
	mkdir -p /tmp/align-sources && tar -xJf "$src" -C /tmp/align-sources
	"$bin" data prepare --sources-dir /tmp/align-sources --clip-sprite-scale "$scale" -o "$data" 2>&1 | grep -E "^(clips|time)"
fi
set -m # make and its children in a process group of their own, interrupted together
ALIGN_DEVICE=cuda "${MAKE:-make}" -k -j12 -o build -o data -o "$data/manifest.json" steering-experiment BIN="$bin" DATA="$data" "$@" &
pid=$!
(sleep "$limit" && echo "steering-experiment.sh: $limit s, interrupting make" && kill -INT -- -$pid) &
timer=$!
wait $pid
rc=$?
kill -- -$timer 2>/dev/null # its sleep too (set -m: the timer has its own process group)
echo "make: exit $rc after $SECONDS s"
exit $rc
