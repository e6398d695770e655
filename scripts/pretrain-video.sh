#!/bin/sh
# pretrain-video.sh: the training command of the default video model, one leg: the first leg
# starts from the embedded image model (--init-from default), later legs resume the latest
# checkpoint in OUT. Used by `make pretrain-video` (CPU legs of 110 minutes) and by
# scripts/gpu/pretrain-video.sh (a GPU run); extra flags (--time-limit, --device) follow.
# Usage: scripts/pretrain-video.sh BIN DATA OUT [FLAGS...]
set -eu
bin=$1 data=$2 out=$3
shift 3
if ls "$out"/checkpoint-*.safetensors >/dev/null 2>&1; then
	set -- --resume-from-checkpoint latest "$@"
else
	set -- --init-from default "$@"
fi
exec "$bin" pretrain --video --data "$data" --max-train-steps 12000 --train-batch-size 32 --seed 1 \
	--checkpointing-steps 500 -o "$out" "$@"
