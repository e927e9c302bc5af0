//! rust-hdl's simulator of the core (the blocks' `update()` cycle models) against the
//! reference and against the emitted Verilog under Verilator: the same cases (shapes, block
//! shapes, extreme scales and activations, random stalls), the same outputs bit for bit and
//! the same cycle counts. The rusthdl-vs-reference part always runs; the Verilator part is
//! skipped (outside CI) when Verilator is not installed.

use tern_sim::case::{Case, CaseSpec, Stalls};
use tern_sim::engine::{compare, Engine, EngineError, ReferenceEngine, Reproducer, RunResult};
use tern_sim::rusthdl_engine::{RustHdlEngine, Stepping, SUPPORTED_WIDTHS};
use tern_sim::verilator::Toolchain;
use tern_sim::verilator_engine::VerilatorEngine;
use tern_spec::ArrayConfig;

fn custom(name: &str, geometry: [u32; 5], bits: u32, mant: u32) -> ArrayConfig {
    let [rows, cols, tile, bn, bk] = geometry;
    let mut c = ArrayConfig::builtin("small").unwrap();
    c.name = name.into();
    c.array.rows = rows;
    c.array.cols = cols;
    c.array.token_tile = tile;
    c.block.n = bn;
    c.block.k = bk;
    c.activation.bits = bits;
    c.scale.mantissa_bits = mant;
    c.accumulator.psum_bits = tern_spec::widths::required_psum_bits(bk as u64, bits);
    c.accumulator.max_k = 4096;
    c.accumulator.acc_bits = tern_spec::widths::required_acc_bits(c.accumulator.max_k, bits, mant);
    c.validate("test").unwrap();
    c
}

/// The built-in `small` config and a tiny custom one (odd rows, block.n not a multiple of
/// rows, 6-bit activations).
fn configs() -> Vec<ArrayConfig> {
    vec![
        ArrayConfig::builtin("small").unwrap(),
        custom("t3x4", [3, 4, 3, 5, 8], 6, 16),
    ]
}

/// Hand-picked cases on top of the random ones, so every feature is covered whatever the
/// random draw: stalls on every stream, M > token_tile with a partial last command, N not a
/// multiple of rows, K not a multiple of block.k, M = 1.
fn fixed_specs(cfg: &ArrayConfig, seed: u64) -> Vec<CaseSpec> {
    let rows = cfg.array.rows as usize;
    let tile = cfg.array.token_tile as usize;
    let bk = cfg.block.k as usize;
    let stalls = Stalls {
        weights: 0.3,
        acts: 0.25,
        scales: 0.4,
        out: 0.5,
    };
    let mut a = CaseSpec::simple(cfg, seed, 2 * tile + 1, 2 * rows + 1, bk + 3);
    a.stalls = stalls;
    a.full_range_acts = true;
    let mut b = CaseSpec::simple(cfg, seed + 1, 1, rows - 1, 2 * bk);
    b.stalls = stalls;
    b.extreme_scales = true;
    let c = CaseSpec::simple(cfg, seed + 2, tile + 1, rows + 1, bk - 1);
    vec![a, b, c]
}

/// Which features a set of cases covered.
#[derive(Default, Debug)]
struct Coverage {
    stalls: usize,
    multi_command: usize,
    partial_command: usize,
    partial_n_tile: usize,
    partial_k_block: usize,
    single_token: usize,
}

impl Coverage {
    fn add(&mut self, cfg: &ArrayConfig, s: &CaseSpec) {
        let (rows, tile) = (cfg.array.rows as usize, cfg.array.token_tile as usize);
        let st = s.stalls;
        self.stalls +=
            (st.weights > 0.0 || st.acts > 0.0 || st.scales > 0.0 || st.out > 0.0) as usize;
        self.multi_command += (s.m > tile) as usize;
        self.partial_command += (s.m > tile && !s.m.is_multiple_of(tile)) as usize;
        self.partial_n_tile += (!s.n.is_multiple_of(rows)) as usize;
        self.partial_k_block += (!s.k.is_multiple_of(cfg.block.k as usize)) as usize;
        self.single_token += (s.m == 1) as usize;
    }

    fn assert_complete(&self) {
        let all = [
            self.stalls,
            self.multi_command,
            self.partial_command,
            self.partial_n_tile,
            self.partial_k_block,
            self.single_token,
        ];
        assert!(all.iter().all(|&c| c > 0), "coverage hole: {self:?}");
    }
}

fn fail(cfg: &ArrayConfig, spec: &CaseSpec, what: String) -> ! {
    let path = std::env::temp_dir().join(format!("tern-repro-rusthdl-{}.json", spec.seed));
    Reproducer::new(cfg, spec, None).write(&path).unwrap();
    panic!(
        "config {} seed {}: {what}; reproducer {} (replay: tern sim gemm --repro FILE)",
        cfg.name,
        spec.seed,
        path.display()
    );
}

