// Command align aligns flow-matching image and video generators with reward models:
// pre-training, sampling with reward guidance, scoring, preference fine-tuning.
//
// Run `align --help` for the commands.
package main

import "os"

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
