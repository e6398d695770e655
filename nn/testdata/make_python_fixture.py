"""Writes python.safetensors, the fixture of TestSafetensorsPythonFixture (nn/safetensors_test.go).

The file comes from the reference implementation (the safetensors Python package, Rust
core), so the Go reader is checked against files it did not write itself. Every value is
exactly representable in its dtype; the Go test lists the same values.

    python -m venv /tmp/st && /tmp/st/bin/pip install safetensors numpy
    /tmp/st/bin/python nn/testdata/make_python_fixture.py   # from the repository root
"""

import os

import numpy as np
from safetensors import TensorSpec, serialize_file
from safetensors.numpy import save_file


def bits(dtype, values, np_type):
    """A raw tensor for dtypes numpy lacks (bfloat16, float8): values are bit patterns."""
    arr = np.asarray(values, dtype=np_type)
    return arr, TensorSpec(dtype=dtype, shape=list(arr.shape), data_ptr=arr.ctypes.data, data_len=arr.nbytes)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python.safetensors")
    inf, nan = np.inf, np.nan
    arrays = {
        "f32": np.array([[0.0, 1.5, -2.25], [1e-3, 3.4e38, -0.0], [inf, -inf, nan]], dtype=np.float32),
        # max normal, min normal, min subnormal 2^-24, a subnormal, -Inf, NaN, -0
        "f16": np.array([65504.0, 2.0**-14, 2.0**-24, -3 * 2.0**-24, -inf, nan, -0.0], dtype=np.float16),
        # 0.1 rounds to nearest float32; 1e40 overflows to +Inf; -1e-50 underflows to -0
        "f64": np.array([0.1, 1e40, -1e-50, 2.0**-149], dtype=np.float64),
        "scalar": np.array(7.0, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    # Saved through save_file once to confirm the numpy path, then rewritten together with
    # the raw dtypes below (a file holds one call's tensors).
    save_file(arrays, out)

    keep = []
    specs = {}
    for name, arr in arrays.items():
        arr = arr.copy(order="C")  # ascontiguousarray would turn the 0-d scalar into 1-d
        keep.append(arr)
        specs[name] = TensorSpec(dtype=arr.dtype.name, shape=list(arr.shape), data_ptr=arr.ctypes.data, data_len=arr.nbytes)
    # bfloat16 bit patterns: 1.0, -2.5, max finite, min subnormal, +Inf, NaN, -0
    a, specs["bf16"] = bits("bfloat16", [[0x3F80, 0xC020, 0x7F7F, 0x0001, 0x7F80, 0x7FC0, 0x8000]], np.uint16)
    keep.append(a)
    # float8_e4m3fn: 1.0, 448 (max), -2^-9 (min subnormal), NaN
    a, specs["f8_e4m3"] = bits("float8_e4m3fn", [0x38, 0x7E, 0x81, 0x7F], np.uint8)
    keep.append(a)
    # float8_e5m2: 1.0, +Inf, 2^-16 (min subnormal), -57344 (max)
    a, specs["f8_e5m2"] = bits("float8_e5m2", [0x3C, 0x7C, 0x01, 0xFB], np.uint8)
    keep.append(a)
    serialize_file(specs, out, metadata={"format": "np", "source": "make_python_fixture.py"})
    print("wrote", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
