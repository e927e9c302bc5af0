//! Co-simulation: the emitted Verilog under Verilator against the reference, bit for bit,
//! on random cases (shapes, block shapes, extreme scales and activations, random stalls on
//! every stream) over several configs. `make test` runs ≥ 1,000,000 random MACs here;
//! `make verify-long` raises it with TERN_COSIM_MACS.

use tern_sim::case::CaseSpec;
use tern_sim::engine::{compare, Engine, ReferenceEngine, Reproducer};
use tern_sim::verilator::Toolchain;
use tern_sim::verilator_engine::VerilatorEngine;
use tern_spec::ArrayConfig;

/// Configs that differ in rows, cols, block shape, activation width, token tile.
fn configs() -> Vec<ArrayConfig> {
    let mut v = vec![ArrayConfig::builtin("small").unwrap()];
    let custom = |name: &str, rows, cols, tile, bn, bk, bits, mant| {
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
        c.accumulator.acc_bits =
            tern_spec::widths::required_acc_bits(c.accumulator.max_k, bits, mant);
        c.validate("test").unwrap();
        c
    };
    v.push(custom("t4x8", 4, 8, 1, 1, 32, 4, 16));
    v.push(custom("t6x3", 6, 3, 3, 48, 48, 6, 12));
    v.push(custom("t2x16", 2, 16, 4, 16, 128, 8, 20));
    v.push(custom("t5x4", 5, 4, 2, 7, 8, 5, 8));
    v
}

fn budget() -> u64 {
    std::env::var("TERN_COSIM_MACS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_200_000)
}

#[test]
fn verilator_matches_reference_on_random_cases() {
    let Some(_) = Toolchain::find_or_skip().unwrap() else {
        return;
    };
    let seed0: u64 = std::env::var("TERN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xC051);
    let cfgs = configs();
    let per_cfg = budget() / cfgs.len() as u64;
    let mut total_macs = 0u64;
    let mut total_cases = 0u64;
    for (ci, cfg) in cfgs.iter().enumerate() {
        let mut eng = VerilatorEngine::new(cfg, None).unwrap();
        let mut refe = ReferenceEngine::new(cfg);
        let mut macs = 0u64;
        let mut i = 0u64;
        while macs < per_cfg {
            let seed = seed0.wrapping_add((ci as u64) << 32).wrapping_add(i);
            let spec = CaseSpec::random(cfg, seed, 60_000);
            let case = spec.build(cfg).unwrap();
            let want = refe.run(&case).unwrap();
            let got = eng
                .run(&case)
                .unwrap_or_else(|e| panic!("config {} case seed {seed}: {e}", cfg.name));
            if let Some(m) = compare(cfg, &case, "verilator", &want, &got) {
                let path = std::env::temp_dir().join(format!("tern-repro-{seed}.json"));
                Reproducer::new(cfg, &spec, Some(m.clone()))
                    .write(&path)
                    .unwrap();
                panic!(
                    "config {} seed {seed}: mismatch {m:?}; reproducer {} (replay: tern sim gemm --repro FILE)",
                    cfg.name,
                    path.display()
                );
            }
            macs += spec.macs();
            i += 1;
        }
        eprintln!(
            "config {}: {i} cases, {macs} MACs, {} cycles, 0 mismatches",
            cfg.name, eng.total_cycles
        );
        total_macs += macs;
        total_cases += i;
    }
    eprintln!(
        "co-simulation: {total_cases} cases, {total_macs} MACs over {} configs, 0 mismatches",
        cfgs.len()
    );
    assert!(total_macs >= budget());
}
