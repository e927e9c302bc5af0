//! The driver against the software model: random command streams vs the reference, every
//! injected fault reported as its own typed error within its deadline and recovered by
//! reset, malformed commands refused by the driver and by the card, ABI refusal.

use std::time::{Duration, Instant};
use tern_driver::card::CardOptions;
use tern_driver::{Card, DriverError, Fault, ModelCard, ModelOptions, Transport};
use tern_spec::card::cmd::{Command, Opcode, Status};
use tern_spec::card::regs::{self, off};
use tern_spec::random::{self, ScaleDist};
use tern_spec::reference::gemm_acc;
use tern_spec::{ArrayConfig, BlockShape};

fn cfg(name: &str) -> ArrayConfig {
    ArrayConfig::builtin(name).unwrap()
}

fn fast_opts() -> CardOptions {
    CardOptions {
        deadline: Duration::from_millis(400),
        hang_after: Duration::from_millis(100),
        lost_after: Duration::from_millis(20),
        ..CardOptions::default()
    }
}

fn card(o: ModelOptions) -> Card<ModelCard> {
    Card::probe_with(ModelCard::new(o).unwrap(), fast_opts()).unwrap()
}

fn seed() -> u64 {
    std::env::var("TERN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

#[test]
fn probe_reads_the_id_block() {
    let c = card(ModelOptions::new(cfg("small")));
    let i = c.info();
    assert_eq!(i.magic, regs::MAGIC);
    assert_eq!((i.rows, i.cols, i.token_tile), (8, 8, 8));
    assert_eq!(i.mem_bytes, 4 << 30);
    assert_eq!(i.blocks.len(), 4);
    assert_eq!(i.caps_names, vec!["GEMM", "WEIGHT_CRC", "PERF"]);
    assert_eq!(
        i.build_hash,
        format!(
            "{:016x}",
            tern_driver::backend::model::build_hash(&cfg("small"))
        )
    );
    let json = serde_json::to_value(i).unwrap();
    assert_eq!(json["max_k"], 32768);
    assert_eq!(c.config().array, cfg("small").array);
}

#[test]
fn wrong_magic_and_abi_are_refused_with_both_versions() {
    let t = ModelCard::new(ModelOptions::new(cfg("small")).magic(0x1234_5678)).unwrap();
    let e = Card::probe(t).unwrap_err();
    assert!(
        matches!(
            e,
            DriverError::NotATernCard {
                magic: 0x1234_5678,
                ..
            }
        ),
        "{e}"
    );
    for (maj, min, why) in [(2, 0, "major"), (1, 1, "newer")] {
        let t = ModelCard::new(ModelOptions::new(cfg("small")).abi(maj, min)).unwrap();
        let e = Card::probe(t).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DriverError::AbiMismatch { .. }), "{msg}");
        assert!(msg.contains(&format!("card ABI {maj}.{min}")), "{msg}");
        assert!(
            msg.contains("driver (ABI 1.0)") && msg.contains(why),
            "{msg}"
        );
    }
}

#[test]
fn gemv_and_gemm_match_the_reference_bit_for_bit() {
    let s = seed();
    eprintln!("TERN_SEED={s}");
    for name in ["small", "default"] {
        let mut c = card(ModelOptions::new(cfg(name)));
        let (w, _) = random::layer(
            s,
            100,
            200,
            BlockShape { n: 64, k: 128 },
            16,
            ScaleDist::Typical,
        )
        .unwrap();
        let h = c.load_weights(&w).unwrap();
        for m in [1usize, 3, 20] {
            let a = random::act_codes(s + m as u64, m, 200, 8);
            let run = c.gemm(&h, a.q.view()).unwrap();
            assert_eq!(
                run.acc,
                gemm_acc(&w, a.q.view()).unwrap(),
                "{name} m={m} TERN_SEED={s}"
            );
            assert!(run.cycles > 0);
            let tt = c.info().token_tile as usize;
            assert_eq!(run.commands, m.div_ceil(tt));
        }
        let p = c.perf().unwrap();
        assert_eq!(p.macs, (1 + 3 + 20) * 100 * 200);
        assert!(p.bytes_wr > 0 && p.cycles > 0);
    }
}

