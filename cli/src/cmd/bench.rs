//! `tern bench kernels|run`: performance, measured as ratios in one run, with the load
//! average recorded (the machines are shared; never read a figure without it).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use tern_runtime::backend;
use tern_runtime::generate::generate;
use tern_runtime::model::{self, bitnet::Session};
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
    /// Prefill and decode tokens/s of a model on a backend.
    Run(RunBenchArgs),
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
    }
}

fn run_bench(a: RunBenchArgs) -> Result<()> {
    if a.prefill == 0 {
        bail!("--prefill must be ≥ 1");
    }
    let load0 = tern_kernels::bench::loadavg();
    let m = model::load(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
    let vocab = m.config.vocab as u32;
    let be = backend::backend_by_name(&a.backend)?;
    let (mut s, _tok) = Session::from_model(m, be)?;
    let name = s.backend().name();
    // a deterministic prompt of in-vocabulary ids
    let prompt: Vec<u32> = (0..a.prefill as u32)
        .map(|i| (i * 7919 + 13) % vocab.max(1))
        .collect();
    let g = generate(
        &mut s,
        &prompt,
        a.decode,
        &mut Sampler::greedy(),
        None,
        |_| true,
    )?;
    let out = json!({
        "model": a.model, "backend": name,
        "prefill_tokens": prompt.len(), "decode_tokens": g.generated_ids.len(),
        "prefill_tokens_per_s": g.prefill_tokens_per_sec(),
        "decode_tokens_per_s": g.generated_ids.len() as f64 / g.decode_secs.max(1e-12),
        "prefill_s": g.prefill_secs, "decode_s": g.decode_secs,
        "loadavg_before": load0, "loadavg_after": tern_kernels::bench::loadavg(),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} on {name}: prefill {} tokens at {:.1} tok/s, decode {} tokens at {:.1} tok/s (loadavg {})",
            a.model.display(),
            prompt.len(),
            out["prefill_tokens_per_s"].as_f64().unwrap_or(0.0),
            g.generated_ids.len(),
            out["decode_tokens_per_s"].as_f64().unwrap_or(0.0),
            load0
        );
    }
    Ok(())
}
