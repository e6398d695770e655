#!/bin/bash
# pretrain-video.sh: on a GPU machine without network or Go, one run of the default video
# model's training (scripts/pretrain-video.sh, the command of make pretrain-video) with
# --device cuda. The dataset is built there by `align data prepare --sources-dir` from an
# unpacked copy of the packages' members (the same files as make data; their sha256 are
# printed), since the clips (469 MB) are larger than what can be copied to the machine.
# Usage: scripts/gpu/pretrain-video.sh BINARY SOURCES.tar.xz WORKDIR LIMIT   (repository root)
#   BINARY          make cuda-cli-binary-noembed (reads the default models from ./assets)
#   SOURCES.tar.xz  `align data sources -o DIR; tar -C DIR -cf - . | xz -9 > SOURCES.tar.xz` (15 MB)
#   LIMIT           --time-limit of the run; a second call resumes from WORKDIR/video-base
# CLIP_SPRITE_SCALE (default 1) builds the clips with larger sprites (align data prepare
# --clip-sprite-scale), e.g. CLIP_SPRITE_SCALE=1.5 for a video model whose objects are easier
# to recognise (README, video TA).
set -eu
bin=$(realpath "$1") src=$2 work=$3 limit=$4
. "$(dirname "$0")/cublas-env.sh" "$bin"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
mkdir -p "$work/sources"
tar -xJf "$src" -C "$work/sources"
"$bin" data prepare --sources-dir "$work/sources" --clip-sprite-scale "${CLIP_SPRITE_SCALE:-1}" -o "$work/emoji" 2>/dev/null | grep -E "^(clips|file|time)"
sh "$(dirname "$0")/../pretrain-video.sh" "$bin" "$work/emoji" "$work/video-base" --device cuda --time-limit "$limit"
