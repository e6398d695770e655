// Package onnxpb is the Go code generated from ONNX's onnx.proto (the ONNX 1.23.2 release,
// IR version 14, Apache-2.0, copied unchanged from the onnx Python wheel into this directory).
// align writes ONNX models with it (rewards/onnx export) and reads their headers; ONNX Runtime
// 1.30 loads IR versions up to 13, so align writes IR 9 with opset 17.
//
// Regenerate (protoc 3.21.12 from Debian's protobuf-compiler):
//
//	GOBIN=$PWD/bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	cd rewards/onnx/internal/onnxpb && PATH=$PWD/../../../../bin:$PATH protoc -I . --go_out=. \
//	    --go_opt=paths=source_relative \
//	    --go_opt=Monnx.proto=github.com/alignkit/align/rewards/onnx/internal/onnxpb onnx.proto
//
// Test: go test ./rewards/onnx (the export tests marshal and load models built with it)
package onnxpb
