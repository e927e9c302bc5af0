//! The per-lane scaler: at the end of every block the lane's partial sum is multiplied by
//! the block's scale mantissa and added into the token's output accumulator, exactly
//! (docs/src/arithmetic.md; `acc[t] = Σ_kb p[t, kb] · mant[kb]`).
//!
//! Pipeline (all registers have clock enable `en`):
//! 1. capture: `take` loads `sc_a <= psum`; `mload` (first token of a block) loads
//!    `sc_m <= scale` — the mantissa is held for the block's other tokens;
//! 2. operands: `op_a <= sc_a`, `op_m <= sc_m` (the multiplier's input registers: the
//!    capture registers stay beside the lane's adder, and the route to the DSP, which can be
//!    far, gets a cycle of its own);
//! 3. multiply: `prod <= op_a × op_m` (signed × unsigned, `psum_bits + mant_bits` bits, one
//!    DSP for the default widths);
//! 4. product: `prod_q <= prod` (its low `acc_bits`), a fabric register beside the
//!    accumulator: the route back from the DSP, which can be far, gets a cycle of its own;
//! 5. accumulate: `acc[acc_addr] <= acc_rd + prod_q` when `acc_we`, where `acc_rd` was read
//!    one stage ahead: when the vector was in the multiply stage, `acc_rd <= acc[{rd_first,
//!    rd_addr}]` (its first k-block flag and token; the words with the first flag set are
//!    zero). `out_load` also copies the new value to the output register `out`
//!    (sign-extended to 64).
//!
//! Reading ahead leaves the accumulate stage a register, the adder and the memory's write
//! port: no memory read and bank multiplexer in front of the 40-bit carry chain. When the
//! vector in the accumulate stage writes the word being read (the same token's blocks back
//! to back: one-beat blocks), `acc_rd` takes the new sum instead (forwarding), so the values
//! are those of a read-modify-write in the accumulate stage.
//!
//! Without `ScalerShape::read_ahead` (`HdlOptions::acc_read_ahead`, off in the Xilinx flow,
//! where the adder is the DSP48's post-adder and the LUT RAM reads straight into it), the
//! accumulate stage reads and writes the word itself: `acc_new = prod + acc[{first_q,
//! acc_addr}]`, `first_q` being `rd_first` one stage on, and the product register's stage is
//! a second operand register instead (`pre_a`, `pre_m`: the DSP48's AREG = BREG = 2), so that
//! the adder stays the DSP's post-adder. Same values, same cycles
//! (`no_read_ahead_variant_matches_default` under Verilator).
//!
//! With `ScalerShape::ecp5_dsp`, the operand registers `op_a`, `op_m` and the product
//! register are the input and output registers of a Lattice ECP5 `MULT18X18D` (clock enable
//! `en`), so the multiplier's 3.9 ns sits between registers inside the DSP.
//!
//! `acc` is a memory of `2^(tok_bits+1)` words: the tile's tokens in the lower half, read and
//! written once per block per token; the upper half is never written and keeps its initial
//! zeros, and the first block of a row reads there (index bit `rd_first`), so the
//! accumulator's adder needs no masking logic.

use crate::params::{Params, OUT_WORD_BITS};
use crate::sig::read_in_bits;
use crate::vlog::{decl, pack, sext, slice, to_pattern, wire_eq, wrap_signed, zeros, zext, Text};
use rust_hdl::prelude::*;

/// Runtime shape of a scaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalerShape {
    pub psum_bits: u32,
    pub mant_bits: u32,
    pub acc_bits: u32,
    pub token_tile: u32,
    pub tok_bits: u32,
    /// Instantiate the ECP5 `MULT18X18D` with its registers (`HdlOptions::ecp5_dsp`, and the
    /// widths fit: psum ≤ 18 bits, mantissa ≤ 17 bits).
    pub ecp5_dsp: bool,
    /// Read the accumulator word one stage ahead (`HdlOptions::acc_read_ahead`); otherwise
    /// read-modify-write in the accumulate stage.
    pub read_ahead: bool,
}

