//! Synthetic models: random ternarized weights and a small real BPE tokenizer, written in
//! the exact real formats (GGUF, or a Hugging Face safetensors directory), so tests and demos
//! need no downloads.
//!
//! Every tensor is generated from its own RNG stream (seed, tensor name), so the GGUF and the
//! safetensors copies of a preset hold the same numbers. Values are chosen to be exact in
//! every format they are written to:
//! - ternary linears: latent `W = u / √K`, `u ~ U(-1, 1)`; BitNet variant: absmean
//!   ternarization `code = clamp(round(W / γ), -1, 1)`, `γ = mean|W|`, and the stored
//!   per-tensor scale is γ rounded to the nearest power of two, so it and its reciprocal (the
//!   Hugging Face `bitlinear` `weight_scale`) are exact in f16, bf16 and f32. Llama-STB
//!   variant: the same per `bn × bk` block, with the block's own f32 absmean as its scale.
//! - embeddings `k / 256`, `k ∈ [-64, 64]`; norm weights `1 + k / 128`, `k ∈ [-16, 16]`
//!   (exact in f16 and bf16).
//!
//! Writing is streamed tensor by tensor: the bitnet-2b-shape preset never holds more than
//! one tensor in memory.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tern_spec::pack::{self, Layout, Scales, Shape};
use tern_spec::BlockShape;
use thiserror::Error;

use crate::gguf::{GgmlType, GgufBuilder, GgufError, Value};
use crate::model::gguf_load::{STB_BLOCK_K, STB_BLOCK_N};
use crate::model::hf_load::STB_METHOD;
use crate::model::{Activation, Family, LinearKind, ModelConfig, RopeStyle};
use crate::safetensors::{StBuilder, StError};
use crate::tokenizer::{Tokenizer, TokenizerError, LLAMA3_PATTERN, TRAINING_TEXT};

#[derive(Debug, Error)]
pub enum SynthError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    St(#[from] StError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("interrupted")]
    Interrupted,
}

/// Model sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// 2 layers, hidden 128, 4/2 heads, FFN 384, vocab 512.
    Tiny,
    /// 4 layers, hidden 512, 8/2 heads, FFN 1536, vocab 2048.
    Small,
    /// The real bitnet-b1.58-2B-4T shapes: 30 layers, hidden 2560, 20/5 heads, FFN 6912,
    /// vocab 128256.
    Bitnet2bShape,
}

impl Preset {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tiny" => Some(Preset::Tiny),
            "small" => Some(Preset::Small),
            "bitnet-2b-shape" => Some(Preset::Bitnet2bShape),
            _ => None,
        }
    }

    /// (layers, hidden, heads, kv heads, ffn, vocab, context)
    fn dims(self) -> (usize, usize, usize, usize, usize, usize, usize) {
        match self {
            Preset::Tiny => (2, 128, 4, 2, 384, 512, 256),
            Preset::Small => (4, 512, 8, 2, 1536, 2048, 1024),
            Preset::Bitnet2bShape => (30, 2560, 20, 5, 6912, 128256, 4096),
        }
    }
}

/// Architecture variant of a synthetic model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// BitNet b1.58 2B-4T architecture, per-tensor scales.
    BitNet,
    /// Llama-style (no sub-norms, SiLU, tied embeddings) with tern Scaled Ternary Blocks.
    LlamaStb(BlockShape),
}

/// On-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gguf,
    /// A directory: config.json, model.safetensors, tokenizer.json.
    Safetensors,
}

/// What to synthesize.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub preset: Preset,
    pub variant: Variant,
    pub format: Format,
    pub seed: u64,
    /// GGUF type of the ternary linears (BitNet variant); `None` picks TQ2_0 when every K is a
    /// multiple of 256, else I2_S when a multiple of 128, else F16.
    pub gguf_type: Option<GgmlType>,
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SynthReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub tensors: usize,
    pub tokenizer_vocab: usize,
    pub arch: String,
    pub weight_type: String,
}

