// Package dpo aligns a flow-matching DiT (package diffusion) with preferences: the
// preference data formats, the Flow-DPO and Flow-RWR losses (VideoAlign, Liu et al.,
// "Improving Video Generation with Human Feedback", arXiv 2501.13918, §4.3 and App. C), the
// winner-only SFT baseline, and the fine-tuning loop (LoRA or full fine-tuning, a frozen
// reference, AdamW, checkpoints that resume exactly).
//
// Files (each with its test beside it):
//
//	data.go     preference pairs (JSONL, VideoAlign CSV) and scored sets (JSONL), file:line errors
//	media.go    reading the images and clips the data names, at the model's geometry
//	loss.go     Flow-DPO loss and gradient, beta schedules, RWR weights (softmax per group)
//	step.go     one micro-batch forward and backward: shared t and noise per pair, the reference pass
//	lora.go     LoRA on chosen projections of a DiT, the reference switch, merging, adapter files
//	trainset.go the training set: pairs (dpo), winners (sft), softmax-weighted samples (rwr)
//	trainer.go  the loop: LR schedule, accumulation, clipping, EMA, checkpoints, resume, log, plot
//
// Conventions (algorithms.md sections 1-3): t in [0,1], t = 1 pure noise,
// x_t = (1-t) x0 + t eps, target v = eps - x0, and the per-sample error of a velocity is the
// mean over the sample's D elements, e = (1/D) ||v - v_theta(x_t, t, prompt)||^2 (not the
// squared norm of the paper's pseudocode: beta's scale depends on this choice).
//
// Shape legend: P pairs, B samples (2P for Flow-DPO: winners first, then losers), D values
// per sample.
//
// Test: go test ./dpo
package dpo
