// Tests of remote reward models: the manifest (defaults, every error, fuzzed), the align
// protocol against a server in the test process (batches, order, concurrency, headers,
// clips, an image model given clips, the errors of a server), and the openai-chat protocol
// (the request, the scores read from the reply, a reply without them).
package remote

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alignkit/align/internal/ffmpeg"
	"github.com/alignkit/align/internal/testvideo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

func manifestJSON(url, extra string) string {
	return `{"format": "align.remote-reward", "version": 1, "url": "` + url + `", "dims": ["vq", "ta"],
		"image": {"size": 4, "resize": "stretch", "filter": "box"}` + extra + `}`
}

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(manifestJSON("http://127.0.0.1:1/score", "")))
	if err != nil {
		t.Fatal(err)
	}
	if m.Protocol != ProtocolAlign || m.MaxBatch != 8 || m.Concurrency != 4 || m.TimeoutSeconds != 300 || m.Image.Height != 4 ||
		m.Image.ClipReduce != "mean" {
		t.Errorf("defaults: %+v", m)
	}
	chat := manifestJSON("https://judge.example/v1/chat/completions", `, "protocol": "openai-chat",
		"chat": {"model": "m", "prompt": "caption: {prompt}", "scores": {"vq": "VQ: ([0-9.]+)", "ta": "TA: ([0-9.]+)"}}`)
	if m, err := ParseManifest([]byte(chat)); err != nil || m.Chat.MaxTokens != 512 || len(m.Chat.patterns) != 2 || m.Chat.Clip != ClipFrames {
		t.Errorf("chat: %v %+v", err, m)
	}
	for name, c := range map[string]struct{ text, want string }{
		"format":     {strings.Replace(manifestJSON("http://h/s", ""), "align.remote-reward", "align.onnx-reward", 1), `format is "align.onnx-reward"`},
		"url":        {manifestJSON("ftp://h/s", ""), `url "ftp://h/s"`},
		"unknown":    {manifestJSON("http://h/s", `, "batch": 3`), `unknown field "batch"`},
		"protocol":   {manifestJSON("http://h/s", `, "protocol": "grpc"`), `protocol "grpc"`},
		"dims":       {strings.Replace(manifestJSON("http://h/s", ""), `["vq", "ta"]`, `["vq", "vq"]`, 1), `dims[1] "vq"`},
		"size":       {strings.Replace(manifestJSON("http://h/s", ""), `"size": 4`, `"size": 0`, 1), "image height and width"},
		"frames":     {manifestJSON("http://h/s", `, "max_batch": -1`), "max_batch must be in [1, 4096]"},
		"timeout":    {manifestJSON("http://h/s", `, "timeout_seconds": -2`), "timeout_seconds must be a positive number"},
		"no chat":    {manifestJSON("http://h/s", `, "protocol": "openai-chat"`), "needs a chat block"},
		"chat align": {manifestJSON("http://h/s", `, "chat": {"model": "m", "prompt": "{prompt}", "scores": {}}`), "a chat block is for protocol openai-chat"},
		"no group":   {strings.Replace(chat, `TA: ([0-9.]+)`, `TA: [0-9.]+`, 1), `want a group capturing the number`},
		"bad regexp": {strings.Replace(chat, `TA: ([0-9.]+)`, `TA: ([0-9.]+`, 1), `chat.scores["ta"]: error parsing regexp`},
		"no prompt":  {strings.Replace(chat, "caption: {prompt}", "caption", 1), "chat.prompt must contain {prompt}"},
		"clip":       {strings.Replace(chat, `"model": "m"`, `"model": "m", "clip": "gif"`, 1), `chat.clip "gif": want frames or video`},
		"clip image": {strings.Replace(chat, `"model": "m"`, `"model": "m", "clip": "video"`, 1), "chat.clip video sends a clip model's clips; image.frames is 0"},
		"chat fps":   {strings.Replace(chat, `"model": "m"`, `"model": "m", "fps": -1`, 1), "chat.fps must be in [0, 1000]"},
		"calib":      {manifestJSON("http://h/s", `, "calibration": {"mean": [0], "std": [1]}`), "calibration: "},
		"header":     {manifestJSON("http://h/s", `, "headers": {"X Key": "v"}`), `headers: "X Key"`},
		"trailing":   {manifestJSON("http://h/s", "") + "{}", "data after the manifest object"},
	} {
		if _, err := ParseManifest([]byte(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(manifestJSON("http://127.0.0.1:1/score", ""))
	f.Add(manifestJSON("http://h/s", `, "protocol": "openai-chat", "chat": {"model": "m", "prompt": "{prompt}", "scores": {"vq": "(.)", "ta": "(x)"}}`))
	f.Add(manifestJSON("http://h/s", `, "calibration": {"mean": [0, 1], "std": [1, 2]}, "image": {"frames": 4}`))
	f.Add(manifestJSON("http://h/s", `, "image": {"frames": 4}, "protocol": "openai-chat", "chat": {"model": "m", "prompt": "{prompt}", "clip": "video", "fps": 2, "scores": {"vq": "(.)", "ta": "(x)"}}`))
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseManifest([]byte(text))
		if err != nil {
			return
		}
		// What parses is usable: a size, batches, a pattern per dimension for chat.
		if m.Image.Height < 1 || m.Image.Width < 1 || m.MaxBatch < 1 || m.Concurrency < 1 {
			t.Fatalf("accepted %+v", m)
		}
		if m.Chat != nil && len(m.Chat.patterns) != len(m.Dims) {
			t.Fatalf("chat patterns %v for dims %v", m.Chat.patterns, m.Dims)
		}
	})
}

