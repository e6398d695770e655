// Short-video clips synthesised from the emoji sprites: 8 frames of 32x32 in which one sprite moves
// in one of 8 directions, bounces, rotates or zooms, with a caption ("a red apple moving left") and
// the motion label and trajectory stored separately for evaluation.
//
// Frames are rendered from the 64 px premultiplied sprite by inverse mapping with 4x4 supersampling
// and bilinear taps (an area filter), then composited over white. Every clip is a pure function of
// (seed, clip index), so rendering in parallel gives the same bytes.
//
// Test: go test ./diffusion/dataset -run 'Motion|Clip|Render'

package dataset

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"strings"
)

// Frames is the number of frames per clip.
const Frames = 8

// Motion labels a clip's motion.
type Motion string

const (
	MoveLeft      Motion = "move-left"
	MoveRight     Motion = "move-right"
	MoveUp        Motion = "move-up"
	MoveDown      Motion = "move-down"
	MoveUpLeft    Motion = "move-up-left"
	MoveUpRight   Motion = "move-up-right"
	MoveDownLeft  Motion = "move-down-left"
	MoveDownRight Motion = "move-down-right"
	Bounce        Motion = "bounce"
	RotateCW      Motion = "rotate-cw"
	RotateCCW     Motion = "rotate-ccw"
	ZoomIn        Motion = "zoom-in"
	ZoomOut       Motion = "zoom-out"
)

// Motions lists every motion; clip i gets Motions[i % len(Motions)], so the kinds are balanced.
var Motions = []Motion{
	MoveLeft, MoveRight, MoveUp, MoveDown, MoveUpLeft, MoveUpRight, MoveDownLeft, MoveDownRight,
	Bounce, RotateCW, RotateCCW, ZoomIn, ZoomOut,
}

var motionPhrases = map[Motion]string{
	MoveLeft: "moving left", MoveRight: "moving right", MoveUp: "moving up", MoveDown: "moving down",
	MoveUpLeft: "moving up and left", MoveUpRight: "moving up and right",
	MoveDownLeft: "moving down and left", MoveDownRight: "moving down and right",
	Bounce: "bouncing", RotateCW: "rotating clockwise", RotateCCW: "rotating counterclockwise",
	ZoomIn: "zooming in", ZoomOut: "zooming out",
}

// Phrase is the motion in caption words ("moving up and left").
func (m Motion) Phrase() string { return motionPhrases[m] }

// Valid reports whether m is one of Motions.
func (m Motion) Valid() bool { _, ok := motionPhrases[m]; return ok }

// Direction is the unit vector of a translation in image coordinates (x right, y down), and
// (0, 0) for the other motions.
func (m Motion) Direction() (dx, dy float64) {
	s := 1 / math.Sqrt2
	switch m {
	case MoveLeft:
		return -1, 0
	case MoveRight:
		return 1, 0
	case MoveUp:
		return 0, -1
	case MoveDown:
		return 0, 1
	case MoveUpLeft:
		return -s, -s
	case MoveUpRight:
		return s, -s
	case MoveDownLeft:
		return -s, s
	case MoveDownRight:
		return s, s
	}
	return 0, 0
}

// VideoCaption is the caption of a clip: "a red apple moving left", "an avocado bouncing".
func VideoCaption(name string, m Motion) string {
	return article(name) + " " + name + " " + m.Phrase()
}

func article(name string) string {
	for _, p := range []string{"uni", "use", "eu", "one "} {
		if strings.HasPrefix(name, p) {
			return "a"
		}
	}
	if name != "" && strings.ContainsRune("aeiou", rune(name[0])) {
		return "an"
	}
	return "a"
}

// ClipParams is the ground-truth trajectory of a clip. Positions are the sprite centre in pixels
// (x right, y down, the canvas spans [0,32]); Size is the side of the 64 px sprite box once
// scaled; angles are in degrees, positive clockwise on screen.
type ClipParams struct {
	Size0        float64 `json:"size0"`
	Size1        float64 `json:"size1"`
	X0           float64 `json:"x0"`
	Y0           float64 `json:"y0"`
	X1           float64 `json:"x1"`
	Y1           float64 `json:"y1"`
	Angle0       float64 `json:"angle0"`
	Angle1       float64 `json:"angle1"`
	BounceHeight float64 `json:"bounce_height,omitempty"`
	BouncePeriod float64 `json:"bounce_period,omitempty"` // frames between two floor contacts
	BouncePhase  float64 `json:"bounce_phase,omitempty"`  // in periods
}

