//! The card top under Verilator (tern_sim::card::CardSim), stage by stage: (a) register
//! file, ID block, heartbeat; (b) rings, NOP/FENCE, completions with phase wrap; (c) DMA
//! copies, LOAD_WEIGHTS CRC, errors and halting; (d) GEMM bit-exact against
//! tern_spec::reference on random seeded cases (seed printed; TERN_SEED replays).

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tern_hdl::{HdlOptions, Params};
use tern_sim::card::{CardSim, CardSimOptions, HostBuf};
use tern_sim::card_image;
use tern_sim::verilator::Toolchain;
use tern_spec::card::cmd::{Command, Completion, Opcode, Status, CMD_BYTES, CPL_BYTES};
use tern_spec::card::regs::{self, caps, control, error, off, status};
use tern_spec::{ArrayConfig, ScaledTernaryMatrix};

fn sim(name: &str) -> Option<CardSim> {
    Toolchain::find_or_skip().unwrap()?;
    let cfg = ArrayConfig::builtin(name).unwrap();
    let opts = CardSimOptions {
        mem_bytes: 1 << 24,
        ..Default::default()
    };
    Some(CardSim::new(&cfg, opts).unwrap())
}

fn seed() -> u64 {
    std::env::var("TERN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 & 0xffff_ffff)
                .unwrap_or(7)
        })
}

struct Rings {
    sq: HostBuf,
    cq: HostBuf,
    sq_n: u32,
    cq_n: u32,
    tail: u32,
    head: u32,
    phase: bool,
}

fn rings(s: &mut CardSim, sq_log2: u32, cq_log2: u32) -> Rings {
    let sq = s.alloc(CMD_BYTES << sq_log2).unwrap();
    let cq = s.alloc(CPL_BYTES << cq_log2).unwrap();
    s.write32(off::SQ_BASE_LO, sq.iova as u32).unwrap();
    s.write32(off::SQ_BASE_HI, (sq.iova >> 32) as u32).unwrap();
    s.write32(off::SQ_LOG2_SIZE, sq_log2).unwrap();
    s.write32(off::CQ_BASE_LO, cq.iova as u32).unwrap();
    s.write32(off::CQ_BASE_HI, (cq.iova >> 32) as u32).unwrap();
    s.write32(off::CQ_LOG2_SIZE, cq_log2).unwrap();
    s.write32(off::CONTROL, control::ENABLE).unwrap();
    Rings {
        sq,
        cq,
        sq_n: 1 << sq_log2,
        cq_n: 1 << cq_log2,
        tail: 0,
        head: 0,
        phase: true,
    }
}

fn submit(s: &mut CardSim, r: &mut Rings, cmds: &[[u8; CMD_BYTES]]) {
    for c in cmds {
        s.write_host(r.sq.id, r.tail as usize * CMD_BYTES, c)
            .unwrap();
        r.tail = (r.tail + 1) % r.sq_n;
    }
    s.write32(off::SQ_TAIL, r.tail).unwrap();
}

/// Waits for `n` completions (consuming them), at most `budget` cycles.
fn completions(s: &mut CardSim, r: &mut Rings, n: usize, budget: u64) -> Vec<Completion> {
    let mut out = vec![];
    let start = s.cycles();
    while out.len() < n {
        let mut b = [0u8; CPL_BYTES];
        s.read_host(r.cq.id, r.head as usize * CPL_BYTES, &mut b)
            .unwrap();
        let c = Completion::decode(&b);
        if c.phase == r.phase {
            out.push(c);
            r.head = (r.head + 1) % r.cq_n;
            if r.head == 0 {
                r.phase = !r.phase;
            }
            s.write32(off::CQ_HEAD, r.head).unwrap();
            continue;
        }
        assert!(
            s.cycles() - start < budget,
            "{} of {n} completions after {budget} cycles",
            out.len()
        );
        s.run_until_cq_write(budget.min(20_000)).unwrap();
    }
    out
}

