// Tests of align score and align export onnx: flags, --reward default without an embedded
// model, a folder of images of several sizes with an unreadable file (error row; --strict
// fails; nothing written), shards that concatenate to the whole run, JSONL lists with
// prompts, clips from GIFs and folders of frames at an explicit fps, a noise-aware latent
// model scoring at t = 0, and (with ONNX Runtime) export + scoring through ONNX matching the
// native scores.
//
// Test: go test ./cmd/align -run 'Score|Export'
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/internal/testvideo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
)

// writeRewardModel saves a small random native reward model (image: 8x8, video: 4 frames).
func writeRewardModel(t *testing.T, dir, kind string) string {
	t.Helper()
	tok, err := diffusion.BuildTokenizer([]string{"red apple", "green apple", "a dog moving left", "blue car"}, 1, 6)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rewards.NativeConfig{Kind: kind, ImageSize: 8, Channels: 3, Frames: 1, PatchSize: 4, TubeletFrames: 1,
		Width: 16, VisionLayers: 1, JointLayers: 1, Heads: 2, MLPRatio: 2, Dims: []string{rewards.DimVQ, rewards.DimTA}}
	if kind == rewards.KindVideo {
		cfg.Frames, cfg.TubeletFrames, cfg.Dims = 4, 2, []string{rewards.DimVQ, rewards.DimTA, rewards.DimMQ}
	}
	dev := kernels.NewCPU(1)
	m, err := rewards.NewNative(dev, &kernels.RNG{Seed: 5}, cfg, tok)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range m.Params() {
		if strings.HasPrefix(p.Name, "heads.") {
			v := make([]float32, p.W.Len())
			for i := range v {
				v[i] = float32(r.NormFloat64())
			}
			dev.CopyFromHost(p.W, v)
		}
	}
	m.Calib = &rewards.Calibration{Dims: m.Dims(), Mean: make([]float64, len(cfg.Dims)), Std: make([]float64, len(cfg.Dims)), N: 4}
	for d := range m.Calib.Std {
		m.Calib.Mean[d], m.Calib.Std[d] = 0.05, 0.5
	}
	path := filepath.Join(dir, kind+"-reward.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeTestPNG(t *testing.T, path string, w, h int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTestGIF(t *testing.T, path string, frames, delay int) {
	t.Helper()
	g := &gif.GIF{}
	pal := color.Palette{color.White, color.Black, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	for k := range frames {
		p := image.NewPaletted(image.Rect(0, 0, 12, 10), pal)
		for i := range p.Pix {
			p.Pix[i] = uint8((i + k) % 4)
		}
		g.Image, g.Delay = append(g.Image, p), append(g.Delay, delay)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := gif.EncodeAll(f, g); err != nil {
		t.Fatal(err)
	}
}

func runAlign(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestScoreFlags(t *testing.T) {
	cases := []struct {
		args []string
		ok   bool
		want string // format, or part of the error
	}{
		{[]string{"x/"}, true, formatTable},
		{[]string{"x/", "-o", "s.csv"}, true, formatCSV},
		{[]string{"x/", "-o", "s.jsonl"}, true, formatJSONL},
		{[]string{"x/", "--json"}, true, formatJSONL},
		{[]string{"-i", "x/", "--format", "csv"}, true, formatCSV},
		{[]string{}, false, "no inputs"},
		{[]string{"x/", "--json", "--format", "csv"}, false, "contradict"},
		{[]string{"x/", "--format", "xml"}, false, "--format"},
		{[]string{"x/", "--combine", "max"}, false, "--combine"},
		{[]string{"x/", "--shard", "4/4"}, false, "0 <= i < n"},
		{[]string{"x/", "--shard", "a"}, false, "i/n"},
		{[]string{"x/", "--batch-size", "0"}, false, "--batch-size"},
		{[]string{"x/", "--fps", "-1"}, false, "--fps"},
	}
	for _, c := range cases {
		var got *ScoreOptions
		cmd := newCmdScore(func(o *ScoreOptions) error { got = o; return nil })
		cmd.SetArgs(c.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if c.ok {
			if err != nil || got == nil || got.Format != c.want {
				t.Errorf("%v: err %v, options %+v, want format %s", c.args, err, got, c.want)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want one containing %q", c.args, err, c.want)
		}
	}
}

func TestScoreDefaultRewardMissing(t *testing.T) {
	saved, savedVideo := defaultRewardModel, defaultVideoRewardModel
	defaultRewardModel, defaultVideoRewardModel = nil, nil
	defer func() { defaultRewardModel, defaultVideoRewardModel = saved, savedVideo }()
	dir := t.TempDir()
	writeTestPNG(t, filepath.Join(dir, "a.png"), 8, 8, 1)
	code, _, stderr := runAlign(t, "score", dir)
	if code != exitError || !strings.Contains(stderr, "no default reward model in this build") || !strings.Contains(stderr, "HINT") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runAlign(t, "score", dir, "--reward", "default-video")
	if code != exitError || !strings.Contains(stderr, "no default video reward model in this build") || !strings.Contains(stderr, "--video") {
		t.Errorf("default-video: exit %d, stderr %q", code, stderr)
	}
	for _, video := range []bool{false, true} {
		if _, err := loadDefaultReward(kernels.NewCPU(1), video); err == nil {
			t.Errorf("loadDefaultReward(video %v) without embedded bytes did not fail", video)
		}
	}
}

func TestScoreDefaultVideoReward(t *testing.T) {
	// --reward default-video scores clips with the embedded video model: three dimensions.
	dir := t.TempDir()
	writeTestGIF(t, filepath.Join(dir, "a-red-apple-moving-left.gif"), 8, 10)
	code, stdout, stderr := runAlign(t, "score", dir, "--reward", "default-video", "--format", "jsonl")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, col := range []string{`"vq"`, `"ta_z"`, `"mq"`, `"mq_z"`, `"prompt":"a red apple moving left"`} {
		if !strings.Contains(stdout, col) {
			t.Errorf("score output lacks %s: %s", col, stdout)
		}
	}
	if !strings.Contains(stdout, `"error":null`) {
		t.Errorf("error row: %s", stdout)
	}
}

// Video files score as the GIF they were made from (lossless, so to the bit) with the
// embedded video model, at fps 0 and at a given fps; a corrupt one is an error row naming
// it; an image model skips them in a folder and names them when given one.
func TestScoreVideoFiles(t *testing.T) {
	bin := testvideo.Require(t)
	dir := t.TempDir()
	gifPath := filepath.Join(dir, "a-red-apple-moving-left.gif")
	writeTestGIF(t, gifPath, 24, 10)
	testvideo.Encode(t, bin, gifPath, filepath.Join(dir, "a-red-apple-moving-left.mp4"))
	for _, fps := range []string{"0", "4"} {
		rows := scoreJSONL(t, dir, "--reward", "default-video", "--fps", fps)
		if len(rows) != 2 || rows[0]["error"] != nil || rows[1]["error"] != nil {
			t.Fatalf("--fps %s: %v", fps, rows)
		}
		for _, col := range []string{"prompt", "num_frames", "fps", "vq", "ta", "mq"} {
			if fmt.Sprint(rows[0][col]) != fmt.Sprint(rows[1][col]) {
				t.Errorf("--fps %s, %s: GIF %v, MP4 %v", fps, col, rows[0][col], rows[1][col])
			}
		}
	}
	corrupt := filepath.Join(dir, "broken.webm")
	os.WriteFile(corrupt, []byte("not a video"), 0o644)
	rows := scoreJSONL(t, dir, "--reward", "default-video")
	if len(rows) != 3 || rows[0]["error"] != nil || fmt.Sprint(rows[2]["error"]) != corrupt+": ffmpeg: Invalid data found when processing input" {
		t.Errorf("corrupt video: %v", rows)
	}
	writeTestPNG(t, filepath.Join(dir, "red-apple.png"), 32, 32, 1)
	if rows := scoreJSONL(t, dir); len(rows) != 2 || rows[0]["error"] != nil || rows[1]["error"] != nil {
		t.Errorf("image model on the folder (the PNG and the GIF's first frame): %v", rows)
	}
	mp4 := filepath.Join(dir, "a-red-apple-moving-left.mp4")
	if code, stdout, stderr := runAlign(t, "score", mp4, "--json"); code != exitError || !strings.Contains(stdout, mp4+" is a video file; this reward model reads images") ||
		!strings.Contains(stderr, "none of the 1 inputs could be scored") {
		t.Errorf("image model on a video file: exit %d, %s%s", code, stdout, stderr)
	}
	os.Remove(gifPath)
	os.Remove(filepath.Join(dir, "red-apple.png"))
	if code, _, stderr := runAlign(t, "score", dir); code != exitUsage || !strings.Contains(stderr, "its video files need a video reward model (e.g. --reward default-video)") {
		t.Errorf("image model on a folder of videos: exit %d, %s", code, stderr)
	}
}

func TestScoreDefaultRewardEmbedded(t *testing.T) {
	dir := t.TempDir()
	writeTestPNG(t, filepath.Join(dir, "red-apple.png"), 32, 32, 1)
	code, stdout, stderr := runAlign(t, "score", dir, "--format", "jsonl")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, col := range []string{`"vq"`, `"ta_z"`, `"total"`, `"prompt":"red apple"`} {
		if !strings.Contains(stdout, col) {
			t.Errorf("score output lacks %s: %s", col, stdout)
		}
	}
}

// TestScoreSampleFolder scores what align sample wrote: one row per sample with the prompt
// as given (the file names keep only letters and digits), and no row for the grid.
func TestScoreSampleFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	const prompt = "a dog's face, smiling"
	code, _, stderr := runAlign(t, "sample", "--prompt", prompt, "--num-images-per-prompt", "2", "--num-inference-steps", "2", "-o", dir)
	if code != exitOK {
		t.Fatalf("sample: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr := runAlign(t, "score", dir, "--format", "jsonl")
	if code != exitOK {
		t.Fatalf("score: exit %d, stderr %q", code, stderr)
	}
	rows := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(rows) != 2 || strings.Contains(stdout, "grid") {
		t.Fatalf("want the 2 samples' rows and no grid: %s", stdout)
	}
	for _, r := range rows {
		var row struct{ Prompt string }
		if err := json.Unmarshal([]byte(r), &row); err != nil || row.Prompt != prompt {
			t.Errorf("row %s: prompt %q (%v), want %q", r, row.Prompt, err, prompt)
		}
	}
}

func TestScoreFolderWithBadFile(t *testing.T) {
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindImage)
	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	writeTestPNG(t, filepath.Join(in, "000-red-apple.png"), 8, 8, 1)
	writeTestPNG(t, filepath.Join(in, "001-blue-car.png"), 30, 17, 2) // resized
	writeTestPNG(t, filepath.Join(in, "002-green-apple.png"), 64, 64, 3)
	os.WriteFile(filepath.Join(in, "003-broken.png"), []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	os.WriteFile(filepath.Join(in, "notes.txt"), []byte("ignored"), 0o644)
	out := filepath.Join(dir, "scores.csv")

	code, _, stderr := runAlign(t, "score", "--input", in, "--reward", model, "--weights", "vq=1,ta=2", "-o", out, "--batch-size", "2")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := readCSV(t, out)
	wantHeader := "index,path,prompt,vq,vq_z,ta,ta_z,total,error"
	if got := strings.Join(recs[0], ","); got != wantHeader {
		t.Fatalf("header %q, want %q", got, wantHeader)
	}
	if len(recs) != 5 {
		t.Fatalf("%d rows, want 4 + header", len(recs)-1)
	}
	for i, rec := range recs[1:] {
		bad := strings.Contains(rec[1], "broken")
		if bad != (rec[8] != "") {
			t.Errorf("row %d: path %s, error %q", i, rec[1], rec[8])
		}
		if bad {
			if !strings.Contains(rec[8], "003-broken.png") || rec[3] != "" || rec[7] != "" {
				t.Errorf("error row %v", rec)
			}
			continue
		}
		vq, _ := strconv.ParseFloat(rec[3], 64)
		vqz, _ := strconv.ParseFloat(rec[4], 64)
		ta, _ := strconv.ParseFloat(rec[5], 64)
		taz, _ := strconv.ParseFloat(rec[6], 64)
		tot, _ := strconv.ParseFloat(rec[7], 64)
		if math.Abs(vqz-(vq-0.05)/0.5) > 1e-5 || math.Abs(taz-(ta-0.05)/0.5) > 1e-5 || math.Abs(tot-(vqz+2*taz)) > 1e-5 {
			t.Errorf("row %v: z-scores or total wrong", rec)
		}
	}
	if recs[1][2] != "red apple" || recs[2][2] != "blue car" {
		t.Errorf("prompts from stems: %q, %q", recs[1][2], recs[2][2])
	}
	if !strings.Contains(stderr, "1 of 4 inputs could not be scored") {
		t.Errorf("stderr lacks the error summary: %s", stderr)
	}

	// --strict stops at the bad file and writes nothing.
	out2 := filepath.Join(dir, "strict.csv")
	code, _, stderr = runAlign(t, "score", in, "--reward", model, "--strict", "-o", out2)
	if code != exitError || !strings.Contains(stderr, "003-broken.png") {
		t.Errorf("--strict: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out2); err == nil {
		t.Error("--strict failure left an output file")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".strict.csv.tmp-*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}

	// Shards concatenate to the whole run.
	var joined [][]string
	for i := range 3 {
		p := filepath.Join(dir, "shard"+strconv.Itoa(i)+".csv")
		if code, _, stderr := runAlign(t, "score", in, "--reward", model, "--weights", "vq=1,ta=2", "--shard", strconv.Itoa(i)+"/3", "-o", p); code != exitOK {
			t.Fatalf("shard %d: %s", i, stderr)
		}
		joined = append(joined, readCSV(t, p)[1:]...)
	}
	if len(joined) != 4 {
		t.Fatalf("shards hold %d rows, want 4", len(joined))
	}
	for i := range joined {
		if strings.Join(joined[i], ",") != strings.Join(recs[i+1], ",") {
			t.Errorf("shard row %d: %v, whole run %v", i, joined[i], recs[i+1])
		}
	}
}

func TestScoreJSONLList(t *testing.T) {
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindImage)
	writeTestPNG(t, filepath.Join(dir, "x.png"), 8, 8, 1)
	writeTestPNG(t, filepath.Join(dir, "y.png"), 8, 8, 2)
	list := filepath.Join(dir, "list.jsonl")
	os.WriteFile(list, []byte(`{"path": "x.png", "prompt": "red apple"}
{"path": "y.png"}
{"path": "missing.png", "prompt": "blue car"}
`), 0o644)
	code, stdout, stderr := runAlign(t, "score", "--input", list, "--reward", model, "--prompt", "a dog", "--json", "--combine", "unit-direction")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), stdout)
	}
	var rows []map[string]any
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		rows = append(rows, r)
	}
	if rows[0]["prompt"] != "red apple" || rows[1]["prompt"] != "a dog" || rows[2]["prompt"] != "blue car" {
		t.Errorf("prompts: %v %v %v", rows[0]["prompt"], rows[1]["prompt"], rows[2]["prompt"])
	}
	if rows[2]["error"] == nil || rows[2]["vq"] != nil || rows[2]["total"] != nil || rows[0]["error"] != nil {
		t.Errorf("error row %v, scored row %v", rows[2], rows[0])
	}
	if _, ok := rows[0]["ta_z"].(float64); !ok {
		t.Errorf("ta_z missing: %v", rows[0])
	}
}

func TestScoreClips(t *testing.T) {
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindVideo)
	in := filepath.Join(dir, "clips")
	os.Mkdir(in, 0o755)
	writeTestGIF(t, filepath.Join(in, "a-red-apple-moving-left.gif"), 6, 10) // 0.6 s
	frames := filepath.Join(in, "blue-car")
	os.Mkdir(frames, 0o755)
	for k := range 5 {
		writeTestPNG(t, filepath.Join(frames, "frame"+strconv.Itoa(k+1)+".png"), 8, 8, uint64(k))
	}
	writeTestPNG(t, filepath.Join(in, "still.png"), 8, 8, 9) // not a clip: skipped in a folder
	out := filepath.Join(dir, "s.csv")
	code, _, stderr := runAlign(t, "score", in, "--reward", model, "--num-frames", "4", "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := readCSV(t, out)
	if got := strings.Join(recs[0], ","); got != "index,path,prompt,num_frames,fps,vq,vq_z,ta,ta_z,mq,mq_z,total,error" {
		t.Fatalf("header %s", got)
	}
	if len(recs) != 3 || recs[1][12] != "" || recs[2][12] != "" || recs[1][3] != "4" {
		t.Fatalf("rows %v", recs)
	}
	// At 10 fps, 4 frames need 0.3 s: the GIF (0.6 s) works, the folder needs its frame rate.
	code, _, stderr = runAlign(t, "score", in, "--reward", model, "--fps", "10", "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs = readCSV(t, out)
	if recs[1][12] != "" || !strings.Contains(recs[2][12], "--source-fps") {
		t.Errorf("fps 10 rows: %v", recs[1:])
	}
	// At 5 fps the GIF is too short (0.6 s < 0.6 s needed); the folder at 25 fps too: the
	// rows are written, and with no input scored the run fails.
	code, _, stderr = runAlign(t, "score", in, "--reward", model, "--fps", "5", "--source-fps", "25", "-o", out)
	recs = readCSV(t, out)
	if code != exitError || !strings.Contains(stderr, "none of the 2 inputs could be scored") ||
		!strings.Contains(recs[1][12], "lower --fps") || !strings.Contains(recs[2][12], "lower --fps") {
		t.Errorf("too-short clips: exit %d, %v", code, recs[1:])
	}
	if code, _, stderr := runAlign(t, "score", in, "--reward", model, "--num-frames", "3"); code != exitUsage {
		t.Errorf("--num-frames 3 for a 4-frame model: exit %d, %s", code, stderr)
	}
}

// writeFrameFolder writes frames first..first+n-1 of a clip whose frame k is seeded k as a
// folder of 8x8 PNGs.
func writeFrameFolder(t *testing.T, dir string, first, n int) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	for k := first; k < first+n; k++ {
		writeTestPNG(t, filepath.Join(dir, fmt.Sprintf("%03d.png", k)), 8, 8, uint64(k))
	}
}

// Windows of clips: --clips-per-video 0 scores every window of 4 frames at 10 fps (2 s of 20
// frames: starts 0, 0.4, ..., 1.6; 0.6 s: one), each as that window alone scores; 2 spread;
// a calibration on the windows; the flags' errors.
func TestScoreWindows(t *testing.T) {
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindVideo)
	in := filepath.Join(dir, "in")
	writeFrameFolder(t, filepath.Join(in, "long-red-apple"), 0, 20)
	writeFrameFolder(t, filepath.Join(in, "short-blue-car"), 0, 6)
	alone := filepath.Join(dir, "window-4", "long-red-apple")
	writeFrameFolder(t, alone, 4, 4)

	clips := []string{"--reward", model, "--fps", "10", "--source-fps", "10"}
	out := filepath.Join(dir, "s.csv")
	code, _, stderr := runAlign(t, append([]string{"score", in, "--clips-per-video", "0", "-o", out}, clips...)...)
	if code != exitOK || !strings.Contains(stderr, "6 windows, 0 errors") || !strings.Contains(stderr, "mean of 6 scored windows") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := readCSV(t, out)
	if got := strings.Join(recs[0], ","); got != "index,path,prompt,num_frames,fps,start,vq,vq_z,ta,ta_z,mq,mq_z,total,error" {
		t.Fatalf("header %s", got)
	}
	var got []string
	for _, r := range recs[1:] {
		got = append(got, r[0]+" "+filepath.Base(r[1])+" "+r[5])
	}
	if want := "0 long-red-apple 0,0 long-red-apple 0.4,0 long-red-apple 0.8,0 long-red-apple 1.2,0 long-red-apple 1.6,1 short-blue-car 0"; strings.Join(got, ",") != want {
		t.Fatalf("rows %s, want %s", strings.Join(got, ","), want)
	}
	single := scoreJSONL(t, append([]string{filepath.Dir(alone)}, clips...)...)
	for _, d := range []string{"vq", "ta", "mq"} {
		w, err := strconv.ParseFloat(recs[2][slices.Index(recs[0], d)], 64)
		if err != nil || math.Abs(w-single[0][d].(float64)) > 1e-5 {
			t.Errorf("%s of the window at 0.4 s: %v, its frames alone %v (%v)", d, w, single[0][d], err)
		}
	}
	rows := scoreJSONL(t, append([]string{in, "--clips-per-video", "2"}, clips...)...)
	if len(rows) != 3 || rows[0]["start"] != 0.0 || rows[1]["start"] != 1.6 || rows[2]["start"] != 0.0 || rows[2]["index"] != 1.0 {
		t.Errorf("--clips-per-video 2: %v", rows)
	}
	// A row per clip: the windows' mean (the 5 rows above for the long clip), their count.
	reduced := scoreJSONL(t, append([]string{in, "--clips-per-video", "0", "--window-reduce", "mean"}, clips...)...)
	if len(reduced) != 2 || reduced[0]["windows"] != 5.0 || reduced[1]["windows"] != 1.0 || reduced[0]["start"] != nil {
		t.Fatalf("--window-reduce mean: %v", reduced)
	}
	for _, d := range []string{"vq", "mq"} {
		col := slices.Index(recs[0], d)
		mean := 0.0
		for _, r := range recs[1:6] {
			v, _ := strconv.ParseFloat(r[col], 64)
			mean += v / 5
		}
		if got := reduced[0][d].(float64); math.Abs(got-mean) > 1e-5 {
			t.Errorf("%s of the long clip reduced: %v, the mean of its windows %v", d, got, mean)
		}
	}
	// The terminal table has the start column too, in its place.
	code, stdout, _ := runAlign(t, append([]string{"score", in, "--clips-per-video", "0"}, clips...)...)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if head, row := strings.Fields(lines[0]), strings.Fields(lines[2]); code != exitOK || len(lines) != 7 || head[5] != "start" || row[5+2] != "0.4" {
		t.Errorf("table (prompt of 3 words):\n%s", stdout)
	}

	cal := filepath.Join(dir, "cal.safetensors")
	if code, _, stderr := runAlign(t, append([]string{"reward", "calibrate", in, "--clips-per-video", "0", "-o", cal}, clips...)...); code != exitOK || !strings.Contains(stderr, "calibrated on 6 samples") {
		t.Errorf("calibrate on windows: exit %d, %s", code, stderr)
	}

	image := writeRewardModel(t, dir, rewards.KindImage)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--reward", model, "--clips-per-video", "2"}, "--clips-per-video 2 cuts windows at --fps"},
		{[]string{"--reward", model, "--clips-per-video", "-1", "--fps", "4"}, "--clips-per-video -1: want 1 or more"},
		{[]string{"--reward", image, "--clips-per-video", "0", "--fps", "4"}, "--clips-per-video 0: " + image + " scores images"},
		{[]string{"--reward", model, "--window-reduce", "mean"}, "--window-reduce joins the windows of a clip: give --clips-per-video"},
		{[]string{"--reward", model, "--clips-per-video", "0", "--fps", "4", "--window-reduce", "median"}, `--window-reduce "median": want one of mean, min, max`},
	} {
		if code, _, stderr := runAlign(t, append([]string{"score", in}, c.args...)...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q does not say %q", c.args, code, stderr, c.want)
		}
	}
}

// requireONNX skips a test where ONNX Runtime cannot be loaded, and fails it under CI=true
// (make test runs make ort first).
func requireONNX(t *testing.T) {
	t.Helper()
	if err := onnx.Init(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but ONNX Runtime cannot be loaded (make test runs make ort): %v", err)
		}
		t.Skipf("ONNX Runtime not available, skipping (run `make ort`): %v", err)
	}
}

// exportONNX exports the native reward model to dir/export/reward.onnx (and its manifest
// reward.json beside it), skipping the test without ONNX Runtime.
func exportONNX(t *testing.T, dir, model string) string {
	t.Helper()
	requireONNX(t)
	out := filepath.Join(dir, "export", "reward.onnx")
	os.MkdirAll(filepath.Dir(out), 0o755)
	if code, _, stderr := runAlign(t, "export", "onnx", "--model", model, "-o", out); code != exitOK {
		t.Fatalf("export onnx: exit %d: %s", code, stderr)
	}
	return out
}

func TestExportAndScoreONNX(t *testing.T) {
	requireONNX(t)
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindImage)
	out := filepath.Join(dir, "export", "reward.onnx")
	os.Mkdir(filepath.Dir(out), 0o755)
	code, stdout, stderr := runAlign(t, "export", "onnx", "--model", model, "-o", out)
	if code != exitOK || !strings.Contains(stderr, "verified") || !strings.Contains(stdout, "reward.json") {
		t.Fatalf("export: exit %d\n%s\n%s", code, stdout, stderr)
	}
	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	for i, sz := range []int{8, 20, 33} {
		writeTestPNG(t, filepath.Join(in, strconv.Itoa(i)+"-red-apple.png"), sz, sz+3, uint64(i))
	}
	a, b := filepath.Join(dir, "native.csv"), filepath.Join(dir, "onnx.csv")
	if code, _, stderr := runAlign(t, "score", in, "--reward", model, "-o", a); code != exitOK {
		t.Fatal(stderr)
	}
	if code, _, stderr := runAlign(t, "score", in, "--reward", out, "-o", b); code != exitOK {
		t.Fatal(stderr)
	}
	ra, rb := readCSV(t, a), readCSV(t, b)
	if strings.Join(ra[0], ",") != strings.Join(rb[0], ",") || len(ra) != len(rb) {
		t.Fatalf("tables differ in shape: %v vs %v", ra, rb)
	}
	for i := 1; i < len(ra); i++ {
		for c := 3; c < len(ra[i])-1; c++ {
			x, _ := strconv.ParseFloat(ra[i][c], 64)
			y, _ := strconv.ParseFloat(rb[i][c], 64)
			if math.Abs(x-y) > 1e-3 {
				t.Errorf("row %d col %s: native %v, onnx %v", i, ra[0][c], x, y)
			}
		}
	}
	// A .onnx without its manifest: a clear error.
	os.Rename(filepath.Join(dir, "export", "reward.json"), filepath.Join(dir, "export", "other.json"))
	code, _, stderr = runAlign(t, "score", in, "--reward", out)
	if code == exitOK || !strings.Contains(stderr, "manifest") {
		t.Errorf("missing manifest: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runAlign(t, "score", in, "--reward", out, "--manifest", filepath.Join(dir, "export", "other.json")); code != exitOK {
		t.Errorf("--manifest: %s", stderr)
	}
}

// An existing non-regular output (a FIFO here; /dev/null or /dev/stdout in use) is written in
// place: the atomic rename must never replace it with a regular file.
func TestScoreOutputToFIFO(t *testing.T) {
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindImage)
	writeTestPNG(t, filepath.Join(dir, "red-apple.png"), 8, 8, 1)
	fifo := filepath.Join(dir, "out.csv")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	code, _, stderr := runAlign(t, "score", filepath.Join(dir, "red-apple.png"), "--reward", model, "-o", fifo)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if out := <-got; !strings.HasPrefix(out, "index,path,prompt,vq") || !strings.Contains(out, "red apple") {
		t.Errorf("FIFO received %q", out)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", st.Mode(), err)
	}
}