// alignServer answers the align protocol: vq = the mean of a sample's pixels in [0, 255]
// over its frames, ta = the length of its prompt. It counts requests and the most samples
// in one, and checks the header and the dims sent.
type alignServer struct {
	requests, most, inFlight, peak atomic.Int64
	status                         int    // answer with this status instead (0: 200)
	answer                         string // answer this instead (with status 200)
	delay                          time.Duration
}

func (s *alignServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	s.requests.Add(1)
	time.Sleep(s.delay)
	if s.status != 0 {
		http.Error(w, "model not loaded", s.status)
		return
	}
	if s.answer != "" {
		fmt.Fprint(w, s.answer)
		return
	}
	var req struct {
		Dims    []string `json:"dims"`
		Samples []sample `json:"samples"`
	}
	if r.Header.Get("Authorization") != "Bearer sekret" || json.NewDecoder(r.Body).Decode(&req) != nil || fmt.Sprint(req.Dims) != "[vq ta]" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	for n := int64(len(req.Samples)); n > s.most.Load(); {
		s.most.Store(n)
	}
	var scores []map[string]float64
	for _, smp := range req.Samples {
		sum, count := 0.0, 0
		for _, f := range smp.Frames {
			b, _ := base64.StdEncoding.DecodeString(f)
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				http.Error(w, "bad frame", http.StatusBadRequest)
				return
			}
			for y := range img.Bounds().Dy() {
				for x := range img.Bounds().Dx() {
					r, g, bl, _ := img.At(x, y).RGBA()
					sum += float64(r>>8+g>>8+bl>>8) / 3
					count++
				}
			}
		}
		scores = append(scores, map[string]float64{"vq": sum / float64(count), "ta": float64(len(smp.Prompt))})
	}
	json.NewEncoder(w).Encode(map[string]any{"scores": scores})
}

// batchOf is a batch of n samples (T frames each; T 0: images) of 4x4 pixels, sample i's
// frame t of the level 10i + t (exact in PNG), with prompts of i+1 letters.
func batchOf(n, T int) rewards.Batch {
	dev := kernels.NewCPU(1)
	shape := []int{n, 3, 4, 4}
	frames := 1
	if T > 0 {
		shape, frames = []int{n, T, 3, 4, 4}, T
	}
	pix := dev.New(shape...)
	host := make([]float32, pix.Len())
	var prompts []string
	for i := range n {
		for t := range frames {
			for k := range 48 {
				host[(i*frames+t)*48+k] = float32(10*i+t)/127.5 - 1
			}
		}
		prompts = append(prompts, strings.Repeat("x", i+1))
	}
	dev.CopyFromHost(pix, host)
	return rewards.Batch{Pixels: pix, Prompts: prompts}
}

