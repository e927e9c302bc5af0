//! Loading a model from GGUF: llama.cpp `bitnet`, microsoft/BitNet `bitnet-b1.58`, and
//! tern's Llama-style Scaled-Ternary-Block files (`llama` + `tern.stb.*`, docs/formats.md).

use std::collections::BTreeSet;
use std::path::Path;

use ndarray::Array2;
use tern_spec::pack::{Layout, Shape};
use tern_spec::BlockShape;

use super::config::ModelConfig;
use super::weights::{to_matrix, LayerNorms, Linear, LinearKind, Weights};
use super::{LoadError, Model, SourceFormat};
use crate::decode::{self, Dtype, Ternary, TernaryScales};
use crate::gguf::{GgmlType, GgufFile};
use crate::tokenizer::Tokenizer;

/// Metadata keys of tern's Scaled-Ternary-Block convention.
pub const STB_BLOCK_N: &str = "tern.stb.block_n";
pub const STB_BLOCK_K: &str = "tern.stb.block_k";

/// Loads a GGUF model file.
pub fn load(path: &Path) -> Result<Model, LoadError> {
    let f = GgufFile::open(path)?;
    let file = f.source.clone();
    let emb = f
        .tensor("token_embd.weight")
        .ok_or_else(|| LoadError::tensor(&file, "token_embd.weight", "missing (required)"))?;
    if emb.ne.len() != 2 {
        return Err(LoadError::tensor(
            &file,
            "token_embd.weight",
            format!("ne = {:?}, expected 2 dims [hidden, vocab]", emb.ne),
        ));
    }
    let cfg =
        ModelConfig::from_gguf(&f, emb.ne[1] as usize).map_err(|p| LoadError::invalid(&file, p))?;
    let (h, v) = (cfg.hidden, cfg.vocab);
    let embed = Array2::from_shape_vec((v, h), floats(&f, "token_embd.weight", &[h, v])?)
        .map_err(|e| LoadError::tensor(&file, "token_embd.weight", e))?;
    let output_norm = floats(&f, "output_norm.weight", &[h])?;
    let lm_head = if cfg.tied {
        None
    } else {
        Some(
            Array2::from_shape_vec((v, h), floats(&f, "output.weight", &[h, v])?)
                .map_err(|e| LoadError::tensor(&file, "output.weight", e))?,
        )
    };
    let stb = match (f.get(STB_BLOCK_N), f.get(STB_BLOCK_K)) {
        (None, None) => None,
        _ => {
            let get = |k: &str| -> Result<u32, LoadError> {
                f.get_uint(k, 1 << 20)?
                    .filter(|&x| x >= 1)
                    .map(|x| x as u32)
                    .ok_or_else(|| LoadError::invalid(&file, format!("{k} is missing or 0 (both {STB_BLOCK_N} and {STB_BLOCK_K} are needed, each 1..=1048576)")))
            };
            Some(BlockShape {
                n: get(STB_BLOCK_N)?,
                k: get(STB_BLOCK_K)?,
            })
        }
    };
    let mut norms = Vec::with_capacity(cfg.n_layers);
    let mut linears = Vec::with_capacity(cfg.n_layers * 7);
    let mut types = BTreeSet::new();
    for l in 0..cfg.n_layers {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        let sub = |s: &str, d: usize| -> Result<Option<Vec<f32>>, LoadError> {
            if cfg.sub_norms {
                floats(&f, &n(s), &[d]).map(Some)
            } else {
                Ok(None)
            }
        };
        norms.push(LayerNorms {
            attn_norm: floats(&f, &n("attn_norm"), &[h])?,
            attn_sub_norm: sub("attn_sub_norm", cfg.q_dim())?,
            ffn_norm: floats(&f, &n("ffn_norm"), &[h])?,
            ffn_sub_norm: sub("ffn_sub_norm", cfg.ffn)?,
        });
        for kind in LinearKind::ALL {
            let name = n(kind.gguf());
            let (rows, cols) = kind.shape(&cfg);
            let (t, ty) = ternary(&f, &name, rows, cols)?;
            types.insert(ty.name());
            let w = match stb {
                None => to_matrix(t, None),
                Some(block) => {
                    if let TernaryScales::PerRowGroup { values, .. } = &t.scales {
                        if let Some(bad) = values.iter().find(|&&d| d != 1.0) {
                            return Err(LoadError::tensor(&file, &name, format!("{ty} scale d = {bad}: with tern.stb block scales every d must be 1.0")));
                        }
                    }
                    let sname = format!("blk.{l}.{}.block_scale", kind.gguf());
                    let (nb, kb) = (rows.div_ceil(block.n as usize), cols.div_ceil(block.k as usize));
                    let s = Array2::from_shape_vec((nb, kb), floats(&f, &sname, &[kb, nb])?)
                        .map_err(|e| LoadError::tensor(&file, &sname, e))?;
                    to_matrix(t, Some((block, s.view())))
                }
            }
            .map_err(|p| LoadError::tensor(&file, &name, p))?;
            linears.push(Linear {
                name: format!("blk.{l}.{}", kind.gguf()),
                w,
            });
        }
    }
    let tokenizer = Tokenizer::from_gguf(&f).map_err(|source| LoadError::Tokenizer {
        file: file.clone(),
        source,
    })?;
    let mut weight_format = types.into_iter().collect::<Vec<_>>().join("+");
    if let Some(b) = stb {
        weight_format.push_str(&format!(" + tern STB block scales {b}"));
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
        format: SourceFormat::Gguf,
        weight_format,
        path: file,
    })
}

