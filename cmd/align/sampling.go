// The sampling flags that sample, retrieval and pairs share (--num-inference-steps,
// --guidance-scale, --shift, --sampler) are checked by the rule diffusion.Sample applies,
// before any model loads, so a bad value is a flag error (exit 3) and every command words it alike.
package main

import "github.com/alignkit/align/diffusion"

// checkSampling returns diffusion.SampleOptions.Validate's verdict on the sampling flags as a
// usage error.
func checkSampling(numInferenceSteps int, guidanceScale, shift float64, sampler string) error {
	o := diffusion.SampleOptions{NumInferenceSteps: numInferenceSteps, GuidanceScale: guidanceScale, Shift: shift, Sampler: sampler}
	if err := o.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}