fn run(s: &mut CardSim, r: &mut Rings, cmds: &[Command], budget: u64) -> Vec<Completion> {
    let enc: Vec<_> = cmds.iter().map(Command::encode).collect();
    submit(s, r, &enc);
    completions(s, r, cmds.len(), budget)
}

fn dma(op: Opcode, tag: u16, host: u64, card: u64, len: u32, crc: u32) -> Command {
    Command {
        a0: host,
        a1: card,
        w0: len,
        w1: crc,
        ..Command::new(op, tag)
    }
}

// ---------------------------------------------------------------- (a) registers

#[test]
fn a_registers_id_heartbeat_w1c() {
    let Some(mut s) = sim("small") else { return };
    let cfg = ArrayConfig::builtin("small").unwrap();
    let p = Params::new(&cfg, HdlOptions::default()).unwrap();
    let expect = [
        (off::MAGIC, regs::MAGIC),
        (
            off::ABI_VERSION,
            (regs::ABI_MAJOR as u32) << 16 | regs::ABI_MINOR as u32,
        ),
        (off::ROWS, p.rows),
        (off::COLS, p.cols),
        (off::TOKEN_TILE, p.token_tile),
        (off::BLOCK_N, p.block_n),
        (off::BLOCK_K, p.block_k),
        (off::ACT_BITS, p.act_bits),
        (off::MANT_BITS, p.mant_bits),
        (off::PSUM_BITS, p.psum_bits),
        (off::ACC_BITS, p.acc_bits),
        (off::MAX_K, p.max_k as u32),
        (off::MAX_N, p.max_n as u32),
        (off::CLOCK_KHZ, (cfg.clock.target_mhz * 1000.0) as u32),
        (off::MEM_BYTES_LO, 1 << 24),
        (off::MEM_BYTES_HI, 0),
        (off::RING_LOG2_MAX, 12),
        (off::CAPS, caps::GEMM | caps::WEIGHT_CRC | caps::PERF),
        (off::STATUS, status::RESET_DONE),
        (off::ERROR, 0),
    ];
    for (o, v) in expect {
        let name = regs::by_offset(o).unwrap().name;
        assert_eq!(s.read32(o).unwrap(), v, "{name}");
    }
    let hash = u64::from_str_radix(&cfg.hash_hex(), 16).unwrap();
    let lo = s.read32(off::BUILD_HASH_LO).unwrap() as u64;
    let hi = s.read32(off::BUILD_HASH_HI).unwrap() as u64;
    assert_eq!(hi << 32 | lo, hash);
    // the block chain, from the table's reset values
    let mut at = 0;
    let mut blocks = 0;
    loop {
        let h = s.read32(at).unwrap();
        assert_eq!(h, regs::by_offset(at).unwrap().reset, "header at {at:#x}");
        blocks += 1;
        let next = s.read32(at + 4).unwrap();
        if next == 0 {
            break;
        }
        at = next;
    }
    assert_eq!(blocks, 4);
    // scratch, strobes not used by the harness: full writes
    s.write32(off::SCRATCH, 0xdead_beef).unwrap();
    assert_eq!(s.read32(off::SCRATCH).unwrap(), 0xdead_beef);
    // read-only registers ignore writes
    s.write32(off::ROWS, 99).unwrap();
    assert_eq!(s.read32(off::ROWS).unwrap(), p.rows);
    // heartbeat: one per 1024 cycles
    let h0 = s.read32(off::HEARTBEAT).unwrap();
    s.step(4096).unwrap();
    let h1 = s.read32(off::HEARTBEAT).unwrap();
    assert!((4..=5).contains(&(h1 - h0)), "heartbeat {h0} -> {h1}");
    // a doorbell beyond the ring sets RING_ERROR (sticky, W1C) and halts
    s.write32(off::SQ_LOG2_SIZE, 2).unwrap();
    s.write32(off::SQ_TAIL, 4).unwrap();
    assert_eq!(s.read32(off::ERROR).unwrap(), error::RING_ERROR);
    assert_eq!(s.read32(off::ERROR_INFO).unwrap(), 4);
    assert_ne!(s.read32(off::STATUS).unwrap() & status::HALTED, 0);
    assert_eq!(s.read32(off::SQ_TAIL).unwrap(), 0, "refused doorbell");
    s.write32(off::ERROR, error::BAD_OPCODE).unwrap();
    assert_eq!(
        s.read32(off::ERROR).unwrap(),
        error::RING_ERROR,
        "W1C of another bit"
    );
    s.write32(off::ERROR, error::RING_ERROR).unwrap();
    assert_eq!(s.read32(off::ERROR).unwrap(), 0);
    assert_eq!(s.read32(off::STATUS).unwrap() & status::HALTED, 0);
    // CYCLES_LO latches CYCLES_HI; counters clear
    let c0 = s.read32(off::CYCLES_LO).unwrap();
    assert_eq!(s.read32(off::CYCLES_HI).unwrap(), 0);
    assert!(c0 as u64 > 4096 && (c0 as u64) <= s.cycles());
    s.write32(off::PERF_CONTROL, 1).unwrap();
    assert!(s.read32(off::CYCLES_LO).unwrap() < 16);
    let idle = s.read32(off::IDLE_LO).unwrap();
    assert!(idle > 0 && idle < 32, "idle {idle}");
}

