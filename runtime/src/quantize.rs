//! `tern model quantize`: a float Llama- or BitNet-shaped safetensors checkpoint → tern
//! Scaled Ternary Blocks (absmean per `bn × bk` block, docs/formats.md).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use serde_json::Value as Json;
use tern_spec::pack::{self, Layout, Shape};
use tern_spec::BlockShape;

use crate::decode;
use crate::model::hf_load::STB_METHOD;
use crate::model::{LinearKind, LoadError, ModelConfig};
use crate::safetensors::{StBuilder, StFile};

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuantizeReport {
    pub linears: usize,
    pub copied: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Absmean ternarization of `w [n, k]` per block: codes and scales `[⌈n/bn⌉, ⌈k/bk⌉]`.
pub fn ternarize(w: &[f32], n: usize, k: usize, block: BlockShape) -> (Vec<i8>, Vec<f32>) {
    let (bn, bk) = (block.n as usize, block.k as usize);
    let (nb, kb) = (n.div_ceil(bn), k.div_ceil(bk));
    let mut codes = vec![0i8; n * k];
    let mut scales = vec![0f32; nb * kb];
    for i in 0..nb {
        for j in 0..kb {
            let (r0, r1, c0, c1) = (i * bn, ((i + 1) * bn).min(n), j * bk, ((j + 1) * bk).min(k));
            let sum: f64 = (r0..r1)
                .flat_map(|r| (c0..c1).map(move |c| (r, c)))
                .map(|(r, c)| w[r * k + c].abs() as f64)
                .sum();
            let gamma = (sum / ((r1 - r0) * (c1 - c0)) as f64) as f32;
            scales[i * kb + j] = gamma;
            if gamma > 0.0 {
                for r in r0..r1 {
                    for c in c0..c1 {
                        codes[r * k + c] =
                            (w[r * k + c] / gamma).round_ties_even().clamp(-1.0, 1.0) as i8;
                    }
                }
            }
        }
    }
    (codes, scales)
}

/// Converts `input` (a directory with config.json, model.safetensors, tokenizer.json) into an
/// STB directory `out`.
pub fn quantize(input: &Path, out: &Path, block: BlockShape) -> Result<QuantizeReport, LoadError> {
    let cfg_path = input.join("config.json");
    let cfile = cfg_path.display().to_string();
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| LoadError::Io {
            path: p.clone(),
            source,
        }
    };
    let mut j: Json =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).map_err(io(&cfg_path))?)
            .map_err(|e| LoadError::invalid(&cfile, e))?;
    let cfg = ModelConfig::from_hf(&j).map_err(|e| LoadError::invalid(&cfile, e))?;
    if block.n == 0 || block.k == 0 {
        return Err(LoadError::invalid(
            &cfile,
            format!("block {block} (legal: both sides ≥ 1)"),
        ));
    }
    let st = StFile::open(&input.join("model.safetensors"))?;
    let mut linear_names = std::collections::HashMap::new();
    for l in 0..cfg.n_layers {
        for kind in LinearKind::ALL {
            linear_names.insert(
                format!("model.layers.{l}.{}.weight", kind.hf()),
                kind.shape(&cfg),
            );
        }
    }
    let mut b = StBuilder::new();
    b.meta("format", "pt")
        .meta("tern.format", "stb")
        .meta("tern.block", &block.to_string())
        .meta("tern.weight_layout", "tern2");
    for t in &st.tensors {
        match linear_names.get(&t.name) {
            Some(&(n, k)) => {
                if t.shape != [n, k] {
                    return Err(LoadError::tensor(
                        &st.path,
                        &t.name,
                        format!("shape {:?}, expected [{n}, {k}]", t.shape),
                    ));
                }
                b.tensor(&t.name, "U8", &[n, k.div_ceil(4)]);
                let s = t.name.trim_end_matches(".weight").to_string() + ".block_scale";
                b.tensor(
                    &s,
                    "F32",
                    &[n.div_ceil(block.n as usize), k.div_ceil(block.k as usize)],
                );
            }
            None => {
                b.tensor(&t.name, &t.dtype, &t.shape);
            }
        }
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let opath = out.join("model.safetensors");
    let mut w = b.begin(BufWriter::new(File::create(&opath).map_err(io(&opath))?))?;
    let (mut linears, mut copied) = (0, 0);
    for t in &st.tensors {
        match linear_names.get(&t.name) {
            Some(&(n, k)) => {
                let d = t
                    .decode_dtype()
                    .filter(|d| {
                        matches!(
                            d,
                            decode::Dtype::F32 | decode::Dtype::F16 | decode::Dtype::BF16
                        )
                    })
                    .ok_or_else(|| {
                        LoadError::tensor(
                            &st.path,
                            &t.name,
                            format!("dtype {} (legal: F32, F16, BF16 float weights)", t.dtype),
                        )
                    })?;
                let v = decode::to_f32(d, st.data(t), n * k)
                    .map_err(|e| LoadError::tensor(&st.path, &t.name, e))?;
                let (codes, scales) = ternarize(&v, n, k, block);
                let packed = pack::pack(Layout::Tern2, Shape::new(n, k), &codes, None)
                    .map_err(|e| LoadError::tensor(&st.path, &t.name, e))?;
                w.write_tensor(&t.name, &packed)?;
                let s = t.name.trim_end_matches(".weight").to_string() + ".block_scale";
                w.write_tensor(
                    &s,
                    &scales
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect::<Vec<u8>>(),
                )?;
                linears += 1;
            }
            None => {
                w.write_tensor(&t.name, st.data(t))?;
                copied += 1;
            }
        }
    }
    w.finish()?;
    j["quantization_config"] = serde_json::json!({"quant_method": STB_METHOD, "block_n": block.n, "block_k": block.k, "weight_layout": "tern2"});
    let ocfg = out.join("config.json");
    std::fs::write(&ocfg, serde_json::to_string_pretty(&j).unwrap_or_default())
        .map_err(io(&ocfg))?;
    for extra in [
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        let p = input.join(extra);
        if p.exists() {
            std::fs::copy(&p, out.join(extra)).map_err(io(&p))?;
        }
    }
    Ok(QuantizeReport {
        linears,
        copied,
        bytes_in: st.file_len(),
        bytes_out: std::fs::metadata(&opath).map_err(io(&opath))?.len(),
    })
}
