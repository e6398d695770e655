// Training and evaluation of the noise-aware latent reward model (latent.go) with the reward
// Trainer of train.go. Every pair gets ONE noise level and ONE noise draw shared by its sides:
//
//	t_i   ~ U[0,1) or logit-normal(0,1)            (--timestep-sampling)
//	eps_i ~ N(0, I)                                 one draw of the sample shape
//	x_t^A = (1-t_i) x0^A + t_i eps_i,   x_t^B = (1-t_i) x0^B + t_i eps_i
//	loss  = BTT (or BT, reg) on r(x_t^A, t_i, y^A) - r(x_t^B, t_i, y^B), per dimension
//
// so the difference of the two inputs is (1-t)(x0^A - x0^B): the model is asked which clean
// sample is better through the same noise, as Flow-DPO's winner and loser share t and eps.
// t_i and eps_i come from a PCG stream of (seed, stream, i) alone (stream = the step for
// training), so a resumed run continues exactly and scoring does not depend on batching.
//
// Calibration mixes the noise levels of training (t from the same sampler over the
// validation pairs); evaluation stratifies t over LatentEvalBuckets equal buckets of [0,1)
// (pair i of dimension i mod D lands in bucket (i/D) mod NB) and reports the accuracy per
// dimension per bucket, besides the overall one.
//
// Test: go test ./rewards -run Latent
package rewards

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// Timestep samplers of a latent run (TrainConfig.TimestepSampling).
const (
	TimestepUniform     = "uniform"      // t ~ U[0,1)
	TimestepLogitNormal = "logit_normal" // t = sigmoid(n), n ~ N(0,1)
)

// TimestepSamplers lists the accepted --timestep-sampling values.
var TimestepSamplers = []string{TimestepUniform, TimestepLogitNormal}

// LatentEvalBuckets is the number of equal t buckets of the evaluation: [0,.2), ..., [.8,1).
const LatentEvalBuckets = 5

// noiseSalt separates the noise streams from the pair streams of the same seed.
const noiseSalt = 0x6e6f697365 // "noise"

// calibStream is the noise stream of the calibration pairs.
const calibStream = 1 << 40

// pairRand is the random stream of pair i of a stream: its t first, then its noise.
func pairRand(seed, stream uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^noiseSalt, stream*0x9e3779b97f4a7c15+uint64(i)))
}

// sampleT draws a noise level in [0,1) with the sampler ("" is uniform).
func sampleT(r *rand.Rand, sampler string) float32 {
	u := r.Float64()
	if sampler == TimestepLogitNormal {
		u = 1 / (1 + math.Exp(-r.NormFloat64()))
	}
	return min(float32(u), math.Nextafter32(1, 0))
}

// noisePair replaces clean samples a and b (equal lengths) by x_t = (1-t) x0 + t eps with
// one eps drawn from r for both.
func noisePair(a, b []float32, t float32, r *rand.Rand) {
	for j := range a {
		e := float32(r.NormFloat64())
		a[j] = (1-t)*a[j] + t*e
		b[j] = (1-t)*b[j] + t*e
	}
}

// renderNoisyPairs renders pairs like renderPairs, A samples then B samples, noises pair i
// at ts[i] with the noise of pairRand(seed, stream, first+i), copies the result to pixels and
// returns the prompts and the noise level of each of the 2N samples.
func renderNoisyPairs(gen *PairGen, pairs []Pair, ts []float32, seed, stream uint64, first int,
	host []float32, pixels *kernels.Tensor) (prompts []string, t2 []float32) {
	N, L := len(pairs), gen.SampleLen()
	prompts = renderPairsHost(gen, pairs, host)
	for i := range pairs {
		r := pairRand(seed, stream, first+i)
		r.Float64() // the draw that gave t (or its bucket offset)
		noisePair(host[i*L:(i+1)*L], host[(N+i)*L:(N+i+1)*L], ts[i], r)
	}
	pixels.Dev.CopyFromHost(pixels, host[:2*N*L])
	return prompts, append(slices.Clone(ts), ts...)
}

// trainTimes draws the noise level of each pair of a stream with the sampler.
func trainTimes(n int, seed, stream uint64, sampler string) []float32 {
	ts := make([]float32, n)
	for i := range ts {
		ts[i] = sampleT(pairRand(seed, stream, i), sampler)
	}
	return ts
}

// evalTimes stratifies the noise levels over LatentEvalBuckets buckets: pair i (dimension
// i mod D) gets bucket (i/D) mod NB and a uniform offset inside it.
func evalTimes(n, D int, seed, stream uint64) (ts []float32, bucket []int) {
	ts, bucket = make([]float32, n), make([]int, n)
	for i := range ts {
		k := (i / D) % LatentEvalBuckets
		u := pairRand(seed, stream, i).Float64()
		ts[i] = min(float32((float64(k)+u)/LatentEvalBuckets), math.Nextafter32(1, 0))
		bucket[i] = k
	}
	return ts, bucket
}