/// The widest psum and mantissa one `MULT18X18D` multiplies (18-bit signed operands; the
/// unsigned mantissa gets a zero sign bit).
pub const ECP5_DSP_MAX_BITS: (u32, u32) = (18, 17);

impl ScalerShape {
    pub fn of(p: &Params) -> Self {
        ScalerShape {
            psum_bits: p.psum_bits,
            mant_bits: p.mant_bits,
            acc_bits: p.acc_bits,
            token_tile: p.token_tile,
            tok_bits: p.tok_bits,
            ecp5_dsp: p.options.ecp5_dsp
                && p.psum_bits <= ECP5_DSP_MAX_BITS.0
                && p.mant_bits <= ECP5_DSP_MAX_BITS.1,
            read_ahead: p.options.acc_read_ahead,
        }
    }
    pub fn prod_bits(&self) -> u32 {
        self.psum_bits + self.mant_bits
    }
}

/// The scaler block. `MB` is the mantissa width; psum, accumulator and token widths are
/// runtime (`ScalerShape`), with the psum and token index as per-bit ports.
#[derive(LogicBlock)]
pub struct Scaler<const MB: usize> {
    pub clock: Signal<In, Clock>,
    /// Clock enable of every register (the array's `go`).
    pub en: Signal<In, Bit>,
    /// Capture the psum (last beat of a block).
    pub take: Signal<In, Bit>,
    /// Capture the mantissa too (first token of the block).
    pub mload: Signal<In, Bit>,
    /// Block partial sum, `psum_bits` two's complement, bit per port.
    pub psum: Vec<Signal<In, Bit>>,
    /// Block scale mantissa (unsigned).
    pub scale: Signal<In, Bits<MB>>,
    /// Write the accumulator.
    pub acc_we: Signal<In, Bit>,
    /// Token index (accumulator address), bit per port.
    pub acc_addr: Vec<Signal<In, Bit>>,
    /// The word read ahead: the operand stage's first-k-block flag (read a zero word: the
    /// row's first block overwrites) and token index, bit per port.
    pub rd_first: Signal<In, Bit>,
    pub rd_addr: Vec<Signal<In, Bit>>,
    /// Copy the new accumulator value to `out` (last block of the row).
    pub out_load: Signal<In, Bit>,
    /// The last finished output, sign-extended to 64 bits.
    pub out: Signal<Out, Bits<64>>,
    _shape: ScalerShape,
    _m: ScalerModel,
}

impl<const MB: usize> Scaler<MB> {
    pub fn new(shape: ScalerShape) -> Self {
        assert_eq!(shape.mant_bits as usize, MB);
        Scaler {
            clock: Default::default(),
            en: Default::default(),
            take: Default::default(),
            mload: Default::default(),
            psum: (0..shape.psum_bits).map(|_| Default::default()).collect(),
            scale: Default::default(),
            acc_we: Default::default(),
            acc_addr: (0..shape.tok_bits).map(|_| Default::default()).collect(),
            rd_first: Default::default(),
            rd_addr: (0..shape.tok_bits).map(|_| Default::default()).collect(),
            out_load: Default::default(),
            out: Default::default(),
            _shape: shape,
            _m: ScalerModel::new(shape),
        }
    }
}

/// Inputs of the scaler at one clock edge.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScalerIn {
    pub en: bool,
    pub take: bool,
    pub mload: bool,
    pub psum: i64,
    pub scale: u64,
    pub acc_we: bool,
    pub acc_addr: usize,
    pub rd_first: bool,
    pub rd_addr: usize,
    pub out_load: bool,
}

