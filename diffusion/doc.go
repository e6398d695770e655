// Package diffusion is align's generator: the DiT velocity model of text-to-image and
// text-to-video rectified flow, its tokenizer and text encoder, the flow-matching objective,
// the scheduler and samplers, image/video output, and the pre-training loop.
//
// Conventions (algorithms.md section 1): t ≡ sigma in [0,1], t = 1 is pure noise,
// x_t = (1-t) x0 + t eps, the model predicts v = eps - x0, sampling runs t from 1 to 0.
// Samples are (B,C,H,W) images or (B,T,C,H,W) videos with values in [-1, 1].
//
// Files:
//
//	config.go         ModelConfig (JSON in every model file), defaults, validation
//	tokenizer.go      word-level Tokenizer (Extend keeps the ids, appends new words); PadID, UnkID, NullID
//	text_encoder.go   TextEncoder: token embedding + fixed positions + pre-LN blocks
//	reward_embed.go   RewardEmbedder: the zero-initialised reward-condition slot
//	dit.go            DiT: Forward(x_t, t, ids, lengths, r), Backward(dv) -> dx_t, Params,
//	                  LoRA switches, Save / LoadDiT / LoadDiTFromBytes; EncodePrompts
//	objective.go      Objective (diffusers' weighting schemes), DropCaptions, TrainStep
//	flowmatch_*.go    FlowMatchEulerScheduler: sigmas with the SD3 shift, Euler and SDE steps
//	sampler.go        Sample, Denoise (euler, heun, sde), GuidedVelocity (CFG in one 2B batch)
//	imageio.go        samples to images, Grid, atomic PNG and animated GIF writers
//	pretrain.go       Trainer: data order, LR schedule, AdamW, EMA, exact-resume checkpoints
//	inflate.go        InflateImageModel: a video DiT started from an image DiT; Trainer.InflateFrom
//	losscurve.go      LossCurve: the loss.png plot
//
// Shape legend: B batch, L = MaxTextLen text tokens, P patch tokens, C width, D values per
// sample (the product of ModelConfig.SampleShape).
//
// Reward-condition null convention: a reward value NaN means "dimension dropped" (∅); a nil
// condition drops every dimension. A fresh model's reward slot outputs exactly zero.
//
// Test: go test ./diffusion ; benchmark: go test ./diffusion -run '^$' -bench TrainStep -benchtime 3x
package diffusion
