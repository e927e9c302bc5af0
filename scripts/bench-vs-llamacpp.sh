#!/usr/bin/env bash
# tern's `cpu` back end against llama.cpp (TQ2_0, TQ1_0) on the synthesized bitnet-2b-shape
# model (vocab 128256 × hidden 2560, 30 layers, FFN 6912): prefill and decode tokens/s at 1 and
# 2 threads, interleaved in one session, with /proc/loadavg before every run, the memory read
# bandwidth measured in the same session, and for each engine the bytes read per decoded token
# and the fraction of the bandwidth bound (bandwidth ÷ bytes per token) reached.
#
# Idempotent: llama.cpp (the copy vendored in the PyPI sdist of llama-cpp-python) is downloaded
# and built once under $TERN_CACHE (default ~/.cache/tern/llama.cpp-<version>); the GGUFs are
# written once under $MODELS (default /tmp/tern-bench-models, ~4 GB). Nothing of llama.cpp
# enters the repository. Output: a markdown table on stdout and in
# build/bench/vs-llamacpp-<date>.md, every raw record in build/bench/vs-llamacpp-<date>.json.
#
# Settings (environment): THREADS="1 2", HEADS="f32 f16 q8", PREFILL=128, DECODE=64, REPS=3,
# LLAMA_CPP_PYTHON_VERSION (default: the newest already built, else the newest on PyPI),
# CARGO_TARGET_DIR, TERN_CACHE, MODELS, SEED=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TERN_CACHE=${TERN_CACHE:-$HOME/.cache/tern}
MODELS=${MODELS:-/tmp/tern-bench-models}
OUTDIR=${OUTDIR:-$ROOT/build/bench}
THREADS=${THREADS:-"1 2"}
HEADS=${HEADS:-"f32 f16 q8"}
PREFILL=${PREFILL:-128}
DECODE=${DECODE:-64}
REPS=${REPS:-3}
SEED=${SEED:-1}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUTDIR/vs-llamacpp-$STAMP.jsonl"
JSON="$OUTDIR/vs-llamacpp-$STAMP.json"
MD="$OUTDIR/vs-llamacpp-$STAMP.md"