#[test]
fn large_n_is_split_into_several_regions() {
    let mut small = cfg("small");
    small.accumulator.max_n = 128;
    let mut c = card(ModelOptions::new(small));
    let (w, _) = random::layer(
        5,
        300,
        64,
        BlockShape { n: 64, k: 64 },
        16,
        ScaleDist::Typical,
    )
    .unwrap();
    let h = c.load_weights(&w).unwrap();
    assert_eq!(h.parts.len(), 3);
    let a = random::act_codes(6, 10, 64, 8);
    let run = c.gemm(&h, a.q.view()).unwrap();
    assert_eq!(run.acc, gemm_acc(&w, a.q.view()).unwrap());
    assert_eq!(run.commands, 2 * 3);
    let before = c.card_mem().free_bytes();
    c.free_region(&h).unwrap();
    assert!(c.card_mem().free_bytes() > before);
    assert!(matches!(
        c.gemm(&h, a.q.view()),
        Err(DriverError::Refused { .. })
    ));
}

#[test]
fn random_command_streams_match_the_reference() {
    let s = seed();
    eprintln!("TERN_SEED={s}");
    let mut r = random::rng(s);
    use rand::Rng;
    let names = ["small", "default"];
    let mut c = card(ModelOptions::new(cfg(names[r.gen_range(0..2)])).mem_bytes(1 << 26));
    let mut layers = vec![];
    for step in 0..40 {
        match r.gen_range(0..5) {
            0 | 1 if layers.len() < 4 => {
                let (n, k) = (r.gen_range(1..150), r.gen_range(1..300));
                let bk = 64 * r.gen_range(1..3);
                let (w, _) = random::layer(
                    r.gen(),
                    n,
                    k,
                    BlockShape {
                        n: r.gen_range(1..70),
                        k: bk,
                    },
                    16,
                    ScaleDist::Extreme,
                )
                .unwrap();
                let h = c
                    .load_weights(&w)
                    .unwrap_or_else(|e| panic!("step {step} TERN_SEED={s}: {e}"));
                layers.push((w, h));
            }
            2 if !layers.is_empty() => {
                let (_, h) = layers.remove(r.gen_range(0..layers.len()));
                c.free_region(&h).unwrap();
            }
            3 => {
                c.nop().unwrap();
            }
            4 if r.gen_bool(0.5) => {
                // DMA round trip of random bytes through the top of card memory
                let len = 64 * r.gen_range(1..40usize);
                let at = (1u64 << 26) - (1 << 20) + 64 * r.gen_range(0..1000u64);
                let data: Vec<u8> = (0..len).map(|_| r.gen()).collect();
                let buf = c.map(len).unwrap();
                c.transport().write_buf(&buf, 0, &data).unwrap();
                let mut d = Command::new(Opcode::DmaToCard, 0);
                (d.a0, d.a1, d.w0) = (buf.iova, at, len as u32);
                c.run(d).unwrap();
                c.transport().write_buf(&buf, 0, &vec![0u8; len]).unwrap();
                d.opcode = Opcode::DmaToHost;
                c.run(d).unwrap();
                let mut back = vec![0u8; len];
                c.transport().read_buf(&buf, 0, &mut back).unwrap();
                assert_eq!(back, data, "step {step}: TERN_SEED={s}");
                c.unmap(&buf).unwrap();
            }
            _ if !layers.is_empty() => {
                let (w, h) = &layers[r.gen_range(0..layers.len())];
                let m = r.gen_range(1..12);
                let a = random::act_codes(r.gen(), m, w.k(), 8);
                let run = c.gemm(h, a.q.view()).unwrap();
                assert_eq!(
                    run.acc,
                    gemm_acc(w, a.q.view()).unwrap(),
                    "step {step}: TERN_SEED={s} replays"
                );
            }
            _ => {}
        }
    }
}