/// Cycle model of the scaler.
#[derive(Debug, Clone)]
pub struct ScalerModel {
    shape: ScalerShape,
    sc_a: i64,
    sc_m: u64,
    op_a: i64,
    op_m: u64,
    prod: i64,
    /// The product register (`acc_bits`).
    prod_q: i64,
    /// The accumulator word read ahead (`acc_rd`).
    acc_rd: i64,
    acc: Vec<i64>,
    out_q: i64,
}

impl ScalerModel {
    pub fn new(shape: ScalerShape) -> Self {
        ScalerModel {
            shape,
            sc_a: 0,
            sc_m: 0,
            op_a: 0,
            op_m: 0,
            prod: 0,
            prod_q: 0,
            acc_rd: 0,
            acc: vec![0; shape.token_tile as usize],
            out_q: 0,
        }
    }

    /// The output register (sign-extended accumulator).
    pub fn out(&self) -> i64 {
        self.out_q
    }

    /// One clock edge.
    pub fn tick(&mut self, i: &ScalerIn) {
        if !i.en {
            return;
        }
        let s = self.shape;
        let old_prod_q = self.prod_q;
        self.prod_q = wrap_signed(self.prod as i128, s.acc_bits);
        self.prod = wrap_signed(self.op_a as i128 * self.op_m as i128, s.prod_bits());
        self.op_a = self.sc_a;
        self.op_m = self.sc_m;
        if i.take {
            self.sc_a = wrap_signed(i.psum as i128, s.psum_bits);
        }
        if i.mload {
            self.sc_m = i.scale & ((1u64 << s.mant_bits) - 1);
        }
        let ring = s.token_tile > 1;
        let addr = if ring { i.acc_addr } else { 0 };
        let rd_addr = if ring { i.rd_addr } else { 0 };
        let new = wrap_signed(self.acc_rd as i128 + old_prod_q as i128, s.acc_bits);
        // read ahead; the word written now is forwarded
        self.acc_rd = if i.rd_first {
            0
        } else if i.acc_we && rd_addr == addr {
            new
        } else {
            self.acc.get(rd_addr).copied().unwrap_or(0)
        };
        if i.acc_we {
            if let Some(a) = self.acc.get_mut(addr) {
                *a = new;
            }
        }
        if i.out_load {
            self.out_q = new;
        }
    }
}

/// The operand and product registers as a Lattice ECP5 `MULT18X18D`: input register A
/// (`op_a`), input register B (`op_m`) and output register (`prod`), clock `clock`, clock
/// enable `en` (CE0); 18-bit signed operands (the psum sign-extended, the mantissa
/// zero-extended). Writes the wire `dsp_p` (36 bits).
fn ecp5_multiply(t: &mut Text, s: ScalerShape, (a, m): (&str, &str)) {
    let (p, mb) = (s.psum_bits, s.mant_bits);
    let (pa, pb) = ECP5_DSP_MAX_BITS;
    assert!(
        p <= pa && mb <= pb,
        "MULT18X18D operands: psum {p}, mantissa {mb}"
    );
    t.line(wire_eq(18, "dsp_a", &sext(a, p, 18)));
    t.line(wire_eq(18, "dsp_b", &zext(m, mb, 18)));
    t.line("/* verilator lint_off UNUSEDSIGNAL */");
    t.line(decl("wire", 36, "dsp_p"));
    t.line("/* verilator lint_on UNUSEDSIGNAL */");
    let mut params = Vec::new();
    for reg in ["INPUTA", "INPUTB", "OUTPUT"] {
        params.push(format!(".REG_{reg}_CLK(\"CLK0\")"));
        params.push(format!(".REG_{reg}_CE(\"CE0\")"));
        params.push(format!(".REG_{reg}_RST(\"RST0\")"));
    }
    params.push(".GSR(\"DISABLED\")".into());
    params.push(".RESETMODE(\"SYNC\")".into());
    let mut pins = Vec::new();
    for i in 0..18 {
        pins.push(format!(".A{i}(dsp_a[{i}])"));
    }
    for i in 0..18 {
        pins.push(format!(".B{i}(dsp_b[{i}])"));
    }
    for i in 0..18 {
        pins.push(format!(".C{i}(1'b0)"));
    }
    for x in [
        ".SIGNEDA(1'b1)",
        ".SIGNEDB(1'b1)",
        ".SOURCEA(1'b0)",
        ".SOURCEB(1'b0)",
        ".CLK0(clock)",
        ".CLK1(1'b0)",
        ".CLK2(1'b0)",
        ".CLK3(1'b0)",
        ".CE0(en)",
        ".CE1(1'b0)",
        ".CE2(1'b0)",
        ".CE3(1'b0)",
        ".RST0(1'b0)",
        ".RST1(1'b0)",
        ".RST2(1'b0)",
        ".RST3(1'b0)",
    ] {
        pins.push(x.into());
    }
    for i in 0..36 {
        pins.push(format!(".P{i}(dsp_p[{i}])"));
    }
    t.comment("operand and product registers inside the ECP5 DSP (HdlOptions::ecp5_dsp)");
    t.line(format!("MULT18X18D #({}) dsp (", params.join(", ")));
    t.line(format!("    {});", pins.join(", ")));
}

