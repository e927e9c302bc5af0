//! `tern gemm`: the reference on a random Scaled-Ternary-Block layer, with its float error
//! against an f64 computation, the operation counts and a checksum of the integer output.

use crate::progress;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use ndarray::s;
use serde::Serialize;
use std::time::Instant;
use tern_spec::config::BlockShape;
use tern_spec::random::{self, ScaleDist};
use tern_spec::reference;
use tern_spec::ArrayConfig;

#[derive(Args, Debug)]
pub struct GemmArgs {
    /// Config: a built-in name (default, small, large) or a TOML file.
    #[arg(long, default_value = "default")]
    pub config: String,
    /// Tokens (rows of the activation batch).
    #[arg(long, default_value_t = 1)]
    pub m: usize,
    /// Inputs per token.
    #[arg(long, default_value_t = 512)]
    pub k: usize,
    /// Outputs.
    #[arg(long, default_value_t = 256)]
    pub n: usize,
    /// Seed of the random layer and activations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Block shape NxK of the layer's scales (default: the config's block).
    #[arg(long, value_parser = parse_block)]
    pub block: Option<BlockShape>,
    /// How block scales are drawn.
    #[arg(long, value_enum, default_value_t = Scales::Typical)]
    pub scales: Scales,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Scales {
    Typical,
    Extreme,
}

/// Parses `64x64`.
pub fn parse_block(s: &str) -> Result<BlockShape, String> {
    let (a, b) = s
        .split_once(['x', 'X', '×'])
        .ok_or_else(|| format!("block shape {s:?}: expected NxK, e.g. 64x64 or 1x128"))?;
    let p = |v: &str, what: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|&x| x >= 1)
            .ok_or_else(|| format!("block shape {s:?}: {what} = {v:?} is not an integer ≥ 1"))
    };
    Ok(BlockShape {
        n: p(a, "N")?,
        k: p(b, "K")?,
    })
}

/// What `tern gemm` reports.
#[derive(Debug, Serialize)]
pub struct GemmReport {
    pub config: String,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub block: String,
    pub seed: u64,
    pub macs: u64,
    pub adds: u64,
    pub subs: u64,
    pub holds: u64,
    pub scaler_mults: u64,
    /// FNV-1a of the integer outputs as little-endian i64 words.
    pub checksum: String,
    pub max_abs_err: f64,
    /// max |y - view| / max |view|: the error relative to the largest output.
    pub max_rel_err: f64,
    /// max over outputs of |y - f64 view| / bound (≤ 1 means inside the contract's bound).
    pub max_err_over_bound: f64,
    pub within_bound: bool,
    pub max_abs_acc: i64,
    pub elapsed_s: f64,
}

pub fn run(a: GemmArgs) -> Result<()> {
    let cfg = ArrayConfig::builtin_or_load(&a.config)?;
    let r = compute(&cfg, &a)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_report(&r);
    }
    if !r.within_bound {
        anyhow::bail!(
            "the float error exceeds the contract's bound (seed {})",
            r.seed
        );
    }
    Ok(())
}

pub fn compute(cfg: &ArrayConfig, a: &GemmArgs) -> Result<GemmReport> {
    let block = a.block.unwrap_or(cfg.block);
    if a.m == 0 || a.n == 0 || a.k == 0 {
        anyhow::bail!(
            "--m, --n and --k must be ≥ 1 (got m = {}, n = {}, k = {})",
            a.m,
            a.n,
            a.k
        );
    }
    let dist = match a.scales {
        Scales::Typical => ScaleDist::Typical,
        Scales::Extreme => ScaleDist::Extreme,
    };
    let t0 = Instant::now();
    let (w, scales) = random::layer(a.seed, a.n, a.k, block, cfg.scale.mantissa_bits, dist)
        .context("making the random layer")?;
    let acts = random::acts(a.seed, a.m, a.k, cfg.activation.bits)?;
    w.check_fits(cfg)
        .with_context(|| format!("layer does not fit config {}", cfg.name))?;

    let nb = w.mants.nrows();
    let work = a.m as u64 * a.n as u64 * a.k as u64;
    let pb = progress::bar(nb as u64, "gemm", a.json || work < 50_000_000);
    let mut acc = ndarray::Array2::<i64>::zeros((a.m, a.n));
    let (mut max_abs, mut max_view, mut worst) = (0.0f64, 0.0f64, 0.0f64);
    let bn = block.n as usize;
    // Work block row by block row so that progress shows and Ctrl-C stops between rows.
    for br in 0..nb {
        progress::check_interrupt()?;
        let part = w.block_rows(br, br + 1);
        let sc = scales.slice(s![br..br + 1, ..]);
        let r = reference::gemm(cfg, &part, &acts)?;
        let view = reference::float_view(&part, sc, &acts);
        let bound = reference::error_bound(&part, sc, &acts, &view);
        let c0 = br * bn;
        acc.slice_mut(s![.., c0..c0 + part.n()]).assign(&r.acc);
        for ((t, o), &y) in r.y.indexed_iter() {
            let err = (y as f64 - view[(t, o)]).abs();
            max_abs = max_abs.max(err);
            max_view = max_view.max(view[(t, o)].abs());
            let b = bound[(t, o)];
            worst = worst.max(if b > 0.0 {
                err / b
            } else if err > 0.0 {
                f64::INFINITY
            } else {
                0.0
            });
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let count = |v: i8| w.trits.iter().filter(|&&t| t == v).count() as u64 * a.m as u64;
    Ok(GemmReport {
        config: cfg.name.clone(),
        m: a.m,
        n: a.n,
        k: a.k,
        block: block.to_string(),
        seed: a.seed,
        macs: reference::macs(a.m, a.n, a.k),
        adds: count(1),
        subs: count(-1),
        holds: count(0),
        scaler_mults: (a.m * a.n * w.mants.ncols()) as u64,
        checksum: format!("{:016x}", reference::checksum(&acc)),
        max_abs_err: max_abs,
        max_rel_err: if max_view > 0.0 {
            max_abs / max_view
        } else {
            0.0
        },
        max_err_over_bound: worst,
        within_bound: worst <= 1.0,
        max_abs_acc: acc.iter().map(|v| v.abs()).max().unwrap_or(0),
        elapsed_s: t0.elapsed().as_secs_f64(),
    })
}

fn print_report(r: &GemmReport) {
    println!(
        "reference GEMM on config {}: M = {}, N = {}, K = {}, {} blocks, seed {}",
        r.config, r.m, r.n, r.k, r.block, r.seed
    );
    println!(
        "  MACs            {:>14}  (adds {}, subs {}, holds {})",
        r.macs, r.adds, r.subs, r.holds
    );
    println!("  scaler products {:>14}", r.scaler_mults);
    println!(
        "  checksum        {:>14}  (integer outputs, FNV-1a)",
        r.checksum
    );
    println!("  largest |acc|   {:>14}", r.max_abs_acc);
    println!("  error vs f64    max abs {:.3e} ({:.3e} of the largest output), {:.3} of the contract bound: {}",
        r.max_abs_err, r.max_rel_err, r.max_err_over_bound,
        if r.within_bound { "inside" } else { "OUTSIDE" });
    println!("  time            {:.3} s", r.elapsed_s);
}
