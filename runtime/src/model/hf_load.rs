//! Loading a Hugging Face safetensors directory: `BitNetForCausalLM` (packed uint8 weights +
//! `weight_scale`) and tern's Scaled-Ternary-Block convention (docs/formats.md).

use std::path::Path;

use ndarray::Array2;
use serde_json::Value as Json;
use tern_spec::pack::{Layout, Shape};
use tern_spec::BlockShape;

use super::config::ModelConfig;
use super::weights::{to_matrix, LayerNorms, Linear, LinearKind, Weights};
use super::{LoadError, Model, SourceFormat};
use crate::decode::{self, Ternary, TernaryScales};
use crate::safetensors::{StFile, StTensor};
use crate::tokenizer::Tokenizer;

/// `quant_method` of tern's Scaled-Ternary-Block safetensors.
pub const STB_METHOD: &str = "tern_stb";

/// How a Hugging Face BitNet checkpoint applies `weight_scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleConvention {
    /// `linear_class: bitlinear` (transformers' default `BitLinear`): y = … / weight_scale.
    Divide,
    /// `linear_class: autobitlinear`: y = … · weight_scale.
    Multiply,
}

enum Quant {
    /// Ternary floats/int8/packed with optional per-tensor `weight_scale`.
    BitNet(ScaleConvention),
    Stb {
        block: BlockShape,
    },
}

fn read_json(path: &Path) -> Result<Json, LoadError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: p.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| LoadError::invalid(&p, format!("not valid JSON: {e}")))
}

/// Loads `dir/config.json`, `dir/model.safetensors`, `dir/tokenizer.json`.
pub fn load_dir(dir: &Path) -> Result<Model, LoadError> {
    let cfg_path = dir.join("config.json");
    let cfg_file = cfg_path.display().to_string();
    let j = read_json(&cfg_path)?;
    let cfg = ModelConfig::from_hf(&j).map_err(|p| LoadError::invalid(&cfg_file, p))?;
    let q = &j["quantization_config"];
    let quant = match q["quant_method"].as_str() {
        None | Some("bitnet") => Quant::BitNet(match q["linear_class"].as_str() {
            None | Some("bitlinear") => ScaleConvention::Divide,
            Some("autobitlinear") => ScaleConvention::Multiply,
            Some(c) => {
                return Err(LoadError::invalid(&cfg_file, format!("quantization_config.linear_class = {c:?} (legal: \"bitlinear\", \"autobitlinear\")")))
            }
        }),
        Some(STB_METHOD) => {
            let dim = |k: &str| {
                q[k].as_u64()
                    .filter(|&v| (1..=1 << 20).contains(&v))
                    .map(|v| v as u32)
                    .ok_or_else(|| LoadError::invalid(&cfg_file, format!("quantization_config.{k} = {} (legal: 1..=1048576)", q[k])))
            };
            Quant::Stb {
                block: BlockShape {
                    n: dim("block_n")?,
                    k: dim("block_k")?,
                },
            }
        }
        Some(m) => {
            return Err(LoadError::invalid(&cfg_file, format!("quantization_config.quant_method = {m:?} (legal: \"bitnet\", \"{STB_METHOD}\")")))
        }
    };
    let st_path = dir.join("model.safetensors");
    if !st_path.exists() && dir.join("model.safetensors.index.json").exists() {
        return Err(LoadError::invalid(
            &dir.display().to_string(),
            "sharded checkpoints (model.safetensors.index.json) are not supported yet",
        ));
    }
    let st = StFile::open(&st_path)?;
    let file = st.path.clone();
    let (h, v) = (cfg.hidden, cfg.vocab);
    let embed = Array2::from_shape_vec((v, h), floats(&st, "model.embed_tokens.weight", &[v, h])?)
        .map_err(|e| LoadError::tensor(&file, "model.embed_tokens.weight", e))?;
    let output_norm = floats(&st, "model.norm.weight", &[h])?;
    let lm_head = if cfg.tied {
        None
    } else {
        Some(
            Array2::from_shape_vec((v, h), floats(&st, "lm_head.weight", &[v, h])?)
                .map_err(|e| LoadError::tensor(&file, "lm_head.weight", e))?,
        )
    };
    let mut norms = Vec::with_capacity(cfg.n_layers);
    let mut linears = Vec::with_capacity(cfg.n_layers * 7);
    let mut formats = std::collections::BTreeSet::new();
    for l in 0..cfg.n_layers {
        let p = |s: &str| format!("model.layers.{l}.{s}.weight");
        let sub = |s: &str, d: usize| -> Result<Option<Vec<f32>>, LoadError> {
            if cfg.sub_norms {
                floats(&st, &p(s), &[d]).map(Some)
            } else {
                Ok(None)
            }
        };
        norms.push(LayerNorms {
            attn_norm: floats(&st, &p("input_layernorm"), &[h])?,
            attn_sub_norm: sub("self_attn.attn_sub_norm", cfg.q_dim())?,
            ffn_norm: floats(&st, &p("post_attention_layernorm"), &[h])?,
            ffn_sub_norm: sub("mlp.ffn_sub_norm", cfg.ffn)?,
        });
        for kind in LinearKind::ALL {
            let name = p(kind.hf());
            let (rows, cols) = kind.shape(&cfg);
            let (w, fmt) = match &quant {
                Quant::BitNet(conv) => bitnet_linear(&st, &name, rows, cols, *conv)?,
                Quant::Stb { block } => stb_linear(&st, &name, rows, cols, *block)?,
            };
            formats.insert(fmt);
            linears.push(Linear {
                name: format!("blk.{l}.{}", kind.gguf()),
                w,
            });
        }
    }
    let tok_path = dir.join("tokenizer.json");
    let tok_file = tok_path.display().to_string();
    let text = std::fs::read_to_string(&tok_path).map_err(|source| LoadError::Io {
        path: tok_file.clone(),
        source,
    })?;
    let mut tokenizer =
        Tokenizer::from_hf_json(&text, &tok_file).map_err(|source| LoadError::Tokenizer {
            file: tok_file.clone(),
            source,
        })?;
    let id = |k: &str| match &j[k] {
        Json::Array(a) => a.first().and_then(Json::as_u64),
        x => x.as_u64(),
    };
    let n_tok = tokenizer.vocab_size() as u64;
    if let Some(b) = id("bos_token_id").filter(|&b| b < n_tok) {
        tokenizer.bos = Some(b as u32);
    }
    if let Some(e) = id("eos_token_id").filter(|&e| e < n_tok) {
        tokenizer.eos = Some(e as u32);
    }
    Ok(Model {
        config: cfg,
        weights: Weights {
            embed,
            output_norm,
            lm_head,
            norms,
            linears,
        },
        tokenizer,
        format: SourceFormat::HfSafetensors,
        weight_format: formats.into_iter().collect::<Vec<_>>().join(", "),
        path: dir.display().to_string(),
    })
}

