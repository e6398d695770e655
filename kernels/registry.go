// Device registry: named constructors, so that commands can take --device NAME. The CPU
// device is always registered as "cpu"; other backends register themselves from their
// package's init (kernels/cuda: "cuda" with the build tag cuda, "cuda-emu" always), so a
// command that imports them offers them.
//
// Test: go test ./kernels -run Registry
package kernels

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

var (
	registryMu sync.Mutex
	registry   = map[string]func() (Device, error){
		"cpu": func() (Device, error) { return NewCPU(0), nil },
	}
)

// Register makes a device constructor available to Open under name; registering a name
// twice panics.
func Register(name string, open func() (Device, error)) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("kernels: device " + name + " registered twice")
	}
	registry[name] = open
}

// DeviceNames lists the registered device names, sorted.
func DeviceNames() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Describer is implemented by devices that can summarise their hardware in one line (the
// CUDA device: GPU name, compute capability, SMs, memory, driver), for `align info`.
type Describer interface {
	Describe() string
}

// Precisioner is implemented by devices whose matrix products can take their inputs in less
// than FP32: Precision names the current setting, "fp32", "tf32" or "bf16" (--precision).
type Precisioner interface {
	Precision() string
}

// PrecisionOf is d's Precision, or "fp32" for a device that has no other.
func PrecisionOf(d Device) string {
	if p, ok := d.(Precisioner); ok {
		return p.Precision()
	}
	return "fp32"
}

// Open returns a new device of the registered name ("cpu", "cuda", ...).
func Open(name string) (Device, error) {
	registryMu.Lock()
	open, ok := registry[name]
	registryMu.Unlock()
	if !ok {
		msg := fmt.Sprintf("kernels: no device %q (available: %s)", name, strings.Join(DeviceNames(), ", "))
		if strings.HasPrefix(name, "cuda") {
			msg += "\n---> HINT: the CUDA device needs a binary built with -tags cuda (make build-cuda) on a machine with the CUDA 12 toolkit"
		}
		return nil, fmt.Errorf("%s", msg)
	}
	d, err := open()
	if err != nil {
		return nil, fmt.Errorf("kernels: open device %s: %w", name, err)
	}
	return d, nil
}