func newTestModel(t *testing.T, text string) *Model {
	t.Helper()
	m, err := ParseManifest([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func TestAlignProtocol(t *testing.T) {
	srv := &alignServer{delay: 20 * time.Millisecond}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	t.Setenv("REWARD_KEY", "sekret")
	headers := `, "headers": {"Authorization": "Bearer ${REWARD_KEY}"}`
	mod := newTestModel(t, manifestJSON(ts.URL, `, "max_batch": 3, "concurrency": 2`+headers))
	rows, err := mod.Score(batchOf(7, 0))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r[0] != float32(10*i) || r[1] != float32(i+1) {
			t.Errorf("sample %d: %v, want [%d %d]", i, r, 10*i, i+1)
		}
	}
	// 7 samples in batches of 3: 3 requests, at most 2 at a time.
	if srv.requests.Load() != 3 || srv.most.Load() != 3 || srv.peak.Load() != 2 {
		t.Errorf("%d requests, %d samples at most, %d in flight at most; want 3, 3, 2", srv.requests.Load(), srv.most.Load(), srv.peak.Load())
	}

	// A clip model sends T frames a sample; an image model given clips averages its frames.
	clips := newTestModel(t, manifestJSON(ts.URL, `, "image": {"size": 4, "resize": "stretch", "frames": 3}`+headers))
	clips.Manifest.Image.Filter = "box"
	if rows, err := clips.Score(batchOf(2, 3)); err != nil || rows[1][0] != 11 || rows[1][1] != 2 {
		t.Errorf("clips: %v, %v; want sample 1 at level 11 (10, 11, 12)", rows, err)
	}
	if rows, err := mod.Score(batchOf(2, 3)); err != nil || len(rows) != 2 || rows[1][0] != 11 || rows[1][1] != 2 {
		t.Errorf("image model on clips: %v, %v", rows, err)
	}
	if _, err := clips.Score(batchOf(2, 0)); err == nil || !strings.Contains(err.Error(), "reads clips of 3 frames, got images") {
		t.Errorf("clip model on images: %v", err)
	}
	reject := newTestModel(t, manifestJSON(ts.URL, `, "image": {"size": 4, "clip_reduce": "reject"}`+headers))
	if _, err := reject.Score(batchOf(2, 3)); err == nil || !strings.Contains(err.Error(), "clip_reduce is reject") {
		t.Errorf("clip_reduce reject: %v", err)
	}

	// Without the key the server refuses: the status and its answer come back.
	t.Setenv("REWARD_KEY", "wrong")
	if _, err := newTestModel(t, manifestJSON(ts.URL, headers)).Score(batchOf(2, 0)); err == nil ||
		!strings.Contains(err.Error(), "remote reward model "+ts.URL+": HTTP 400: \"bad request\"") {
		t.Errorf("wrong key: %v", err)
	}
	m, _ := ParseManifest([]byte(manifestJSON(ts.URL, `, "headers": {"Authorization": "Bearer ${NO_SUCH_VARIABLE_HERE}"}`)))
	if _, err := New(m); err == nil || !strings.Contains(err.Error(), "header Authorization names $NO_SUCH_VARIABLE_HERE, which is not set") {
		t.Errorf("unset variable: %v", err)
	}
}

func TestAlignProtocolErrors(t *testing.T) {
	for name, c := range map[string]struct {
		srv  *alignServer
		want string
	}{
		"status":   {&alignServer{status: http.StatusServiceUnavailable}, `HTTP 503: "model not loaded" (after 3 tries)`},
		"refused":  {&alignServer{status: http.StatusUnprocessableEntity}, `HTTP 422: "model not loaded"`},
		"count":    {&alignServer{answer: `{"scores": [{"vq": 1, "ta": 2}]}`}, "2 samples sent, 1 scores answered"},
		"missing":  {&alignServer{answer: `{"scores": [{"vq": 1, "ta": 2}, {"vq": 1}]}`}, `score 1 of the answer has no number for "ta"`},
		"not json": {&alignServer{answer: `<html>`}, `the answer is not the JSON expected`},
		"timeout":  {&alignServer{delay: 400 * time.Millisecond}, "Client.Timeout"},
	} {
		ts := httptest.NewServer(c.srv)
		mod := newTestModel(t, manifestJSON(ts.URL, `, "timeout_seconds": 0.3`))
		mod.backoff = time.Millisecond
		if _, err := mod.Score(batchOf(2, 0)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
		ts.Close()
	}
}

func TestChatProtocol(t *testing.T) {
	var got struct {
		Model     string  `json:"model"`
		MaxTokens int     `json:"max_tokens"`
		Temp      float64 `json:"temperature"`
		Messages  []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	reply := "Visual quality: 3.5\nAlignment Score (1-5): 4."
	var calls atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		json.NewDecoder(r.Body).Decode(&got)
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"role": "assistant", "content": reply}}}})
	}))
	defer ts.Close()
	mod := newTestModel(t, manifestJSON(ts.URL, `, "protocol": "openai-chat", "concurrency": 1, "chat": {"model": "judge-7b",
		"system": "You rate images.", "prompt": "Caption: {prompt}. Rate it.",
		"scores": {"vq": "[Qq]uality: ([0-9.]+)", "ta": "Alignment Score[^0-9]*\\(1-5\\): ([0-9.]+)"}}`))
	rows, err := mod.Score(batchOf(3, 0))
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || rows[2][0] != 3.5 || rows[2][1] != 4 {
		t.Errorf("%d calls, rows %v; want 3, [3.5 4] each", calls.Load(), rows)
	}
	var content []map[string]any
	if got.Model != "judge-7b" || got.MaxTokens != 512 || len(got.Messages) != 2 || got.Messages[0].Role != "system" ||
		json.Unmarshal(got.Messages[1].Content, &content) != nil || len(content) != 2 ||
		content[1]["text"] != "Caption: xxx. Rate it." || !strings.HasPrefix(fmt.Sprint(content[0]["image_url"]), "map[url:data:image/png;base64,") {
		t.Errorf("request %+v, content %v", got, content)
	}
	reply = "I cannot judge this."
	if _, err := mod.Score(batchOf(1, 0)); err == nil || !strings.Contains(err.Error(), `the reply gives no vq (pattern "[Qq]uality: ([0-9.]+)"): "I cannot judge this."`) {
		t.Errorf("no scores in the reply: %v", err)
	}
}