fn check(cfg: &ArrayConfig, case: &Case, engine: &str, want: &RunResult, got: &RunResult) {
    if let Some(m) = compare(cfg, case, engine, want, got) {
        fail(cfg, &case.spec, format!("{engine} mismatch {m:?}"));
    }
}

#[test]
fn rusthdl_matches_reference_and_verilator_on_random_cases() {
    let seed0: u64 = std::env::var("TERN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x4D1);
    let cases_per_cfg: u64 = std::env::var("TERN_RUSTHDL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let tc = Toolchain::find_or_skip().unwrap();
    let mut total = 0usize;
    for (ci, cfg) in configs().iter().enumerate() {
        let mut hdl = RustHdlEngine::new(cfg).unwrap();
        let mut refe = ReferenceEngine::new(cfg);
        let mut vl = tc
            .as_ref()
            .map(|_| VerilatorEngine::new(cfg, None).unwrap());
        let base = seed0.wrapping_add((ci as u64) << 32);
        let mut specs: Vec<CaseSpec> = (0..cases_per_cfg)
            .map(|i| CaseSpec::random(cfg, base.wrapping_add(i), 3000))
            .collect();
        specs.extend(fixed_specs(cfg, base.wrapping_add(1 << 20)));
        let mut cov = Coverage::default();
        for spec in &specs {
            cov.add(cfg, spec);
            let case = spec.build(cfg).unwrap();
            let want = refe.run(&case).unwrap();
            let got = hdl
                .run(&case)
                .unwrap_or_else(|e| fail(cfg, spec, format!("rusthdl: {e}")));
            check(cfg, &case, "rusthdl", &want, &got);
            assert!(got.cycles.is_some_and(|c| c > 0));
            if let Some(vl) = vl.as_mut() {
                let v = vl
                    .run(&case)
                    .unwrap_or_else(|e| fail(cfg, spec, format!("verilator: {e}")));
                check(cfg, &case, "verilator", &want, &v);
                if v.cycles != got.cycles {
                    fail(
                        cfg,
                        spec,
                        format!(
                            "cycles differ: verilator {:?}, rusthdl {:?}",
                            v.cycles, got.cycles
                        ),
                    );
                }
            }
        }
        cov.assert_complete();
        if let Some(vl) = &vl {
            assert_eq!(vl.total_cycles, hdl.total_cycles);
        }
        eprintln!(
            "config {}: {} cases, {} cycles, {:.0} cycles/s in rust-hdl, 0 mismatches{}; {cov:?}",
            cfg.name,
            specs.len(),
            hdl.total_cycles,
            hdl.cycles_per_second(),
            if vl.is_some() {
                ", cycles identical to verilator"
            } else {
                " (verilator skipped)"
            }
        );
        total += specs.len();
    }
    assert!(total >= 40);
}

/// rust-hdl's own `Simulation` (clock process + testbench thread) and the direct stepping
/// loop give the same outputs and the same cycles.
#[test]
fn direct_stepping_equals_rust_hdl_simulation() {
    for cfg in configs() {
        let mut direct = RustHdlEngine::new(&cfg).unwrap();
        let mut sim = RustHdlEngine::with_stepping(&cfg, Stepping::Simulation).unwrap();
        assert_eq!(sim.stepping(), Stepping::Simulation);
        let mut refe = ReferenceEngine::new(&cfg);
        let tile = cfg.array.token_tile as usize;
        let mut spec = CaseSpec::simple(&cfg, 91, tile + 1, cfg.array.rows as usize + 2, 19);
        spec.stalls = Stalls {
            weights: 0.2,
            acts: 0.2,
            scales: 0.3,
            out: 0.4,
        };
        for spec in [spec, CaseSpec::random(&cfg, 92, 2000)] {
            let case = spec.build(&cfg).unwrap();
            let want = refe.run(&case).unwrap();
            let a = direct.run(&case).unwrap();
            let b = sim.run(&case).unwrap();
            check(&cfg, &case, "rusthdl", &want, &a);
            assert_eq!(a, b, "config {} seed {}", cfg.name, spec.seed);
        }
        assert_eq!(direct.total_cycles, sim.total_cycles);
    }
}

#[test]
fn unsupported_widths_are_refused() {
    let mut cfg = custom("t2x4", [2, 4, 1, 2, 8], 6, 12);
    assert!(!SUPPORTED_WIDTHS.contains(&(6, 12)));
    match RustHdlEngine::new(&cfg) {
        Err(EngineError::Unavailable { engine, why }) => {
            assert_eq!(engine, "rusthdl");
            assert!(
                why.contains("activation.bits = 6, scale.mantissa_bits = 12: supported"),
                "{why}"
            );
            assert!(why.contains("(8, 24)"), "{why}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("(6, 12) accepted"),
    }
    // every listed pair builds and runs
    for &(a, mb) in SUPPORTED_WIDTHS {
        cfg = custom("t2x4", [2, 4, 1, 2, 8], a, mb);
        let mut e = RustHdlEngine::new(&cfg).unwrap_or_else(|e| panic!("({a}, {mb}): {e}"));
        let mut spec = CaseSpec::simple(&cfg, 7, 2, 3, 9);
        spec.full_range_acts = true;
        spec.extreme_scales = true;
        let case = spec.build(&cfg).unwrap();
        let want = ReferenceEngine::new(&cfg).run(&case).unwrap();
        let got = e.run(&case).unwrap();
        check(&cfg, &case, "rusthdl", &want, &got);
    }
}

#[test]
fn huge_cases_are_refused() {
    let cfg = ArrayConfig::builtin("small").unwrap();
    let mut e = RustHdlEngine::new(&cfg).unwrap().with_max_macs(10_000);
    let case = CaseSpec::simple(&cfg, 1, 4, 64, 64).build(&cfg).unwrap();
    match e.run(&case) {
        Err(EngineError::Unavailable { why, .. }) => {
            assert!(why.contains("16384 MACs"), "{why}");
            assert!(why.contains("max_macs = 10000"), "{why}");
        }
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(e.total_cycles, 0);
    // still usable for a case under the limit
    let small = CaseSpec::simple(&cfg, 1, 2, 64, 64).build(&cfg).unwrap();
    let want = ReferenceEngine::new(&cfg).run(&small).unwrap();
    assert_eq!(e.run(&small).unwrap().acc, want.acc);
}

/// Simulation speed of both cycle-level engines on one workload (one run each). Ignored by
/// default; run with `cargo test --release -p tern-sim --test rusthdl -- --ignored
/// --nocapture`. TERN_BENCH=config,M,N,K picks the workload (default small,8,256,512);
/// TERN_BENCH_SIMULATION=1 adds the rust-hdl `Simulation` stepping.
#[test]
#[ignore]
fn throughput_rusthdl_vs_verilator() {
    use tern_sim::rusthdl_engine::throughput;
    let spec = std::env::var("TERN_BENCH").unwrap_or_else(|_| "small,8,256,512".into());
    let f: Vec<&str> = spec.split(',').collect();
    let cfg = ArrayConfig::builtin(f[0]).unwrap();
    let dim = |i: usize| f[i].parse::<usize>().unwrap();
    let (m, n, k) = (dim(1), dim(2), dim(3));
    let case = CaseSpec::simple(&cfg, 1, m, n, k).build(&cfg).unwrap();
    let want = ReferenceEngine::new(&cfg).run(&case).unwrap();
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "config {}, M {m} N {n} K {k}; loadavg {}",
        cfg.name,
        load().trim()
    );
    let mut engines: Vec<(&str, Box<dyn Engine>)> = Vec::new();
    if Toolchain::find_or_skip().unwrap().is_some() {
        let e = VerilatorEngine::new(&cfg, None).unwrap();
        engines.push(("verilator", Box::new(e)));
    }
    let e = RustHdlEngine::new(&cfg).unwrap().with_max_macs(u64::MAX);
    engines.push(("rusthdl", Box::new(e)));
    if std::env::var("TERN_BENCH_SIMULATION").is_ok_and(|v| v == "1") {
        // rust-hdl's own Simulation (clock and testbench threads), for comparison
        let e = RustHdlEngine::with_stepping(&cfg, Stepping::Simulation).unwrap();
        engines.push(("rusthdl/Simulation", Box::new(e.with_max_macs(u64::MAX))));
    }
    let mut rates = Vec::new();
    for (label, e) in engines.iter_mut() {
        let e = e.as_mut();
        let (t, r) = throughput(e, &case).unwrap();
        assert_eq!(r.acc, want.acc, "{label}");
        let cps = t.cycles_per_second().unwrap();
        eprintln!(
            "  {:<10} {:>10.0} cycles/s ({} cycles in {:.3} s, {:.0} MACs/s)",
            label,
            cps,
            t.cycles.unwrap(),
            t.seconds,
            t.macs_per_second()
        );
        rates.push((*label, t.cycles, cps));
    }
    if let [("verilator", cv, v), ("rusthdl", ch, h), ..] = rates[..] {
        assert_eq!(cv, ch);
        eprintln!("  verilator / rusthdl = {:.0}×", v / h);
    }
    eprintln!("loadavg after {}", load().trim());
}
