//! `tern model inspect | synth | quantize`: model files.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use tern_runtime::gguf::GgmlType;
use tern_runtime::inspect;
use tern_runtime::synth::{self, Format, Preset, SynthOptions, Variant};
use tern_spec::BlockShape;

use crate::progress;

#[derive(Subcommand, Debug)]
pub enum ModelCmd {
    /// Architecture, shapes, tensor types and sizes of a GGUF file or safetensors directory.
    Inspect(InspectArgs),
    /// Write a model with random ternary weights and a small real BPE tokenizer.
    Synth(SynthArgs),
    /// Float Llama/BitNet-shaped safetensors → tern Scaled Ternary Blocks (absmean per block).
    Quantize(QuantizeArgs),
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// GGUF file, or a directory with config.json + model.safetensors.
    pub path: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// List every tensor (text output lists the first 20).
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// tiny | small | bitnet-2b-shape.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// gguf | safetensors (a directory).
    #[arg(long, default_value = "gguf")]
    pub format: String,
    /// bitnet (BitNet b1.58 2B-4T architecture) or llama-stb (Llama-style, tern Scaled Ternary
    /// Blocks).
    #[arg(long, default_value = "bitnet")]
    pub arch: String,
    /// Block shape NxK for llama-stb.
    #[arg(long, default_value = "64x64")]
    pub block: String,
    /// GGUF type of the ternary weights (bitnet): tq2_0, tq1_0, i2_s, f16 (default: tq2_0 when
    /// every K is a multiple of 256, else i2_s, else f16).
    #[arg(long)]
    pub weight_type: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file (gguf) or directory (safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Only print the sizes the model would have.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// Input directory (config.json, model.safetensors with float linears, tokenizer.json).
    pub input: PathBuf,
    /// Block shape NxK.
    #[arg(long, default_value = "64x64")]
    pub block: String,
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(c: ModelCmd) -> Result<()> {
    match c {
        ModelCmd::Inspect(a) => run_inspect(a),
        ModelCmd::Synth(a) => run_synth(a),
        ModelCmd::Quantize(a) => run_quantize(a),
    }
}

fn parse_block(s: &str) -> Result<BlockShape> {
    let (n, k) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("block {s:?}: expected NxK, e.g. 64x64"))?;
    let (n, k): (u32, u32) = (
        n.parse().with_context(|| format!("block {s:?}"))?,
        k.parse().with_context(|| format!("block {s:?}"))?,
    );
    if n == 0 || k == 0 {
        bail!("block {s:?}: both sides must be ≥ 1");
    }
    Ok(BlockShape { n, k })
}

fn run_inspect(a: InspectArgs) -> Result<()> {
    let s =
        inspect::inspect(&a.path).with_context(|| format!("inspecting {}", a.path.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("{} ({}, {} bytes)", s.path, s.format, s.file_bytes);
    match (&s.config, &s.config_error) {
        (Some(c), _) => {
            println!(
                "architecture {} ({:?}): {} layers, hidden {}, heads {}/{} (head dim {}), FFN {}, vocab {}, context {}",
                c.arch, c.family, c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn, c.vocab, c.context
            );
            println!(
                "RoPE θ {} ({:?}), RMSNorm eps {}, activation {} ({}), sub-norms {}, tied embeddings {}",
                c.rope_theta, c.rope, c.rms_eps, c.activation.name(), c.activation_source, c.sub_norms, c.tied
            );
        }
        (None, Some(e)) => println!("not a model tern runs: {e}"),
        (None, None) => {}
    }
    println!("tensor types:");
    for (t, (n, b)) in &s.by_type {
        println!("  {t:<8} {n:>5} tensors {:>14} bytes", b);
    }
    let show = if a.all {
        s.tensors.len()
    } else {
        20.min(s.tensors.len())
    };
    println!(
        "tensors ({} total{}):",
        s.tensors.len(),
        if show < s.tensors.len() {
            ", first 20; --all for every one"
        } else {
            ""
        }
    );
    for t in &s.tensors[..show] {
        println!(
            "  {:<44} {:<8} {:?} {} bytes",
            t.name, t.dtype, t.shape, t.bytes
        );
    }
    Ok(())
}

fn run_synth(a: SynthArgs) -> Result<()> {
    let preset = Preset::parse(&a.preset).with_context(|| {
        format!(
            "--preset {:?} (legal: tiny, small, bitnet-2b-shape)",
            a.preset
        )
    })?;
    let format = match a.format.as_str() {
        "gguf" => Format::Gguf,
        "safetensors" => Format::Safetensors,
        f => bail!("--format {f:?} (legal: gguf, safetensors)"),
    };
    let variant = match a.arch.as_str() {
        "bitnet" => Variant::BitNet,
        "llama-stb" => Variant::LlamaStb(parse_block(&a.block)?),
        x => bail!("--arch {x:?} (legal: bitnet, llama-stb)"),
    };
    let gguf_type = match &a.weight_type {
        None => None,
        Some(t) => Some(
            GgmlType::from_name(t)
                .with_context(|| format!("--weight-type {t:?} (legal: tq2_0, tq1_0, i2_s, f16)"))?,
        ),
    };
    let opts = SynthOptions {
        preset,
        variant,
        format,
        seed: a.seed,
        gguf_type,
    };
    let cfg = synth::config(preset, variant);
    let trits = synth::ternary_weight_count(&cfg);
    if a.dry_run {
        println!(
            "{:?}: {} layers, hidden {}, heads {}/{}, FFN {}, vocab {}: {} ternary weights ({:.1} MB at 2 bits), embedding {} values",
            preset, cfg.n_layers, cfg.hidden, cfg.n_heads, cfg.n_kv_heads, cfg.ffn, cfg.vocab, trits, trits as f64 / 4e6, cfg.vocab * cfg.hidden
        );
        return Ok(());
    }
    let pb = progress::bar(0, "synth", a.json);
    let mut cb = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
        !progress::interrupted()
    };
    let r = synth::synth(&opts, &a.out, &mut cb)?;
    pb.finish_and_clear();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"seed": a.seed, "report": r}))?
        );
    } else {
        println!(
            "wrote {} ({} bytes, {} tensors, arch {}, ternary weights {}, tokenizer {} tokens, seed {})",
            r.path.display(), r.bytes, r.tensors, r.arch, r.weight_type, r.tokenizer_vocab, a.seed
        );
    }
    Ok(())
}

fn run_quantize(a: QuantizeArgs) -> Result<()> {
    let block = parse_block(&a.block)?;
    let r = tern_runtime::quantize::quantize(&a.input, &a.out, block)?;
    println!(
        "wrote {}: {} linears as {block} Scaled Ternary Blocks, {} tensors copied, {} → {} bytes",
        a.out.display(),
        r.linears,
        r.copied,
        r.bytes_in,
        r.bytes_out
    );
    Ok(())
}