/// A psum / mantissa register pair `(a, m)` loaded from `(sa, sm)` every enabled cycle.
fn operand_regs(t: &mut Text, s: ScalerShape, (a, m): (&str, &str), (sa, sm): (&str, &str)) {
    t.line(decl("reg", s.psum_bits, a));
    t.line(decl("reg", s.mant_bits, m));
    t.open("always @(posedge clock) begin");
    t.open("if (en) begin");
    t.line(format!("{a} <= {sa};"));
    t.line(format!("{m} <= {sm};"));
    t.close("end");
    t.close("end");
}

/// The scaler's Verilog body. Port names: `psum$i`, `scale`, `acc_addr$i`, `out`, controls.
pub fn scaler_verilog(s: ScalerShape) -> String {
    let (p, mb, acc, pw) = (s.psum_bits, s.mant_bits, s.acc_bits, s.prod_bits());
    let mut t = Text::default();
    let psum_ports: Vec<String> = (0..p).map(|i| format!("psum${i}")).collect();
    t.comment("1. capture the block's psum (and, for its first token, the mantissa)");
    t.line(wire_eq(p, "psum_in", &pack(&psum_ports)));
    t.line(decl("reg", p, "sc_a"));
    t.line(decl("reg", mb, "sc_m"));
    t.open("always @(posedge clock) begin");
    t.line("if (en & take) sc_a <= psum_in;");
    t.line("if (en & mload) sc_m <= scale;");
    t.close("end");
    // Without the read-ahead (Xilinx), the pipeline's extra stage is a second operand
    // register (the DSP48's AREG = BREG = 2) instead of the product register, so that the
    // accumulator's adder stays the DSP's post-adder: same number of stages, same cycles.
    let src = if s.read_ahead {
        ("sc_a", "sc_m")
    } else {
        t.comment("2a. operand pre-registers (no read-ahead: they stand for the product register, so that the accumulator's adder can be the DSP's post-adder)");
        operand_regs(&mut t, s, ("pre_a", "pre_m"), ("sc_a", "sc_m"));
        ("pre_a", "pre_m")
    };
    t.comment("2. operands: the multiplier's input registers (the route to the DSP gets a cycle of its own)");
    if s.ecp5_dsp {
        ecp5_multiply(&mut t, s, src);
    } else {
        operand_regs(&mut t, s, ("op_a", "op_m"), src);
    }
    t.comment(format!(
        "3. multiply: signed {p}-bit psum x unsigned {mb}-bit mantissa -> {pw}-bit signed product (exact)"
    ));
    let narrow = pw > acc;
    if narrow {
        t.comment(format!(
            "prod is wider than the {acc}-bit accumulator: its bits [{}:{acc}] are sign copies for every legal input (|p*m| <= max_k * 2^(act_bits-1) * mant_max < 2^({acc}-1)), so only the low {acc} bits are read",
            pw - 1
        ));
        t.line("/* verilator lint_off UNUSEDSIGNAL */");
    }
    if s.ecp5_dsp {
        t.line(wire_eq(pw, "prod", &slice("dsp_p", 0, pw)));
    } else {
        t.line(decl("reg", pw, "prod"));
    }
    if narrow {
        t.line("/* verilator lint_on UNUSEDSIGNAL */");
    }
    if !s.ecp5_dsp {
        t.open("always @(posedge clock) begin");
        t.line(format!(
            "if (en) prod <= $signed({}) * $signed({});",
            sext("op_a", p, pw),
            zext("op_m", mb, pw)
        ));
        t.close("end");
    }
    let prod_acc = if narrow {
        format!("prod[{}:0]", acc - 1)
    } else {
        sext("prod", pw, acc)
    };
    let addend = if s.read_ahead {
        t.comment("4. product register beside the accumulator (the route back from the DSP gets a cycle of its own)");
        t.line(decl("reg", acc, "prod_q"));
        t.open("always @(posedge clock) begin");
        t.line(format!("if (en) prod_q <= {prod_acc};"));
        t.close("end");
        "prod_q".to_string()
    } else {
        prod_acc
    };
    t.comment("5. accumulate into the token's output accumulator (read-modify-write, the word read one stage ahead)");
    // acc_mem: the token's words in the lower half; the upper half is never written and keeps
    // its initial zeros, so the first block of a row reads 0 through the index bit rd_first
    // instead of masking the read (no logic on the accumulator's adder).
    let ab = s.tok_bits + 1;
    let depth = 1u32 << ab;
    let (rd, wr, same) = if s.token_tile > 1 {
        let addr_ports: Vec<String> = (0..s.tok_bits).map(|i| format!("acc_addr${i}")).collect();
        let rd_ports: Vec<String> = (0..s.tok_bits).map(|i| format!("rd_addr${i}")).collect();
        t.line(wire_eq(s.tok_bits, "acc_a", &pack(&addr_ports)));
        t.line(wire_eq(s.tok_bits, "rd_a", &pack(&rd_ports)));
        (
            "{rd_first, rd_a}".to_string(),
            "{1'b0, acc_a}".to_string(),
            " & (rd_a == acc_a)",
        )
    } else {
        ("rd_first".to_string(), "1'b0".to_string(), "")
    };
    t.line(format!("reg [{}:0] acc_mem [0:{}];", acc - 1, depth - 1));
    t.line("integer acc_i;");
    t.line(format!(
        "initial for (acc_i = 0; acc_i < {depth}; acc_i = acc_i + 1) acc_mem[acc_i[{}:0]] = {};",
        ab - 1,
        zeros(acc)
    ));
    if s.read_ahead {
        t.line(decl("reg", acc, "acc_rd"));
        t.line(wire_eq(acc, "acc_new", "acc_rd + prod_q"));
        t.comment(
            "the word being read is written now: take the new sum (one-beat blocks back to back)",
        );
        t.line(wire_eq(1, "acc_fwd", &format!("acc_we & ~rd_first{same}")));
    } else {
        // read-modify-write in the accumulate stage: the first flag follows the vector one
        // stage on; the read address is the write address (rd_addr is the same token a
        // stage earlier)
        t.line(decl("reg", 1, "first_q"));
        let rd_now = if s.token_tile > 1 {
            t.line(wire_eq(1, "rd_a_unused", "^rd_a"));
            "{first_q, acc_a}"
        } else {
            "first_q"
        };
        t.line(wire_eq(
            acc,
            "acc_new",
            &format!("{addend} + acc_mem[{rd_now}]"),
        ));
    }
    t.line(decl("reg", acc, "out_q"));
    t.open("always @(posedge clock) begin");
    if s.read_ahead {
        t.line(format!(
            "if (en) acc_rd <= acc_fwd ? acc_new : acc_mem[{rd}];"
        ));
    } else {
        t.line("if (en) first_q <= rd_first;");
    }
    t.line(format!("if (en & acc_we) acc_mem[{wr}] <= acc_new;"));
    t.line("if (en & out_load) out_q <= acc_new;");
    t.close("end");
    t.open("always @(*) begin");
    t.line(format!("out = {};", sext("out_q", acc, OUT_WORD_BITS)));
    t.close("end");
    t.finish()
}

