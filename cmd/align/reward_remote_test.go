package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/internal/ffmpeg"
	"github.com/alignkit/align/internal/testvideo"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/scoring"
)

// meanLevelServer answers align's remote reward protocol: vq is the mean level (0-255) of a
// sample's pixels, ta the length of its prompt; it keeps every vq it gave.
type meanLevelServer struct {
	mu  sync.Mutex
	vqs []float64
}

func (s *meanLevelServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Samples []struct {
			Prompt string   `json:"prompt"`
			Frames []string `json:"frames"`
		} `json:"samples"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var scores []map[string]float64
	for _, smp := range req.Samples {
		sum, n := 0.0, 0
		for _, f := range smp.Frames {
			b, _ := base64.StdEncoding.DecodeString(f)
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			for y := range img.Bounds().Dy() {
				for x := range img.Bounds().Dx() {
					r, g, b, _ := img.At(x, y).RGBA()
					sum += float64(r>>8+g>>8+b>>8) / 3
					n++
				}
			}
		}
		s.mu.Lock()
		s.vqs = append(s.vqs, sum/float64(n))
		s.mu.Unlock()
		scores = append(scores, map[string]float64{"vq": sum / float64(n), "ta": float64(len(smp.Prompt))})
	}
	json.NewEncoder(w).Encode(map[string]any{"scores": scores})
}

// A remote reward model (a manifest naming a server) in align score, best-of-N sampling,
// reward calibrate and reward eval --preferences; refused for Flow-NRG (no gradient).
func TestRemoteReward(t *testing.T) {
	srv := &meanLevelServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir := t.TempDir()
	manifest := filepath.Join(dir, "remote.json")
	os.WriteFile(manifest, []byte(`{"format": "align.remote-reward", "version": 1, "url": "`+ts.URL+`/score",
		"dims": ["vq", "ta"], "image": {"size": 32, "resize": "stretch", "filter": "box"}, "max_batch": 3}`), 0o644)

	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	for i := range 5 {
		writeTestPNG(t, filepath.Join(in, fmt.Sprintf("%d-red-apple.png", i)), 32, 32, uint64(i))
	}
	rows := scoreJSONL(t, in, "--reward", manifest)
	// The server's numbers (float32) as raw scores, and as z-scores without a calibration;
	// each input's own mean level (the batches answer in any order).
	for i, r := range rows {
		vq, vqz := r["vq"].(float64), r["vq_z"].(float64)
		if r["ta"] != float64(len("red apple")) || math.Abs(vq-meanLevel(t, r["path"].(string))) > 1e-4 || math.Abs(vqz-vq) > 1e-4 {
			t.Errorf("row %d: %v", i, r)
		}
	}

	if code, _, stderr := runAlign(t, "score", in, "--reward", manifest, "--manifest", manifest); code != exitUsage ||
		!strings.Contains(stderr, "is a remote model's manifest itself") {
		t.Errorf("--manifest with a remote model: exit %d, %s", code, stderr)
	}

	// Best-of-3 keeps the candidate the server gave the highest vq.
	srv.vqs = nil
	out := filepath.Join(dir, "bon")
	code, stdout, stderr := runAlign(t, "sample", "--prompt", "red apple", "--best-of-n", "3", "--reward", manifest, "--reward-weights", "vq=1,ta=0",
		"--num-inference-steps", "2", "-o", out, "--json")
	var rep sampleReport
	if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil {
		t.Fatalf("best-of-3: exit %d, %s%s", code, stdout, stderr)
	}
	if len(srv.vqs) != 3 || math.Abs(rep.Files[0].Rewards["vq"]-slices.Max(srv.vqs)) > 1e-4 {
		t.Errorf("best-of-3 kept vq %v of the server's %v", rep.Files[0].Rewards, srv.vqs)
	}
	if code, _, stderr := runAlign(t, "sample", "--prompt", "red apple", "--reward", manifest, "--reward-guidance-scale", "10", "-o", out); code == exitOK ||
		!strings.Contains(stderr, "score-only (it gives no gradient)") {
		t.Errorf("Flow-NRG with a remote model: exit %d, %s", code, stderr)
	}

	// reward calibrate writes a manifest with the statistics of the inputs' scores.
	cal := filepath.Join(dir, "cal.json")
	if code, _, stderr := runAlign(t, "reward", "calibrate", in, "--reward", manifest, "-o", cal); code != exitOK {
		t.Fatalf("calibrate: exit %d, %s", code, stderr)
	}
	if mean, std, n := columnStats(scoreJSONL(t, in, "--reward", cal), "vq_z"); n != 5 || math.Abs(mean) > 1e-6 || math.Abs(std-1) > 1e-6 {
		t.Errorf("calibrated z-scores: mean %v, std %v over %d", mean, std, n)
	}
	if code, _, stderr := runAlign(t, "reward", "calibrate", in, "--reward", manifest, "-o", filepath.Join(dir, "cal.onnx")); code != exitUsage ||
		!strings.Contains(stderr, "a remote model's calibration lives in its manifest") {
		t.Errorf("calibrate to .onnx: exit %d, %s", code, stderr)
	}

	// reward eval --preferences: the agreement is that of the server's numbers.
	pairs := writePreferenceFile(t, filepath.Join(dir, "p"), 12)
	code, stdout, stderr = runAlign(t, "reward", "eval", "--model", manifest, "--preferences", pairs, "--json")
	var ev rewards.EvalReport
	if code != exitOK || json.Unmarshal([]byte(stdout), &ev) != nil || ev.Pairs != 24 {
		t.Errorf("reward eval: exit %d, %s%s", code, stdout, stderr)
	}
}

// meanLevel is the mean of an image's R, G and B levels (0-255) as align reads it (over white).
func meanLevel(t *testing.T, path string) float64 {
	t.Helper()
	img, err := scoring.LoadImage(path)
	if err != nil {
		t.Fatal(err)
	}
	chw, _, _ := scoring.ToCHW(img)
	sum := 0.0
	for _, v := range chw {
		sum += math.Round((float64(v) + 1) * 127.5)
	}
	return sum / float64(len(chw))
}

// The example server of scripts/remote_reward (Python, standard library) answers the
// protocol as align speaks it: its warmth of each input is mean(R - B)/255 of the pixels
// align sends.
func TestRemoteExampleServer(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but no python3")
		}
		t.Skip("no python3")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := exec.Command(python, filepath.Join("..", "..", "scripts", "remote_reward", "server.py"), "--port", fmt.Sprint(port))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for i := 0; ; i++ { // until it listens
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		} else if i == 100 {
			t.Fatalf("the example server does not listen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	example, err := os.ReadFile(filepath.Join("..", "..", "scripts", "remote_reward", "example.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	manifest := filepath.Join(dir, "example.json")
	os.WriteFile(manifest, bytes.Replace(example, []byte("http://127.0.0.1:8000/"), []byte(url), 1), 0o644)
	for i := range 3 {
		writeTestPNG(t, filepath.Join(dir, fmt.Sprintf("%d-red-apple.png", i)), 32, 32, uint64(i))
	}
	for _, r := range scoreJSONL(t, filepath.Join(dir, "*.png"), "--reward", manifest) {
		img, err := scoring.LoadImage(r["path"].(string))
		if err != nil {
			t.Fatal(err)
		}
		chw, H, W := scoring.ToCHW(img)
		sum := 0.0
		for i := range H * W {
			sum += math.Round((float64(chw[i])+1)*127.5) - math.Round((float64(chw[2*H*W+i])+1)*127.5)
		}
		if want := sum / 255 / float64(H*W); math.Abs(r["warmth"].(float64)-want) > 1e-6 {
			t.Errorf("%s: warmth %v, want %v", r["path"], r["warmth"], want)
		}
	}
}

// A chat judge that takes clips as videos (chat.clip video): align score sends each clip as
// an MP4 at the --fps its frames were sampled at, and best-of-N sampling of the video
// generator (--model default-video, which says --video) at the rate its clips are written
// at; frames spread over a clip have no rate, and without chat.fps the judge refuses them.
// The server answers the milliseconds between the first two frames of the MP4 it got (vq)
// and their count (ta).
func TestRemoteChatVideo(t *testing.T) {
	bin := testvideo.Require(t)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []struct {
				Content []struct {
					VideoURL map[string]string `json:"video_url"`
				} `json:"content"`
			} `json:"messages"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		data, _ := strings.CutPrefix(req.Messages[0].Content[0].VideoURL["url"], "data:video/mp4;base64,")
		raw, err := base64.StdEncoding.DecodeString(data)
		path := filepath.Join(t.TempDir(), "clip.mp4")
		os.WriteFile(path, raw, 0o644)
		timing, err2 := ffmpeg.Probe(bin, path)
		if err != nil || err2 != nil {
			http.Error(w, fmt.Sprint(err, err2), http.StatusBadRequest)
			return
		}
		reply := fmt.Sprintf("VQ: %.0f TA: %d", 1000*timing.Starts[1], len(timing.Starts))
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"content": reply}}}})
	}))
	defer ts.Close()
	dir := t.TempDir()
	judge := filepath.Join(dir, "judge.json")
	os.WriteFile(judge, []byte(`{"format": "align.remote-reward", "version": 1, "url": "`+ts.URL+`", "protocol": "openai-chat",
		"dims": ["vq", "ta"], "image": {"size": 32, "resize": "stretch", "filter": "box", "frames": 8},
		"chat": {"model": "judge", "prompt": "Rate {prompt}", "clip": "video", "scores": {"vq": "VQ: ([0-9]+)", "ta": "TA: ([0-9]+)"}}}`), 0o644)
	in := filepath.Join(dir, "clips")
	os.Mkdir(in, 0o755)
	writeTestGIF(t, filepath.Join(in, "a-red-apple.gif"), 20, 10)

	if rows := scoreJSONL(t, in, "--reward", judge, "--fps", "4"); len(rows) != 1 || rows[0]["vq"] != 250.0 || rows[0]["ta"] != 8.0 {
		t.Errorf("clips at 4 fps: %v", rows)
	}
	if code, _, stderr := runAlign(t, "score", in, "--reward", judge); code != exitError || !strings.Contains(stderr, "give chat.fps in the manifest") {
		t.Errorf("frames spread over the clip: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := runAlign(t, "sample", "--model", "default-video", "--prompt", "red apple", "--best-of-n", "2", "--reward", judge,
		"--num-inference-steps", "2", "-o", filepath.Join(dir, "bon"), "--json")
	var rep sampleReport
	if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil || rep.Files[0].Rewards["vq"] != 120 || rep.Files[0].Rewards["ta"] != 8 {
		t.Errorf("best-of-2 of generated clips: exit %d, %s%s", code, stdout, stderr)
	}
}