fn check_shape(st: &StFile, t: &StTensor, want: &[usize]) -> Result<(), LoadError> {
    if t.shape != want {
        return Err(LoadError::tensor(
            &st.path,
            &t.name,
            format!("shape {:?}, expected {want:?}", t.shape),
        ));
    }
    Ok(())
}

/// A float tensor of shape `want`.
fn floats(st: &StFile, name: &str, want: &[usize]) -> Result<Vec<f32>, LoadError> {
    let t = st.require(name)?;
    check_shape(st, t, want)?;
    match t.decode_dtype() {
        Some(d @ (decode::Dtype::F32 | decode::Dtype::F16 | decode::Dtype::BF16)) => {
            decode::to_f32(d, st.data(t), t.elems())
                .map_err(|e| LoadError::tensor(&st.path, name, e))
        }
        _ => Err(LoadError::tensor(
            &st.path,
            name,
            format!("dtype {} (legal here: F32, F16, BF16)", t.dtype),
        )),
    }
}

/// A BitNet linear: packed U8 `[N/4, K]`, I8 trits or ternary floats `[N, K]`, with an
/// optional scalar `weight_scale` (required for packed weights).
fn bitnet_linear(
    st: &StFile,
    name: &str,
    rows: usize,
    cols: usize,
    conv: ScaleConvention,
) -> Result<(tern_spec::ScaledTernaryMatrix, String), LoadError> {
    let t = st.require(name)?;
    let shape = Shape::new(rows, cols);
    let err = |e: &dyn std::fmt::Display| LoadError::tensor(&st.path, name, e);
    let (tern, what): (Ternary, &str) = match t.decode_dtype() {
        Some(decode::Dtype::U8) => {
            check_shape(st, t, &[rows.div_ceil(4), cols])?;
            (
                decode::unpack_layout(Layout::Hf, shape, st.data(t)).map_err(|e| err(&e))?,
                "hf packed uint8",
            )
        }
        Some(decode::Dtype::I8) => {
            check_shape(st, t, &[rows, cols])?;
            (
                decode::ternary_from_i8(shape, st.data(t)).map_err(|e| err(&e))?,
                "int8 trits",
            )
        }
        Some(d) => {
            check_shape(st, t, &[rows, cols])?;
            let v = decode::to_f32(d, st.data(t), rows * cols).map_err(|e| err(&e))?;
            (
                decode::ternary_from_floats(shape, &v).map_err(|e| err(&e))?,
                "ternary floats",
            )
        }
        None => {
            return Err(err(&format!(
                "dtype {} is not a ternary weight encoding (legal: U8 packed, I8, F32, F16, BF16)",
                t.dtype
            )))
        }
    };
    let base = match tern.scales {
        TernaryScales::PerTensor(s) => s,
        _ => 1.0,
    };
    let sname = format!("{}_scale", name); // `<module>.weight_scale`
    let scale = match st.get(&sname) {
        None if t.dtype == "U8" => {
            return Err(LoadError::tensor(
                &st.path,
                &sname,
                "missing (packed BitNet weights need their weight_scale)",
            ))
        }
        None => base,
        Some(s) => {
            if s.elems() != 1 {
                return Err(LoadError::tensor(
                    &st.path,
                    &sname,
                    format!("shape {:?}, expected one value", s.shape),
                ));
            }
            let d = s
                .decode_dtype()
                .filter(|d| !matches!(d, decode::Dtype::U8 | decode::Dtype::I8))
                .ok_or_else(|| {
                    LoadError::tensor(
                        &st.path,
                        &sname,
                        format!("dtype {} (legal: F32, F16, BF16)", s.dtype),
                    )
                })?;
            let ws = decode::to_f32(d, st.data(s), 1)
                .map_err(|e| LoadError::tensor(&st.path, &sname, e))?[0];
            if ws.is_nan() || ws <= 0.0 || ws.is_infinite() {
                return Err(LoadError::tensor(
                    &st.path,
                    &sname,
                    format!("value {ws} (legal: finite, > 0)"),
                ));
            }
            match conv {
                // tern always multiplies: the effective scale of a dividing checkpoint is 1/ws.
                ScaleConvention::Divide => (base as f64 / ws as f64) as f32,
                ScaleConvention::Multiply => (base as f64 * ws as f64) as f32,
            }
        }
    };
    let tern = Ternary {
        scales: TernaryScales::PerTensor(scale),
        ..tern
    };
    let conv_name = match conv {
        ScaleConvention::Divide => "bitlinear (÷ weight_scale)",
        ScaleConvention::Multiply => "autobitlinear (× weight_scale)",
    };
    let w = to_matrix(tern, None).map_err(|e| err(&e))?;
    Ok((w, format!("{what}, {conv_name}")))
}

