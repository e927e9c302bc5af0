//! `tern demo`: the main job on the embedded default config, with a short readable report.
//!
//! 1. one Scaled-Ternary-Block layer through the bit-exact reference, checked against an
//!    independent f64 computation within the contract's error bound;
//! 2. a tiny BitNet b1.58 model (synthesized, deterministic) generating on the CPU and on the
//!    simulated card (the card top's Verilog under Verilator, through tern-driver), with the
//!    token ids compared, tokens/s, and cycles per token and PE utilization from the card.

use super::gemm::{self, GemmArgs, Scales};
use anyhow::{Context, Result};
use clap::Args;
use tern_runtime::backend::CpuBackend;
use tern_runtime::card_backend::{CardBackend, SharedCard};
use tern_runtime::generate::generate;
use tern_runtime::model::{self, bitnet::Session};
use tern_runtime::sample::Sampler;
use tern_runtime::synth::{self, Format, Preset, SynthOptions, Variant};
use tern_spec::{widths, ArrayConfig};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Config: a built-in name or a TOML file.
    #[arg(long, default_value = "default")]
    pub config: String,
    /// Seed of the random layer.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Card back end of the model part (`sim:CONFIG` by default; `model`, `vfio:BDF`).
    #[arg(long)]
    pub card: Option<String>,
    /// Tokens to generate in the model part.
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Skip the model part (the layer only).
    #[arg(long)]
    pub layer_only: bool,
}

pub fn run(a: DemoArgs) -> Result<()> {
    let cfg = ArrayConfig::builtin_or_load(&a.config)?;
    let layer = GemmArgs {
        config: a.config.clone(),
        m: 4,
        k: 2560,
        n: 640,
        seed: a.seed,
        block: None,
        scales: Scales::Typical,
        json: a.json,
    };
    let r = gemm::compute(&cfg, &layer)?;
    let card_spec = a
        .card
        .clone()
        .unwrap_or_else(|| format!("sim:{}", a.config));
    let model = if a.layer_only {
        None
    } else {
        Some(model_part(&card_spec, a.seed, a.steps)?)
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "config": cfg, "derived": super::config::derived(&cfg), "layer": r,
                "model": model,
            }))?
        );
    } else {
        let bits = cfg.activation.bits;
        let mb = cfg.scale.mantissa_bits;
        println!("tern demo: one Scaled-Ternary-Block layer on the bit-exact reference");
        println!();
        println!("config {:?} (hash {})", cfg.name, cfg.hash_hex());
        println!(
            "  array        {} lanes × {} trits/cycle = {} add/sub PEs, {} tokens per weight tile, target {} MHz",
            cfg.array.rows, cfg.array.cols, cfg.macs_per_cycle(), cfg.array.token_tile, cfg.clock.target_mhz
        );
        println!("  blocks       {} (one scale per block)", cfg.block);
        println!("  activations  int{bits}, per-token absmax, round half to even");
        println!("  scales       u{mb} mantissa per block, exponent per block row (host)");
        println!(
            "  widths       partial sum {} bits (needs {}), accumulator {} bits (needs {} for K ≤ {})",
            cfg.accumulator.psum_bits,
            widths::required_psum_bits(cfg.block.k as u64, bits),
            cfg.accumulator.acc_bits,
            widths::required_acc_bits(cfg.accumulator.max_k, bits, mb),
            cfg.accumulator.max_k
        );
        println!();
        println!(
            "layer: W [{} × {}] ternary in {} blocks, {} tokens, seed {}",
            r.n, r.k, r.block, r.m, r.seed
        );
        println!(
            "  {} MACs = {} adds + {} subs + {} holds, {} block-scale products",
            r.macs, r.adds, r.subs, r.holds, r.scaler_mults
        );
        println!(
            "  integer output checksum {}, largest |acc| {}",
            r.checksum,
            r.largest_acc_fmt()
        );
        println!(
            "  f32 outputs vs f64 float view: max abs error {:.2e} ({:.2e} of the largest output), {:.2} of the stated bound ({})",
            r.max_abs_err,
            r.max_rel_err,
            r.max_err_over_bound,
            if r.within_bound { "inside" } else { "OUTSIDE" }
        );
        println!("  {:.2} s", r.elapsed_s);
        if let Some(m) = &model {
            print_model(m);
        }
        println!();
        println!(
            "Next: `tern gemm --help`, `tern run --help`, `tern card info --backend model`, docs/."
        );
    }
    if !r.within_bound {
        anyhow::bail!("float error outside the contract's bound (seed {})", r.seed);
    }
    if let Some(m) = &model {
        if !m.identical {
            anyhow::bail!(
                "the card ({}) generated {:?}, the CPU {:?}",
                m.card,
                m.card_ids,
                m.cpu_ids
            );
        }
    }
    Ok(())
}

/// What the model part measured.
#[derive(Debug, serde::Serialize)]
struct ModelPart {
    model: String,
    card: String,
    prompt_ids: Vec<u32>,
    cpu_ids: Vec<u32>,
    card_ids: Vec<u32>,
    /// Same token ids and bit-identical prompt logits.
    identical: bool,
    text: String,
    cpu_tokens_per_s: f64,
    card_tokens_per_s: f64,
    /// Tokens the card processed (prompt + generated).
    tokens: usize,
    gemm_calls: u64,
    gemm_commands: u64,
    /// Card clock cycles of the GEMM commands, per token.
    cycles_per_token: f64,
    /// Useful ternary MACs ÷ (GEMM cycles × PEs).
    pe_utilization: f64,
    perf: tern_driver::PerfCounters,
    pes: u64,
}