// The --reward default path loads embedded bytes (here a saved test model stands in for the
// asset) and scores like the same file given by path.
func TestScoreDefaultRewardFromBytes(t *testing.T) {
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindImage)
	b, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	saved := defaultRewardModel
	defaultRewardModel = b
	defer func() { defaultRewardModel = saved }()
	writeTestPNG(t, filepath.Join(dir, "red-apple.png"), 8, 8, 1)
	_, byDefault, stderr := runAlign(t, "score", filepath.Join(dir, "red-apple.png"), "--format", "csv")
	_, byPath, _ := runAlign(t, "score", filepath.Join(dir, "red-apple.png"), "--format", "csv", "--reward", model)
	if byDefault == "" || byDefault != byPath {
		t.Errorf("default:\n%s\nby path:\n%s\n%s", byDefault, byPath, stderr)
	}
}

// A noise-aware latent reward model scores files as clean samples (t = 0): the same raw
// scores (to the CSV's 8 digits) as its forward on the decoded pixels with no timesteps.
func TestScoreLatentModel(t *testing.T) {
	dir := t.TempDir()
	latent := saveTinyLatent(t, dir, saveTinyModel(t, dir, diffusion.KindImage))
	dev := kernels.NewCPU(1)
	m, err := rewards.LoadLatent(dev, latent)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	const size = 8 // saveTinyModel's sample size
	r := rand.New(rand.NewPCG(3, 4))
	var pix []float32 // (2, 3, 8, 8)
	for _, name := range []string{"000-red-apple.png", "001-blue-car.png"} {
		img := image.NewNRGBA(image.Rect(0, 0, size, size))
		chw := make([]float32, 3*size*size)
		for p := range size * size {
			for c := range 3 {
				v := uint8(r.IntN(256))
				img.Pix[4*p+c] = v
				chw[c*size*size+p] = float32(v)/127.5 - 1
			}
			img.Pix[4*p+3] = 255
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(in, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		pix = append(pix, chw...)
	}
	want, err := m.Score(rewards.Batch{Pixels: dev.FromHost(pix, 2, 3, size, size), Prompts: []string{"red apple", "blue car"}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "scores.csv")
	if code, _, stderr := runAlign(t, "score", in, "--reward", latent, "-o", out); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := readCSV(t, out)
	if got := strings.Join(recs[0], ","); got != "index,path,prompt,vq,vq_z,ta,ta_z,total,error" || len(recs) != 3 {
		t.Fatalf("header %q, %d rows", got, len(recs)-1)
	}
	for i, rec := range recs[1:] {
		for d, col := range []int{3, 5} {
			got, err := strconv.ParseFloat(rec[col], 64)
			if w := float64(want[i][d]); err != nil || math.Abs(got-w) > 1e-6+1e-5*math.Abs(w) {
				t.Errorf("row %d %s: %q, want %.6f", i, recs[0][col], rec[col], want[i][d])
			}
		}
	}
}

// A video reward model trained on clips imported at --fps 5 records the rate, and align score
// warns when it samples clips otherwise (spread over them, or at another --fps), with the
// model or its ONNX export.
func TestScoreWarnsOfSampleFPS(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	for i, w := range []string{"apple", "car", "dog", "rocket", "sun", "moon", "tree", "boat", "house", "fish", "bird", "star", "cup", "key", "hat", "shoe"} {
		sub := filepath.Join(in, []string{"things", "nature"}[i%2]) // two subcategories
		os.MkdirAll(sub, 0o755)
		writeTestGIF(t, filepath.Join(sub, "a-"+w+".gif"), 16, 10) // 1.6 s: 8 frames at 5 fps fit
	}
	data, rw := filepath.Join(dir, "ds"), filepath.Join(dir, "rw")
	if code, _, stderr := runAlign(t, "data", "import", "--video", in, "--fps", "5", "--keep-duplicates", "-o", data); code != exitOK {
		t.Fatalf("import: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runAlign(t, tinyRewardTrainArgs(data, rw, "--video", "--val-percent", "50", "--max-train-steps", "2")...); code != exitOK {
		t.Fatalf("reward train: exit %d, %s", code, stderr)
	}
	model := filepath.Join(rw, "model.safetensors")
	m, err := rewards.LoadNative(kernels.NewCPU(1), model)
	if err != nil || m.Config.SampleFPS != 5 {
		t.Fatalf("the model's sample_fps: %v, %v; want 5", m.Config.SampleFPS, err)
	}
	// Its ONNX export's manifest carries the rate (image.fps) and warns alike.
	exported := exportONNX(t, dir, model)
	for _, reward := range []string{model, exported} {
		for _, c := range []struct {
			args []string
			want string // "" for no warning
		}{
			{nil, "learnt from clips taken at 5 fps; these are sampled spread over each clip (--fps 0)"},
			{[]string{"--fps", "8"}, "learnt from clips taken at 5 fps; these are sampled at --fps 8"},
			{[]string{"--fps", "5"}, ""},
		} {
			code, _, stderr := runAlign(t, append([]string{"score", filepath.Join(in, "things"), "--reward", reward}, c.args...)...)
			if code != exitOK || (c.want == "") != !strings.Contains(stderr, "warning") || !strings.Contains(stderr, c.want) {
				t.Errorf("%s %v: exit %d, %s; want %q", reward, c.args, code, stderr, c.want)
			}
		}
	}
}