/// The configuration of a preset and variant.
pub fn config(preset: Preset, variant: Variant) -> ModelConfig {
    let (n_layers, hidden, n_heads, n_kv_heads, ffn, vocab, context) = preset.dims();
    let bitnet = variant == Variant::BitNet;
    ModelConfig {
        arch: if bitnet {
            "BitNetForCausalLM"
        } else {
            "LlamaForCausalLM"
        }
        .into(),
        family: if bitnet {
            Family::BitNet
        } else {
            Family::Llama
        },
        n_layers,
        hidden,
        n_heads,
        n_kv_heads,
        head_dim: hidden / n_heads,
        ffn,
        vocab,
        context,
        rope_theta: 500000.0,
        rope: RopeStyle::Neox,
        rms_eps: 1e-5,
        activation: if bitnet {
            Activation::Relu2
        } else {
            Activation::Silu
        },
        activation_source: "synth".into(),
        sub_norms: bitnet,
        tied: true,
    }
}

/// The synthetic tokenizer (trained on the built-in text, ≤ 512 tokens).
pub fn tokenizer(vocab: usize) -> Result<Tokenizer, TokenizerError> {
    Tokenizer::train(
        TRAINING_TEXT,
        vocab.min(512),
        &["<|begin_of_text|>", "<|end_of_text|>"],
        LLAMA3_PATTERN,
    )
}

/// An independent RNG per tensor name.
fn rng(seed: u64, name: &str) -> ChaCha8Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(h);
    r
}

/// A synthetic ternary linear: trits `[N, K]` and scales (`[1, 1]` per tensor, or per block).
pub struct SynthLinear {
    pub shape: Shape,
    pub trits: Vec<i8>,
    pub block: BlockShape,
    /// `[⌈N/bn⌉, ⌈K/bk⌉]`.
    pub scales: Array2<f32>,
}

/// Generates the linear `name` of shape `[n, k]`.
pub fn linear(seed: u64, name: &str, n: usize, k: usize, variant: Variant) -> SynthLinear {
    let mut r = rng(seed, name);
    let inv = 1.0 / (k as f32).sqrt();
    let latent: Vec<f32> = (0..n * k)
        .map(|_| r.gen_range(-1.0f32..1.0) * inv)
        .collect();
    let block = match variant {
        Variant::BitNet => BlockShape {
            n: n as u32,
            k: k as u32,
        },
        Variant::LlamaStb(b) => b,
    };
    let (bn, bk) = (block.n as usize, block.k as usize);
    let (nb, kb) = (n.div_ceil(bn), k.div_ceil(bk));
    let mut scales = Array2::<f32>::zeros((nb, kb));
    let mut trits = vec![0i8; n * k];
    for i in 0..nb {
        for j in 0..kb {
            let (r0, r1, c0, c1) = (i * bn, ((i + 1) * bn).min(n), j * bk, ((j + 1) * bk).min(k));
            let mut sum = 0.0f64;
            for rr in r0..r1 {
                for cc in c0..c1 {
                    sum += latent[rr * k + cc].abs() as f64;
                }
            }
            let gamma = ((sum / ((r1 - r0) * (c1 - c0)) as f64) as f32).max(1e-8);
            for rr in r0..r1 {
                for cc in c0..c1 {
                    trits[rr * k + cc] = (latent[rr * k + cc] / gamma)
                        .round_ties_even()
                        .clamp(-1.0, 1.0) as i8;
                }
            }
            scales[(i, j)] = match variant {
                Variant::BitNet => 2f32.powi(gamma.log2().round() as i32),
                Variant::LlamaStb(_) => gamma,
            };
        }
    }
    SynthLinear {
        shape: Shape::new(n, k),
        trits,
        block,
        scales,
    }
}

/// Embedding `[vocab, hidden]` values `k/256`.
pub fn embedding(seed: u64, vocab: usize, hidden: usize) -> Vec<f32> {
    let mut r = rng(seed, "embed_tokens");
    (0..vocab * hidden)
        .map(|_| r.gen_range(-64i32..=64) as f32 / 256.0)
        .collect()
}

