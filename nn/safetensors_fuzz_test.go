// Fuzz target for the safetensors header parser and the checkpoint reader on top of it.
// Plain `go test ./nn` runs the seed corpus (below and testdata/fuzz/FuzzSafetensorsHeader);
// to search for new inputs:
//
//	go test -run '^$' -fuzz FuzzSafetensorsHeader -fuzztime 60s ./nn
package nn

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

func FuzzSafetensorsHeader(f *testing.F) {
	f.Add(stSmallFile(f))
	if b, err := os.ReadFile("testdata/python.safetensors"); err == nil {
		f.Add(b)
	}
	var ck bytes.Buffer
	c := &Checkpoint{
		Tensors: []HostTensor{{Name: "w", DType: F16, Shape: []int{2}, Data: []float32{1, -2}},
			{Name: "q", DType: I8, Shape: []int{2, 2}, Data: []float32{0.5, -1.27, 0, 0}}}, // with "q.q_scale"
		Config: []byte(`{"width":8}`), Step: 3, RNG: RNGState{Seed: 1, Offset: 2},
		AdamW: &AdamWState{Step: 3,
			M: []HostTensor{{Name: "w", Shape: []int{2}, Data: []float32{0.5, 0}}},
			V: []HostTensor{{Name: "w", Shape: []int{2}, Data: []float32{0.25, 0}}}},
		Extra: map[string]string{"dims": "vq,ta"},
	}
	if err := c.Encode(&ck); err != nil {
		f.Fatal(err)
	}
	f.Add(ck.Bytes())
	for _, h := range []string{
		`{}`, `{"__metadata__":{"a":"b"}}`, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":"BF16","shape":[2,0],"data_offsets":[0,0]},"b":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
		`{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}`,
		`{"__metadata__":{"align":"{\"format\":\"align.checkpoint\",\"version\":1,\"data_crc32c\":0}"}}`,
		`{"a":{"dtype":"I8","shape":[1,4],"data_offsets":[4,8]},"a.q_scale":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":"I8","shape":[2,4],"data_offsets":[0,8]}}`,
	} {
		f.Add(stRawFile(h, make([]byte, 8)))
	}
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<63))

	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := ParseSafetensors("fuzz.safetensors", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.safetensors: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
		} else {
			hdr := binary.LittleEndian.Uint64(b)
			stCheckConsistent(t, sf, len(b)-8-int(hdr))
		}
		c, err := ReadCheckpoint("fuzz.safetensors", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "load fuzz.safetensors: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		// A checkpoint that loads can be written again (when its dtypes are writable) and
		// reads back with the same names and shapes.
		for i := range c.Tensors {
			if !c.Tensors[i].DType.Writable() {
				c.Tensors[i].DType = F32
			}
		}
		var out bytes.Buffer
		if err := c.Encode(&out); err != nil {
			return // e.g. a foreign file whose weights use the "optim." prefix or Extra "align"
		}
		c2, err := ReadCheckpoint("again.safetensors", out.Bytes())
		if err != nil {
			t.Fatalf("re-encoded checkpoint does not load: %v", err)
		}
		if len(c2.Tensors) != len(c.Tensors) || c2.Step != c.Step || c2.RNG != c.RNG {
			t.Fatalf("re-encoded checkpoint differs: %d vs %d tensors, step %d vs %d", len(c2.Tensors), len(c.Tensors), c2.Step, c.Step)
		}
	})
}