// At returns the sprite centre, size and angle at frame t of T.
func (p *ClipParams) At(m Motion, t, T int) (cx, cy, size, angle float64) {
	f := 0.0
	if T > 1 {
		f = float64(t) / float64(T-1)
	}
	cx = p.X0 + f*(p.X1-p.X0)
	cy = p.Y0 + f*(p.Y1-p.Y0)
	size = p.Size0 * math.Pow(p.Size1/p.Size0, f) // geometric: a steady zoom
	angle = p.Angle0 + f*(p.Angle1-p.Angle0)
	if m == Bounce {
		cx = p.X0
		cy = p.Y0 - p.BounceHeight*math.Abs(math.Sin(math.Pi*(float64(t)/p.BouncePeriod+p.BouncePhase)))
	}
	return cx, cy, size, angle
}

func uniform(rng *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }

// Sprite size caps of NewClipParams at spriteScale > 1, so that the motion keeps room: a
// translation still travels 6 px, a bounce rises 4 px, a rotating sprite's drawing (0.6 of
// its box from the centre) and a zoom's largest box stay inside the 32 px canvas.
const (
	maxTranslateSize = 26
	maxBounceSize    = 24
	maxRotateSize    = 26
	maxZoomSize      = 30
)

// NewClipParams draws the trajectory of a clip of motion m. The whole sprite box stays inside
// the canvas in every frame for translations, bounces and zooms.
//
// spriteScale multiplies the sprite sizes (1: translations 12-18 px, bounces 12-16, rotations
// 16-22, zooms between 8-12 and 20-26), capped per motion (maxTranslateSize, ...); larger
// sprites leave less room, so a translation's speed range [1.25, 2] px per frame and a
// bounce's height range [6, 12] px shrink to what fits. The draws from rng are the same at
// every scale, and at scale 1 no cap or shrink applies: the clips of a seed are those of
// datasets prepared before the option existed.
func NewClipParams(rng *rand.Rand, m Motion, spriteScale float64) ClipParams {
	const W = float64(ImageSize)
	const steps = float64(Frames - 1)
	scaled := func(lo, hi, cap float64) float64 { return math.Min(spriteScale*uniform(rng, lo, hi), cap) }
	var p ClipParams
	switch m {
	case MoveLeft, MoveRight, MoveUp, MoveDown, MoveUpLeft, MoveUpRight, MoveDownLeft, MoveDownRight:
		size := scaled(12, 18, maxTranslateSize)
		fastest := math.Min(2, (W-size)/steps)
		speed := uniform(rng, math.Min(1.25, fastest), fastest) // px per frame
		ux, uy := m.Direction()
		dx, dy := ux*speed*steps, uy*speed*steps
		lo, hi := size/2, W-size/2
		p.Size0, p.Size1 = size, size
		p.X0 = uniform(rng, lo-math.Min(0, dx), hi-math.Max(0, dx))
		p.Y0 = uniform(rng, lo-math.Min(0, dy), hi-math.Max(0, dy))
		p.X1, p.Y1 = p.X0+dx, p.Y0+dy
	case Bounce:
		size := scaled(12, 16, maxBounceSize)
		p.Size0, p.Size1 = size, size
		p.X0 = uniform(rng, size/2, W-size/2)
		p.Y0 = W - size/2 - uniform(rng, 0, 1.5) // the floor
		highest := math.Min(12, p.Y0-size/2)
		p.BounceHeight = uniform(rng, math.Min(6, highest), highest)
		p.BouncePeriod = uniform(rng, 3.5, 5)
		p.BouncePhase = rng.Float64()
		p.X1 = p.X0
	case RotateCW, RotateCCW:
		size := scaled(16, 22, maxRotateSize)
		p.Size0, p.Size1 = size, size
		p.X0 = uniform(rng, 0.6*size, W-0.6*size)
		p.Y0 = uniform(rng, 0.6*size, W-0.6*size)
		p.X1, p.Y1 = p.X0, p.Y0
		omega := uniform(rng, 15, 35) // degrees per frame
		if m == RotateCCW {
			omega = -omega
		}
		p.Angle0 = uniform(rng, -30, 30)
		p.Angle1 = p.Angle0 + omega*steps
	case ZoomIn, ZoomOut:
		small, big := scaled(8, 12, maxZoomSize), scaled(20, 26, maxZoomSize)
		p.X0 = uniform(rng, big/2, W-big/2)
		p.Y0 = uniform(rng, big/2, W-big/2)
		p.X1, p.Y1 = p.X0, p.Y0
		p.Size0, p.Size1 = small, big
		if m == ZoomOut {
			p.Size0, p.Size1 = big, small
		}
	default:
		panic(fmt.Sprintf("NewClipParams: unknown motion %q", m))
	}
	// Stored with 3 decimals; rounding here keeps the record and the rendered frames identical.
	for _, f := range []*float64{&p.Size0, &p.Size1, &p.X0, &p.Y0, &p.X1, &p.Y1, &p.Angle0, &p.Angle1,
		&p.BounceHeight, &p.BouncePeriod, &p.BouncePhase} {
		*f = math.Round(*f*1000) / 1000
	}
	if m == Bounce {
		_, y1, _, _ := p.At(m, Frames-1, Frames)
		p.Y1 = math.Round(y1*1000) / 1000 // a record only: At recomputes bounces
	}
	return p
}