// ---------------------------------------------------------------- (b) rings

#[test]
fn b_nop_fence_completions_wrap_phase() {
    let Some(mut s) = sim("small") else { return };
    let mut r = rings(&mut s, 2, 2);
    let mut tag = 0u16;
    let mut phases = vec![];
    for round in 0..5 {
        let n = 1 + round % 3;
        let cmds: Vec<_> = (0..n)
            .map(|i| {
                tag += 1;
                let op = if i % 2 == 0 {
                    Opcode::Nop
                } else {
                    Opcode::Fence
                };
                Command::new(op, tag)
            })
            .collect();
        let first = tag + 1 - n as u16;
        let cpl = run(&mut s, &mut r, &cmds, 20_000);
        for (i, c) in cpl.iter().enumerate() {
            assert_eq!(c.tag, first + i as u16);
            assert_eq!(c.status, Status::Ok as u8);
            assert!(c.cycles > 0 && c.cycles < 2_000, "cycles {}", c.cycles);
            phases.push(c.phase);
        }
    }
    // 10 completions in a 4-entry CQ: phase 1,1,1,1,0,0,0,0,1,1
    let want: Vec<bool> = (0..phases.len()).map(|i| (i / 4) % 2 == 0).collect();
    assert_eq!(phases, want);
    assert_eq!(s.read32(off::SQ_HEAD).unwrap(), r.tail);
    assert_eq!(s.read32(off::CQ_TAIL).unwrap(), r.head);
    assert_eq!(s.read32(off::CMDS_DONE).unwrap(), phases.len() as u32);
    // a full CQ: 4 commands, the card writes 3 (one slot stays free) until the host frees one
    let enc: Vec<_> = (0..4)
        .map(|i| Command::new(Opcode::Nop, 100 + i).encode())
        .collect();
    let head_before = r.head;
    submit(&mut s, &mut r, &enc[..3]);
    s.step(3000).unwrap();
    submit(&mut s, &mut r, &enc[3..]);
    s.step(3000).unwrap();
    assert_eq!(
        (s.read32(off::CQ_TAIL).unwrap() + 4 - head_before) % 4,
        3,
        "the card does not fill the last CQ slot"
    );
    let cpl = completions(&mut s, &mut r, 4, 20_000);
    assert_eq!(
        cpl.iter().map(|c| c.tag).collect::<Vec<_>>(),
        vec![100, 101, 102, 103]
    );
    // soft reset empties the rings and restarts the phase
    s.write32(off::CONTROL, control::ENABLE | control::SOFT_RESET)
        .unwrap();
    s.step(8).unwrap();
    assert_eq!(s.read32(off::SQ_HEAD).unwrap(), 0);
    assert_eq!(s.read32(off::CQ_TAIL).unwrap(), 0);
    assert_eq!(s.read32(off::CMDS_DONE).unwrap(), 0);
    assert_ne!(s.read32(off::STATUS).unwrap() & status::RESET_DONE, 0);
}

