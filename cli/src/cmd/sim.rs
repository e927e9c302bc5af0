//! `tern sim gemm|fuzz|bench`: the three engines (reference, Verilator, rust-hdl) on one
//! stimulus, compared bit for bit; mismatches leave a reproducer and a waveform.

use super::gemm::parse_block;
use crate::progress;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tern_sim::case::{Case, CaseSpec, Stalls};
use tern_sim::engine::{compare, Engine, Mismatch, ReferenceEngine, Reproducer, RunResult};
use tern_sim::verilator_engine::{ideal_cycles, utilization, VerilatorEngine};
use tern_spec::{reference, ArrayConfig};

#[derive(Subcommand, Debug)]
pub enum SimCmd {
    /// One GEMM on the selected engines, compared with the reference.
    Gemm(GemmArgs),
    /// Random cases (shapes, blocks, extremes, stalls) until C cases or a mismatch.
    Fuzz(FuzzArgs),
    /// Simulation speed of each engine on the same workload.
    Bench(BenchArgs),
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum EngineSel {
    Reference,
    Verilator,
    Rusthdl,
    All,
}

#[derive(Args, Debug)]
pub struct GemmArgs {
    /// Config: built-in name or TOML file.
    #[arg(long, default_value = "default")]
    pub config: String,
    #[arg(long, default_value_t = 1)]
    pub m: usize,
    #[arg(long, default_value_t = 256)]
    pub k: usize,
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Block shape NxK of the layer's scales (default: the config's).
    #[arg(long, value_parser = parse_block)]
    pub block: Option<tern_spec::BlockShape>,
    /// Probability that each stream stalls in a cycle (0 = full rate).
    #[arg(long, default_value_t = 0.0)]
    pub stall: f64,
    #[arg(long, value_enum, default_value_t = EngineSel::All)]
    pub engine: EngineSel,
    /// Write a waveform (VCD) of the Verilator run.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Replay a reproducer file written by a failing run (overrides shape options).
    #[arg(long)]
    pub repro: Option<PathBuf>,
    /// Fault injection for testing the mismatch report: flip bit 0 of output [0, 0] of every
    /// non-reference engine before the comparison.
    #[arg(long, hide = true)]
    pub corrupt_output: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FuzzArgs {
    #[arg(long, default_value = "small")]
    pub config: String,
    #[arg(long, default_value_t = 100)]
    pub cases: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Largest M·N·K of one case.
    #[arg(long, default_value_t = 60_000)]
    pub max_macs: u64,
    #[arg(long, value_enum, default_value_t = EngineSel::Verilator)]
    pub engine: EngineSel,
    /// Where reproducers and waveforms of mismatches go.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = "default")]
    pub config: String,
    /// Workload: M, K, N of one GEMM (default: a 2560 × 2560 GEMV, BitNet 2B-4T's attention shape).
    #[arg(long, default_value_t = 1)]
    pub m: usize,
    #[arg(long, default_value_t = 2560)]
    pub k: usize,
    #[arg(long, default_value_t = 2560)]
    pub n: usize,
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: SimCmd) -> Result<()> {
    match cmd {
        SimCmd::Gemm(a) => gemm(a),
        SimCmd::Fuzz(a) => fuzz(a),
        SimCmd::Bench(a) => bench(a),
    }
}

fn engines(
    cfg: &ArrayConfig,
    sel: EngineSel,
    trace: Option<&Path>,
) -> Result<Vec<Box<dyn Engine>>> {
    let mut v: Vec<Box<dyn Engine>> = Vec::new();
    if matches!(sel, EngineSel::Verilator | EngineSel::All) {
        v.push(Box::new(
            VerilatorEngine::new(cfg, trace).context("building the Verilator engine")?,
        ));
    }
    if matches!(sel, EngineSel::Rusthdl | EngineSel::All) {
        v.push(make_rusthdl(cfg)?);
    }
    if sel == EngineSel::Reference {
        v.push(Box::new(ReferenceEngine::new(cfg)));
    }
    Ok(v)
}

fn make_rusthdl(cfg: &ArrayConfig) -> Result<Box<dyn Engine>> {
    Ok(Box::new(tern_sim::rusthdl_engine::RustHdlEngine::new(cfg)?))
}

/// Runs a case on the engines; returns per-engine JSON and the first mismatch.
fn run_case(
    cfg: &ArrayConfig,
    case: &Case,
    engines: &mut [Box<dyn Engine>],
    corrupt: bool,
) -> Result<(RunResult, Value, Option<Mismatch>)> {
    let mut refe = ReferenceEngine::new(cfg);
    let t = Instant::now();
    let want = refe.run(case)?;
    let mut per = serde_json::Map::new();
    per.insert(
        "reference".into(),
        json!({"checksum": format!("{:016x}", reference::checksum(&want.acc)), "seconds": t.elapsed().as_secs_f64()}),
    );
    let mut first = None;
    for e in engines.iter_mut() {
        let t = Instant::now();
        let mut got = e
            .run(case)
            .with_context(|| format!("engine {} on case seed {}", e.name(), case.spec.seed))?;
        if corrupt {
            got.acc[(0, 0)] ^= 1;
        }
        let secs = t.elapsed().as_secs_f64();
        let mm = compare(cfg, case, e.name(), &want, &got);
        per.insert(
            e.name().into(),
            json!({
                "checksum": format!("{:016x}", reference::checksum(&got.acc)),
                "cycles": got.cycles,
                "utilization": got.cycles.map(|c| utilization(cfg, case.spec.macs(), c)),
                "mismatches": mm.as_ref().map_or(0, |m| m.count),
                "seconds": secs,
            }),
        );
        if first.is_none() {
            first = mm;
        }
    }
    Ok((want, Value::Object(per), first))
}

/// Writes the reproducer and a waveform of the failing case; returns their paths.
fn report_mismatch(
    cfg: &ArrayConfig,
    spec: &CaseSpec,
    m: &Mismatch,
    dir: &Path,
) -> Result<(PathBuf, Option<PathBuf>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let repro = dir.join(format!("tern-repro-{}-{}.json", cfg.name, spec.seed));
    let vcd = dir.join(format!("tern-repro-{}-{}.vcd", cfg.name, spec.seed));
    let mut r = Reproducer::new(cfg, spec, Some(m.clone()));
    // re-run the case under Verilator with tracing on
    let traced = VerilatorEngine::new(cfg, Some(&vcd))
        .and_then(|mut e| e.run(&spec.build(cfg)?).map(|_| ()))
        .is_ok();
    if traced {
        r.waveform = Some(vcd.clone());
    }
    r.write(&repro)
        .with_context(|| format!("{}: cannot write", repro.display()))?;
    Ok((repro, traced.then_some(vcd)))
}

fn gemm(a: GemmArgs) -> Result<()> {
    let (cfg, spec) = match &a.repro {
        Some(p) => {
            let (r, cfg) = Reproducer::read(p).map_err(anyhow::Error::msg)?;
            (cfg, r.case)
        }
        None => {
            let cfg = ArrayConfig::builtin_or_load(&a.config)?;
            let mut s = CaseSpec::simple(&cfg, a.seed, a.m, a.n, a.k);
            if let Some(b) = a.block {
                s.block_n = b.n;
                s.block_k = b.k;
            }
            if !(0.0..1.0).contains(&a.stall) {
                bail!("--stall {} must be in 0..1", a.stall);
            }
            s.stalls = Stalls {
                weights: a.stall,
                acts: a.stall,
                scales: a.stall,
                out: a.stall,
            };
            (cfg, s)
        }
    };
    let case = spec
        .build(&cfg)
        .with_context(|| format!("case does not fit config {}", cfg.name))?;
    let sel = if a.repro.is_some() && a.engine == EngineSel::All {
        EngineSel::Verilator
    } else {
        a.engine
    };
    let mut engs = engines(&cfg, sel, a.trace.as_deref())?;
    let (_, per, mm) = run_case(&cfg, &case, &mut engs, a.corrupt_output)?;
    let cycles = per.get("verilator").and_then(|v| v["cycles"].as_u64());
    let (repro, wave) = match &mm {
        Some(m) => {
            let (r, w) = report_mismatch(&cfg, &spec, m, Path::new("."))?;
            (Some(r), w)
        }
        None => (None, None),
    };
    let out = json!({
        "config": cfg.name, "seed": spec.seed, "m": spec.m, "n": spec.n, "k": spec.k,
        "block": format!("{}x{}", spec.block_n, spec.block_k),
        "engines": per, "cases": 1, "macs": spec.macs(),
        "mismatches": mm.as_ref().map_or(0, |m| m.count),
        "first_mismatch": mm, "cycles": cycles,
        "ideal_cycles": ideal_cycles(&cfg, spec.m, spec.n, spec.k),
        "utilization": cycles.map(|c| utilization(&cfg, spec.macs(), c)),
        "reproducer": repro, "waveform": wave.or(a.trace.clone()),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "sim gemm on config {}: M = {}, N = {}, K = {}, blocks {}, seed {}",
            cfg.name,
            spec.m,
            spec.n,
            spec.k,
            out["block"].as_str().unwrap_or(""),
            spec.seed
        );
        for (name, v) in per.as_object().into_iter().flatten() {
            println!(
                "  {name:<10} checksum {}  cycles {:>10}  utilization {:>6}  mismatches {}",
                v["checksum"].as_str().unwrap_or("-"),
                v["cycles"].as_u64().map_or("-".into(), |c| c.to_string()),
                v["utilization"]
                    .as_f64()
                    .map_or("-".into(), |u| format!("{:.1}%", 100.0 * u)),
                v["mismatches"].as_u64().unwrap_or(0)
            );
        }
        println!("  ideal cycles (no stalls) {}", out["ideal_cycles"]);
        if let Some(t) = &a.trace {
            println!("  waveform {}", t.display());
        }
    }
    if let Some(m) = mm {
        bail!(
            "engine {} differs from the reference at token {}, row {} (block row {}, tile {}, lane {}): expected {}, got {} ({} outputs differ); seed {}; reproducer {}",
            m.engine, m.token, m.row, m.block_row, m.tile, m.lane, m.expected, m.got, m.count, spec.seed,
            out["reproducer"].as_str().unwrap_or("-")
        );
    }
    Ok(())
}

fn fuzz(a: FuzzArgs) -> Result<()> {
    let cfg = ArrayConfig::builtin_or_load(&a.config)?;
    let sel = if a.engine == EngineSel::Reference {
        bail!("--engine reference: fuzzing compares an engine with the reference; pick verilator, rusthdl or all")
    } else {
        a.engine
    };
    let mut engs = engines(&cfg, sel, None)?;
    let pb = progress::bar(a.cases, "fuzz", a.json);
    let t0 = Instant::now();
    let (mut macs, mut cycles, mut done) = (0u64, 0u64, 0u64);
    let mut failure = None;
    for i in 0..a.cases {
        if progress::interrupted() {
            break;
        }
        let seed = a.seed.wrapping_mul(1_000_003).wrapping_add(i);
        let spec = CaseSpec::random(&cfg, seed, a.max_macs);
        let case = spec.build(&cfg)?;
        let (_, per, mm) = run_case(&cfg, &case, &mut engs, false)?;
        macs += spec.macs();
        cycles += per
            .get("verilator")
            .and_then(|v| v["cycles"].as_u64())
            .unwrap_or(0);
        done += 1;
        pb.inc(1);
        pb.set_message(format!("{macs} MACs, 0 mismatches"));
        if let Some(m) = mm {
            let (r, w) = report_mismatch(&cfg, &spec, &m, &a.out)?;
            failure = Some((m, spec.seed, r, w));
            break;
        }
    }
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let out = json!({
        "config": cfg.name, "seed": a.seed,
        "engines": engs.iter().map(|e| e.name()).collect::<Vec<_>>(),
        "cases": done, "macs": macs, "cycles": cycles,
        "utilization": utilization(&cfg, macs, cycles),
        "mismatches": failure.as_ref().map_or(0, |f| f.0.count),
        "first_mismatch": failure.as_ref().map(|f| &f.0),
        "reproducer": failure.as_ref().map(|f| &f.2),
        "waveform": failure.as_ref().and_then(|f| f.3.as_ref()),
        "cases_per_s": done as f64 / secs, "seconds": secs,
        "interrupted": progress::interrupted(),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "fuzz on config {}: {done} cases, {macs} MACs, {cycles} cycles, {} mismatches, {:.1} cases/s",
            cfg.name,
            out["mismatches"],
            out["cases_per_s"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some((m, seed, r, _)) = failure {
        bail!(
            "mismatch on case seed {seed}: {m:?}; reproducer {}",
            r.display()
        );
    }
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn bench(a: BenchArgs) -> Result<()> {
    let cfg = ArrayConfig::builtin_or_load(&a.config)?;
    let spec = CaseSpec::simple(&cfg, 1, a.m, a.n, a.k);
    let case = spec.build(&cfg)?;
    let ideal = ideal_cycles(&cfg, a.m, a.n, a.k);
    let load_before = loadavg();
    let mut per = serde_json::Map::new();
    // reference: MAC-equivalent cycles (the array's ideal cycle count for the same work)
    let t = Instant::now();
    let mut refe = ReferenceEngine::new(&cfg);
    let want = refe.run(&case)?;
    let s = t.elapsed().as_secs_f64();
    per.insert("reference".into(), json!({"cycles": ideal, "seconds": s, "cycles_per_s": ideal as f64 / s, "note": "array-equivalent cycles of the same work"}));
    let mut v = VerilatorEngine::new(&cfg, None)?;
    let t = Instant::now();
    let got = v.run(&case)?;
    let s = t.elapsed().as_secs_f64();
    let c = got.cycles.unwrap_or(0);
    if got.acc != want.acc {
        bail!("verilator differs from the reference on the bench workload");
    }
    per.insert(
        "verilator".into(),
        json!({"cycles": c, "seconds": s, "cycles_per_s": c as f64 / s}),
    );
    if let Ok(mut r) = make_rusthdl(&cfg) {
        let t = Instant::now();
        let got = r.run(&case)?;
        let s = t.elapsed().as_secs_f64();
        let c = got.cycles.unwrap_or(0);
        per.insert(
            "rusthdl".into(),
            json!({"cycles": c, "seconds": s, "cycles_per_s": c as f64 / s}),
        );
    }
    let ratio = |a: &str, b: &str| -> Option<f64> {
        Some(per.get(a)?["cycles_per_s"].as_f64()? / per.get(b)?["cycles_per_s"].as_f64()?)
    };
    let out = json!({
        "config": cfg.name, "m": a.m, "k": a.k, "n": a.n, "macs": spec.macs(),
        "engines": per.clone(),
        "verilator_over_rusthdl": ratio("verilator", "rusthdl"),
        "loadavg_before": load_before, "loadavg_after": loadavg(),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "sim bench on config {}: M = {}, K = {}, N = {} (loadavg {})",
            cfg.name,
            a.m,
            a.k,
            a.n,
            out["loadavg_before"].as_str().unwrap_or("")
        );
        for (name, v) in &per {
            println!(
                "  {name:<10} {:>12.0} cycles/s  ({} cycles in {:.3} s)",
                v["cycles_per_s"].as_f64().unwrap_or(0.0),
                v["cycles"],
                v["seconds"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(r) = out["verilator_over_rusthdl"].as_f64() {
            println!("  verilator / rusthdl = {r:.0}×");
        }
    }
    Ok(())
}