// chat.clip video: each clip is one video_url, an MP4 of its 4 frames at the batch's frame
// rate (4 fps) or, where the batch has none, chat.fps (2); the server reads it back with
// ffmpeg and answers the level of its second frame and the milliseconds before it. Without
// a rate from either, the batch is refused.
func TestChatVideo(t *testing.T) {
	bin := testvideo.Require(t)
	var videos atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []struct {
				Content []struct {
					Type     string            `json:"type"`
					VideoURL map[string]string `json:"video_url"`
				} `json:"content"`
			} `json:"messages"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		content := req.Messages[len(req.Messages)-1].Content
		data, ok := strings.CutPrefix(content[0].VideoURL["url"], "data:video/mp4;base64,")
		raw, err := base64.StdEncoding.DecodeString(data)
		if len(content) != 2 || content[0].Type != "video_url" || !ok || err != nil {
			http.Error(w, fmt.Sprintf("want a video_url and the text, got %d items: %v", len(content), err), http.StatusBadRequest)
			return
		}
		videos.Add(1)
		path := filepath.Join(t.TempDir(), "clip.mp4")
		os.WriteFile(path, raw, 0o644)
		timing, err := ffmpeg.Probe(bin, path)
		if err != nil || len(timing.Starts) != 4 {
			http.Error(w, fmt.Sprintf("%v, %v", timing, err), http.StatusBadRequest)
			return
		}
		frames, err := ffmpeg.Frames(bin, path, []int{1}, 4)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r8, _, _, _ := frames[0].At(1, 1).RGBA()
		reply := fmt.Sprintf("VQ: %d TA: %.0f", r8>>8, 1000*timing.Starts[1])
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"content": reply}}}})
	}))
	defer ts.Close()
	chat := func(fps string) *Model {
		return newTestModel(t, manifestJSON(ts.URL, `, "image": {"size": 16, "resize": "stretch", "frames": 4}, "protocol": "openai-chat",
			"chat": {"model": "m", "prompt": "{prompt}", "clip": "video", "fps": `+fps+`, "scores": {"vq": "VQ: ([0-9]+)", "ta": "TA: ([0-9]+)"}}`))
	}
	b := batchOf(2, 4) // clip i's frame t is of level 10i + t
	b.FPS = []float64{4, 0}
	rows, err := chat("2").Score(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][2]float32{{1, 250}, {11, 500}} {
		if len(rows) != 2 || math.Abs(float64(rows[i][0]-want[0])) > 2 || rows[i][1] != want[1] || videos.Load() != 2 {
			t.Errorf("clip %d: %v (%d videos), want level %v within 2 and %v ms", i, rows, videos.Load(), want[0], want[1])
		}
	}
	if _, err := chat("0").Score(b); err == nil || !strings.Contains(err.Error(), "give chat.fps in the manifest") {
		t.Errorf("no frame rate: %v", err)
	}
}

func TestReadScores(t *testing.T) {
	m, err := ParseManifest([]byte(manifestJSON("http://h/s", `, "protocol": "openai-chat", "chat": {"model": "m", "prompt": "{prompt}",
		"scores": {"vq": "vq=([-0-9.e]+)", "ta": "ta=([^ ]+)"}}`)))
	if err != nil {
		t.Fatal(err)
	}
	if row, err := readScores("vq=-1.5e1 ta=2.", m.Dims, m.Chat.patterns); err != nil || row[0] != -15 || row[1] != 2 {
		t.Errorf("%v %v", row, err)
	}
	for _, reply := range []string{"vq=1 ta=NaN", "vq=1 ta=inf", "vq=1 ta=four"} {
		if _, err := readScores(reply, m.Dims, m.Chat.patterns); err == nil || !strings.Contains(err.Error(), "is not a number") {
			t.Errorf("%q: %v", reply, err)
		}
	}
}

// A server that answers 503 twice, then scores: three tries with the default retries, one
// (and the error) with retries -1; a 400 is not tried again.
func TestRetries(t *testing.T) {
	var calls atomic.Int64
	ok := &alignServer{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%3 != 0 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		r.Header.Set("Authorization", "Bearer sekret")
		ok.ServeHTTP(w, r)
	}))
	defer ts.Close()
	mod := newTestModel(t, manifestJSON(ts.URL, ""))
	mod.backoff = time.Millisecond
	if rows, err := mod.Score(batchOf(2, 0)); err != nil || calls.Load() != 3 || rows[1][1] != 2 {
		t.Errorf("with retries: %v, %v after %d calls", rows, err, calls.Load())
	}
	calls.Store(0)
	none := newTestModel(t, manifestJSON(ts.URL, `, "retries": -1`))
	if _, err := none.Score(batchOf(2, 0)); err == nil || calls.Load() != 1 || !strings.Contains(err.Error(), `HTTP 503: "warming up"`) {
		t.Errorf("retries -1: %v after %d calls", err, calls.Load())
	}
	if _, err := ParseManifest([]byte(manifestJSON(ts.URL, `, "retries": 11`))); err == nil || !strings.Contains(err.Error(), "retries must be in [1, 10]") {
		t.Errorf("retries 11: %v", err)
	}
	// What Marshal writes reads back the same, "none" included (reward calibrate rewrites it).
	data, err := none.Manifest.Marshal()
	if again, err2 := ParseManifest(data); err != nil || err2 != nil || again.Retries != -1 || again.MaxBatch != 8 {
		t.Errorf("marshalled and parsed: %v %v %+v", err, err2, again)
	}
}