// ---------------------------------------------------------------- (c) DMA

#[test]
fn c_dma_round_trip_crc_and_errors() {
    let Some(mut s) = sim("small") else { return };
    let seed = seed();
    println!("seed {seed} (TERN_SEED={seed} replays)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut r = rings(&mut s, 3, 3);
    let len = 64 * rng.gen_range(1..200usize);
    let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    let src = s.alloc(len).unwrap();
    let dst = s.alloc(len).unwrap();
    s.write_host(src.id, 0, &data).unwrap();
    // start the card address near a 4 KiB boundary so bursts split
    let card = 0x1000 * rng.gen_range(1..16u64) - 64 * rng.gen_range(0..8u64);
    let crc = crc32fast::hash(&data);
    let cpl = run(
        &mut s,
        &mut r,
        &[
            dma(Opcode::DmaToCard, 1, src.iova, card, len as u32, 0),
            dma(Opcode::DmaToHost, 2, dst.iova, card, len as u32, 0),
            dma(
                Opcode::LoadWeights,
                3,
                src.iova,
                card + len as u64 * 2,
                len as u32,
                crc,
            ),
        ],
        200_000,
    );
    for c in &cpl {
        assert_eq!(c.status, Status::Ok as u8, "seed {seed}: {c:?}");
    }
    let mut back = vec![0u8; len];
    s.read_host(dst.id, 0, &mut back).unwrap();
    assert!(back == data, "seed {seed}: round trip differs");
    let mut card_copy = vec![0u8; len];
    s.read_card(card + len as u64 * 2, &mut card_copy).unwrap();
    assert!(card_copy == data, "seed {seed}: LOAD copy differs");
    // throughput: host latency 100, 1 word/cycle, 4 × 16-word bursts in flight
    let words = (len / 64) as u64;
    assert!(
        cpl[0].cycles < 2 * words + 400,
        "seed {seed}: DMA of {words} words took {} cycles",
        cpl[0].cycles
    );

    // CRC mismatch: info is the CRC the card computed; the engine halts until ERROR is cleared
    let c = run(
        &mut s,
        &mut r,
        &[dma(
            Opcode::LoadWeights,
            4,
            src.iova,
            card,
            len as u32,
            crc ^ 1,
        )],
        200_000,
    );
    assert_eq!(c[0].status, Status::CrcMismatch as u8);
    assert_eq!(c[0].info, crc, "seed {seed}");
    assert_eq!(s.read32(off::ERROR).unwrap(), error::CRC_MISMATCH);
    assert_eq!(s.read32(off::ERROR_TAG).unwrap(), 4);
    assert_eq!(s.read32(off::ERROR_INFO).unwrap(), crc);
    s.write32(off::ERROR, error::CRC_MISMATCH).unwrap();

    // unmapped IOVA (a guard page after the buffer) -> DMA_ERROR
    let bad = src.iova + ((len as u64).div_ceil(4096)) * 4096;
    let c = run(
        &mut s,
        &mut r,
        &[dma(Opcode::DmaToCard, 5, bad, 0, 128, 0)],
        50_000,
    );
    assert_eq!(c[0].status, Status::DmaError as u8);
    assert_eq!(s.read32(off::ERROR).unwrap(), error::DMA_ERROR);
    s.write32(off::ERROR, error::DMA_ERROR).unwrap();
    let c = run(
        &mut s,
        &mut r,
        &[dma(Opcode::DmaToHost, 6, bad, 0, 64, 0)],
        50_000,
    );
    assert_eq!(c[0].status, Status::DmaError as u8);
    s.write32(off::ERROR, error::DMA_ERROR).unwrap();

    // card address past the memory -> ADDR_RANGE before anything is issued
    let mem = 1u64 << 24;
    let c = run(
        &mut s,
        &mut r,
        &[dma(Opcode::DmaToCard, 7, src.iova, mem - 64, 128, 0)],
        50_000,
    );
    assert_eq!(c[0].status, Status::AddrRange as u8);
    assert_eq!(
        c[0].info, mem as u32,
        "info: the first byte past the memory"
    );
    s.write32(off::ERROR, error::ADDR_RANGE).unwrap();
    // a length that is not a multiple of 64 -> BAD_FIELD
    let c = run(
        &mut s,
        &mut r,
        &[dma(Opcode::DmaToCard, 8, src.iova, 0, 100, 0)],
        50_000,
    );
    assert_eq!(c[0].status, Status::BadField as u8);
    s.write32(off::ERROR, error::BAD_FIELD).unwrap();

    // bad opcode: completes BAD_OPCODE, halts; the NOP behind it waits until ERROR is cleared
    let mut b = Command::new(Opcode::Nop, 9).encode();
    b[0] = 77;
    let nop = Command::new(Opcode::Nop, 10).encode();
    submit(&mut s, &mut r, &[b, nop]);
    let c = completions(&mut s, &mut r, 1, 50_000);
    assert_eq!(
        (c[0].tag, c[0].status, c[0].info),
        (9, Status::BadOpcode as u8, 77)
    );
    s.step(2000).unwrap();
    assert_ne!(s.read32(off::STATUS).unwrap() & status::HALTED, 0);
    let mut raw = [0u8; CPL_BYTES];
    s.read_host(r.cq.id, r.head as usize * CPL_BYTES, &mut raw)
        .unwrap();
    assert_ne!(
        Completion::decode(&raw).phase,
        r.phase,
        "nothing ran while halted"
    );
    s.write32(off::ERROR, error::BAD_OPCODE).unwrap();
    let c = completions(&mut s, &mut r, 1, 50_000);
    assert_eq!((c[0].tag, c[0].status), (10, Status::Ok as u8));
    // the card counted its memory traffic
    assert!(s.read32(off::BYTES_WR_LO).unwrap() as usize >= 2 * len);
}

#[test]
fn c_abort_ends_a_long_dma() {
    let Some(mut s) = sim("small") else { return };
    let mut r = rings(&mut s, 2, 2);
    let len = 64 * 4096;
    let src = s.alloc(len).unwrap();
    submit(
        &mut s,
        &mut r,
        &[
            dma(Opcode::DmaToCard, 1, src.iova, 0, len as u32, 0).encode(),
            Command::new(Opcode::Nop, 2).encode(),
        ],
    );
    s.step(500).unwrap();
    assert_ne!(s.read32(off::STATUS).unwrap() & status::BUSY, 0);
    s.write32(off::CONTROL, control::ENABLE | control::ABORT)
        .unwrap();
    let c = completions(&mut s, &mut r, 2, 20_000);
    assert_eq!(c[0].status, Status::Aborted as u8);
    assert!(c[0].cycles < 2000, "aborted after {} cycles", c[0].cycles);
    assert_eq!(c[1].status, Status::Ok as u8, "the queue goes on");
}

// ---------------------------------------------------------------- (d) GEMM

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
        match rng.gen_range(0..6) {
            0 => mmax as u32,
            1 => 0,
            _ => rng.gen_range(0..=mmax) as u32,
        }
    });
    let exps = ndarray::Array1::zeros(n.div_ceil(bn));
    let w = ScaledTernaryMatrix::new(trits, cfg.block, mants, exps, mb).unwrap();
    let bits = cfg.activation.bits;
    let (lo, hi) = (-(1i32 << (bits - 1)), (1i32 << (bits - 1)) - 1);
    let a = Array2::from_shape_fn((m, k), |_| match rng.gen_range(0..8) {
        0 => lo as i8,
        1 => hi as i8,
        _ => rng.gen_range(lo..=hi) as i8,
    });
    (w, a)
}

