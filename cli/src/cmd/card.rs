//! `tern card`: talk to a card through the host driver (docs/driver.md): its ID block, a
//! self-test against the bit-exact reference (optionally with an injected fault), and a
//! host-overhead measurement.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::time::{Duration, Instant};
use tern_driver::card::CardOptions;
use tern_driver::{Card, CardInfo, PerfCounters, Transport};
use tern_spec::config::BlockShape;
use tern_spec::random::{self, ScaleDist};
use tern_spec::reference;

#[derive(Subcommand, Debug)]
pub enum CardCmd {
    /// Probe a card and print its decoded ID block.
    Info(InfoArgs),
    /// Load a random layer, run GEMV and GEMM on the card and compare with the reference.
    Selftest(SelftestArgs),
    /// Host overhead on a card: NOP round trips per second, µs per 2560×2560 GEMV.
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Back end: model[:<config>], sim, vfio:DDDD:BB:DD.F (see docs/driver.md).
    #[arg(long, default_value = "model")]
    pub backend: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SelftestArgs {
    /// Back end: model[:<config>], sim, vfio:DDDD:BB:DD.F.
    #[arg(long, default_value = "model")]
    pub backend: String,
    /// Config of the model or sim card: a built-in name or a TOML file.
    #[arg(long)]
    pub config: Option<String>,
    /// Make the model card misbehave: timeout, crc, dma, stuck, dropped.
    #[arg(long, value_parser = ["timeout", "crc", "dma", "stuck", "dropped"])]
    pub inject: Option<String>,
    /// Seed of the random layer and activations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Per-command deadline, milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub deadline_ms: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Back end (the figures mean host overhead only on `model`).
    #[arg(long, default_value = "model")]
    pub backend: String,
    /// Seconds of NOP round trips.
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// GEMVs to time.
    #[arg(long, default_value_t = 10)]
    pub gemvs: usize,
    /// Layer size (N = K).
    #[arg(long, default_value_t = 2560)]
    pub size: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(c: CardCmd) -> Result<()> {
    match c {
        CardCmd::Info(a) => info(a),
        CardCmd::Selftest(a) => selftest(a),
        CardCmd::Bench(a) => bench(a),
    }
}

fn open(spec: &str, opts: CardOptions) -> Result<Card<Box<dyn Transport>>> {
    let t = tern_driver::open(spec).with_context(|| {
        format!(
            "opening back end `{spec}`; back ends:\n{}",
            tern_driver::backend::help()
        )
    })?;
    Card::probe_with(t, opts).with_context(|| format!("probing the card on `{spec}`"))
}

fn print_info(i: &CardInfo) {
    println!("card on {}", i.backend);
    println!(
        "  magic       {:#010x}  ABI {}.{}  build {}",
        i.magic, i.abi_major, i.abi_minor, i.build_hash
    );
    println!("  caps        {:#x} [{}]", i.caps, i.caps_names.join(", "));
    println!(
        "  array       {}×{} lanes×cols, token_tile {}, block {}×{}",
        i.rows, i.cols, i.token_tile, i.block_n, i.block_k
    );
    println!(
        "  widths      act {} b, mant {} b, psum {} b, acc {} b",
        i.act_bits, i.mant_bits, i.psum_bits, i.acc_bits
    );
    println!("  limits      max_k {}, max_n {}", i.max_k, i.max_n);
    println!(
        "  clock       {:.3} MHz   memory {} MiB   rings ≤ 2^{}",
        i.clock_khz as f64 / 1000.0,
        i.mem_bytes >> 20,
        i.ring_log2_max
    );
    let blocks: Vec<String> = i
        .blocks
        .iter()
        .map(|b| {
            format!(
                "{:#06x}: type {:#06x} v{}",
                b.offset, b.block_type, b.version
            )
        })
        .collect();
    println!("  blocks      {}", blocks.join("; "));
}

fn info(a: InfoArgs) -> Result<()> {
    let card = open(&a.backend, CardOptions::default())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(card.info())?);
    } else {
        print_info(card.info());
    }
    Ok(())
}

#[derive(Serialize)]
struct CaseReport {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    bit_exact: bool,
    mismatches: usize,
    cycles: u64,
    gemm_commands: usize,
    checksum: String,
}

#[derive(Serialize)]
struct SelftestReport {
    backend: String,
    seed: u64,
    card: CardInfo,
    cases: Vec<CaseReport>,
    perf: Option<PerfCounters>,
    ok: bool,
}

