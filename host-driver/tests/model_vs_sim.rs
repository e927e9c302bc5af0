//! The same random command streams on the `model` and `sim` back ends (the software model
//! and the Verilated card RTL) through the same Card API: identical GEMM results (and equal
//! to tern_spec::reference), identical completion statuses and infos for refused commands.
//! Seeded (printed; TERN_SEED replays). Skips when Verilator is absent (fails under CI).

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};
use tern_driver::backend::sim::SimCard;
use tern_driver::card::CardOptions;
use tern_driver::{Card, DriverError, ModelCard, ModelOptions, Transport};
use tern_sim::card::CardSimOptions;
use tern_sim::verilator::Toolchain;
use tern_spec::card::cmd::{Command, Opcode};
use tern_spec::{ArrayConfig, ScaledTernaryMatrix};

const MEM: u64 = 16 << 20;

fn seed() -> u64 {
    std::env::var("TERN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 & 0xffff_ffff)
                .unwrap_or(3)
        })
}

fn opts() -> CardOptions {
    CardOptions {
        deadline: Duration::from_secs(120),
        ..CardOptions::default()
    }
}

fn random_layer(
    cfg: &ArrayConfig,
    rng: &mut ChaCha8Rng,
    k: usize,
    n: usize,
    m: usize,
) -> (ScaledTernaryMatrix, Array2<i8>) {
    let trits = Array2::from_shape_fn((n, k), |_| rng.gen_range(-1i8..=1));
    let (bn, bk) = (cfg.block.n as usize, cfg.block.k as usize);
    let mb = cfg.scale.mantissa_bits;
    let mmax = (1u64 << mb) - 1;
    let mants = Array2::from_shape_fn((n.div_ceil(bn), k.div_ceil(bk)), |_| {
        rng.gen_range(0..=mmax) as u32
    });
    let exps = ndarray::Array1::zeros(n.div_ceil(bn));
    let w = ScaledTernaryMatrix::new(trits, cfg.block, mants, exps, mb).unwrap();
    let bits = cfg.activation.bits;
    let (lo, hi) = (-(1i32 << (bits - 1)), (1i32 << (bits - 1)) - 1);
    let a = Array2::from_shape_fn((m, k), |_| rng.gen_range(lo..=hi) as i8);
    (w, a)
}

/// (status, info) of a raw command, `(0, 0)` when it succeeds; clears the error after.
fn raw_status<T: Transport>(c: &mut Card<T>, raw: &[u8; 64]) -> (u8, u32) {
    let tag = c.submit_raw(raw).unwrap();
    match c.wait(tag, Instant::now() + Duration::from_secs(60)) {
        Ok(_) => (0, 0),
        Err(DriverError::CommandFailed {
            status_code, info, ..
        }) => {
            c.clear_errors().unwrap();
            (status_code, info)
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[test]
fn model_and_sim_agree_on_random_streams() {
    let Some(_) = Toolchain::find_or_skip().unwrap() else {
        return;
    };
    let seed = seed();
    println!("seed {seed} (TERN_SEED={seed} replays)");
    let cfg = ArrayConfig::builtin("small").unwrap();
    let mut model = Card::probe_with(
        ModelCard::new(ModelOptions::new(cfg.clone()).mem_bytes(MEM)).unwrap(),
        opts(),
    )
    .unwrap();
    let sim_opts = CardSimOptions {
        mem_bytes: MEM,
        ..CardSimOptions::default()
    };
    let mut sim = Card::probe_with(SimCard::open(&cfg, sim_opts).unwrap(), opts()).unwrap();
    let (mut im, mut is) = (model.info().clone(), sim.info().clone());
    im.backend.clear();
    is.backend.clear();
    assert_eq!(im, is, "ID blocks");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for case in 0..4 {
        let (k, n, m) = (
            rng.gen_range(1..400),
            rng.gen_range(1..100),
            rng.gen_range(1..=2 * cfg.array.token_tile as usize),
        );
        let (w, a) = random_layer(&cfg, &mut rng, k, n, m);
        let want = tern_spec::reference::gemm_acc(&w, a.view()).unwrap();
        let hm = model.load_weights(&w).unwrap();
        let hs = sim.load_weights(&w).unwrap();
        let rm = model.gemm(&hm, a.view()).unwrap();
        let rs = sim.gemm(&hs, a.view()).unwrap();
        assert!(
            rm.acc == want && rs.acc == want,
            "seed {seed} case {case} K={k} N={n} M={m}: model ok {}, sim ok {}",
            rm.acc == want,
            rs.acc == want
        );
        assert_eq!(rm.commands, rs.commands);
        println!(
            "case {case}: K={k} N={n} M={m}: {} commands, sim {} cycles, model {} cycles",
            rs.commands, rs.cycles, rm.cycles
        );
        // refused commands on that region: same status and info on both
        let addr_m = hm.parts[0].addr;
        let addr_s = hs.parts[0].addr;
        assert_eq!(addr_m, addr_s, "same allocator, same addresses");
        let n0 = hm.parts[0].n as u32;
        let bad = [
            Command::gemm(900, addr_m, 0x40_0000, 0x80_0000, 1, k as u32 + 1, n0),
            Command::gemm(901, addr_m, 0x40_0000, 0x80_0000, 1, k as u32, n0 + 1),
            Command::gemm(902, addr_m, 0x40_0000, 0x80_0000, 0, k as u32, n0),
            Command::gemm(903, addr_m + 64, 0x40_0000, 0x80_0000, 1, k as u32, n0),
            // two output rows (at least 128 bytes) cannot fit in the last 64 bytes
            Command::gemm(904, addr_m, 0x40_0000, MEM - 64, 2, k as u32, n0),
            Command::gemm(905, addr_m, 0x40_0010, 0x80_0000, 1, k as u32, n0),
            Command {
                a0: 0x7f00_0000_0000,
                a1: 0,
                w0: 64,
                ..Command::new(Opcode::DmaToHost, 906)
            },
            Command {
                a1: MEM,
                w0: 64,
                ..Command::new(Opcode::DmaToCard, 907)
            },
        ];
        for cmd in bad {
            let raw = cmd.encode();
            let sm = raw_status(&mut model, &raw);
            let ss = raw_status(&mut sim, &raw);
            assert_eq!(sm, ss, "seed {seed}: {cmd:?}: model {sm:?} vs sim {ss:?}");
            assert_ne!(sm.0, 0, "{cmd:?} should fail");
        }
        let mut op = Command::new(Opcode::Nop, 908).encode();
        op[0] = 42;
        assert_eq!(raw_status(&mut model, &op), raw_status(&mut sim, &op));
        let mut rsv = Command::new(Opcode::Nop, 909).encode();
        rsv[60] = 7;
        assert_eq!(raw_status(&mut model, &rsv), raw_status(&mut sim, &rsv));
        model.free_region(&hm).unwrap();
        sim.free_region(&hs).unwrap();
    }
}
