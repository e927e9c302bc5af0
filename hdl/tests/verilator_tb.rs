//! The emitted Verilog under Verilator: whole commands against tern-spec's reference, with
//! random stalls on every stream, partial blocks and tiles, M = 1 and M > 1.

mod common;

use common::*;
use tern_hdl::emit::{emit, emit_with};
use tern_hdl::vtb::{run_testbench, write_testbench, TbCommand};
use tern_hdl::{HdlOptions, Params};

fn run(
    cfg: &tern_spec::ArrayConfig,
    cmds: &[(usize, usize, usize)],
    refused: bool,
    stall: u32,
    tag: &str,
) -> Vec<u64> {
    run_with(cfg, HdlOptions::default(), cmds, refused, stall, tag)
}

fn run_with(
    cfg: &tern_spec::ArrayConfig,
    opts: HdlOptions,
    cmds: &[(usize, usize, usize)],
    refused: bool,
    stall: u32,
    tag: &str,
) -> Vec<u64> {
    let p = Params::new(cfg, opts).unwrap();
    let dir = scratch(tag);
    let rep = emit_with(cfg, opts, &dir).unwrap();
    let mut list = Vec::new();
    for (i, &(k, n, m)) in cmds.iter().enumerate() {
        list.push(TbCommand::Run(random_command(
            &p,
            cfg,
            100 + i as u64,
            k,
            n,
            m,
        )));
        if refused && i == 0 {
            list.push(TbCommand::Refused {
                k: k as u64,
                n: n as u64,
                m: 0,
            });
            list.push(TbCommand::Refused {
                k: p.max_k + 1,
                n: n as u64,
                m: 1,
            });
        }
    }
    let expected: usize = list
        .iter()
        .map(|c| match c {
            TbCommand::Run(s) => s.outputs.len(),
            TbCommand::Refused { .. } => 0,
        })
        .sum();
    write_testbench(&p, &rep.top, &list, stall, &dir).unwrap();
    let rtl = rtl_files(&rep, opts.ecp5_dsp);
    let res = run_testbench(&dir, &rtl)
        .unwrap()
        .expect("verilator present");
    assert_eq!(res.errors, 0, "{}", res.log);
    assert_eq!(res.outputs, expected, "{}", res.log);
    res.cycles
}

/// Commands of the tiny array: partial N tiles, partial blocks (K = 13, 5), one-beat last
/// blocks back to back with M = 1 (K = 12, 9: the accumulator's read-ahead forwards the
/// sum), M = 1, 2, 3.
const TINY_CMDS: [(usize, usize, usize); 6] = [
    (13, 7, 2),
    (5, 3, 1),
    (12, 4, 1),
    (16, 4, 3),
    (9, 5, 1),
    (21, 2, 1),
];

#[test]
fn tiny_array_with_stalls_matches_reference() {
    if !have_tool("verilator", "tiny_array_with_stalls_matches_reference") {
        return;
    }
    // 3 lanes x 4 cols, blocks 2 x 8 (2 beats), token tile 3
    let cfg = config("tiny", 3, 4, 3, 2, 8);
    run(&cfg, &TINY_CMDS, true, 3, "tb_tiny");
}

/// One-beat blocks (block.k = cols): every block end of a token follows the previous one
/// directly, so every accumulation after the first forwards its sum (M = 1), or the tokens
/// alternate (M > 1); at full rate and with stalls.
#[test]
fn one_beat_blocks_match_reference() {
    if !have_tool("verilator", "one_beat_blocks_match_reference") {
        return;
    }
    let cfg = config("onebeat", 2, 4, 2, 2, 4);
    let cmds = [(9, 3, 1), (12, 4, 2), (4, 2, 1), (7, 1, 2)];
    run(&cfg, &cmds, false, 0, "tb_onebeat_rate");
    run(&cfg, &cmds, false, 2, "tb_onebeat_stall");
}

/// Runs `cmds` on `cfg` as the default Verilog and as the variant `opts`, at full rate and
/// with stalls: the same results (each run checks against the reference) and the same cycle
/// counts.
fn variant_matches_default(
    cfg: &tern_spec::ArrayConfig,
    opts: HdlOptions,
    cmds: &[(usize, usize, usize)],
    tag: &str,
) {
    for stall in [0, 3] {
        let a = run(cfg, cmds, false, stall, &format!("tb_{tag}_default{stall}"));
        let b = run_with(cfg, opts, cmds, false, stall, &format!("tb_{tag}{stall}"));
        assert_eq!(a, b, "{tag}: cycles differ with stalls {stall}");
    }
}

/// The ECP5 variant (`HdlOptions::ecp5_dsp`: the scaler's registers inside `MULT18X18D`)
/// under Verilator with the behavioural DSP model: the same results and the same cycle
/// counts as the portable Verilog, with stalls and at full rate.
#[test]
fn ecp5_dsp_variant_matches_portable() {
    if !have_tool("verilator", "ecp5_dsp_variant_matches_portable") {
        return;
    }
    let dsp = HdlOptions {
        ecp5_dsp: true,
        ..HdlOptions::default()
    };
    variant_matches_default(&config("tiny", 3, 4, 3, 2, 8), dsp, &TINY_CMDS, "dsp");
}