/// Loads the layer through LOAD_WEIGHTS and the activations through DMA_TO_CARD, runs one
/// GEMM command, reads the outputs back with DMA_TO_HOST; returns acc [M, N] and the
/// GEMM's completion.
fn gemm_on_card(
    s: &mut CardSim,
    r: &mut Rings,
    p: &Params,
    w: &ScaledTernaryMatrix,
    a: &Array2<i8>,
) -> (Array2<i64>, Completion) {
    let (m, k, n) = (a.nrows(), w.k(), w.n());
    // the spec's builder (tested equal to tern_sim::card_image::region below)
    let cfg = ArrayConfig::builtin(&p.name).unwrap();
    let region = tern_spec::card::image::build_region(&cfg, w).unwrap();
    let acts = card_image::acts(a.view());
    let olen = card_image::outputs_len(m, n, p.rows as usize);
    let (wa, aa) = (
        0x1000u64,
        0x1000 + region.len().div_ceil(4096) as u64 * 4096,
    );
    let oa = aa + acts.len().div_ceil(4096) as u64 * 4096;
    let hb = s.alloc(region.len() + acts.len() + olen).unwrap();
    s.write_host(hb.id, 0, &region).unwrap();
    s.write_host(hb.id, region.len(), &acts).unwrap();
    let crc = crc32fast::hash(&region);
    let cpl = run(
        s,
        r,
        &[
            dma(
                Opcode::LoadWeights,
                1,
                hb.iova,
                wa,
                region.len() as u32,
                crc,
            ),
            dma(
                Opcode::DmaToCard,
                2,
                hb.iova + region.len() as u64,
                aa,
                acts.len() as u32,
                0,
            ),
            Command::gemm(3, wa, aa, oa, m as u32, k as u32, n as u32),
            dma(
                Opcode::DmaToHost,
                4,
                hb.iova + (region.len() + acts.len()) as u64,
                oa,
                olen as u32,
                0,
            ),
        ],
        5_000_000,
    );
    for c in &cpl {
        assert_eq!(c.status, Status::Ok as u8, "{c:?}");
    }
    let mut out = vec![0u8; olen];
    s.read_host(hb.id, region.len() + acts.len(), &mut out)
        .unwrap();
    s.free(hb.id).unwrap();
    (
        card_image::decode_outputs(&out, m, n, p.rows as usize),
        cpl[2],
    )
}