/// A tern STB linear: tern2 U8 `[N, ⌈K/4⌉]` or I8 `[N, K]` plus F32 `block_scale`.
fn stb_linear(
    st: &StFile,
    name: &str,
    rows: usize,
    cols: usize,
    block: BlockShape,
) -> Result<(tern_spec::ScaledTernaryMatrix, String), LoadError> {
    let t = st.require(name)?;
    let shape = Shape::new(rows, cols);
    let err = |e: &dyn std::fmt::Display| LoadError::tensor(&st.path, name, e);
    let tern = match t.dtype.as_str() {
        "U8" => {
            check_shape(st, t, &[rows, cols.div_ceil(4)])?;
            decode::unpack_layout(Layout::Tern2, shape, st.data(t)).map_err(|e| err(&e))?
        }
        "I8" => {
            check_shape(st, t, &[rows, cols])?;
            decode::ternary_from_i8(shape, st.data(t)).map_err(|e| err(&e))?
        }
        d => {
            return Err(err(&format!(
                "dtype {d} (legal for tern STB weights: U8 tern2, I8)"
            )))
        }
    };
    let sname = name.trim_end_matches(".weight").to_string() + ".block_scale";
    let (nb, kb) = (
        rows.div_ceil(block.n as usize),
        cols.div_ceil(block.k as usize),
    );
    let s = floats(st, &sname, &[nb, kb])?;
    let s =
        Array2::from_shape_vec((nb, kb), s).map_err(|e| LoadError::tensor(&st.path, &sname, e))?;
    let w = to_matrix(tern, Some((block, s.view()))).map_err(|e| err(&e))?;
    Ok((
        w,
        format!(
            "tern STB {block} ({})",
            if t.dtype == "U8" { "tern2" } else { "int8" }
        ),
    ))
}