/// An F32/F16/BF16 tensor whose `ne` (ggml order) must equal `ne`.
fn floats(f: &GgufFile, name: &str, ne: &[usize]) -> Result<Vec<f32>, LoadError> {
    let file = &f.source;
    let t = f
        .tensor(name)
        .ok_or_else(|| LoadError::tensor(file, name, "missing (required)"))?;
    let want: Vec<u64> = ne.iter().map(|&d| d as u64).collect();
    if t.ne != want {
        return Err(LoadError::tensor(
            file,
            name,
            format!("shape ne = {:?}, expected {want:?}", t.ne),
        ));
    }
    let dt = match t.ty {
        GgmlType::F32 => Dtype::F32,
        GgmlType::F16 => Dtype::F16,
        GgmlType::BF16 => Dtype::BF16,
        ty => {
            return Err(LoadError::tensor(
                file,
                name,
                format!("type {ty} is not supported here (legal: F32, F16, BF16)"),
            ))
        }
    };
    decode::to_f32(dt, f.data(t), t.elems() as usize).map_err(|e| LoadError::tensor(file, name, e))
}

/// A ternary weight `[rows, cols]` (ne = [cols, rows]) of any type tern reads.
fn ternary(
    f: &GgufFile,
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<(Ternary, GgmlType), LoadError> {
    let file = &f.source;
    let t = f
        .tensor(name)
        .ok_or_else(|| LoadError::tensor(file, name, "missing (required)"))?;
    if t.ne != [cols as u64, rows as u64] {
        return Err(LoadError::tensor(
            file,
            name,
            format!("shape ne = {:?}, expected [{cols}, {rows}]", t.ne),
        ));
    }
    let shape = Shape::new(rows, cols);
    let bytes = f.data(t);
    let r = match t.ty {
        GgmlType::Tq1_0 => decode::unpack_layout(Layout::Tq1_0, shape, bytes),
        GgmlType::Tq2_0 => decode::unpack_layout(Layout::Tq2_0, shape, bytes),
        GgmlType::I2S => decode::unpack_layout(Layout::I2S, shape, bytes),
        GgmlType::I8 => decode::ternary_from_i8(shape, bytes).map(|mut x| {
            x.scales = TernaryScales::PerTensor(1.0);
            x
        }),
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            let dt = match t.ty {
                GgmlType::F32 => Dtype::F32,
                GgmlType::F16 => Dtype::F16,
                _ => Dtype::BF16,
            };
            decode::to_f32(dt, bytes, rows * cols).and_then(|v| decode::ternary_from_floats(shape, &v))
        }
        ty => {
            return Err(LoadError::tensor(
                file,
                name,
                format!("type {ty} is not a ternary type tern reads (legal: TQ1_0, TQ2_0, I2_S, I8, or F32/F16/BF16 holding 0/±scale)"),
            ))
        }
    };
    r.map(|x| (x, t.ty))
        .map_err(|e| LoadError::tensor(file, name, e))
}
