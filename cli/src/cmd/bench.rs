//! `tern bench kernels|run`: performance, measured as ratios in one run, with the load
//! average recorded (the machines are shared; never read a figure without it).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use tern_runtime::backend;
use tern_runtime::card_backend::{CardBackend, SharedCard};
use tern_runtime::generate::generate;
use tern_runtime::model::{self, bitnet::Session};
use tern_runtime::timed::{GemmClock, Timed};

use tern_runtime::sample::Sampler;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// CPU kernels on the BitNet 2B-4T GEMV shapes: weight GB/s, GMAC/s and % of the
    /// machine's measured memory bandwidth at 1 and 2 threads.
    Kernels {
        /// Seconds-long smoke run instead of the full one (minutes).
        #[arg(long)]
        quick: bool,
        /// Thread counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Prefill and decode tokens/s of a model on a backend, with the bytes a decoded token
    /// reads (weights and KV cache) and the bandwidth bound (measured just before, same
    /// threads).
    Run(RunBenchArgs),
    /// The memory read-bandwidth probe alone (what `kernels` and `run` compare with).
    Bandwidth {
        /// Thread counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        /// Probe buffer, MiB (larger than the last-level cache).
        #[arg(long, default_value_t = 1024)]
        mib: usize,
        /// Least seconds per thread count.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct RunBenchArgs {
    /// GGUF file or safetensors directory.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Prompt tokens sent as one prefill.
    #[arg(long, default_value_t = 128)]
    pub prefill: usize,
    /// Tokens decoded one by one.
    #[arg(long, default_value_t = 64)]
    pub decode: usize,
    /// Repetitions (the KV cache is emptied between them); the figures are the medians.
    #[arg(long, default_value_t = 1)]
    pub reps: usize,
    /// Output heads, each run in turn on the same loaded model: f32 (default), f16, q8 (see
    /// `tern run --help`); with several, --json prints an array.
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    pub head: Vec<String>,
    /// Seconds of bandwidth probing before the run (0: skip; no bound reported).
    #[arg(long, default_value_t = 1.0)]
    pub bandwidth_seconds: f64,
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Kernels {
            quick,
            threads,
            json,
        } => {
            if threads.contains(&0) {
                bail!("--threads: thread counts must be ≥ 1");
            }
            let opts = if quick {
                tern_kernels::BenchOptions::quick()
            } else {
                tern_kernels::BenchOptions::default()
            };
            let r = tern_kernels::bench_kernels(&threads, &opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.to_markdown());
            }
            if !r.verified {
                bail!("a kernel's result differed from the portable kernel's");
            }
            Ok(())
        }
        BenchCmd::Run(a) => run_bench(a),
        BenchCmd::Bandwidth {
            threads,
            mib,
            seconds,
            json,
        } => {
            if threads.contains(&0) || mib == 0 {
                bail!("--threads and --mib must be ≥ 1");
            }
            let bw = tern_kernels::bench::memory_bandwidth(&threads, mib << 20, seconds);
            if json {
                println!("{}", serde_json::to_string_pretty(&bw)?);
            } else {
                for b in &bw {
                    println!(
                        "{} thread(s): {:.1} GB/s (best of {}, loadavg {})",
                        b.threads,
                        b.gbps,
                        b.samples.len(),
                        b.loadavg
                    );
                }
            }
            Ok(())
        }
    }
}