/// Loads a layer and runs a GEMM on a card with a fault: the error, and how long it took.
fn with_fault(f: Fault) -> (DriverError, Duration, Card<ModelCard>) {
    let mut c = card(ModelOptions::new(cfg("small")).fault(f));
    let (w, _) = random::layer(
        1,
        16,
        64,
        BlockShape { n: 64, k: 64 },
        16,
        ScaleDist::Typical,
    )
    .unwrap();
    let t0 = Instant::now();
    let e = c
        .load_weights(&w)
        .and_then(|h| {
            let a = random::act_codes(2, 2, 64, 8);
            c.gemm(&h, a.q.view())
        })
        .unwrap_err();
    (e, t0.elapsed(), c)
}

fn recovers(mut c: Card<ModelCard>) {
    c.reset().unwrap();
    let (w, _) = random::layer(
        3,
        16,
        64,
        BlockShape { n: 64, k: 64 },
        16,
        ScaleDist::Typical,
    )
    .unwrap();
    let h = c.load_weights(&w).unwrap();
    let a = random::act_codes(4, 3, 64, 8);
    assert_eq!(
        c.gemm(&h, a.q.view()).unwrap().acc,
        gemm_acc(&w, a.q.view()).unwrap()
    );
}

#[test]
fn every_fault_is_its_own_typed_error_within_its_deadline_and_reset_recovers() {
    let limit = fast_opts().deadline + Duration::from_millis(300);
    for f in Fault::ALL {
        let (e, took, c) = with_fault(f);
        let msg = e.to_string();
        assert!(took < limit, "{f:?} took {took:?}: {msg}");
        match f {
            Fault::Dma => {
                assert_eq!(e.status(), Some(Status::DmaError), "{msg}");
                assert!(
                    msg.contains("DMA_ERROR") && msg.contains("LOAD_WEIGHTS"),
                    "{msg}"
                );
            }
            Fault::Crc => {
                assert_eq!(e.status(), Some(Status::CrcMismatch), "{msg}");
                assert!(
                    msg.contains("CRC_MISMATCH") && msg.contains("ERROR=0x8 [CRC_MISMATCH]"),
                    "{msg}"
                );
            }
            Fault::Stuck => {
                assert!(matches!(e, DriverError::CardHung { .. }), "{msg}");
                assert!(
                    msg.contains("heartbeat stopped") && msg.contains("BUSY"),
                    "{msg}"
                );
            }
            Fault::Timeout => {
                assert!(matches!(e, DriverError::Timeout { .. }), "{msg}");
                assert!(
                    msg.contains("timed out") && msg.contains("heartbeat running"),
                    "{msg}"
                );
            }
            Fault::Dropped => {
                assert!(matches!(e, DriverError::CompletionLost { .. }), "{msg}");
                assert!(msg.contains("completion lost"), "{msg}");
            }
        }
        recovers(c);
    }
}

#[test]
fn faults_later_in_the_stream_hit_later_commands() {
    // the first DMA (LOAD_WEIGHTS) passes, the second (activations) fails
    let mut c = card(
        ModelOptions::new(cfg("small"))
            .fault(Fault::Dma)
            .fault_after(1),
    );
    let (w, _) = random::layer(
        1,
        8,
        64,
        BlockShape { n: 64, k: 64 },
        16,
        ScaleDist::Typical,
    )
    .unwrap();
    let h = c.load_weights(&w).unwrap();
    let a = random::act_codes(2, 1, 64, 8);
    let e = c.gemm(&h, a.q.view()).unwrap_err();
    assert!(
        e.to_string().contains("DMA_TO_CARD") && e.status() == Some(Status::DmaError),
        "{e}"
    );
    // the engine is halted until the error is cleared
    let st = c.state();
    assert!(st.status & regs::status::HALTED != 0);
    assert_eq!(c.clear_errors().unwrap(), regs::error::DMA_ERROR);
    assert_eq!(
        c.gemm(&h, a.q.view()).unwrap().acc,
        gemm_acc(&w, a.q.view()).unwrap()
    );
}

