// PatchEmbed: images or videos to patch tokens (device Patchify, then a Linear projection)
// plus a fixed sinusoidal position table.
//
// Test: go test ./nn -run PatchEmbed

package nn

import (
	"fmt"
	"math"

	"github.com/alignkit/align/kernels"
)

// PatchEmbed cuts x (B,T,Cin,H,W) (or an image batch (B,Cin,H,W), T = 1) into tubelets of
// PT frames and P x P pixels, projects each to C channels and adds a fixed position code:
//
//	patches = Patchify(x)                     (B,L,Cin*PT*P*P), L = (T/PT)(H/P)(W/P),
//	                                          tokens ordered (t,h,w), features (c,dt,dy,dx)
//	y       = patches W^T + b + pos           (B,L,C)
//
// pos is PosEmbed3D over the token grid (T/PT, H/P, W/P); it has no parameters. Backward
// returns dx with x's shape (Unpatchify of the projected gradient), which Flow-NRG
// guidance needs.
type PatchEmbed struct {
	Cin, C int // input channels, width; e.g. 4, 384
	PT, P  int // tubelet frames and pixels; images use PT = 1

	Proj *Linear // Cin*PT*P*P -> C, bias ("proj", DiT's flattened conv)

	dev     kernels.Device
	xShape  []int           // shape of the last Forward's input
	dims    [5]int          // B, T, Cin, H, W of the last Forward
	pos     *kernels.Tensor // (L*C) table of the current grid
	posGrid [3]int          // grid the table was built for
	patches buffer          // (B,L,Cin*PT*P*P)
	dx      buffer          // x's shape
}

// NewPatchEmbed allocates the projection with Xavier-normal weights (over the flattened
// patch, as DiT initialises its conv) drawn from r and a zero bias.
func NewPatchEmbed(dev kernels.Device, r Rand, cin, C, pt, p int) *PatchEmbed {
	if C%4 != 0 {
		panic(fmt.Sprintf("nn: NewPatchEmbed: width %d is not a multiple of 4 (position table)", C))
	}
	return &PatchEmbed{Cin: cin, C: C, PT: pt, P: p, dev: dev,
		Proj: NewLinear(dev, r, cin*pt*p*p, C, true)}
}

// Params lists "proj.weight" and "proj.bias".
func (e *PatchEmbed) Params() []Param { return prefixed("proj", e.Proj.Params()) }

// Grid returns the token grid (T/PT, H/P, W/P) for an input of T frames of H x W.
func (e *PatchEmbed) Grid(T, H, W int) (gt, gh, gw int) {
	if T%e.PT != 0 || H%e.P != 0 || W%e.P != 0 {
		panic(fmt.Sprintf("nn: PatchEmbed: %dx%dx%d input does not split into %dx%dx%d tubelets", T, H, W, e.PT, e.P, e.P))
	}
	return T / e.PT, H / e.P, W / e.P
}

// Forward maps x (B,T,Cin,H,W) or (B,Cin,H,W) to tokens (B,L,C).
func (e *PatchEmbed) Forward(x *kernels.Tensor) *kernels.Tensor {
	var B, T, H, W int
	switch len(x.Shape) {
	case 4:
		B, T, H, W = x.Shape[0], 1, x.Shape[2], x.Shape[3]
		mustShape("PatchEmbed.Forward", x, B, e.Cin, H, W)
	case 5:
		B, T, H, W = x.Shape[0], x.Shape[1], x.Shape[3], x.Shape[4]
		mustShape("PatchEmbed.Forward", x, B, T, e.Cin, H, W)
	default:
		panic(fmt.Sprintf("nn: PatchEmbed.Forward: input %v, want (B,T,%d,H,W) or (B,%d,H,W)", x, e.Cin, e.Cin))
	}
	gt, gh, gw := e.Grid(T, H, W)
	L, F := gt*gh*gw, e.Cin*e.PT*e.P*e.P
	e.xShape, e.dims = append(e.xShape[:0], x.Shape...), [5]int{B, T, e.Cin, H, W}

	patches := e.patches.get(e.dev, B, L, F)
	e.dev.Patchify(patches, x, B, T, e.Cin, H, W, e.PT, e.P)
	y := e.Proj.Forward(patches)
	if e.pos == nil || e.posGrid != [3]int{gt, gh, gw} {
		if e.pos != nil {
			e.dev.Free(e.pos)
		}
		e.pos = e.dev.FromHost(PosEmbed3D(e.C, gt, gh, gw), L*e.C)
		e.posGrid = [3]int{gt, gh, gw}
	}
	e.dev.AddBias(y, y, e.pos, B, L*e.C) // the table broadcasts over the batch
	return y
}

// Backward takes dy (B,L,C), accumulates the projection's gradients and returns dx with
// the shape of the last Forward's input.
func (e *PatchEmbed) Backward(dy *kernels.Tensor) *kernels.Tensor {
	dp := e.Proj.Backward(dy)
	dx := e.dx.get(e.dev, e.xShape...)
	B, T, Cin, H, W := e.dims[0], e.dims[1], e.dims[2], e.dims[3], e.dims[4]
	e.dev.Unpatchify(dx, dp, B, T, Cin, H, W, e.PT, e.P)
	return dx
}

// PosEmbed1D returns the (len(pos), D) sinusoidal table of MAE and DiT, D even:
//
//	w_i = 10000^(-i/(D/2)),  row = [sin(pos*w_0..w_{D/2-1}), cos(pos*w_0..w_{D/2-1})].
func PosEmbed1D(D int, pos []float64) []float32 {
	half := D / 2
	out := make([]float32, len(pos)*D)
	for n, p := range pos {
		for i := 0; i < half; i++ {
			w := math.Pow(10000, -float64(i)/float64(half))
			out[n*D+i] = float32(math.Sin(p * w))
			out[n*D+half+i] = float32(math.Cos(p * w))
		}
	}
	return out
}

// PosEmbed3D returns the fixed position table (gt*gh*gw, C) of a token grid, rows in
// (t,h,w) order, C a multiple of 4:
//
//	pos(t,h,w) = [E(w) | E(h)] + (gt > 1 ? F(t) : 0)
//
// with E = PosEmbed1D(C/2, .) and F = PosEmbed1D(C, .) on integer grid coordinates. The
// spatial part is DiT's 2D table (get_2d_sincos_pos_embed: first half from the column,
// second half from the row); the temporal part is added only for grids with more than one
// tubelet in time (Latte's separate temporal code), so an image grid gets exactly DiT's table.
func PosEmbed3D(C, gt, gh, gw int) []float32 {
	half := C / 2
	rows := make([]float64, gh)
	for i := range rows {
		rows[i] = float64(i)
	}
	cols := make([]float64, gw)
	for i := range cols {
		cols[i] = float64(i)
	}
	frames := make([]float64, gt)
	for i := range frames {
		frames[i] = float64(i)
	}
	eh, ew, ft := PosEmbed1D(half, rows), PosEmbed1D(half, cols), PosEmbed1D(C, frames)
	out := make([]float32, gt*gh*gw*C)
	for t := 0; t < gt; t++ {
		for h := 0; h < gh; h++ {
			for w := 0; w < gw; w++ {
				row := out[((t*gh+h)*gw+w)*C:][:C]
				copy(row[:half], ew[w*half:(w+1)*half])
				copy(row[half:], eh[h*half:(h+1)*half])
				if gt > 1 {
					for i := range row {
						row[i] += ft[t*C+i]
					}
				}
			}
		}
	}
	return out
}