impl<const MB: usize> Logic for Scaler<MB> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let psum = read_in_bits(&self.psum);
            let word = |v: &[Signal<In, Bit>]| read_in_bits(v) as usize;
            let input = ScalerIn {
                en: self.en.val(),
                take: self.take.val(),
                mload: self.mload.val(),
                psum: wrap_signed(psum as i128, self._shape.psum_bits),
                scale: self.scale.val().to_u64(),
                acc_we: self.acc_we.val(),
                acc_addr: word(&self.acc_addr),
                rd_first: self.rd_first.val(),
                rd_addr: word(&self.rd_addr),
                out_load: self.out_load.val(),
            };
            self._m.tick(&input);
        }
        self.out.next = bits::<64>(to_pattern(self._m.out(), 64));
    }
    fn connect(&mut self) {
        self.out.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(scaler_verilog(self._shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const SHAPE: ScalerShape = ScalerShape {
        psum_bits: 15,
        mant_bits: 16,
        acc_bits: 40,
        token_tile: 4,
        tok_bits: 2,
        ecp5_dsp: false,
        read_ahead: true,
    };

    /// Blocks of random psums and mantissas for `tokens` tokens; the expected accumulators
    /// are computed the reference's way (`Σ_kb p · m` in i64).
    fn case(seed: u64, tokens: usize, kblocks: usize) -> (Vec<Vec<i64>>, Vec<u64>, Vec<i64>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let max = 64 * 128;
        let psums: Vec<Vec<i64>> = (0..kblocks)
            .map(|_| {
                (0..tokens)
                    .map(|_| rng.gen_range(-max..=max - 64))
                    .collect()
            })
            .collect();
        let mants: Vec<u64> = (0..kblocks).map(|_| rng.gen_range(0..65536)).collect();
        let expect = (0..tokens)
            .map(|t| (0..kblocks).map(|kb| psums[kb][t] * mants[kb] as i64).sum())
            .collect();
        (psums, mants, expect)
    }

    /// The control sequence the array gives the scaler (one input per cycle): block by
    /// block, token by token, each `take` followed `gap` idle cycles later by the next.
    fn drive(psums: &[Vec<i64>], mants: &[u64], gap: usize) -> Vec<ScalerIn> {
        let kblocks = psums.len();
        let mut seq = Vec::new();
        let push = |s: ScalerIn, seq: &mut Vec<ScalerIn>| seq.push(s);
        for (kb, row) in psums.iter().enumerate() {
            for (t, &p) in row.iter().enumerate() {
                push(
                    ScalerIn {
                        en: true,
                        take: true,
                        mload: t == 0,
                        psum: p,
                        scale: mants[kb],
                        ..Default::default()
                    },
                    &mut seq,
                );
                for _ in 0..gap {
                    push(
                        ScalerIn {
                            en: true,
                            ..Default::default()
                        },
                        &mut seq,
                    );
                }
            }
        }
        // the accumulate stage sees each take four cycles later (operand, multiply, product
        // register), the multiply stage (the read-ahead) three: overlay their controls
        let mut k = 0;
        let takes: Vec<usize> = (0..seq.len()).filter(|&i| seq[i].take).collect();
        for kb in 0..kblocks {
            for t in 0..psums[0].len() {
                let at = takes[k] + 4;
                k += 1;
                while seq.len() <= at {
                    seq.push(ScalerIn {
                        en: true,
                        ..Default::default()
                    });
                }
                seq[at].acc_we = true;
                seq[at].acc_addr = t;
                seq[at - 1].rd_first = kb == 0;
                seq[at - 1].rd_addr = t;
                seq[at].out_load = kb == kblocks - 1;
            }
        }
        seq.push(ScalerIn {
            en: true,
            ..Default::default()
        });
        seq
    }

    #[test]
    fn model_matches_reference_sums() {
        // one token without gaps: every block's sum is forwarded to the next block's read
        for (seed, tokens, gap) in [
            (1u64, 4, 0usize),
            (2, 4, 1),
            (3, 4, 3),
            (4, 1, 0),
            (5, 1, 1),
        ] {
            let (psums, mants, expect) = case(seed, tokens, 5);
            let seq = drive(&psums, &mants, gap);
            let mut m = ScalerModel::new(SHAPE);
            let mut outs = Vec::new();
            for s in &seq {
                let loading = s.out_load;
                m.tick(s);
                if loading {
                    outs.push(m.out());
                }
            }
            assert_eq!(outs, expect, "seed {seed}");
        }
    }

    #[test]
    fn clock_enable_freezes_everything() {
        let (psums, mants, expect) = case(9, 4, 3);
        let seq = drive(&psums, &mants, 0);
        let mut m = ScalerModel::new(SHAPE);
        let mut outs = Vec::new();
        for s in &seq {
            // a stalled cycle (en = 0) with garbage controls between every two cycles
            m.tick(&ScalerIn {
                en: false,
                take: true,
                acc_we: true,
                out_load: true,
                psum: 77,
                ..*s
            });
            let loading = s.out_load;
            m.tick(s);
            if loading {
                outs.push(m.out());
            }
        }
        assert_eq!(outs, expect);
    }

    /// The rust-hdl block in rust-hdl's simulator against the reference sums, including the
    /// extreme psums and the largest mantissa.
    #[test]
    fn block_in_rust_hdl_sim_matches_reference() {
        let (mut psums, mut mants, _) = case(4, 4, 4);
        psums[1] = vec![-8192, 8192, 8191, -1];
        mants[1] = 65535;
        let expect: Vec<i64> = (0..4)
            .map(|t| (0..4).map(|kb| psums[kb][t] * mants[kb] as i64).sum())
            .collect();
        let seq = drive(&psums, &mants, 1);
        let mut uut = Scaler::<16>::new(SHAPE);
        uut.clock.connect();
        uut.en.connect();
        uut.take.connect();
        uut.mload.connect();
        uut.psum.iter_mut().for_each(|s| s.connect());
        uut.scale.connect();
        uut.acc_we.connect();
        uut.acc_addr.iter_mut().for_each(|s| s.connect());
        uut.rd_first.connect();
        uut.rd_addr.iter_mut().for_each(|s| s.connect());
        uut.out_load.connect();
        uut.connect_all();
        let mut sim = Simulation::new();
        sim.add_clock(5, |x: &mut Box<Scaler<16>>| x.clock.next = !x.clock.val());
        sim.add_testbench(move |mut sim: Sim<Scaler<16>>| {
            let mut x = sim.init()?;
            let mut outs = Vec::new();
            for s in &seq {
                x.en.next = s.en;
                x.take.next = s.take;
                x.mload.next = s.mload;
                let pp = to_pattern(s.psum, 15);
                for i in 0..15 {
                    x.psum[i].next = (pp >> i) & 1 == 1;
                }
                x.scale.next = bits::<16>(s.scale);
                x.acc_we.next = s.acc_we;
                crate::sig::drive_bits(&mut x.acc_addr, s.acc_addr as u64);
                x.rd_first.next = s.rd_first;
                crate::sig::drive_bits(&mut x.rd_addr, s.rd_addr as u64);
                x.out_load.next = s.out_load;
                wait_clock_true!(sim, clock, x);
                wait_clock_false!(sim, clock, x);
                if s.out_load {
                    outs.push(wrap_signed(x.out.val().to_u64() as i128, 64));
                }
            }
            sim_assert_eq!(sim, outs, expect.clone(), x);
            sim.done(x)
        });
        sim.run(Box::new(uut), 100_000).unwrap();
    }

    #[test]
    fn verilog_widths() {
        let v = scaler_verilog(SHAPE);
        assert!(v.contains("reg [30:0] prod;"), "{v}");
        assert!(
            v.contains("$signed({{16{op_a[14]}}, op_a}) * $signed({{15{1'b0}}, op_m})"),
            "{v}"
        );
        assert!(!v.contains("lint_off"), "default widths need no waiver");
        let narrow = scaler_verilog(ScalerShape {
            psum_bits: 32,
            acc_bits: 40,
            ..SHAPE
        });
        assert!(narrow.contains("lint_off UNUSEDSIGNAL"), "{narrow}");
        assert!(narrow.contains("prod[39:0]"));
        let single = scaler_verilog(ScalerShape {
            token_tile: 1,
            tok_bits: 0,
            ..SHAPE
        });
        assert!(single.contains("acc_mem[1'b0] <= acc_new"), "{single}");
        assert!(single.contains("acc_mem[rd_first]"));
        assert!(single.contains("wire acc_fwd = acc_we & ~rd_first;"));
        assert!(
            v.contains("if (en) acc_rd <= acc_fwd ? acc_new : acc_mem[{rd_first, rd_a}];"),
            "{v}"
        );
        assert!(v.contains("wire acc_fwd = acc_we & ~rd_first & (rd_a == acc_a);"));
        assert!(
            v.contains("wire [39:0] acc_new = acc_rd + "),
            "no mask on the adder"
        );
        assert!(!v.contains("MULT18X18D"));
        let rmw = scaler_verilog(ScalerShape {
            read_ahead: false,
            ..SHAPE
        });
        assert!(
            rmw.contains(
                "wire [39:0] acc_new = {{9{prod[30]}}, prod} + acc_mem[{first_q, acc_a}];"
            ),
            "{rmw}"
        );
        assert!(
            rmw.contains("op_a <= pre_a;") && !rmw.contains("prod_q"),
            "{rmw}"
        );
        assert!(rmw.contains("if (en) first_q <= rd_first;"));
        assert!(!rmw.contains("acc_rd") && !rmw.contains("acc_fwd"), "{rmw}");
    }

    /// The ECP5 variant: the operand and product registers are the DSP's, and the portable
    /// ones are gone.
    #[test]
    fn ecp5_dsp_holds_the_registers() {
        let v = scaler_verilog(ScalerShape {
            ecp5_dsp: true,
            ..SHAPE
        });
        for want in [
            "MULT18X18D #(",
            ".REG_INPUTA_CLK(\"CLK0\"), .REG_INPUTA_CE(\"CE0\")",
            ".REG_INPUTB_CE(\"CE0\")",
            ".REG_OUTPUT_CE(\"CE0\")",
            ".CE0(en)",
            "if (en & take) sc_a <= psum_in;",
            "wire [17:0] dsp_a = {{3{sc_a[14]}}, sc_a};",
            "wire [17:0] dsp_b = {{2{1'b0}}, sc_m};",
            "wire [30:0] prod = dsp_p[30:0];",
        ] {
            assert!(v.contains(want), "{want}\n{v}");
        }
        assert!(!v.contains("op_a") && !v.contains("reg [30:0] prod"), "{v}");
        // too wide for one DSP: the portable multiply
        let p = Params::new(
            &tern_spec::ArrayConfig::builtin("default").unwrap(),
            crate::HdlOptions {
                ecp5_dsp: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(ScalerShape::of(&p).ecp5_dsp);
        let mut wide = p.clone();
        wide.psum_bits = 19;
        assert!(!ScalerShape::of(&wide).ecp5_dsp);
    }
}