/// The back-end spec with `--config` and `--inject` folded in.
fn selftest_spec(a: &SelftestArgs) -> Result<String> {
    let kind = tern_driver::backend::kind(&a.backend);
    if kind != "model" && a.inject.is_some() {
        bail!("--inject needs the model back end (got `{}`)", a.backend);
    }
    if kind != "model" && kind != "sim" && a.config.is_some() {
        bail!(
            "--config needs the model or sim back end (got `{}`)",
            a.backend
        );
    }
    let mut spec = a.backend.clone();
    if let Some(c) = &a.config {
        if spec.contains(':') {
            bail!("both --config and a config in `--backend {spec}`: give one");
        }
        let (head, q) = spec.split_once('?').unwrap_or((&spec, ""));
        spec = if q.is_empty() {
            format!("{head}:{c}")
        } else {
            format!("{head}:{c}?{q}")
        };
    }
    if let Some(f) = &a.inject {
        spec.push(if spec.contains('?') { '&' } else { '?' });
        spec.push_str(&format!("inject={f}"));
    }
    Ok(spec)
}

fn selftest(a: SelftestArgs) -> Result<()> {
    let spec = selftest_spec(&a)?;
    let opts = CardOptions {
        deadline: Duration::from_millis(a.deadline_ms.max(1)),
        hang_after: Duration::from_millis((a.deadline_ms / 4).clamp(1, 1000)),
        ..CardOptions::default()
    };
    let mut card = open(&spec, opts)?;
    let cfg = card.config().clone();
    let info = card.info().clone();
    let (rows, bk) = (info.rows as usize, info.block_k as usize);
    let (n, k) = (3 * rows + 5, 2 * bk + info.cols as usize + 3);
    let block = BlockShape {
        n: info.block_n,
        k: info.block_k,
    };
    let (w, _) = random::layer(
        a.seed,
        n,
        k.min(info.max_k as usize),
        block,
        cfg.scale.mantissa_bits,
        ScaleDist::Typical,
    )?;
    let k = w.k();
    let h = card
        .load_weights(&w)
        .with_context(|| format!("selftest on `{spec}`: LOAD_WEIGHTS of a {n}×{k} layer"))?;
    let mut cases = vec![];
    let m_gemm = if info.has_gemm() {
        info.token_tile as usize + 3
    } else {
        3
    };
    for (name, m) in [("gemv", 1usize), ("gemm", m_gemm)] {
        let acts = random::act_codes(a.seed.wrapping_add(m as u64), m, k, cfg.activation.bits);
        let run = card
            .gemm(&h, acts.q.view())
            .with_context(|| format!("selftest on `{spec}`: {name} M = {m}, K = {k}, N = {n}"))?;
        let want = reference::gemm_acc(&w, acts.q.view())?;
        let mismatches = run
            .acc
            .iter()
            .zip(want.iter())
            .filter(|(x, y)| x != y)
            .count();
        cases.push(CaseReport {
            name,
            m,
            k,
            n,
            bit_exact: mismatches == 0,
            mismatches,
            cycles: run.cycles,
            gemm_commands: run.commands,
            checksum: format!("{:016x}", reference::checksum(&run.acc)),
        });
    }
    card.free_region(&h)?;
    let perf = card.perf().ok();
    let ok = cases.iter().all(|c| c.bit_exact);
    let report = SelftestReport {
        backend: info.backend.clone(),
        seed: a.seed,
        card: info,
        cases,
        perf,
        ok,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "selftest on {} (seed {}): layer {n}×{k}, block {}",
            report.backend, a.seed, block
        );
        for c in &report.cases {
            println!(
                "  {:5} M={:<3} {} ({} mismatches)  {} cycles in {} GEMM command(s)  checksum {}",
                c.name,
                c.m,
                if c.bit_exact { "bit-exact" } else { "MISMATCH" },
                c.mismatches,
                c.cycles,
                c.gemm_commands,
                c.checksum
            );
        }
        if let Some(p) = &report.perf {
            println!(
                "  perf: {} cycles, {} busy, {} MACs, {} B read, {} B written, {} commands",
                p.cycles, p.busy, p.macs, p.bytes_rd, p.bytes_wr, p.cmds_done
            );
        }
        println!("  {}", if ok { "PASS" } else { "FAIL" });
    }
    if !ok {
        bail!("selftest on `{spec}`: the card's outputs differ from the reference");
    }
    Ok(())
}