fn gemm_cases(name: &str, shapes: &[(usize, usize, usize)]) {
    let Some(mut s) = sim(name) else { return };
    let cfg = ArrayConfig::builtin(name).unwrap();
    let p = Params::new(&cfg, HdlOptions::default()).unwrap();
    let seed = seed();
    println!("{name}: seed {seed} (TERN_SEED={seed} replays)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut r = rings(&mut s, 3, 3);
    for &(k, n, m) in shapes {
        let (w, a) = random_layer(&cfg, &mut rng, k, n, m);
        let want = tern_spec::reference::gemm_acc(&w, a.view()).unwrap();
        let (got, c) = gemm_on_card(&mut s, &mut r, &p, &w, &a);
        let bad = got
            .indexed_iter()
            .find(|(i, v)| **v != want[*i])
            .map(|(i, v)| (i, *v, want[i]));
        assert!(
            bad.is_none(),
            "{name} K={k} N={n} M={m} seed {seed}: first mismatch (t, n, got, want) = {bad:?}"
        );
        let ideal = tern_hdl::host::ideal_cycles(&p, k, n, m) as u64;
        println!(
            "{name} K={k} N={n} M={m}: {} cycles (core without stalls: {ideal})",
            c.cycles
        );
        assert!(c.cycles >= ideal, "faster than the core can be");
    }
    assert_eq!(
        s.read32(off::ERROR).unwrap(),
        0,
        "{name} seed {seed}: no error"
    );
}

#[test]
fn d_gemm_small_random() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let mut shapes = vec![(64, 8, 1), (67, 13, 1), (200, 37, 3), (128, 64, 8)];
    for _ in 0..3 {
        shapes.push((
            rng.gen_range(1..300),
            rng.gen_range(1..80),
            rng.gen_range(1..=8),
        ));
    }
    gemm_cases("small", &shapes);
}