fn model_part(card_spec: &str, seed: u64, steps: usize) -> Result<ModelPart> {
    let dir = std::env::temp_dir().join(format!("tern-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("tiny.gguf");
    let opts = SynthOptions {
        preset: Preset::Tiny,
        variant: Variant::BitNet,
        format: Format::Gguf,
        seed,
        gguf_type: None,
    };
    synth::synth(&opts, &path, &mut |_, _| true)
        .with_context(|| format!("synthesizing the tiny model into {}", path.display()))?;
    let load = || model::load(&path).with_context(|| format!("loading {}", path.display()));
    let prompt = "Ternary weights add and subtract.";
    let m = load()?;
    let macs_per_token = m.weights.ternary_macs_per_token();

    let (mut cpu, tok) = Session::from_model(m, CpuBackend::new())?;
    let ids = tok.encode(prompt, true)?;
    let t = std::time::Instant::now();
    let want = generate(&mut cpu, &ids, steps, &mut Sampler::greedy(), None, |_| {
        true
    })?;
    let cpu_s = t.elapsed().as_secs_f64();

    let card = SharedCard::new(
        CardBackend::open(card_spec).with_context(|| format!("opening the card `{card_spec}`"))?,
    );
    let before = card.0.borrow_mut().perf()?;
    let pes = card.0.borrow().pes();
    let (mut on_card, _) = Session::from_model(load()?, card.clone())?;
    let t = std::time::Instant::now();
    let got = generate(
        &mut on_card,
        &ids,
        steps,
        &mut Sampler::greedy(),
        None,
        |_| true,
    )?;
    let card_s = t.elapsed().as_secs_f64();
    let after = card.0.borrow_mut().perf()?;
    let used = card.0.borrow().used();
    let tokens = ids.len() + got.generated_ids.len().saturating_sub(1);
    let d = |a: u64, b: u64| a.saturating_sub(b);
    let perf = tern_driver::PerfCounters {
        cycles: d(after.cycles, before.cycles),
        busy: d(after.busy, before.busy),
        stall_mem: d(after.stall_mem, before.stall_mem),
        stall_out: d(after.stall_out, before.stall_out),
        idle: d(after.idle, before.idle),
        bytes_rd: d(after.bytes_rd, before.bytes_rd),
        bytes_wr: d(after.bytes_wr, before.bytes_wr),
        macs: d(after.macs, before.macs),
        cmds_done: after.cmds_done.wrapping_sub(before.cmds_done),
    };
    let useful = macs_per_token as f64 * tokens as f64;
    std::fs::remove_dir_all(&dir).ok();
    Ok(ModelPart {
        model: format!("tiny BitNet b1.58 (synthesized, seed {seed})"),
        card: card_spec.to_string(),
        identical: got.generated_ids == want.generated_ids
            && got.prompt_logits == want.prompt_logits,
        text: tok.decode(&got.generated_ids)?,
        prompt_ids: ids,
        cpu_ids: want.generated_ids.clone(),
        card_ids: got.generated_ids.clone(),
        cpu_tokens_per_s: tokens as f64 / cpu_s,
        card_tokens_per_s: tokens as f64 / card_s,
        tokens,
        gemm_calls: used.calls,
        gemm_commands: used.gemm_commands,
        cycles_per_token: used.gemm_cycles as f64 / tokens as f64,
        pe_utilization: useful / (used.gemm_cycles as f64 * pes as f64),
        perf,
        pes,
    })
}

fn print_model(m: &ModelPart) {
    println!();
    println!("model: {} on the CPU and on the card `{}`", m.model, m.card);
    println!("  prompt ids   {:?}", m.prompt_ids);
    println!("  cpu  ids     {:?}", m.cpu_ids);
    println!("  card ids     {:?}", m.card_ids);
    println!(
        "  {}",
        if m.identical {
            "identical token ids and bit-identical logits"
        } else {
            "DIFFERENT"
        }
    );
    println!("  text         {:?}", m.text);
    println!(
        "  tokens/s     cpu (reference) {:.1}, card {:.1} ({} tokens: prompt and generated)",
        m.cpu_tokens_per_s, m.card_tokens_per_s, m.tokens
    );
    println!(
        "  card         {} GEMMs ({} commands), {:.0} cycles per token, PE utilization {:.1}% of {} PEs",
        m.gemm_calls,
        m.gemm_commands,
        m.cycles_per_token,
        100.0 * m.pe_utilization,
        m.pes
    );
    println!(
        "  counters     {} cycles, {} busy, {} memory stalls, {} output stalls, {} bytes read, {} written, {} commands",
        m.perf.cycles, m.perf.busy, m.perf.stall_mem, m.perf.stall_out, m.perf.bytes_rd, m.perf.bytes_wr, m.perf.cmds_done
    );
}

impl gemm::GemmReport {
    fn largest_acc_fmt(&self) -> String {
        let bits = 64 - (self.max_abs_acc as u64).leading_zeros() + 1;
        format!("{} ({bits} signed bits)", self.max_abs_acc)
    }
}