// ---- the network a Trainer fits ----

// rewardNet is what the Trainer needs of a model: the native one or the latent one.
type rewardNet interface {
	Model
	Params() []nn.Param
	Checkpoint() (*nn.Checkpoint, error)
	Save(path string) error
	// forwardAt scores x (2N, SampleShape...) at noise levels t (ignored by clean models).
	forwardAt(x *kernels.Tensor, t []float32, prompts []string) [][]float32
	backward(ds [][]float32) *kernels.Tensor
	setCalibration(c *Calibration)
}

func (m *Native) forwardAt(x *kernels.Tensor, _ []float32, prompts []string) [][]float32 {
	return m.Forward(x, prompts)
}
func (m *Native) backward(ds [][]float32) *kernels.Tensor { return m.Backward(ds) }
func (m *Native) setCalibration(c *Calibration)           { m.Calib = c }

func (m *LatentReward) forwardAt(x *kernels.Tensor, t []float32, prompts []string) [][]float32 {
	return m.Forward(x, t, prompts)
}
func (m *LatentReward) backward(ds [][]float32) *kernels.Tensor { return m.Backward(ds) }
func (m *LatentReward) setCalibration(c *Calibration)           { m.Calib = c }

// net is the model being trained.
func (t *Trainer) net() rewardNet {
	if t.Latent != nil {
		return t.Latent
	}
	return t.Model
}

// renderStep writes the inputs of step s's pairs into t.pixels and returns their prompts and
// noise levels (nil for a clean model).
func (t *Trainer) renderStep(pairs []Pair, s int) (prompts []string, ts []float32) {
	if t.Latent == nil {
		return renderPairs(t.Gen, pairs, t.host, t.pixels), nil
	}
	tp := trainTimes(len(pairs), t.Cfg.Seed, uint64(s), t.Cfg.TimestepSampling)
	return renderNoisyPairs(t.Gen, pairs, tp, t.Cfg.Seed, uint64(s), 0, t.host, t.pixels)
}

// NewLatentTrainer builds the trainer of a latent model m (NewLatentFromGenerator for a new
// run, LatentFromCheckpoint before Resume) and its optimizer.
func NewLatentTrainer(dev kernels.Device, m *LatentReward, cfg TrainConfig, gen *PairGen, outputDir string) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !slices.Equal(gen.Cfg.Dims, m.Config.Dims) {
		return nil, fmt.Errorf("reward train: pairs for %v, model dims %v", gen.Cfg.Dims, m.Config.Dims)
	}
	if want := gen.SampleShape(); !slices.Equal(want, m.Config.SampleShape()) {
		return nil, fmt.Errorf("reward train: data samples %v, the generator's samples %v", want, m.Config.SampleShape())
	}
	if err := gen.checkEvalSplits(cfg); err != nil {
		return nil, err
	}
	m.SetTrainable(true)
	t := &Trainer{Cfg: cfg, Latent: m, Gen: gen, OutputDir: outputDir, dev: dev}
	t.Opt = nn.NewAdamW(dev, m.Params(), cfg.AdamW(nn.DefaultAdamBetas()))
	t.pixels = dev.New(append([]int{2 * cfg.TrainBatchSize}, m.Config.SampleShape()...)...)
	t.host = make([]float32, t.pixels.Len())
	return t, nil
}

// ReadLatentTrainingCheckpoint reads a training checkpoint of a latent run and builds its
// model (trainable) on dev, for NewLatentTrainer and Resume.
func ReadLatentTrainingCheckpoint(dev kernels.Device, path string) (*nn.Checkpoint, *LatentReward, error) {
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := c.Extra[metaTrainState]; !ok || c.AdamW == nil {
		return nil, nil, fmt.Errorf("%s: not a training checkpoint (a model file?); resume from checkpoint-<step>.safetensors", path)
	}
	m, err := LatentFromCheckpoint(dev, c)
	if err != nil {
		return nil, nil, err
	}
	return c, m, nil
}

// IsLatentCheckpoint reports whether the file at path holds a latent reward model (or a
// training checkpoint of one).
func IsLatentCheckpoint(path string) (bool, error) {
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		return false, err
	}
	return ModelTypeOf(c) == ModelTypeLatent, nil
}

// ---- calibration and evaluation ----

