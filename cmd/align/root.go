// The root command: global flags, the command tree and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes, as in cli/cli: 0 ok, 1 error, 2 cancelled (SIGINT), 3 bad flags or input.
const (
	exitOK     = 0
	exitError  = 1
	exitCancel = 2
	exitUsage  = 3
)

// errCancelled is returned by long commands that stopped cleanly on SIGINT.
var errCancelled = errors.New("cancelled")

// usageError marks an error in the flags or arguments; the root prints usage hints for it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// flagErrorf builds a usageError.
func flagErrorf(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// newRootCmd assembles the command tree writing data to stdout and logs to stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "align",
		Short:         "Reward alignment for flow-matching image and video generators",
		Long:          "align trains, samples, scores and aligns small diffusion transformers (rectified flow)\nwith multi-dimensional reward models, on the CPU or an NVIDIA GPU.",
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	// --guidance_scale works as well as --guidance-scale (diffusers spells flags with _).
	root.SetGlobalNormalizationFunc(func(f *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	addDeviceFlag(root)
	root.AddCommand(newCmdInfo(nil))
	root.AddCommand(newCmdSample(nil))
	root.AddCommand(newCmdPretrain(nil))
	root.AddCommand(newCmdData(nil))
	root.AddCommand(newCmdReward(nil))
	root.AddCommand(newCmdScore(nil))
	root.AddCommand(newCmdExport(nil))
	root.AddCommand(newCmdRetrieval(nil))
	root.AddCommand(newCmdPairs(nil))
	root.AddCommand(newCmdFinetune(nil))
	root.AddCommand(newCmdEval(nil))
	usageArgs(root)
	return root
}

// usageArgs makes a wrong number of positional arguments a usage error (exit 3, like a bad
// flag) for cmd and every command below it.
func usageArgs(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		usageArgs(c)
	}
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	ps := &profiles{}
	cmd, err := root.ExecuteContextC(context.WithValue(context.Background(), profilesKey{}, ps))
	ps.report(stderr)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errCancelled) {
		fmt.Fprintln(stderr, "align: cancelled")
		return exitCancel
	}
	fmt.Fprintf(stderr, "align: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitError
}