#[test]
fn malformed_commands_are_refused_by_the_driver() {
    let mut c = card(ModelOptions::new(cfg("small")).mem_bytes(1 << 20));
    let buf = c.map(4096).unwrap();
    let dma = |a0: u64, a1: u64, len: u32| {
        let mut d = Command::new(Opcode::DmaToCard, 0);
        (d.a0, d.a1, d.w0) = (a0, a1, len);
        d
    };
    let cases = [
        (dma(buf.iova, 0, 0), "len = 0"),
        (dma(buf.iova, 0, 100), "multiple of 64"),
        (dma(buf.iova + 1, 0, 64), "aligned"),
        (dma(buf.iova, (1 << 20) - 64, 128), "outside card memory"),
        (dma(buf.iova + 4096, 0, 64), "not inside a DMA buffer"),
        (Command::gemm(0, 0, 0, 0, 1, 64, 8), "not a weight region"),
        (Command::gemm(0, 0, 0, 0, 9, 64, 8), "m = 9"),
        (Command::gemm(0, 0, 0, 0, 1, 40000, 8), "k = 40000"),
        (
            Command {
                a0: 1,
                ..Command::new(Opcode::Nop, 0)
            },
            "operands must be 0",
        ),
    ];
    for (cmd, want) in cases {
        let e = c.submit(cmd).unwrap_err();
        assert!(
            matches!(e, DriverError::Refused { .. }) && e.to_string().contains(want),
            "{want}: {e}"
        );
    }
    // nothing reached the card
    assert_eq!(c.state().sq_head, 0);
    assert_eq!(c.perf().unwrap().cmds_done, 0);
}

/// Submits raw bytes and returns the failure the card reported.
fn raw_failure(c: &mut Card<ModelCard>, raw: [u8; 64]) -> (Status, u32, u32) {
    let tag = c.submit_raw(&raw).unwrap();
    let e = c
        .wait(tag, Instant::now() + Duration::from_secs(1))
        .unwrap_err();
    let st = c.state();
    assert_eq!(st.error_tag, tag as u32, "{e}");
    assert!(st.status & regs::status::HALTED != 0);
    let info = match &e {
        DriverError::CommandFailed { info, .. } => *info,
        _ => panic!("{e}"),
    };
    let err = st.error;
    c.clear_errors().unwrap();
    (e.status().unwrap(), info, err)
}

#[test]
fn malformed_commands_that_reach_the_card_are_refused_by_it() {
    let mut c = card(ModelOptions::new(cfg("small")).mem_bytes(1 << 20));
    let buf = c.map(4096).unwrap();
    let mut raw = Command::new(Opcode::Nop, 100).encode();
    raw[0] = 9;
    assert_eq!(
        raw_failure(&mut c, raw),
        (Status::BadOpcode, 9, regs::error::BAD_OPCODE)
    );
    let mut raw = Command::new(Opcode::Fence, 101).encode();
    raw[50] = 1;
    assert_eq!(raw_failure(&mut c, raw).0, Status::BadField);
    let mut d = Command::new(Opcode::DmaToCard, 102);
    (d.a0, d.a1, d.w0) = (buf.iova, 0, 100);
    assert_eq!(
        raw_failure(&mut c, d.encode()),
        (Status::BadField, 0x100 + 32, regs::error::BAD_FIELD)
    );
    // out-of-range card address → ADDR_RANGE
    (d.tag, d.a1, d.w0) = (103, (1 << 20) - 64, 128);
    assert_eq!(
        raw_failure(&mut c, d.encode()),
        (Status::AddrRange, 1 << 20, regs::error::ADDR_RANGE)
    );
    // unmapped IOVA (the guard gap after the buffer) → DMA_ERROR
    (d.tag, d.a0, d.a1, d.w0) = (104, buf.iova + 4096, 0, 64);
    assert_eq!(raw_failure(&mut c, d.encode()).0, Status::DmaError);
    // GEMM on memory that holds no region: the header's magic is refused (field 0)
    let g = Command::gemm(105, 0, 4096, 8192, 1, 64, 8);
    assert_eq!(
        raw_failure(&mut c, g.encode()),
        (Status::BadField, 0, regs::error::BAD_FIELD)
    );
    // a region whose header says other K: BAD_FIELD with the K field index (3)
    let (w, _) = random::layer(
        1,
        8,
        64,
        BlockShape { n: 64, k: 64 },
        16,
        ScaleDist::Typical,
    )
    .unwrap();
    let h = c.load_weights(&w).unwrap();
    let g = Command::gemm(106, h.parts[0].addr, 0, 0, 1, 128, 8);
    assert_eq!(raw_failure(&mut c, g.encode()).1, 3);
    // and the card still works afterwards
    c.nop().unwrap();
}

