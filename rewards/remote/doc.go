// Package remote scores with reward models that run elsewhere and answer over HTTP: the
// multi-billion-parameter VLM scorers (VideoReward, HPSv3, UnifiedReward, VisionReward) that
// no ONNX export serves, behind a small server of the user's, or any vision-language model
// behind an OpenAI-style chat endpoint (vLLM, SGLang, Ollama, OpenAI) asked to judge.
//
// A manifest (FILE.json, "format": "align.remote-reward") names the model for --reward:
//
//	{"format": "align.remote-reward", "version": 1, "name": "videoreward",
//	 "url": "http://127.0.0.1:8000/score",
//	 "dims": ["vq", "mq", "ta"],
//	 "image": {"size": 448, "resize": "shorter", "filter": "bicubic", "frames": 8},
//	 "max_batch": 8, "concurrency": 4, "timeout_seconds": 300, "retries": 2,
//	 "headers": {"Authorization": "Bearer ${REWARD_API_KEY}"},
//	 "calibration": {"mean": [...], "std": [...]}}
//
// image says the size every frame is sent at (resized as an ONNX manifest's image block
// says; "frames" > 0 for a model of clips, else an image model, which scores a clip's frames
// one by one and averages them unless "clip_reduce" is "reject").
//
// The align protocol (the default) posts batches of up to max_batch samples:
//
//	request  {"dims": ["vq", "mq", "ta"],
//	          "samples": [{"prompt": "a red apple moving left", "frames": ["<base64 PNG>", ...]}, ...]}
//	answer   {"scores": [{"vq": 1.25, "mq": -0.5, "ta": 2.0}, ...]}      (200, one per sample, in order)
//
// Any other status is an error carrying the start of the answer; a connection error or a
// 429, 500, 502, 503 or 504 is tried again (retries times, after 1, 2, 4, ... s or the
// answer's Retry-After). A server for a model in
// Python is some twenty lines around its inference call.
//
// The openai-chat protocol sends one chat completion per sample: the frames as PNG data URLs
// and chat.prompt (with {prompt} replaced) in the user message, after chat.system; each
// dimension is the number captured by the first group of chat.scores[dim] in the reply, e.g.
// UnifiedReward's "Alignment Score (1-5): 4". With chat.clip "video" a clip goes as one
// video_url instead, an H.264 MP4 data URL of its frames at the rate they were sampled at
// (rewards.Batch.FPS, else chat.fps):
//
//	"protocol": "openai-chat", "url": "http://127.0.0.1:8000/v1/chat/completions",
//	"chat": {"model": "UnifiedReward-qwen-7b", "prompt": "... the caption: {prompt} ...",
//	         "scores": {"ta": "Alignment Score[^0-9]*([0-9.]+)"}, "max_tokens": 512,
//	         "clip": "video", "fps": 2}
//
// A remote model returns no gradient: it steers best-of-N and particle (FK) sampling and
// scores, pairs and evaluates, but not Flow-NRG.
//
// Test: go test ./rewards/remote (servers of both protocols in the test process).
package remote
