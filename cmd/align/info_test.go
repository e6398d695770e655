// Tests of `align info` flags and output. Run: go test ./cmd/align -run Info
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alignkit/align/internal/ffmpeg"
	"github.com/alignkit/align/kernels"
)

func TestNewCmdInfoFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    InfoOptions
		wantErr string
	}{
		{args: nil, want: InfoOptions{ProbeTime: time.Second}},
		{args: []string{"--json", "--probe-time", "0"}, want: InfoOptions{JSON: true}},
		{args: []string{"--probe_time", "250ms"}, want: InfoOptions{ProbeTime: 250 * time.Millisecond}},
		{args: []string{"--probe-time", "-1s"}, wantErr: "--probe-time must be >= 0"},
		{args: []string{"extra"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		var got *InfoOptions
		root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
		for _, c := range root.Commands() {
			if c.Name() == "info" {
				root.RemoveCommand(c)
			}
		}
		root.AddCommand(newCmdInfo(func(o *InfoOptions) error { got = o; return nil }))
		root.SetArgs(append([]string{"info"}, tt.args...))
		err := root.Execute()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("info %v: err = %v, want it to contain %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("info %v: %v", tt.args, err)
			continue
		}
		if *got != tt.want {
			t.Errorf("info %v: options %+v, want %+v", tt.args, *got, tt.want)
		}
	}
}

func TestInfoJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"info", "--json", "--probe-time", "0"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	var r map[string]any
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("info --json printed invalid JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"version", "go_version", "threads", "backends", "batch_invariant"} {
		if _, ok := r[k]; !ok {
			t.Errorf("info --json lacks %q: %s", k, out.String())
		}
	}
	if r["batch_invariant"] != kernels.BatchInvariant() {
		t.Errorf("batch_invariant %v, the device says %v", r["batch_invariant"], kernels.BatchInvariant())
	}
	if r["cpu_bf16"] != kernels.CPUHasBF16() {
		t.Errorf("cpu_bf16 %v, the CPU says %v", r["cpu_bf16"], kernels.CPUHasBF16())
	}
	// ffmpeg: the one found and its version, or why there is none.
	if bin, err := ffmpeg.Find(); err == nil && !strings.HasPrefix(fmt.Sprint(r["ffmpeg"]), bin+" (") {
		t.Errorf("ffmpeg %q, want %s and its version", r["ffmpeg"], bin)
	} else if err != nil && !strings.HasPrefix(fmt.Sprint(r["ffmpeg"]), "none: ") {
		t.Errorf("ffmpeg %q without one", r["ffmpeg"])
	}
	t.Setenv(ffmpeg.EnvVar, "/no/ffmpeg")
	out.Reset()
	if code := Main([]string{"info", "--json", "--probe-time", "0"}, &out, &errOut); code != exitOK || json.Unmarshal(out.Bytes(), &r) != nil ||
		r["ffmpeg"] != "none: $"+ffmpeg.EnvVar+": stat /no/ffmpeg: no such file or directory (make ffmpeg, or $"+ffmpeg.EnvVar+")" {
		t.Errorf("$%s naming nothing: exit %d, ffmpeg %q", ffmpeg.EnvVar, code, r["ffmpeg"])
	}
	t.Setenv(ffmpeg.EnvVar, "")
	// The BF16 products run the Go GEMM's BF16 kernel even where OpenBLAS multiplies in fp32
	// (make test reruns this package with ALIGN_BLAS=openblas), so they are batch invariant.
	if kernels.CPUHasBF16() {
		out.Reset()
		if code := Main([]string{"info", "--json", "--precision", "bf16", "--probe-time", "0"}, &out, &errOut); code != exitOK {
			t.Fatalf("info --precision bf16: exit %d, stderr %s", code, errOut.String())
		}
		if err := json.Unmarshal(out.Bytes(), &r); err != nil || r["batch_invariant"] != true {
			t.Errorf("info --precision bf16: batch_invariant %v (%v), want true", r["batch_invariant"], err)
		}
	}
}

// info lists the five embedded models with what they are, read from their headers; a
// damaged file is reported, not fatal.
func TestInfoModels(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"info", "--json", "--probe-time", "0"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	var r infoReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"image-base":    "image generator, 32x32, reward slot vq,ta",
		"video-base":    "video generator, 8 frames of 32x32, reward slot vq,ta",
		"reward-image":  "image reward vq,ta, 32x32",
		"reward-latent": "noise-aware latent image reward vq,ta, 32x32",
		"reward-video":  "video reward vq,ta,mq, 8 frames of 32x32",
	}
	if len(r.Models) != len(want) {
		t.Fatalf("%d models, want %d: %+v", len(r.Models), len(want), r.Models)
	}
	for _, m := range r.Models {
		if m.What != want[m.Name] || m.Error != "" || m.Parameters < 1e6 || m.Bytes < m.Parameters || m.Selects == "" {
			t.Errorf("%+v, want %q", m, want[m.Name])
		}
	}
	if m := describeModel("broken", []byte("not a model")); m.Error == "" || !strings.Contains(m.Error, "broken") {
		t.Errorf("broken file: %+v", m)
	}
}

func TestMainExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"--version"}, exitOK},
		{[]string{"no-such-command"}, exitUsage},
		{[]string{"info", "--no-such-flag"}, exitUsage},
	} {
		var out, errOut bytes.Buffer
		if code := Main(tt.args, &out, &errOut); code != tt.code {
			t.Errorf("align %v: exit %d, want %d (stderr %q)", tt.args, code, tt.code, errOut.String())
		}
	}
}