#[test]
fn d_gemm_default_random() {
    gemm_cases("default", &[(256, 48, 1), (131, 29, 5), (640, 96, 16)]);
}

#[test]
fn d_gemm_refuses_bad_fields_and_ranges() {
    let Some(mut s) = sim("small") else { return };
    let cfg = ArrayConfig::builtin("small").unwrap();
    let p = Params::new(&cfg, HdlOptions::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut r = rings(&mut s, 3, 3);
    let (w, a) = random_layer(&cfg, &mut rng, 100, 20, 2);
    let (_, c) = gemm_on_card(&mut s, &mut r, &p, &w, &a);
    assert_eq!(c.status, Status::Ok as u8);
    let wa = 0x1000u64;
    let mem = 1u64 << 24;
    let cases = [
        // header K differs: info = header field 3
        (
            Command::gemm(20, wa, 0x100000, 0x200000, 2, 99, 20),
            Status::BadField,
            3,
        ),
        (
            Command::gemm(21, wa, 0x100000, 0x200000, 2, 100, 21),
            Status::BadField,
            4,
        ),
        // M beyond token_tile: info = 0x100 + byte offset of the m field
        (
            Command::gemm(22, wa, 0x100000, 0x200000, 9, 100, 20),
            Status::BadField,
            0x120,
        ),
        // misaligned activations: 0x100 + byte offset of a1
        (
            Command::gemm(26, wa, 0x100020, 0x200000, 2, 100, 20),
            Status::BadField,
            0x110,
        ),
        // no region there: magic
        (
            Command::gemm(23, 0x800000, 0x100000, 0x200000, 2, 100, 20),
            Status::BadField,
            0,
        ),
        // outputs past the end of card memory
        (
            Command::gemm(24, wa, 0x100000, mem - 64, 2, 100, 20),
            Status::AddrRange,
            mem as u32,
        ),
        // region header past the end
        (
            Command::gemm(25, mem, 0x100000, 0x200000, 2, 100, 20),
            Status::AddrRange,
            mem as u32,
        ),
    ];
    for (cmd, st, info) in cases {
        let c = run(&mut s, &mut r, &[cmd], 100_000);
        assert_eq!(
            (c[0].tag, c[0].status, c[0].info),
            (cmd.tag, st as u8, info)
        );
        let e = s.read32(off::ERROR).unwrap();
        assert_ne!(e, 0);
        s.write32(off::ERROR, e).unwrap();
    }
    // malformed records: undefined flag bits, a non-zero reserved byte
    let mut flags = Command::new(Opcode::Nop, 30).encode();
    flags[1] = 2;
    let mut rsv = Command::new(Opcode::Nop, 31).encode();
    rsv[50] = 1;
    for (b, info) in [(flags, 0x101), (rsv, 0x100 + 50)] {
        submit(&mut s, &mut r, &[b]);
        let c = completions(&mut s, &mut r, 1, 50_000);
        assert_eq!((c[0].status, c[0].info), (Status::BadField as u8, info));
        s.write32(off::ERROR, error::BAD_FIELD).unwrap();
    }
}

#[test]
fn d_region_image_matches_the_spec_builder() {
    for name in ["small", "default", "large"] {
        let cfg = ArrayConfig::builtin(name).unwrap();
        let p = Params::new(&cfg, HdlOptions::default()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (k, n) in [(64, 8), (67, 13), (300, 70)] {
            let (w, _) = random_layer(&cfg, &mut rng, k, n, 1);
            let mine = card_image::region(&p, &w).unwrap();
            let spec = tern_spec::card::image::build_region(&cfg, &w).unwrap();
            assert!(mine == spec, "{name} K={k} N={n}: images differ");
        }
    }
}
