"""Writes a GGUF file with llama.cpp's own writer (PyPI `gguf`) for tern's reader to check.

usage: gguf_py_write.py OUT.gguf MANIFEST.json SEED
The manifest lists every metadata key with its type and value, and every tensor with its
ggml shape, type and the values gguf-py dequantizes it to.
"""
import json
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize, dequantize

out, manifest_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(seed)
w = gguf.GGUFWriter(out, "bitnet")
w.add_custom_alignment(64)
meta = [
    ("t.u8", "U8", 250, w.add_uint8),
    ("t.i8", "I8", -100, w.add_int8),
    ("t.u16", "U16", 60000, w.add_uint16),
    ("t.i16", "I16", -30000, w.add_int16),
    ("t.u32", "U32", 4000000000, w.add_uint32),
    ("t.i32", "I32", -2000000000, w.add_int32),
    ("t.f32", "F32", 0.15625, w.add_float32),
    ("t.u64", "U64", 2**63 + 5, w.add_uint64),
    ("t.i64", "I64", -(2**62), w.add_int64),
    ("t.f64", "F64", 1e-300, w.add_float64),
    ("t.bool", "Bool", True, w.add_bool),
    ("t.str", "Str", "héllo ✓", w.add_string),
]
for key, _, val, fn in meta:
    fn(key, val)
strs = ["a", "", "Ġthe", "✓"]
w.add_array("t.strs", strs)
ints = [1, -2, 300000]
w.add_array("t.ints", ints)
manifest = {"metadata": [{"key": k, "type": t, "value": v} for k, t, v, _ in meta]}
manifest["metadata"].append({"key": "t.strs", "type": "Array", "elem": "Str", "value": strs})
manifest["metadata"].append({"key": "t.ints", "type": "Array", "elem": "I32", "value": ints})
manifest["metadata"].append({"key": "general.architecture", "type": "Str", "value": "bitnet"})
manifest["metadata"].append({"key": "general.alignment", "type": "U32", "value": 64})

tensors = []


def add(name, arr, qtype, values):
    if qtype in (Q.F32, Q.F16):
        w.add_tensor(name, arr)
    else:
        w.add_tensor(name, arr, raw_dtype=qtype)
    tensors.append({"name": name, "type": qtype.name, "values": [float(x) for x in np.asarray(values, dtype=np.float64).ravel()]})


f32 = rng.standard_normal((3, 5)).astype(np.float32)
add("w.f32", f32, Q.F32, f32)
f16 = rng.standard_normal((4, 6)).astype(np.float16)
add("w.f16", f16, Q.F16, f16.astype(np.float32))
bf = rng.standard_normal((2, 8)).astype(np.float32)
bq = quantize(bf, Q.BF16)
add("w.bf16", bq, Q.BF16, dequantize(bq, Q.BF16))
for qt, rows in ((Q.TQ2_0, 3), (Q.TQ1_0, 2)):
    trits = rng.integers(-1, 2, size=(rows, 512)).astype(np.float32)
    scale = np.float32(2.0 ** rng.integers(-6, 2))
    data = trits * scale
    q = quantize(data, qt)
    add("w." + qt.name.lower(), q, qt, dequantize(q, qt))
    tensors[-1]["shape"] = [rows, 512]
for t in tensors:
    t.setdefault("shape", None)
manifest["tensors"] = tensors

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
with open(manifest_path, "w") as f:
    json.dump(manifest, f)