log() { echo "[bench-vs-llamacpp] $*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
need() { command -v "$1" >/dev/null || { log "missing: $1"; exit 1; }; }
for c in cargo cmake pip python3 jq; do need "$c"; done
mkdir -p "$TERN_CACHE" "$MODELS" "$OUTDIR"

# ---- tern ------------------------------------------------------------------------------------
log "building tern (release, $TARGET)"
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" nice -n 5 cargo build --release -q -p tern-cli)
TERN="$TARGET/release/tern"

# ---- llama.cpp from the llama-cpp-python sdist ------------------------------------------------
VERSION=${LLAMA_CPP_PYTHON_VERSION:-}
if [[ -z "$VERSION" ]]; then
  built=$(find "$TERN_CACHE" -maxdepth 4 -path '*/llama.cpp-*/build/bin/llama-bench' 2>/dev/null | sort -V | tail -n1)
  if [[ -n "$built" ]]; then
    VERSION=$(basename "$(dirname "$(dirname "$(dirname "$built")")")")
    VERSION=${VERSION#llama.cpp-}
  fi
fi
if [[ -z "$VERSION" || ! -x "$TERN_CACHE/llama.cpp-$VERSION/build/bin/llama-bench" ]]; then
  dl="$TERN_CACHE/dl"
  mkdir -p "$dl"
  spec=llama-cpp-python${VERSION:+==$VERSION}
  log "downloading the $spec sdist"
  pip download --no-deps --no-binary :all: "$spec" -d "$dl" >&2
  sdist=$(ls -t "$dl"/llama_cpp_python-*.tar.gz | head -n1)
  VERSION=$(basename "$sdist" .tar.gz)
  VERSION=${VERSION#llama_cpp_python-}
  LDIR="$TERN_CACHE/llama.cpp-$VERSION"
  if [[ ! -d "$LDIR/src" ]]; then
    tmp=$(mktemp -d)
    tar -xzf "$sdist" -C "$tmp"
    mkdir -p "$LDIR"
    mv "$tmp/llama_cpp_python-$VERSION/vendor/llama.cpp" "$LDIR/src"
    rm -rf "$tmp"
  fi
  log "building llama.cpp $VERSION in $LDIR/build (llama-bench, llama-quantize)"
  nice -n 5 cmake -S "$LDIR/src" -B "$LDIR/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF >"$LDIR/cmake.log"
  nice -n 5 cmake --build "$LDIR/build" -j"$(nproc)" --target llama-bench llama-quantize >"$LDIR/build.log"
fi
LDIR="$TERN_CACHE/llama.cpp-$VERSION"
LBENCH="$LDIR/build/bin/llama-bench"
LQUANT="$LDIR/build/bin/llama-quantize"
log "llama.cpp: vendored in llama-cpp-python $VERSION ($LDIR)"

# ---- models -----------------------------------------------------------------------------------
# tern writes the ternary linears as TQ2_0 or TQ1_0 and the (tied) embedding as F16;
# llama-quantize re-stores the embedding/output matrix as Q6_K, keeping the ternary types.
synth() { # type out
  if [[ ! -s "$2" ]]; then
    log "writing $2"
    "$TERN" model synth --preset bitnet-2b-shape --format gguf --seed "$SEED" \
      --weight-type "$1" --out "$2.tmp" >&2
    mv "$2.tmp" "$2"
  fi
}
requant() { # in out ftype
  if [[ ! -s "$2" ]]; then
    log "writing $2 (Q6_K embedding/output)"
    "$LQUANT" --allow-requantize --token-embedding-type q6_k --output-tensor-type q6_k \
      "$1" "$2.tmp" "$3" >"$2.log" 2>&1
    mv "$2.tmp" "$2"
  fi
}
synth tq2_0 "$MODELS/b2b-tq2_0-f16.gguf"
synth tq1_0 "$MODELS/b2b-tq1_0-f16.gguf"
requant "$MODELS/b2b-tq2_0-f16.gguf" "$MODELS/b2b-tq2_0-q6_k.gguf" TQ2_0
requant "$MODELS/b2b-tq1_0-f16.gguf" "$MODELS/b2b-tq1_0-q6_k.gguf" TQ1_0
LLAMA_MODELS=(b2b-tq2_0-q6_k b2b-tq1_0-q6_k b2b-tq2_0-f16 b2b-tq1_0-f16)

# The GGUF types of one model: the ternary linears' and the embedding/output matrix's.
types() {
  "$TERN" model inspect "$1" --json --all | jq -c '
    [.tensors[] | select(.name|test("^blk\\.")) | select(.name|test("norm")|not) | .dtype] as $lin |
    { linears: ($lin|unique),
      embedding: ([.tensors[] | select(.name=="token_embd.weight") | .dtype][0]),
      output: (([.tensors[] | select(.name=="output.weight") | .dtype][0]) // "tied") }'
}

# ---- runs, interleaved ------------------------------------------------------------------------
: >"$RAW"
record() { jq -c "$1" >>"$RAW"; }
log "load average at start: $(load)"
for t in $THREADS; do
  l0=$(load)
  bw=$("$TERN" bench bandwidth --threads "$t" --seconds 2 --json)
  record "{kind:\"bandwidth\", threads:$t, loadavg_before:\"$l0\", result:.[0]}" <<<"$bw"
  log "bandwidth, $t thread(s): $(jq '.[0].gbps' <<<"$bw") GB/s (load $l0)"
  l0=$(load)
  log "tern cpu:$t heads ${HEADS// /,} (load $l0)"
  # one process, one model load; each head runs in turn (bandwidth probed before each)
  r=$("$TERN" bench run --model "$MODELS/b2b-tq2_0-f16.gguf" --backend "cpu:$t" --head "${HEADS// /,}" \
    --prefill "$PREFILL" --decode "$DECODE" --reps "$REPS" --json)
  jq -c --arg l0 "$l0" --argjson t "$t" \
    '(if type == "array" then .[] else . end) | {kind:"tern", threads:$t, head:.head, loadavg_before:$l0, result:.}' \
    <<<"$r" >>"$RAW"
  for m in "${LLAMA_MODELS[@]}"; do
    l0=$(load)
    log "llama.cpp $m, $t thread(s) (load $l0)"
    # prefill from an empty cache; decode after PREFILL cached tokens (-d), as tern decodes
    # after its prefill, so both attend over the same context
    pp=$("$LBENCH" -m "$MODELS/$m.gguf" -t "$t" -p "$PREFILL" -n 0 -r "$REPS" -o json 2>/dev/null)
    tg=$("$LBENCH" -m "$MODELS/$m.gguf" -t "$t" -p 0 -n "$DECODE" -d "$PREFILL" -r "$REPS" -o json 2>/dev/null)
    r=$(jq -s 'add' <<<"$pp$tg")
    ty=$(types "$MODELS/$m.gguf")
    record "{kind:\"llama.cpp\", model:\"$m\", threads:$t, version:\"$VERSION\", types:$ty, loadavg_before:\"$l0\", result:.}" <<<"$r"
  done
done
log "load average at end: $(load)"

# ---- table ------------------------------------------------------------------------------------
jq -s --arg stamp "$STAMP" --arg version "$VERSION" --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
  '{date:$stamp, cpu:$cpu, llama_cpp_python:$version, records:.}' "$RAW" >"$JSON"
python3 - "$JSON" >"$MD" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
recs = d["records"]
bw = {r["threads"]: r["result"]["gbps"] for r in recs if r["kind"] == "bandwidth"}
# KV cache bytes per cached position (F32, from tern's record of the same model) and the mean
# context of a decode step: decode step i attends to prefill + i + 1 positions
tern0 = next(r["result"] for r in recs if r["kind"] == "tern")
kv_row = tern0["kv_bytes_per_position"]
mean_ctx = tern0["prefill_tokens"] + (tern0["decode_tokens"] + 1) / 2
print(f"tern vs llama.cpp (llama-cpp-python {d['llama_cpp_python']}) on bitnet-2b-shape, {d['date']}, {d['cpu']}\n")
print("| engine | weights | embedding/output | threads | prefill tok/s | decode tok/s | MB/token | bandwidth GB/s | bound tok/s | % of bound | loadavg before |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
for r in recs:
    t = r["threads"]
    if r["kind"] == "tern":
        x = r["result"]
        out = {"f32": "F32 (from F16)", "f16": "F16", "q8": "Q8 (int8 rows, int8 acts)"}[x["head"]]
        b = x["bytes_per_token"]
        g = x.get("bandwidth_gbps") or bw.get(t)
        bound = g * 1e9 / b
        print(f"| tern cpu:{t} --head {x['head']} | tern 2-bit tiles (from TQ2_0) | {out} | {t} | {x['prefill_tokens_per_s']:.1f} | {x['decode_tokens_per_s']:.1f} | {b/1e6:.0f} | {g:.1f} | {bound:.1f} | {100*x['decode_tokens_per_s']/bound:.0f}% | {r['loadavg_before']} |")
    elif r["kind"] == "llama.cpp":
        res = r["result"]
        pp = next(x for x in res if x["n_prompt"] > 0 and x["n_gen"] == 0)
        tg = next(x for x in res if x["n_gen"] > 0 and x["n_prompt"] == 0)
        ty = r["types"]
        # weights (llama-bench's model_size; the embedding is tied, stored once) plus the KV
        # cache its decode reads: llama.cpp caches F16, half of tern's F32 bytes per position,
        # over the same mean context (decode after PREFILL cached tokens)
        b = tg["model_size"] + round(kv_row / 2 * mean_ctx)
        g = bw.get(t)
        bound = g * 1e9 / b
        outp = ty["embedding"] + (" (tied)" if ty["output"] == "tied" else f" / {ty['output']}")
        print(f"| llama.cpp ({d['llama_cpp_python']}) | {','.join(ty['linears'])} | {outp} | {t} | {pp['avg_ts']:.1f} | {tg['avg_ts']:.1f} | {b/1e6:.0f} | {g:.1f} | {bound:.1f} | {100*tg['avg_ts']/bound:.0f}% | {r['loadavg_before']} |")
print("\nBandwidth: tern's probe (`tern bench bandwidth`), best sample; tern rows use the probe taken by `tern bench run` just before the run.")
print("MB/token: bytes one decoded token reads: weights (tern: prepared ternary tiles + head; llama.cpp: llama-bench's model_size) plus the KV cache over the mean decode context (tern F32, llama.cpp F16).")
print("Decode runs after the prefill's tokens are cached in both engines (llama-bench -d).")
PY
cat "$MD"
log "raw: $JSON, table: $MD"