fn run_bench(a: RunBenchArgs) -> Result<()> {
    if a.prefill == 0 {
        bail!("--prefill must be ≥ 1");
    }
    let heads = a
        .head
        .iter()
        .map(|h| super::run::parse_head(h))
        .collect::<Result<Vec<_>>>()?;
    let m = model::load(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
    // ternary MACs per token: Σ K·N over the linears
    let macs_per_token = m.weights.ternary_macs_per_token();
    // a card back end is kept shared so its cycle counts can be read during the run
    let card = if tern_driver::backend::is_card_spec(&a.backend) {
        Some(SharedCard::new(CardBackend::open(&a.backend)?))
    } else {
        None
    };
    let inner: Box<dyn backend::TernaryBackend> = match &card {
        Some(c) => Box::new(c.clone()),
        None => backend::backend_by_name(&a.backend)?,
    };
    let (timed, clock) = Timed::new(inner);
    let be: Box<dyn backend::TernaryBackend> = Box::new(timed);
    let (mut s, _tok) = Session::from_model_with_head(m, be, heads[0])?;
    let probe = Probe {
        clock,
        card,
        macs_per_token,
    };
    let mut outs = Vec::new();
    for (i, &h) in heads.iter().enumerate() {
        if i > 0 {
            s.set_head(h)?;
        }
        outs.push(bench_session(&a, &mut s, &probe)?);
    }
    if a.json {
        let v = if outs.len() == 1 {
            outs.remove(0)
        } else {
            serde_json::Value::Array(outs)
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(())
}

/// What `bench run` reads besides the session: the time spent in the ternary GEMMs and, on a
/// card, its cycle counts.
struct Probe {
    clock: GemmClock,
    card: Option<SharedCard>,
    macs_per_token: u64,
}

/// Time and card cycles of one phase (prefill or decode).
#[derive(Debug, Clone, Copy, Default)]
struct Phase {
    gemm_s: f64,
    card_cycles: u64,
}

fn bench_session(
    a: &RunBenchArgs,
    s: &mut Session<Box<dyn backend::TernaryBackend>>,
    probe: &Probe,
) -> Result<serde_json::Value> {
    let card_cycles = || {
        probe
            .card
            .as_ref()
            .map_or(0, |c| c.0.borrow().used().gemm_cycles)
    };
    let pes = probe.card.as_ref().map_or(0, |c| c.0.borrow().pes());
    let vocab = s.config.vocab as u32;
    let name = s.backend().name();
    let threads = s.backend().threads();
    // The bandwidth probe right before the run, on the same thread count.
    let bw = (a.bandwidth_seconds > 0.0).then(|| {
        tern_kernels::bench::memory_bandwidth(&[threads], 1 << 30, a.bandwidth_seconds)[0].gbps
    });
    let load0 = tern_kernels::bench::loadavg();
    // a deterministic prompt of in-vocabulary ids
    let prompt: Vec<u32> = (0..a.prefill as u32)
        .map(|i| (i * 7919 + 13) % vocab.max(1))
        .collect();
    let (mut prefill, mut decode, mut decoded) = (Vec::new(), Vec::new(), 0);
    let (mut host_prefill, mut host_decode) = (Vec::new(), Vec::new());
    let (mut pre_phase, mut dec_phase) = (Phase::default(), Phase::default());
    let mut samples = Vec::new();
    for _ in 0..a.reps.max(1) {
        s.reset();
        probe.clock.clear();
        let c0 = card_cycles();
        // the first token is sampled from the prefill's logits: at that point every GEMM so
        // far was the prefill's
        let mut at_first: Option<(f64, u64)> = None;
        // `decode` decode steps (one forward of one token each) after the first token
        let g = generate(
            s,
            &prompt,
            a.decode + 1,
            &mut Sampler::greedy(),
            None,
            |_| {
                if at_first.is_none() {
                    at_first = Some((probe.clock.spent().as_secs_f64(), card_cycles()));
                }
                true
            },
        )?;
        let (pre_gemm, c1) = at_first.unwrap_or((probe.clock.spent().as_secs_f64(), card_cycles()));
        pre_phase = Phase {
            gemm_s: pre_gemm,
            card_cycles: c1 - c0,
        };
        dec_phase = Phase {
            gemm_s: probe.clock.spent().as_secs_f64() - pre_gemm,
            card_cycles: card_cycles() - c1,
        };
        decoded = g.generated_ids.len().saturating_sub(1);
        let d = decoded as f64 / g.decode_secs.max(1e-12);
        let hp = (g.prefill_secs - pre_phase.gemm_s) / prompt.len() as f64;
        let hd = (g.decode_secs - dec_phase.gemm_s) / decoded.max(1) as f64;
        prefill.push(g.prefill_tokens_per_sec());
        decode.push(d);
        host_prefill.push(hp);
        host_decode.push(hd);
        samples.push(json!({
            "prefill_tokens_per_s": g.prefill_tokens_per_sec(), "decode_tokens_per_s": d,
            "prefill_s": g.prefill_secs, "decode_s": g.decode_secs,
            "prefill_gemm_s": pre_phase.gemm_s, "decode_gemm_s": dec_phase.gemm_s,
            "host_ms_per_prefill_token": 1e3 * hp, "host_ms_per_decode_token": 1e3 * hd,
            "loadavg": tern_kernels::bench::loadavg(),
        }));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.total_cmp(y));
        v[v.len() / 2]
    };
    let (prefill_tps, decode_tps) = (median(&mut prefill), median(&mut decode));
    let (host_pre_ms, host_dec_ms) = (
        1e3 * median(&mut host_prefill),
        1e3 * median(&mut host_decode),
    );
    // the card's cycles per token and PE utilization (useful MACs ÷ cycles × PEs), last rep
    let card = probe.card.as_ref().map(|_| {
        let per = |p: Phase, tokens: usize| {
            let cyc = p.card_cycles as f64 / tokens.max(1) as f64;
            let util = probe.macs_per_token as f64 / (cyc * pes as f64);
            json!({"cycles_per_token": cyc, "pe_utilization": util})
        };
        json!({
            "pes": pes,
            "prefill": per(pre_phase, prompt.len()),
            "decode": per(dec_phase, decoded),
        })
    });
    let h = s.head();
    let weight_bytes = s.weight_bytes_per_token();
    // The KV cache a decoded token reads: decode step i (0-based) attends to prefill + i + 1
    // positions, so the mean over the steps is prefill + (decoded + 1) / 2.
    let kv_row = s.kv_bytes_per_position();
    let mean_ctx = prompt.len() as f64 + (decoded as f64 + 1.0) / 2.0;
    let kv_bytes = (kv_row as f64 * mean_ctx).round() as usize;
    let bytes = weight_bytes + kv_bytes;
    let ternary_bytes = s.backend().weight_bytes();
    // Decode reads every weight and the cached keys and values once per token:
    // bound = bandwidth ÷ bytes per token.
    let bound = bw
        .filter(|_| ternary_bytes > 0)
        .map(|b| b * 1e9 / bytes as f64);
    let out = json!({
        "model": a.model, "backend": name, "threads": threads,
        "head": h.head_type().name(), "head_exact": h.exact(),
        "head_bytes": h.bytes(), "ternary_bytes": ternary_bytes,
        "bytes_per_token": bytes,
        "weight_bytes_per_token": weight_bytes,
        "kv_bytes_per_token": kv_bytes, "kv_bytes_per_position": kv_row,
        "bandwidth_gbps": bw,
        "bound_tokens_per_s": bound,
        "pct_of_bound": bound.map(|b| 100.0 * decode_tps / b),
        "prefill_tokens": prompt.len(), "decode_tokens": decoded,
        "reps": samples.len(),
        "prefill_tokens_per_s": prefill_tps,
        "decode_tokens_per_s": decode_tps,
        "host_ms_per_prefill_token": host_pre_ms,
        "host_ms_per_decode_token": host_dec_ms,
        "card": card,
        "samples": samples,
        "loadavg_before": load0, "loadavg_after": tern_kernels::bench::loadavg(),
    });
    if !a.json {
        println!(
            "{} on {name}, head {}: prefill {} tokens at {:.1} tok/s, decode {} tokens at {:.1} tok/s (loadavg {})",
            a.model.display(),
            h.head_type(),
            prompt.len(),
            prefill_tps,
            decoded,
            decode_tps,
            load0
        );
        println!(
            "host time outside the ternary GEMMs (norms, attention, head, sampling): {host_pre_ms:.3} ms per prefill token, {host_dec_ms:.3} ms per decoded token"
        );
        if let Some(c) = &card {
            println!(
                "card: {:.0} cycles per decoded token, PE utilization {:.1}% of {pes} PEs (prefill: {:.0} cycles per token, {:.1}%)",
                c["decode"]["cycles_per_token"].as_f64().unwrap_or(0.0),
                100.0 * c["decode"]["pe_utilization"].as_f64().unwrap_or(0.0),
                c["prefill"]["cycles_per_token"].as_f64().unwrap_or(0.0),
                100.0 * c["prefill"]["pe_utilization"].as_f64().unwrap_or(0.0),
            );
        }
        if let (Some(b), Some(bound)) = (bw, bound) {
            println!(
                "{:.1} MB read per decoded token (head {:.1} MB, KV cache {:.1} MB), bandwidth {b:.1} GB/s: bound {bound:.1} tok/s, {:.0}% reached",
                bytes as f64 / 1e6,
                h.bytes() as f64 / 1e6,
                kv_bytes as f64 / 1e6,
                100.0 * decode_tps / bound
            );
        }
    }
    Ok(out)
}
