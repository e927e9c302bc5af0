"""Independent cross-check of tern's TQ1_0 / TQ2_0 bytes against gguf-py (PyPI `gguf`).

Driven by spec/tests/gguf_py_crosscheck.rs, which writes into DIR:
  manifest.json            {"types": ["TQ1_0", "TQ2_0"], "cases": [{"name", "rows", "cols"}]}
  <name>.f32               the weights trit * d, float32 little-endian, row-major [rows, cols]
  <name>.<type lowercase>  the bytes tern packed for that type
This script writes, using only gguf-py's own reference code (gguf.quants):
  <name>.<TYPE>.py.bin     gguf.quants.quantize(weights, TYPE)   -> compared to tern's bytes
  <name>.<TYPE>.py.f32     gguf.quants.dequantize(tern's bytes)  -> compared to the weights
Usage: python gguf_py_crosscheck.py DIR
"""

import json
import pathlib
import sys
from importlib.metadata import version

import numpy as np
from gguf import quants
from gguf.constants import GGMLQuantizationType


def main(d: pathlib.Path) -> None:
    manifest = json.loads((d / "manifest.json").read_text())
    for case in manifest["cases"]:
        name, rows, cols = case["name"], case["rows"], case["cols"]
        weights = np.fromfile(d / f"{name}.f32", dtype="<f4").reshape(rows, cols)
        for type_name in manifest["types"]:
            qtype = GGMLQuantizationType[type_name]
            ours = quants.quantize(weights, qtype)
            ours.astype(np.uint8).tofile(d / f"{name}.{type_name}.py.bin")
            tern = np.fromfile(d / f"{name}.{type_name.lower()}", dtype=np.uint8)
            back = quants.dequantize(tern.reshape(rows, -1), qtype)
            back.astype("<f4").tofile(d / f"{name}.{type_name}.py.f32")
    print(f"gguf-py {version('gguf')}, numpy {np.__version__}: {len(manifest['cases'])} cases done")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