#[test]
fn ring_wraps_and_phase_flips_over_many_commands() {
    let mut c = card(ModelOptions::new(cfg("small")));
    let ring = 1usize << c.options().ring_log2;
    for _ in 0..(3 * ring + 5) {
        c.nop().unwrap();
    }
    // a burst that fills the ring: submit waits for space
    let tags: Vec<u16> = (0..2 * ring)
        .map(|_| c.submit(Command::new(Opcode::Nop, 0)).unwrap())
        .collect();
    for t in tags {
        c.wait(t, Instant::now() + Duration::from_secs(1)).unwrap();
    }
    assert_eq!(c.perf().unwrap().cmds_done as usize, 5 * ring + 5);
}

#[test]
fn doorbell_beyond_the_ring_raises_ring_error() {
    let mut c = card(ModelOptions::new(cfg("small")));
    c.transport().write32(off::SQ_TAIL, 1 << 20).unwrap();
    let st = c.state();
    assert!(st.error & regs::error::RING_ERROR != 0 && st.status & regs::status::HALTED != 0);
    let tag = c.submit(Command::new(Opcode::Nop, 0)).unwrap();
    let e = c
        .wait(tag, Instant::now() + Duration::from_millis(300))
        .unwrap_err();
    assert!(
        matches!(e, DriverError::Halted { .. }) && e.to_string().contains("RING_ERROR"),
        "{e}"
    );
    c.reset().unwrap();
    c.nop().unwrap();
}

#[test]
fn abort_ends_a_running_command() {
    let mut c = card(ModelOptions::new(cfg("small")).fault(Fault::Timeout));
    let tag = c.submit(Command::new(Opcode::Nop, 0)).unwrap();
    let e = c
        .wait(tag, Instant::now() + Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(e, DriverError::Timeout { .. }));
    c.transport()
        .write32(off::CONTROL, regs::control::ENABLE | regs::control::ABORT)
        .unwrap();
    let e = c
        .wait(tag, Instant::now() + Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(e.status(), Some(Status::Aborted), "{e}");
    c.nop().unwrap();
}

#[test]
fn gemm_f32_applies_the_host_exponents() {
    let mut c = card(ModelOptions::new(cfg("small")));
    let (w, _) = random::layer(
        9,
        20,
        128,
        BlockShape { n: 8, k: 64 },
        16,
        ScaleDist::Typical,
    )
    .unwrap();
    let h = c.load_weights(&w).unwrap();
    let a = random::acts(10, 4, 128, 8).unwrap();
    let y = c.gemm_f32(&h, &a).unwrap();
    let r = tern_spec::reference::gemm(&cfg("small"), &w, &a).unwrap();
    let same = y
        .iter()
        .zip(r.y.iter())
        .all(|(x, z)| x.to_bits() == z.to_bits());
    assert!(same);
}

#[test]
fn large_images_are_loaded_in_crc_checked_chunks() {
    let o = CardOptions {
        dma_chunk: 256,
        ..fast_opts()
    };
    let mut c =
        Card::probe_with(ModelCard::new(ModelOptions::new(cfg("small"))).unwrap(), o).unwrap();
    let (w, _) = random::layer(
        21,
        40,
        300,
        BlockShape { n: 64, k: 64 },
        16,
        ScaleDist::Typical,
    )
    .unwrap();
    let before = c.perf().unwrap().cmds_done;
    let h = c.load_weights(&w).unwrap();
    let chunks = h.parts[0].bytes.div_ceil(256) as u32;
    assert!(chunks > 3);
    assert_eq!(c.perf().unwrap().cmds_done - before, chunks);
    let a = random::act_codes(22, 5, 300, 8);
    assert_eq!(
        c.gemm(&h, a.q.view()).unwrap().acc,
        gemm_acc(&w, a.q.view()).unwrap()
    );
}
