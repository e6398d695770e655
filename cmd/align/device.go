// The --device, --precision, --gemm-tuning and --profile flags every command inherits from
// the root: which kernels.Device computes, in what precision a CUDA device multiplies, whether
// its GPU times several product algorithms per shape, and whether its GPU time is reported
// per kernel. Importing
// kernels/cuda registers "cuda" (binaries built with -tags cuda) and "cuda-emu" (the CUDA
// kernels emulated on the CPU; slow, for checking kernels without a GPU).
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/kernels/cuda" // registers the CUDA devices
	"github.com/alignkit/align/nn"
	"github.com/spf13/cobra"
)

const deviceFlagHelp = "compute device: cpu; cuda (a binary built with -tags cuda, see make build-cuda); cuda-emu (CUDA kernels emulated on the CPU, slow); default $ALIGN_DEVICE, else cpu"

// deviceEnv names the environment variable that sets --device's default, so that a script or
// make target runs every command on one device without passing the flag to each
// (ALIGN_DEVICE=cuda make steering-experiment).
const deviceEnv = "ALIGN_DEVICE"

const precisionFlagHelp = "matrix products' inputs: fp32 (the default numbers), tf32 (CUDA tensor cores, inputs rounded to 11 significant bits) or bf16 (8 bits, FP32 sums: CUDA tensor cores, which also keep some activations in BF16, or a CPU with AVX512_BF16, 1.5-2x the CPU's fp32 products); default $ALIGN_PRECISION, else fp32"

// precisionEnv names the environment variable that sets --precision's default.
const precisionEnv = "ALIGN_PRECISION"

const gemmTuningFlagHelp = "on a CUDA GPU, time up to `N` of cuBLASLt's algorithms for each new shape of matrix product and keep the fastest (0: cuBLASLt's first choice); faster products where the first choice is not the best, but the choice follows timings, so two runs may differ in the last bits; default $ALIGN_GEMM_TUNING, else 0"

// gemmTuningEnv names the environment variable that sets --gemm-tuning's default.
const gemmTuningEnv = "ALIGN_GEMM_TUNING"

const profileFlagHelp = "on a CUDA device, write where the GPU's time went to stderr when the command ends: each kernel and matrix product timed in the stream by events (launch gaps included, so the times add up to the run's), the largest first, then the totals by kind of work"

// profiles collects the profilers of the devices a command opened with --profile, for Main
// to report when the command ends; it travels in the command's context.
type profiles struct {
	names []string
	profs []*cuda.Profiler
}

type profilesKey struct{}

// profileRows is how many operations a --profile report lists before summing the rest.
const profileRows = 30

// report writes each profile to w.
func (ps *profiles) report(w io.Writer) {
	for i, p := range ps.profs {
		fmt.Fprintf(w, "profile of %s (--profile):\n", ps.names[i])
		if err := p.Report(w, profileRows); err != nil {
			fmt.Fprintf(w, "align: --profile: %v\n", err)
		}
	}
}

// applyProfile starts dev's profile where --profile is set: a CUDA device's only.
func applyProfile(cmd *cobra.Command, dev kernels.Device) error {
	on, err := cmd.Flags().GetBool("profile")
	if err != nil || !on {
		return nil
	}
	d, ok := dev.(*cuda.Device)
	if !ok {
		return usageError{fmt.Errorf("--profile times a CUDA device's kernels (--device cuda or cuda-emu); %s has none", dev.Name())}
	}
	ps, ok := cmd.Context().Value(profilesKey{}).(*profiles)
	if !ok {
		return fmt.Errorf("--profile: no report for this command")
	}
	p, err := d.Profile()
	if err != nil {
		return fmt.Errorf("--profile: %w", err)
	}
	ps.names, ps.profs = append(ps.names, d.Name()), append(ps.profs, p)
	return nil
}

// addDeviceFlag adds the persistent --device, --precision, --gemm-tuning and --profile flags
// to the root command.
func addDeviceFlag(root *cobra.Command) {
	def := os.Getenv(deviceEnv)
	if def == "" {
		def = "cpu"
	}
	root.PersistentFlags().String("device", def, deviceFlagHelp)
	prec := os.Getenv(precisionEnv)
	if prec == "" {
		prec = "fp32"
	}
	root.PersistentFlags().String("precision", prec, precisionFlagHelp)
	// An unparsable $ALIGN_GEMM_TUNING is kept as the flag's text and refused by
	// applyGemmTuning, which names the variable.
	tuning := os.Getenv(gemmTuningEnv)
	if tuning == "" {
		tuning = "0"
	}
	root.PersistentFlags().String("gemm-tuning", tuning, gemmTuningFlagHelp)
	root.PersistentFlags().Bool("profile", false, profileFlagHelp)
}

