// Tests of the device registry.
//
// Test: go test ./kernels -run Registry
package kernels

import (
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	d, err := Open("cpu")
	if err != nil || d.Name() != "cpu" {
		t.Fatalf("Open(cpu) = %v, %v", d, err)
	}
	if _, err := Open("cuda-nope"); err == nil || !strings.Contains(err.Error(), "HINT") {
		t.Fatalf("Open of an unknown cuda device: %v", err)
	}
	Register("registry-test", func() (Device, error) { return NewCPU(1), nil })
	found := false
	for _, n := range DeviceNames() {
		found = found || n == "registry-test"
	}
	if !found {
		t.Fatal("registered device not listed")
	}
	defer func() {
		if recover() == nil {
			t.Error("second registration of a name did not panic")
		}
	}()
	Register("registry-test", nil)
}
