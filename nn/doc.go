// Package nn holds the layers of align's models as structs with explicit Forward and
// Backward passes in the llm.c manner, plus AdamW. Layers call only kernels.Device
// operations and never index a buffer on the host, so they run unchanged on every device.
//
// Layers (one per file, test beside it): Linear with an optional LoRA adapter, LayerNorm,
// MLP, SelfAttention, DiTBlock (adaLN-Zero) and AdaLNStack (the modulations of a stack of
// blocks in one product), FinalLayer, TokenEmbedding, PatchEmbed (fixed
// sin-cos positions), TimestepEmbedder, MSELoss; AdamW, ZeroGrad and ClipScale. The
// files every training loop writes: safetensors checkpoints (checkpoint.go), their
// directory (checkpoint_dir.go), the JSONL log and atomic writes (trainlog.go); and the
// rule every training loop applies to a step with a non-finite loss or gradient norm
// (skipstep.go).
//
// Shape legend used in comments:
//
//	B  batch size            T  tokens per sample          C   channels (width)
//	NH attention heads       HS head size (C = NH*HS)      N   rows, the product of the leading dims
//	Dc conditioning width    V  vocabulary size            L   patch tokens per sample
//
// # Passes
//
// Forward caches what Backward needs (pointers to its inputs and to its own
// intermediates, never copies of device tensors). Backward uses the caches of the most recent Forward of the
// same layer: between a Forward and its Backward the caller must not change the input
// tensors it passed in, and must not run another Forward of that layer. A layer used twice
// in one step (for example the frozen reference pass of Flow-DPO) runs its forward-only
// pass first, then the Forward whose Backward follows.
//
// Backward writes (=) the gradient of each activation it returns and accumulates (+=) into
// parameter gradients (Param.G), so gradient accumulation over micro-batches needs
// nothing special; call ZeroGrad before each optimizer step's first Backward.
//
// # Buffer ownership
//
// A layer owns its output tensor and its input-gradient tensors. Forward returns its
// output and Backward returns dx; both are views of layer-owned device buffers that grow
// only when a call needs more elements than any call before it (a smaller batch reuses the
// front of the buffer), so steady-state training allocates no device memory. A returned
// tensor stays valid until the next call of the same method on the same layer; a caller
// that needs it longer copies it. Layers never write into tensors passed to them.
//
// # Parameters
//
// Every layer has Params() []Param with dotted names relative to the layer ("weight",
// "attn.qkv.weight"); containers prefix their children's names ("blocks.3.mlp.fc1.bias").
// Names follow the DiT and PEFT conventions (adaLN_modulation.1, lora_A, lora_B) so that
// users and conversion scripts recognise them. A frozen parameter has G == nil; freezing or
// unfreezing (SetTrainable, EnableLoRA) replaces G, so take Params() again afterwards.
// Initial values come from a Rand (a seeded counter-based generator, *kernels.RNG), so a
// model built twice from the same seed is bit-identical; a nil Rand gives zeros.
//
// Test: go test ./nn
package nn
