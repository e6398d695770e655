// The --device flag every command inherits from the root: which kernels.Device computes.
// Importing kernels/cuda registers "cuda" (binaries built with -tags cuda) and "cuda-emu"
// (the CUDA kernels emulated on the CPU; slow, for checking kernels without a GPU).
package main

import (
	"fmt"
	"os"

	"github.com/alignkit/align/kernels"
	_ "github.com/alignkit/align/kernels/cuda" // registers the CUDA devices
	"github.com/spf13/cobra"
)

const deviceFlagHelp = "compute device: cpu; cuda (a binary built with -tags cuda, see make build-cuda); cuda-emu (CUDA kernels emulated on the CPU, slow); default $ALIGN_DEVICE, else cpu"

// deviceEnv names the environment variable that sets --device's default, so that a script or
// make target runs every command on one device without passing the flag to each
// (ALIGN_DEVICE=cuda make steering-experiment).
const deviceEnv = "ALIGN_DEVICE"

// addDeviceFlag adds the persistent --device flag to the root command.
func addDeviceFlag(root *cobra.Command) {
	def := os.Getenv(deviceEnv)
	if def == "" {
		def = "cpu"
	}
	root.PersistentFlags().String("device", def, deviceFlagHelp)
}

// deviceFromCmd opens the device named by --device; an unknown name is a usage error that
// lists the available ones.
func deviceFromCmd(cmd *cobra.Command) (kernels.Device, error) {
	name, err := cmd.Flags().GetString("device")
	if err != nil || name == "" {
		name = "cpu"
	}
	dev, err := kernels.Open(name)
	if err != nil {
		if f := cmd.Flags().Lookup("device"); f != nil && !f.Changed && os.Getenv(deviceEnv) != "" {
			err = fmt.Errorf("$%s: %w", deviceEnv, err)
		}
		return nil, usageError{err}
	}
	return dev, nil
}

// deviceWithThreads is deviceFromCmd for commands with a --threads flag: on the CPU device,
// threads > 0 limits the goroutines its operations use.
func deviceWithThreads(cmd *cobra.Command, threads int) (kernels.Device, error) {
	if name, _ := cmd.Flags().GetString("device"); (name == "" || name == "cpu") && threads > 0 {
		return kernels.NewCPU(threads), nil
	}
	return deviceFromCmd(cmd)
}
