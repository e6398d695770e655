// align info: what this build and machine offer (backends, BLAS, threads, GEMM speed, the
// embedded default models).
package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/alignkit/align/internal/ffmpeg"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards/onnx"
	"github.com/spf13/cobra"
)

// InfoOptions are the flags of `align info`.
type InfoOptions struct {
	JSON      bool
	ProbeTime time.Duration
}

// infoReport is what `align info --json` prints.
type infoReport struct {
	Version    string   `json:"version"`
	GoVersion  string   `json:"go_version"`
	OS         string   `json:"os"`
	Arch       string   `json:"arch"`
	CPUs       int      `json:"cpus"`
	Threads    int      `json:"threads"`
	Backends   []string `json:"backends"`
	Device     string   `json:"device"`
	DeviceInfo string   `json:"device_info,omitempty"`
	BLAS       blasJSON `json:"blas"`
	GEMM       string   `json:"gemm_kernel"`
	// BatchInvariant: the CPU device's results for a sample do not depend on the batch it is
	// computed in or on the number of threads (kernels.BatchInvariant: the Go GEMM multiplies).
	BatchInvariant bool `json:"batch_invariant"`
	// CPUBF16: the CPU can multiply in BF16 (--precision bf16 on the CPU: AVX512_BF16).
	CPUBF16     bool   `json:"cpu_bf16"`
	ONNXRuntime string `json:"onnxruntime"`
	FFmpeg      string `json:"ffmpeg"` // the ffmpeg that reads video files, or why there is none
	// GemmGFLOPs is the CPU device's Gemm rate at 1024^3 over --probe-time (0 when skipped).
	GemmGFLOPs float64         `json:"gemm_gflops"`
	Models     []embeddedModel `json:"models"`
}

type blasJSON struct {
	Used         bool   `json:"used"`
	Library      string `json:"library,omitempty"`
	CoreName     string `json:"core,omitempty"`
	CoreType     string `json:"coretype,omitempty"`
	CoreTypeFrom string `json:"coretype_from,omitempty"`
	Threads      int    `json:"threads,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

func newCmdInfo(runF func(*InfoOptions) error) *cobra.Command {
	opts := &InfoOptions{}
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show backends, BLAS library, threads, a GEMM speed probe and the embedded models",
		Example: `  $ align info
  $ align info --json
  $ align info --device cuda        # needs a binary built with -tags cuda
  $ ALIGN_BLAS=go align info        # force the Go GEMM
  $ ALIGN_BLAS=openblas align info  # force OpenBLAS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.ProbeTime < 0 {
				return flagErrorf("--probe-time must be >= 0, got %v", opts.ProbeTime)
			}
			if runF != nil {
				return runF(opts)
			}
			return infoRun(cmd, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the report as JSON")
	cmd.Flags().DurationVar(&opts.ProbeTime, "probe-time", time.Second, "how long to run the GEMM probe (0 skips it)")
	return cmd
}

func infoRun(cmd *cobra.Command, opts *InfoOptions) error {
	r := infoReport{
		Version:   version,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		CPUs:      runtime.NumCPU(),
		Threads:   runtime.GOMAXPROCS(0),
		Backends:  kernels.DeviceNames(),
		Models:    embeddedModels(),
	}
	dev, err := deviceFromCmd(cmd)
	if err != nil {
		return err
	}
	r.Device = dev.Name()
	if d, ok := dev.(kernels.Describer); ok {
		r.DeviceInfo = d.Describe()
	}
	_ = onnx.Init("") // loading takes ~25 ms and lets the report give the version; failures are in RuntimeInfo
	r.ONNXRuntime = onnx.RuntimeInfo()
	r.FFmpeg = ffmpeg.Describe()
	bi := kernels.LoadBLAS()
	r.BLAS = blasJSON(bi)
	r.GEMM = kernels.GoGemmKernel()
	// The BF16 products always run the Go GEMM's kernel, so they are invariant even where
	// OpenBLAS would multiply in fp32.
	cpu, onCPU := dev.(*kernels.CPU)
	r.BatchInvariant = kernels.BatchInvariant() || (onCPU && cpu.GemmBF16())
	r.CPUBF16 = kernels.CPUHasBF16()
	if opts.ProbeTime > 0 {
		r.GemmGFLOPs = kernels.GemmProbe(dev, opts.ProbeTime)
	}
	out := cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "align\t%s\n", r.Version)
	fmt.Fprintf(w, "go\t%s %s/%s\n", r.GoVersion, r.OS, r.Arch)
	fmt.Fprintf(w, "cpus\t%d (threads %d)\n", r.CPUs, r.Threads)
	fmt.Fprintf(w, "devices\t%v\n", r.Backends)
	fmt.Fprintf(w, "device\t%s\n", r.Device)
	if r.DeviceInfo != "" {
		fmt.Fprintf(w, "device info\t%s\n", r.DeviceInfo)
	}
	fmt.Fprintf(w, "blas\t%s\n", bi)
	fmt.Fprintf(w, "go gemm kernel\t%s\n", r.GEMM)
	if r.BatchInvariant {
		fmt.Fprintf(w, "batch invariant\tyes: on the CPU a sample's numbers do not depend on its batch or the thread count\n")
	} else {
		fmt.Fprintf(w, "batch invariant\tno: OpenBLAS multiplies, so a sample's last bits depend on its batch and the thread count (ALIGN_BLAS=go)\n")
	}
	if r.CPUBF16 {
		fmt.Fprintf(w, "cpu bf16\tyes: --precision bf16 multiplies with AVX512_BF16\n")
	} else {
		fmt.Fprintf(w, "cpu bf16\tno: this CPU has no AVX512_BF16, --precision bf16 needs a CUDA device\n")
	}
	fmt.Fprintf(w, "onnxruntime\t%s\n", r.ONNXRuntime)
	fmt.Fprintf(w, "ffmpeg\t%s\n", r.FFmpeg)
	if opts.ProbeTime > 0 {
		fmt.Fprintf(w, "gemm probe\t%.1f GFLOP/s on %s (1024^3, %v)\n", r.GemmGFLOPs, r.Device, opts.ProbeTime)
	}
	for _, m := range r.Models {
		if m.Error != "" {
			fmt.Fprintf(w, "model %s\tnot readable: %s\n", m.Name, m.Error)
			continue
		}
		fmt.Fprintf(w, "model %s\t%s; %s parameters, %s, %s; %s\n", m.Name, m.What, fmtCount(m.Parameters), m.DType,
			formatBytes(int64(m.Bytes)), m.Selects)
	}
	return w.Flush()
}