// scoreNoisyPairs scores the A and B samples of pairs, pair i noised at ts[i] with the noise
// of pairRand(seed, stream, i), batch samples at a time.
func scoreNoisyPairs(m *LatentReward, gen *PairGen, pairs []Pair, ts []float32, seed, stream uint64, batch int) (rA, rB [][]float32, err error) {
	half := max(batch/2, 1)
	host := make([]float32, 2*half*gen.SampleLen())
	// One buffer for the largest chunk, a view of it for each: device memory is not
	// reclaimed by the garbage collector.
	shape := append([]int{2 * min(half, len(pairs))}, gen.SampleShape()...)
	buf := m.dev.New(shape...)
	defer m.dev.Free(buf)
	for lo := 0; lo < len(pairs); lo += half {
		chunk := pairs[lo:min(lo+half, len(pairs))]
		n := len(chunk)
		shape[0] = 2 * n
		pix := buf.View(0, shape...)
		prompts, t2 := renderNoisyPairs(gen, chunk, ts[lo:lo+n], seed, stream, lo, host, pix)
		s, err := m.Score(Batch{Pixels: pix, Prompts: prompts, Timesteps: t2})
		if err != nil {
			return nil, nil, err
		}
		rA = append(rA, s[:n]...)
		rB = append(rB, s[n:]...)
	}
	return rA, rB, nil
}

// CalibrateLatent is Calibrate for a latent model: n validation pairs (seed EvalSeed(seed)),
// each noised at a t from the training sampler; the statistics mix every noise level.
func CalibrateLatent(m *LatentReward, gen *PairGen, n int, seed uint64, sampler string, batch int) (*Calibration, []DimAccuracy, error) {
	pairs, err := gen.Pairs(SplitVal, n, EvalSeed(seed), 1)
	if err != nil {
		return nil, nil, err
	}
	ts := trainTimes(n, EvalSeed(seed), calibStream, sampler)
	rA, rB, err := scoreNoisyPairs(m, gen, pairs, ts, EvalSeed(seed), calibStream, batch)
	if err != nil {
		return nil, nil, err
	}
	return fitCalibration(m.Dims(), pairs, rA, rB)
}

// TimeBucket is the accuracy of every dimension over the pairs whose t lies in [Lo, Hi).
type TimeBucket struct {
	Lo    float64       `json:"t_lo"`
	Hi    float64       `json:"t_hi"`
	Pairs int           `json:"pairs"`
	Dims  []DimAccuracy `json:"dims"`
}

// EvaluateLatent scores n pairs of split (seed) with their sides sharing t and eps, t
// stratified over LatentEvalBuckets buckets, and reports the accuracy per dimension overall
// (as Evaluate) and per t bucket (EvalReport.TimeBuckets).
func EvaluateLatent(m *LatentReward, gen *PairGen, split string, n int, seed uint64, batch int) (*EvalReport, error) {
	t0 := time.Now()
	pairs, err := gen.Pairs(split, n, seed, 0)
	if err != nil {
		return nil, err
	}
	n = len(pairs) // SplitPreferences gives all of its pairs
	dims := m.Dims()
	ts, bucket := evalTimes(n, len(dims), seed, 0)
	rA, rB, err := scoreNoisyPairs(m, gen, pairs, ts, seed, 0, batch)
	if err != nil {
		return nil, err
	}
	var eps []float64
	if m.Calib != nil && len(m.Calib.TieEps) == len(dims) {
		eps = m.Calib.TieEps
	}
	rep := pairReport(dims, pairs, rA, rB, eps)
	rep.Split, rep.Pairs, rep.Seed, rep.NoiseAware, rep.ValPercent = split, n, seed, true, gen.valPercentOf(split)
	labels, _, _ := pairLabels(pairs)
	// timeBucket pools the pairs i with in(i).
	timeBucket := func(lo, hi float64, in func(i int) bool) TimeBucket {
		var a, b [][]float32
		var ls [][]Label
		for i := range pairs {
			if in(i) {
				a, b, ls = append(a, rA[i]), append(b, rB[i]), append(ls, labels[i])
			}
		}
		return TimeBucket{Lo: lo, Hi: hi, Pairs: len(ls), Dims: PairAccuracy(dims, a, b, ls, eps)}
	}
	for k := range LatentEvalBuckets {
		rep.TimeBuckets = append(rep.TimeBuckets, timeBucket(float64(k)/LatentEvalBuckets, float64(k+1)/LatentEvalBuckets,
			func(i int) bool { return bucket[i] == k }))
	}
	low := timeBucket(0, LowNoiseT, func(i int) bool { return ts[i] <= LowNoiseT })
	rep.LowNoise = &low
	rep.Seconds = time.Since(t0).Seconds()
	return rep, nil
}