// Clip is one video clip's record in videos.jsonl.
type Clip struct {
	Index   int        `json:"index"`
	Item    int        `json:"item"`    // the source image's index in images.jsonl
	Concept string     `json:"concept"` // base code points of the emoji
	Set     string     `json:"set"`
	Name    string     `json:"name"`
	Motion  Motion     `json:"motion"`
	Caption string     `json:"caption"`
	Split   Split      `json:"split"`
	Params  ClipParams `json:"params"`
	// Subcategory is an imported clip's group (a labelled clip's is its source image's).
	Subcategory string `json:"subcategory,omitempty"`
	// Source is an imported clip's input file, Start its start in seconds within it.
	Source string  `json:"source,omitempty"`
	Start  float64 `json:"start,omitempty"`
}

// supersample is the number of samples per output pixel along each axis.
const supersample = 4

// RenderClip writes the Frames frames of a clip as (T,3,32,32) bytes into dst.
func RenderClip(dst []uint8, sprite *image.RGBA, m Motion, p *ClipParams) {
	fs := Channels * ImageSize * ImageSize
	if len(dst) != Frames*fs {
		panic(fmt.Sprintf("RenderClip: dst has %d bytes, want %d", len(dst), Frames*fs))
	}
	for t := 0; t < Frames; t++ {
		cx, cy, size, angle := p.At(m, t, Frames)
		RenderSprite(dst[t*fs:(t+1)*fs], sprite, cx, cy, size, angle)
	}
}