/// The variant without the accumulator's read-ahead (`HdlOptions::acc_read_ahead = false`,
/// what the Xilinx flow emits; without the lane copies too): the same results and the same
/// cycle counts as the default Verilog, with stalls and at full rate, one-beat blocks back to
/// back included, and for token_tile = 1.
#[test]
fn no_read_ahead_variant_matches_default() {
    if !have_tool("verilator", "no_read_ahead_variant_matches_default") {
        return;
    }
    let xilinx = HdlOptions::default().for_xilinx();
    variant_matches_default(&config("tiny", 3, 4, 3, 2, 8), xilinx, &TINY_CMDS, "nora");
    let gemv = config("gemv1", 2, 4, 1, 2, 4);
    variant_matches_default(
        &gemv,
        xilinx,
        &[(9, 3, 1), (12, 4, 1), (4, 2, 1)],
        "nora_t1",
    );
}

#[test]
fn full_rate_cycles_match_the_formula() {
    if !have_tool("verilator", "full_rate_cycles_match_the_formula") {
        return;
    }
    let cfg = config("rate", 2, 4, 4, 2, 8);
    let p = Params::new(&cfg, HdlOptions::default()).unwrap();
    let cmds = [(16, 4, 1), (13, 3, 1), (13, 3, 4), (40, 2, 2)];
    let cycles = run(&cfg, &cmds, false, 0, "tb_rate");
    let want: Vec<u64> = cmds
        .iter()
        .map(|&(k, n, m)| tern_hdl::host::ideal_cycles(&p, k, n, m) as u64)
        .collect();
    assert_eq!(cycles, want);
}

#[test]
fn checker_catches_a_wrong_output() {
    if !have_tool("verilator", "checker_catches_a_wrong_output") {
        return;
    }
    let cfg = config("bad", 2, 2, 2, 2, 4);
    let p = Params::new(&cfg, HdlOptions::default()).unwrap();
    let dir = scratch("tb_bad");
    let rep = emit(&cfg, &dir).unwrap();
    let mut cs = random_command(&p, &cfg, 7, 8, 4, 2);
    cs.outputs[1].values[0] += 1;
    write_testbench(&p, &rep.top, &[TbCommand::Run(cs)], 2, &dir).unwrap();
    let rtl = rtl_files(&rep, false);
    let res = run_testbench(&dir, &rtl)
        .unwrap()
        .expect("verilator present");
    assert_eq!(res.errors, 1, "{}", res.log);
    assert!(res.log.contains("MISMATCH output 1"), "{}", res.log);
}

/// The command checks at their limits: K = max_k, N = max_n, M = token_tile run; one more
/// (or zero, or a high bit set) is refused. The controller compares with the constants bit
/// by bit (`ctrl::le_const`), so the boundaries are checked here on the emitted Verilog.
#[test]
fn command_limits_are_exact() {
    if !have_tool("verilator", "command_limits_are_exact") {
        return;
    }
    let mut cfg = config("lim", 3, 4, 3, 2, 8);
    cfg.accumulator.max_k = 40;
    cfg.accumulator.max_n = 7;
    cfg.validate("lim").unwrap();
    let p = Params::new(&cfg, HdlOptions::default()).unwrap();
    let dir = scratch("tb_lim");
    let rep = emit(&cfg, &dir).unwrap();
    let mut list = vec![TbCommand::Run(random_command(&p, &cfg, 11, 40, 7, 3))];
    for (k, n, m) in [
        (41u64, 7u64, 3u64),
        (40, 8, 3),
        (40, 7, 4),
        (0, 7, 1),
        (40, 0, 1),
        (40, 7, 0),
        (40 | 1 << 31, 7, 1),
        (40, 7 | 1 << 20, 1),
        (40, 7, 3 | 1 << 8),
        (u32::MAX as u64, u32::MAX as u64, u32::MAX as u64),
    ] {
        list.push(TbCommand::Refused { k, n, m });
    }
    list.push(TbCommand::Run(random_command(&p, &cfg, 12, 1, 1, 1)));
    let expected: usize = list
        .iter()
        .map(|c| match c {
            TbCommand::Run(s) => s.outputs.len(),
            TbCommand::Refused { .. } => 0,
        })
        .sum();
    write_testbench(&p, &rep.top, &list, 2, &dir).unwrap();
    let rtl = rtl_files(&rep, false);
    let res = run_testbench(&dir, &rtl)
        .unwrap()
        .expect("verilator present");
    assert_eq!(res.errors, 0, "{}", res.log);
    assert_eq!(res.outputs, expected, "{}", res.log);
}