/// Norm weight `[d]` values `1 + k/128`.
pub fn norm(seed: u64, name: &str, d: usize) -> Vec<f32> {
    let mut r = rng(seed, name);
    (0..d)
        .map(|_| 1.0 + r.gen_range(-16i32..=16) as f32 / 128.0)
        .collect()
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Norm tensors of a layer: (hf name suffix, gguf name, seed name, dim).
fn layer_norms(c: &ModelConfig) -> Vec<(&'static str, &'static str, usize)> {
    let mut v = vec![
        ("input_layernorm", "attn_norm", c.hidden),
        ("post_attention_layernorm", "ffn_norm", c.hidden),
    ];
    if c.sub_norms {
        v.push(("self_attn.attn_sub_norm", "attn_sub_norm", c.q_dim()));
        v.push(("mlp.ffn_sub_norm", "ffn_sub_norm", c.ffn));
    }
    v
}

/// Writes the model; `progress(done, total)` is called after each tensor and returns false to
/// stop (the partial output is then removed).
pub fn synth(
    opts: &SynthOptions,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<SynthReport, SynthError> {
    let cfg = config(opts.preset, opts.variant);
    let tok = tokenizer(cfg.vocab)?;
    let r = match opts.format {
        Format::Gguf => write_gguf(opts, &cfg, &tok, out, progress),
        Format::Safetensors => write_hf(opts, &cfg, &tok, out, progress),
    };
    if matches!(r, Err(SynthError::Interrupted)) {
        let _ = if opts.format == Format::Gguf {
            std::fs::remove_file(out)
        } else {
            std::fs::remove_dir_all(out)
        };
    }
    r
}

/// The GGUF type the BitNet variant's linears get.
pub fn gguf_weight_type(opts: &SynthOptions, cfg: &ModelConfig) -> GgmlType {
    if let Some(t) = opts.gguf_type {
        return t;
    }
    let ks = [cfg.hidden, cfg.q_dim(), cfg.ffn];
    if ks.iter().all(|k| k.is_multiple_of(256)) {
        GgmlType::Tq2_0
    } else if ks.iter().all(|k| k.is_multiple_of(128)) {
        GgmlType::I2S
    } else {
        GgmlType::F16
    }
}

fn write_gguf(
    opts: &SynthOptions,
    c: &ModelConfig,
    tok: &Tokenizer,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<SynthReport, SynthError> {
    let seed = opts.seed;
    let (wty, arch) = match opts.variant {
        Variant::BitNet => {
            let t = gguf_weight_type(opts, c);
            if !matches!(
                t,
                GgmlType::Tq1_0
                    | GgmlType::Tq2_0
                    | GgmlType::I2S
                    | GgmlType::F16
                    | GgmlType::F32
                    | GgmlType::BF16
            ) {
                return Err(SynthError::Invalid(format!(
                    "GGUF weight type {t} (legal: TQ1_0, TQ2_0, I2_S, F16, BF16, F32)"
                )));
            }
            (
                t,
                if t == GgmlType::I2S {
                    "bitnet-b1.58"
                } else {
                    "bitnet"
                },
            )
        }
        Variant::LlamaStb(_) => (
            if c.hidden.is_multiple_of(256)
                && c.ffn.is_multiple_of(256)
                && c.q_dim().is_multiple_of(256)
            {
                GgmlType::Tq2_0
            } else {
                GgmlType::I8
            },
            "llama",
        ),
    };
    let mut b = GgufBuilder::new();
    let k = |s: &str| format!("{arch}.{s}");
    b.meta("general.architecture", Value::Str(arch.into()))
        .meta(
            "general.name",
            Value::Str(format!("tern synth {:?} seed {seed}", opts.preset)),
        )
        .meta(&k("block_count"), Value::U32(c.n_layers as u32))
        .meta(&k("context_length"), Value::U32(c.context as u32))
        .meta(&k("embedding_length"), Value::U32(c.hidden as u32))
        .meta(&k("feed_forward_length"), Value::U32(c.ffn as u32))
        .meta(&k("attention.head_count"), Value::U32(c.n_heads as u32))
        .meta(
            &k("attention.head_count_kv"),
            Value::U32(c.n_kv_heads as u32),
        )
        .meta(&k("rope.freq_base"), Value::F32(c.rope_theta))
        .meta(&k("rope.dimension_count"), Value::U32(c.head_dim as u32))
        .meta(
            &k("attention.layer_norm_rms_epsilon"),
            Value::F32(c.rms_eps),
        )
        .meta(&k("vocab_size"), Value::U32(c.vocab as u32));
    if arch == "bitnet" {
        b.meta(&k("hidden_activation"), Value::Str("relu2".into()));
    }
    if let Variant::LlamaStb(block) = opts.variant {
        b.meta(STB_BLOCK_N, Value::U32(block.n))
            .meta(STB_BLOCK_K, Value::U32(block.k));
    }
    for (key, v) in tok.to_gguf_meta(c.vocab) {
        b.meta(&key, v);
    }
    let (h, v) = (c.hidden as u64, c.vocab as u64);
    b.tensor("token_embd.weight", &[h, v], GgmlType::F16);
    b.tensor("output_norm.weight", &[h], GgmlType::F32);
    for l in 0..c.n_layers {
        for (_, g, d) in layer_norms(c) {
            b.tensor(&format!("blk.{l}.{g}.weight"), &[d as u64], GgmlType::F32);
        }
        for kind in LinearKind::ALL {
            let (n, kk) = kind.shape(c);
            b.tensor(
                &format!("blk.{l}.{}.weight", kind.gguf()),
                &[kk as u64, n as u64],
                wty,
            );
            if let Variant::LlamaStb(bs) = opts.variant {
                let (nb, kb) = (n.div_ceil(bs.n as usize), kk.div_ceil(bs.k as usize));
                b.tensor(
                    &format!("blk.{l}.{}.block_scale", kind.gguf()),
                    &[kb as u64, nb as u64],
                    GgmlType::F32,
                );
            }
        }
    }
    let total = 2 + c.n_layers
        * (layer_norms(c).len()
            + 7 * if matches!(opts.variant, Variant::LlamaStb(_)) {
                2
            } else {
                1
            });
    let file = File::create(out).map_err(io(out))?;
    let mut w = b.begin(BufWriter::new(file))?;
    let mut done = 0;
    let mut step = |w: &mut crate::gguf::GgufStreamWriter<BufWriter<File>>,
                    name: &str,
                    data: &[u8]|
     -> Result<(), SynthError> {
        w.write_tensor(name, data)?;
        done += 1;
        if progress(done, total) {
            Ok(())
        } else {
            Err(SynthError::Interrupted)
        }
    };
    let emb: Vec<u8> = embedding(seed, c.vocab, c.hidden)
        .iter()
        .flat_map(|&x| f16::from_f32(x).to_le_bytes())
        .collect();
    step(&mut w, "token_embd.weight", &emb)?;
    drop(emb);
    step(
        &mut w,
        "output_norm.weight",
        &f32_bytes(&norm(seed, "model.norm", c.hidden)),
    )?;
    for l in 0..c.n_layers {
        for (hf, g, d) in layer_norms(c) {
            let data = f32_bytes(&norm(seed, &format!("model.layers.{l}.{hf}"), d));
            step(&mut w, &format!("blk.{l}.{g}.weight"), &data)?;
        }
        for kind in LinearKind::ALL {
            let (n, kk) = kind.shape(c);
            let lin = linear(
                seed,
                &format!("model.layers.{l}.{}", kind.hf()),
                n,
                kk,
                opts.variant,
            );
            let name = format!("blk.{l}.{}.weight", kind.gguf());
            let bytes = match opts.variant {
                Variant::BitNet => gguf_ternary_bytes(&lin, wty)?,
                Variant::LlamaStb(_) => match wty {
                    GgmlType::Tq2_0 => pack::pack(Layout::Tq2_0, lin.shape, &lin.trits, None)
                        .map_err(|e| SynthError::Invalid(e.to_string()))?,
                    _ => lin.trits.iter().map(|&t| t as u8).collect(),
                },
            };
            step(&mut w, &name, &bytes)?;
            if let Variant::LlamaStb(_) = opts.variant {
                let s: Vec<f32> = lin.scales.iter().copied().collect();
                step(
                    &mut w,
                    &format!("blk.{l}.{}.block_scale", kind.gguf()),
                    &f32_bytes(&s),
                )?;
            }
        }
    }
    w.finish()?;
    Ok(SynthReport {
        path: out.to_path_buf(),
        bytes: std::fs::metadata(out).map_err(io(out))?.len(),
        tensors: total,
        tokenizer_vocab: tok.vocab_size(),
        arch: arch.into(),
        weight_type: wty.name().into(),
    })
}

fn gguf_ternary_bytes(lin: &SynthLinear, ty: GgmlType) -> Result<Vec<u8>, SynthError> {
    let s = lin.scales[(0, 0)];
    let e = |x: pack::PackError| SynthError::Invalid(x.to_string());
    Ok(match ty {
        GgmlType::Tq2_0 => pack::pack(
            Layout::Tq2_0,
            lin.shape,
            &lin.trits,
            Some(&Scales::PerTensor(s)),
        )
        .map_err(e)?,
        GgmlType::Tq1_0 => pack::pack(
            Layout::Tq1_0,
            lin.shape,
            &lin.trits,
            Some(&Scales::PerTensor(s)),
        )
        .map_err(e)?,
        GgmlType::I2S => pack::pack(
            Layout::I2S,
            lin.shape,
            &lin.trits,
            Some(&Scales::PerTensor(s)),
        )
        .map_err(e)?,
        GgmlType::F16 => lin
            .trits
            .iter()
            .flat_map(|&t| f16::from_f32(t as f32 * s).to_le_bytes())
            .collect(),
        GgmlType::BF16 => lin
            .trits
            .iter()
            .flat_map(|&t| bf16::from_f32(t as f32 * s).to_le_bytes())
            .collect(),
        _ => lin
            .trits
            .iter()
            .flat_map(|&t| (t as f32 * s).to_le_bytes())
            .collect(),
    })
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bf16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
        .collect()
}

/// The Hugging Face `config.json` of a synthetic model.
pub fn hf_config_json(c: &ModelConfig, variant: Variant, tok: &Tokenizer) -> serde_json::Value {
    let mut j = json!({
        "architectures": [c.arch],
        "model_type": if c.family == Family::BitNet { "bitnet" } else { "llama" },
        "hidden_size": c.hidden,
        "intermediate_size": c.ffn,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "vocab_size": c.vocab,
        "max_position_embeddings": c.context,
        "rms_norm_eps": c.rms_eps,
        "rope_theta": c.rope_theta,
        "hidden_act": c.activation.name(),
        "tie_word_embeddings": c.tied,
        "bos_token_id": tok.bos,
        "eos_token_id": tok.eos,
        "torch_dtype": "bfloat16",
    });
    j["quantization_config"] = match variant {
        Variant::BitNet => {
            json!({"quant_method": "bitnet", "linear_class": "bitlinear", "quantization_mode": "offline"})
        }
        Variant::LlamaStb(b) => {
            json!({"quant_method": STB_METHOD, "block_n": b.n, "block_k": b.k, "weight_layout": "tern2"})
        }
    };
    j
}

fn write_hf(
    opts: &SynthOptions,
    c: &ModelConfig,
    tok: &Tokenizer,
    dir: &Path,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<SynthReport, SynthError> {
    let seed = opts.seed;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let cj = hf_config_json(c, opts.variant, tok);
    let cpath = dir.join("config.json");
    std::fs::write(
        &cpath,
        serde_json::to_string_pretty(&cj).unwrap_or_default(),
    )
    .map_err(io(&cpath))?;
    let tpath = dir.join("tokenizer.json");
    std::fs::write(&tpath, tok.to_hf_json()).map_err(io(&tpath))?;
    let mut b = StBuilder::new();
    b.meta("format", "pt");
    let stb = matches!(opts.variant, Variant::LlamaStb(_));
    if let Variant::LlamaStb(bs) = opts.variant {
        b.meta("tern.format", "stb")
            .meta("tern.block", &bs.to_string())
            .meta("tern.weight_layout", "tern2");
    }
    b.tensor("model.embed_tokens.weight", "BF16", &[c.vocab, c.hidden]);
    b.tensor("model.norm.weight", "BF16", &[c.hidden]);
    for l in 0..c.n_layers {
        for (hf, _, d) in layer_norms(c) {
            b.tensor(&format!("model.layers.{l}.{hf}.weight"), "BF16", &[d]);
        }
        for kind in LinearKind::ALL {
            let (n, k) = kind.shape(c);
            let p = format!("model.layers.{l}.{}", kind.hf());
            match opts.variant {
                Variant::BitNet => {
                    b.tensor(&format!("{p}.weight"), "U8", &[n / 4, k]);
                    b.tensor(&format!("{p}.weight_scale"), "BF16", &[1]);
                }
                Variant::LlamaStb(bs) => {
                    b.tensor(&format!("{p}.weight"), "U8", &[n, k.div_ceil(4)]);
                    b.tensor(
                        &format!("{p}.block_scale"),
                        "F32",
                        &[n.div_ceil(bs.n as usize), k.div_ceil(bs.k as usize)],
                    );
                }
            }
        }
    }
    let total = 2 + c.n_layers * (layer_norms(c).len() + 14);
    let path = dir.join("model.safetensors");
    let file = File::create(&path).map_err(io(&path))?;
    let mut w = b.begin(BufWriter::new(file))?;
    let mut done = 0;
    let mut step = |w: &mut crate::safetensors::StWriter<BufWriter<File>>,
                    name: &str,
                    data: &[u8]|
     -> Result<(), SynthError> {
        w.write_tensor(name, data)?;
        done += 1;
        if progress(done, total) {
            Ok(())
        } else {
            Err(SynthError::Interrupted)
        }
    };
    let emb = bf16_bytes(&embedding(seed, c.vocab, c.hidden));
    step(&mut w, "model.embed_tokens.weight", &emb)?;
    drop(emb);
    step(
        &mut w,
        "model.norm.weight",
        &bf16_bytes(&norm(seed, "model.norm", c.hidden)),
    )?;
    for l in 0..c.n_layers {
        for (hf, _, d) in layer_norms(c) {
            let p = format!("model.layers.{l}.{hf}");
            step(
                &mut w,
                &format!("{p}.weight"),
                &bf16_bytes(&norm(seed, &p, d)),
            )?;
        }
        for kind in LinearKind::ALL {
            let (n, k) = kind.shape(c);
            let p = format!("model.layers.{l}.{}", kind.hf());
            let lin = linear(seed, &p, n, k, opts.variant);
            let e = |x: pack::PackError| SynthError::Invalid(x.to_string());
            if stb {
                step(
                    &mut w,
                    &format!("{p}.weight"),
                    &pack::pack(Layout::Tern2, lin.shape, &lin.trits, None).map_err(e)?,
                )?;
                let s: Vec<f32> = lin.scales.iter().copied().collect();
                step(&mut w, &format!("{p}.block_scale"), &f32_bytes(&s))?;
            } else {
                step(
                    &mut w,
                    &format!("{p}.weight"),
                    &pack::pack(Layout::Hf, lin.shape, &lin.trits, None).map_err(e)?,
                )?;
                // bitlinear divides by weight_scale: store 1/γ (exact: γ is a power of two).
                step(
                    &mut w,
                    &format!("{p}.weight_scale"),
                    &bf16_bytes(&[1.0 / lin.scales[(0, 0)]]),
                )?;
            }
        }
    }
    w.finish()?;
    Ok(SynthReport {
        path: dir.to_path_buf(),
        bytes: std::fs::metadata(&path).map_err(io(&path))?.len(),
        tensors: total,
        tokenizer_vocab: tok.vocab_size(),
        arch: c.arch.clone(),
        weight_type: if stb {
            "tern2 + block_scale".into()
        } else {
            "hf packed uint8 + weight_scale".into()
        },
    })
}

/// Bytes of the ternary weights a preset reads per generated token at `bits_per_weight`.
pub fn ternary_weight_count(c: &ModelConfig) -> u64 {
    LinearKind::ALL
        .iter()
        .map(|k| {
            let (n, kk) = k.shape(c);
            (n * kk) as u64
        })
        .sum::<u64>()
        * c.n_layers as u64
}