// RenderSprite draws sprite (premultiplied, any square size) centred at (cx, cy), scaled so that
// its box is size pixels wide and rotated clockwise by angle degrees, over a white 32x32 canvas,
// writing (3,32,32) bytes into dst.
//
// Each output pixel averages supersample² points; each point maps back into the sprite
// (u = R(−θ)·(p − c)/k + W/2 with k = size/W) and reads it bilinearly, transparent outside.
// The premultiplied average (c, a) meets the white background as out = c + 255 − a.
func RenderSprite(dst []uint8, sprite *image.RGBA, cx, cy, size, angle float64) {
	const S = ImageSize
	plane := S * S
	for i := range dst {
		dst[i] = 255
	}
	sw := sprite.Bounds().Dx()
	sh := sprite.Bounds().Dy()
	k := size / float64(sw)
	if k <= 0 {
		return
	}
	rad := angle * math.Pi / 180
	cos, sin := math.Cos(rad), math.Sin(rad)
	// Inverse map: u = a*(px-cx) + b*(py-cy) + sw/2, v = c*(px-cx) + d*(py-cy) + sh/2.
	a, b := cos/k, sin/k
	c, d := -sin/k, cos/k
	half := size / 2 * (math.Abs(cos) + math.Abs(sin))
	x0 := max(0, int(math.Floor(cx-half))-1)
	x1 := min(S, int(math.Ceil(cx+half))+1)
	y0 := max(0, int(math.Floor(cy-half))-1)
	y1 := min(S, int(math.Ceil(cy+half))+1)
	inv := 1 / float64(supersample*supersample)
	pix, stride := sprite.Pix, sprite.Stride
	fw, fh := float64(sw), float64(sh)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			var sr, sg, sb, sa float64
			for j := 0; j < supersample; j++ {
				py := float64(y) + (float64(j)+0.5)/supersample - cy
				ub := b*py + fw/2 - 0.5 // texel centres sit at integer (u, v)
				vb := d*py + fh/2 - 0.5
				for i := 0; i < supersample; i++ {
					px := float64(x) + (float64(i)+0.5)/supersample - cx
					u, v := a*px+ub, c*px+vb
					if u <= -1 || v <= -1 || u >= fw || v >= fh {
						continue
					}
					// u, v > -1, so truncating u+1 is floor(u)+1.
					iu, iv := int(u+1)-1, int(v+1)-1
					wu, wv := u-float64(iu), v-float64(iv)
					w00, w10 := (1-wu)*(1-wv), wu*(1-wv)
					w01, w11 := (1-wu)*wv, wu*wv
					if iu >= 0 && iv >= 0 && iu+1 < sw && iv+1 < sh {
						o := iv*stride + 4*iu
						p := pix[o : o+stride+8 : o+stride+8]
						sr += w00*float64(p[0]) + w10*float64(p[4]) + w01*float64(p[stride]) + w11*float64(p[stride+4])
						sg += w00*float64(p[1]) + w10*float64(p[5]) + w01*float64(p[stride+1]) + w11*float64(p[stride+5])
						sb += w00*float64(p[2]) + w10*float64(p[6]) + w01*float64(p[stride+2]) + w11*float64(p[stride+6])
						sa += w00*float64(p[3]) + w10*float64(p[7]) + w01*float64(p[stride+3]) + w11*float64(p[stride+7])
						continue
					}
					// At the sprite's border: taps outside it are transparent.
					for k, w := range [4]float64{w00, w10, w01, w11} {
						tu, tv := iu+k%2, iv+k/2
						if w == 0 || tu < 0 || tv < 0 || tu >= sw || tv >= sh {
							continue
						}
						o := tv*stride + 4*tu
						sr += w * float64(pix[o])
						sg += w * float64(pix[o+1])
						sb += w * float64(pix[o+2])
						sa += w * float64(pix[o+3])
					}
				}
			}
			if sa == 0 {
				continue
			}
			bg := 255 - sa*inv
			o := y*S + x
			dst[o] = toByte(sr*inv + bg)
			dst[plane+o] = toByte(sg*inv + bg)
			dst[2*plane+o] = toByte(sb*inv + bg)
		}
	}
}

func toByte(v float64) uint8 {
	v = math.Round(v)
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// clipRNG is the random stream of clip i: independent of the order clips are made in.
func clipRNG(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(i)))
}

// spriteRef is a sprite the clips can use: an image item with its premultiplied 64 px source.
type spriteRef struct {
	item    *Item
	concept string
	name    string
	sprite  *image.RGBA
}

// planClips decides the motion, sprite and trajectory of n clips from seed. Clip i gets motion
// Motions[i%13] and a sprite drawn uniformly from pool; the split is the sprite concept's.
// spriteScale is NewClipParams's.
func planClips(n int, seed uint64, pool []spriteRef, spriteScale float64) ([]Clip, []int) {
	clips := make([]Clip, n)
	spriteOf := make([]int, n)
	for i := range clips {
		rng := clipRNG(seed, i)
		m := Motions[i%len(Motions)]
		s := rng.IntN(len(pool))
		ref := pool[s]
		clips[i] = Clip{
			Index:   i,
			Item:    ref.item.Index,
			Concept: ref.concept,
			Set:     ref.item.Set,
			Name:    ref.name,
			Motion:  m,
			Caption: VideoCaption(ref.name, m),
			Split:   ref.item.Split,
			Params:  NewClipParams(rng, m, spriteScale),
		}
		spriteOf[i] = s
	}
	return clips, spriteOf
}