// align pairs with a remote model draws the next prompt's candidates while the server scores
// the last prompt's: the server, asked for the first prompt's scores, finds the second's
// files written before it answers. The pairs are still chosen by the server's scores.
func TestRemotePairsScoreAhead(t *testing.T) {
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	srv := &meanLevelServer{}
	var mu sync.Mutex
	sawAhead := false
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if bytes.Contains(body, []byte(`"red apple"`)) { // the first prompt: wait for the second's candidates
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if m, _ := filepath.Glob(filepath.Join(images, "000001-01-*")); len(m) > 0 {
					mu.Lock()
					sawAhead = true
					mu.Unlock()
					break
				}
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	manifest := filepath.Join(dir, "remote.json")
	os.WriteFile(manifest, []byte(`{"format": "align.remote-reward", "version": 1, "url": "`+ts.URL+`/score",
		"dims": ["vq", "ta"], "image": {"size": 32, "resize": "stretch", "filter": "box"}}`), 0o644)
	out := filepath.Join(dir, "pairs.jsonl")
	if code, _, stderr := runAlign(t, "pairs", "--prompt", "red apple", "--prompt", "blue car", "--reward", manifest, "--weights", "vq=1,ta=0",
		"--num-candidates", "2", "--num-inference-steps", "2", "--seed", "4", "--images-dir", images, "-o", out); code != exitOK {
		t.Fatalf("pairs: exit %d, %s", code, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if !sawAhead {
		t.Error("the second prompt's candidates were drawn only after the first prompt's were scored")
	}
	set, err := dpo.ReadPairs(out, dpo.PairOptions{})
	if err != nil || len(set.Pairs) != 2 {
		t.Fatalf("pairs: %v, %+v", err, set)
	}
	for _, p := range set.Pairs {
		if meanLevel(t, p.Chosen) <= meanLevel(t, p.Rejected) {
			t.Errorf("%q: chose %s (level %.2f) over %s (%.2f)", p.Prompt, p.Chosen, meanLevel(t, p.Chosen), p.Rejected, meanLevel(t, p.Rejected))
		}
	}
}
