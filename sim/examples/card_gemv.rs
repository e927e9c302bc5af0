//! Cycles per GEMV of the BitNet b1.58 2B-4T projections on the card RTL under Verilator
//! (`CardSim`), one GEMM command (M = 1) per distinct shape, weights resident in card
//! memory. Prints cycles per shape, per token (30 layers), the tokens/s bound at 250 MHz
//! and the bytes moved per token.
//!
//! ```text
//! cargo run --release -p tern-sim --example card_gemv -- [config] [latency] [words_per_cycle]
//! ```

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::error::Error;
use tern_hdl::{HdlOptions, Params};
use tern_sim::card::{CardSim, CardSimOptions, MemTiming};
use tern_sim::card_image;
use tern_spec::card::cmd::{Command, Completion, Status, CMD_BYTES, CPL_BYTES};
use tern_spec::card::regs::{control, off};
use tern_spec::{ArrayConfig, ScaledTernaryMatrix};

const LAYERS: u64 = 30;
const CLOCK_HZ: f64 = 250e6;

fn counter(s: &mut CardSim, lo: u32) -> Result<u64, Box<dyn Error>> {
    let l = s.read32(lo)? as u64;
    let h = s.read32(lo + 4)? as u64;
    Ok(h << 32 | l)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("default");
    let latency: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(40);
    let bw: f64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1.0);
    let cfg = ArrayConfig::builtin_or_load(name)?;
    let p = Params::new(&cfg, HdlOptions::default())?;
    let opts = CardSimOptions {
        mem_bytes: 1 << 30,
        card_mem: MemTiming {
            latency,
            words_per_cycle: bw,
        },
        ..CardSimOptions::default()
    };
    let t0 = std::time::Instant::now();
    let mut s = CardSim::new(&cfg, opts)?;
    println!(
        "card {name}: {}x{} array, card memory latency {latency} cycles, {bw} word(s) (64 B)/cycle; built/loaded in {:.1} s",
        p.rows,
        p.cols,
        t0.elapsed().as_secs_f64()
    );
    // rings
    let sq = s.alloc(CMD_BYTES * 4)?;
    let cq = s.alloc(CPL_BYTES * 4)?;
    s.write32(off::SQ_BASE_LO, sq.iova as u32)?;
    s.write32(off::SQ_BASE_HI, (sq.iova >> 32) as u32)?;
    s.write32(off::SQ_LOG2_SIZE, 2)?;
    s.write32(off::CQ_BASE_LO, cq.iova as u32)?;
    s.write32(off::CQ_BASE_HI, (cq.iova >> 32) as u32)?;
    s.write32(off::CQ_LOG2_SIZE, 2)?;
    s.write32(off::CONTROL, control::ENABLE)?;
    let (mut tail, mut head, mut phase) = (0u32, 0u32, true);
    // (name, K, N, uses per layer)
    let shapes = [
        ("q, o", 2560usize, 2560usize, 2u64),
        ("k, v", 2560, 640, 2),
        ("gate, up", 2560, 6912, 2),
        ("down", 6912, 2560, 1),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(2025);
    let (wa, aa, oa) = (0x0100_0000u64, 0x0800_0000u64, 0x0900_0000u64);
    let mut per_token_cycles = 0u64;
    let mut per_token_bytes = 0u64;
    println!(
        "{:<10} {:>6} {:>6} {:>12} {:>12} {:>8} {:>12} {:>12}",
        "shape", "K", "N", "cycles", "ideal core", "eff", "card rd B", "card wr B"
    );
    for (i, &(what, k, n, uses)) in shapes.iter().enumerate() {
        let trits = Array2::from_shape_fn((n, k), |_| rng.gen_range(-1i8..=1));
        let (bn, bk) = (cfg.block.n as usize, cfg.block.k as usize);
        let mants = Array2::from_shape_fn((n.div_ceil(bn), k.div_ceil(bk)), |_| {
            rng.gen_range(0..1u32 << cfg.scale.mantissa_bits)
        });
        let w = ScaledTernaryMatrix::new(
            trits,
            cfg.block,
            mants,
            ndarray::Array1::zeros(n.div_ceil(bn)),
            cfg.scale.mantissa_bits,
        )?;
        let a = Array2::from_shape_fn((1, k), |_| rng.gen_range(-128i32..=127) as i8);
        s.write_card(wa, &card_image::region(&p, &w)?)?;
        s.write_card(aa, &card_image::acts(a.view()))?;
        s.write32(off::PERF_CONTROL, 1)?;
        let cmd = Command::gemm(i as u16, wa, aa, oa, 1, k as u32, n as u32).encode();
        s.write_host(sq.id, tail as usize * CMD_BYTES, &cmd)?;
        tail = (tail + 1) % 4;
        let t = std::time::Instant::now();
        let c0 = s.cycles();
        s.write32(off::SQ_TAIL, tail)?;
        let c = loop {
            let mut b = [0u8; CPL_BYTES];
            s.read_host(cq.id, head as usize * CPL_BYTES, &mut b)?;
            let c = Completion::decode(&b);
            if c.phase == phase {
                head = (head + 1) % 4;
                if head == 0 {
                    phase = !phase;
                }
                s.write32(off::CQ_HEAD, head)?;
                break c;
            }
            if !s.run_until_cq_write(1 << 20)? {
                return Err(
                    format!("{what}: no completion after {} cycles", s.cycles() - c0).into(),
                );
            }
        };
        let wall = t.elapsed().as_secs_f64();
        if c.status != Status::Ok as u8 {
            return Err(format!("{what}: status {} info {:#x}", c.status, c.info).into());
        }
        // check the result against the reference
        let olen = card_image::outputs_len(1, n, p.rows as usize);
        let mut ob = vec![0u8; olen];
        s.read_card(oa, &mut ob)?;
        let got = card_image::decode_outputs(&ob, 1, n, p.rows as usize);
        let want = tern_spec::reference::gemm_acc(&w, a.view())?;
        if got != want {
            return Err(format!("{what}: outputs differ from the reference").into());
        }
        let rd = counter(&mut s, off::BYTES_RD_LO)?;
        let wr = counter(&mut s, off::BYTES_WR_LO)?;
        let ideal = tern_hdl::host::ideal_cycles(&p, k, n, 1) as u64;
        println!(
            "{:<10} {:>6} {:>6} {:>12} {:>12} {:>7.1}% {:>12} {:>12}   ({:.1} s wall, {:.0} kcycles/s)",
            what,
            k,
            n,
            c.cycles,
            ideal,
            100.0 * ideal as f64 / c.cycles as f64,
            rd,
            wr,
            wall,
            (s.cycles() - c0) as f64 / wall / 1e3
        );
        per_token_cycles += uses * c.cycles;
        per_token_bytes += uses * (rd + wr);
    }
    let cyc = per_token_cycles * LAYERS;
    let bytes = per_token_bytes * LAYERS;
    let tps = CLOCK_HZ / cyc as f64;
    println!("per layer: {per_token_cycles} cycles (q, k, v, o, gate, up, down)");
    println!(
        "per token ({LAYERS} layers): {cyc} cycles = {:.3} ms at 250 MHz -> {:.1} tokens/s bound",
        cyc as f64 / CLOCK_HZ * 1e3,
        tps
    );
    println!(
        "card memory traffic per token: {bytes} bytes ({:.1} MB; {:.2} GB/s at that rate)",
        bytes as f64 / 1e6,
        bytes as f64 * tps / 1e9
    );
    Ok(())
}