#[derive(Serialize)]
struct BenchReport {
    backend: String,
    command: String,
    nop_round_trips_per_s: f64,
    gemv_layer: String,
    gemv_us: f64,
    reference_us: f64,
    reference_decoded_us: f64,
    host_overhead_us: f64,
    small_gemv_us: f64,
    gemvs: usize,
    loadavg: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn bench(a: BenchArgs) -> Result<()> {
    let mut card = open(&a.backend, CardOptions::default())?;
    let cfg = card.config().clone();
    // NOP round trips
    let t0 = Instant::now();
    let mut nops = 0u64;
    while t0.elapsed().as_secs_f64() < a.seconds.max(0.01) {
        card.nop()?;
        nops += 1;
    }
    let nop_rate = nops as f64 / t0.elapsed().as_secs_f64();
    // GEMV on a size × size layer: card round trip vs the reference alone
    let size = a.size.clamp(1, cfg.accumulator.max_k as usize);
    let (w, _) = random::layer(
        1,
        size,
        size,
        cfg.block,
        cfg.scale.mantissa_bits,
        ScaleDist::Typical,
    )?;
    let h = card.load_weights(&w)?;
    let acts = random::act_codes(2, 1, size, cfg.activation.bits);
    card.gemm(&h, acts.q.view())?; // warm: the model decodes and caches the region
    let gemvs = a.gemvs.max(1);
    // the model runs the reference on the matrix it decodes from the image (block 1×block_k)
    let (_, decoded) =
        tern_spec::card::image::decode_region(&tern_spec::card::image::build_region(&cfg, &w)?)?;
    let mut card_t = vec![];
    let mut ref_t = vec![];
    let mut dec_t = vec![];
    for _ in 0..gemvs {
        let t = Instant::now();
        let run = card.gemm(&h, acts.q.view())?;
        card_t.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        let want = reference::gemm_acc(&w, acts.q.view())?;
        ref_t.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        let same = reference::gemm_acc(&decoded, acts.q.view())?;
        dec_t.push(t.elapsed().as_secs_f64() * 1e6);
        if run.acc != want || same != want {
            bail!("bench: the card's GEMV differs from the reference");
        }
    }
    let (g, r, rd) = (median(card_t), median(ref_t), median(dec_t));
    // a 64×64 GEMV: compute is negligible, the time is the driver's and the back end's
    let (ws, _) = random::layer(
        3,
        64,
        64,
        cfg.block,
        cfg.scale.mantissa_bits,
        ScaleDist::Typical,
    )?;
    let hs = card.load_weights(&ws)?;
    let a64 = random::act_codes(4, 1, 64, cfg.activation.bits);
    let mut small = vec![];
    for _ in 0..100 {
        let t = Instant::now();
        card.gemm(&hs, a64.q.view())?;
        small.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let small = median(small);
    let report = BenchReport {
        backend: card.info().backend.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        nop_round_trips_per_s: nop_rate,
        gemv_layer: format!("{size}×{size}"),
        gemv_us: g,
        reference_us: r,
        reference_decoded_us: rd,
        host_overhead_us: g - rd,
        small_gemv_us: small,
        gemvs,
        loadavg: std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unavailable".into()),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("card bench on {}", report.backend);
        println!(
            "  NOP round trips     {:.0} /s",
            report.nop_round_trips_per_s
        );
        println!(
            "  GEMV {}   {:.1} µs on the card; reference alone {:.1} µs on the layer, {:.1} µs on the card's decoded image; host overhead {:.1} µs (median of {})",
            report.gemv_layer, g, r, rd, g - rd, gemvs
        );
        println!("  GEMV 64×64         {small:.1} µs through the driver (median of 100)");
        println!("  load average        {}", report.loadavg);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(backend: &str, config: Option<&str>, inject: Option<&str>) -> SelftestArgs {
        SelftestArgs {
            backend: backend.into(),
            config: config.map(Into::into),
            inject: inject.map(Into::into),
            seed: 1,
            deadline_ms: 100,
            json: false,
        }
    }

    #[test]
    fn selftest_specs_fold_config_and_fault_in() {
        assert_eq!(selftest_spec(&args("model", None, None)).unwrap(), "model");
        assert_eq!(
            selftest_spec(&args("model", Some("small"), Some("crc"))).unwrap(),
            "model:small?inject=crc"
        );
        assert_eq!(
            selftest_spec(&args("model?mem=1G", Some("small"), Some("dma"))).unwrap(),
            "model:small?mem=1G&inject=dma"
        );
        assert!(selftest_spec(&args("sim", None, Some("crc"))).is_err());
        assert_eq!(
            selftest_spec(&args("sim", Some("small"), None)).unwrap(),
            "sim:small"
        );
        assert!(selftest_spec(&args("vfio:0000:01:00.0", Some("small"), None)).is_err());
        assert!(selftest_spec(&args("model:small", Some("large"), None)).is_err());
    }
}