// fromEnv names the variable behind a usage error in a flag that was not given, whose
// default came from the environment variable env.
func fromEnv(cmd *cobra.Command, flag, env string, err error) error {
	if f := cmd.Flags().Lookup(flag); f != nil && !f.Changed && os.Getenv(env) != "" {
		return fmt.Errorf("$%s: %w", env, err)
	}
	return err
}

// applyPrecision sets --precision on dev: a CUDA device takes any, the CPU device fp32 and,
// where the CPU has AVX512_BF16, bf16.
func applyPrecision(cmd *cobra.Command, dev kernels.Device) error {
	name, err := cmd.Flags().GetString("precision")
	if err != nil || name == "" {
		name = "fp32"
	}
	p, err := cuda.ParseGemmPrecision(name)
	if err != nil {
		return usageError{fromEnv(cmd, "precision", precisionEnv, fmt.Errorf("--precision: %w", err))}
	}
	if d, ok := dev.(*cuda.Device); ok {
		d.SetGemmPrecision(p)
		return nil
	}
	if d, ok := dev.(*kernels.CPU); ok && p != cuda.GemmTF32 {
		if err := d.SetGemmBF16(p == cuda.GemmBF16); err != nil {
			return usageError{fromEnv(cmd, "precision", precisionEnv, fmt.Errorf("--precision %s on the CPU: %w", name, err))}
		}
		return nil
	}
	if p != cuda.GemmFP32 {
		return usageError{fromEnv(cmd, "precision", precisionEnv,
			fmt.Errorf("--precision %s needs a CUDA device (--device cuda or cuda-emu); %s computes in fp32 or bf16", name, dev.Name()))}
	}
	return nil
}

// applyGemmTuning sets --gemm-tuning on dev: a CUDA device on the GPU's driver only (the
// emulation multiplies with one algorithm, the CPU has its own GEMM).
func applyGemmTuning(cmd *cobra.Command, dev kernels.Device) error {
	text, err := cmd.Flags().GetString("gemm-tuning")
	if err != nil || text == "" {
		text = "0"
	}
	n, err := strconv.Atoi(text)
	if err != nil || n < 0 {
		return usageError{fromEnv(cmd, "gemm-tuning", gemmTuningEnv,
			fmt.Errorf("--gemm-tuning %q: want a number of algorithms, 0 or more", text))}
	}
	if n == 0 {
		return nil
	}
	if d, ok := dev.(*cuda.Device); ok && d.SetGemmTuning(n) {
		return nil
	}
	return usageError{fromEnv(cmd, "gemm-tuning", gemmTuningEnv,
		fmt.Errorf("--gemm-tuning %d times cuBLASLt's algorithms on a GPU (--device cuda); %s has none to choose from", n, dev.Name()))}
}

// deviceFromCmd opens the device named by --device in --precision; an unknown name is a
// usage error that lists the available ones.
func deviceFromCmd(cmd *cobra.Command) (kernels.Device, error) {
	name, err := cmd.Flags().GetString("device")
	if err != nil || name == "" {
		name = "cpu"
	}
	dev, err := kernels.Open(name)
	if err != nil {
		return nil, usageError{fromEnv(cmd, "device", deviceEnv, err)}
	}
	if err := applyPrecision(cmd, dev); err != nil {
		return nil, err
	}
	if err := applyGemmTuning(cmd, dev); err != nil {
		return nil, err
	}
	if err := applyProfile(cmd, dev); err != nil {
		return nil, err
	}
	return dev, nil
}

// deviceWithThreads is deviceFromCmd for commands with a --threads flag: on the CPU device,
// threads > 0 limits the goroutines its operations use.
func deviceWithThreads(cmd *cobra.Command, threads int) (kernels.Device, error) {
	if name, _ := cmd.Flags().GetString("device"); (name == "" || name == "cpu") && threads > 0 {
		dev := kernels.NewCPU(threads)
		if err := applyPrecision(cmd, dev); err != nil {
			return nil, err
		}
		if err := applyGemmTuning(cmd, dev); err != nil {
			return nil, err
		}
		if err := applyProfile(cmd, dev); err != nil {
			return nil, err
		}
		return dev, nil
	}
	return deviceFromCmd(cmd)
}

// warnComputeChange warns on w where checkpoint was written by a run on another device or in
// another precision than dev's: the run continues, but without the bits of one uninterrupted
// run. A checkpoint without the record (written before checkpoints kept it) gives nothing.
func warnComputeChange(w io.Writer, checkpoint *nn.Checkpoint, dev kernels.Device) {
	was, now := checkpoint.Compute, nn.ComputeOf(dev)
	if was == (nn.Compute{}) || was == now {
		return
	}
	fmt.Fprintf(w, "align: warning: the run of %s computed on %s in %s, this one on %s in %s: it continues, "+
		"but its numbers will differ from one run on a single device and precision\n",
		filepath.Base(checkpoint.Path), was.Device, was.Precision, now.Device, now.Precision)
}
