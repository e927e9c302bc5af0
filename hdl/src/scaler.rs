//! The per-lane scaler: at the end of every block the lane's partial sum is multiplied by
//! the block's scale mantissa and added into the token's output accumulator, exactly
//! (docs/src/arithmetic.md; `acc[t] = Σ_kb p[t, kb] · mant[kb]`).
//!
//! Pipeline (all registers have clock enable `en`):
//! 1. capture: `take` loads `sc_a <= psum`; `mload` (first token of a block) loads
//!    `sc_m <= scale` — the mantissa is held for the block's other tokens;
//! 2. multiply: `prod <= sc_a × sc_m` (signed × unsigned, `psum_bits + mant_bits` bits, one
//!    DSP for the default widths);
//! 3. accumulate: `acc[acc_addr] <= acc[{acc_first, acc_addr}] + prod` when `acc_we` (the
//!    words with `acc_first` set are zero);
//!    `out_load` also copies the new value to the output register `out` (sign-extended to 64).
//!
//! `acc` is a memory of `2^(tok_bits+1)` words: the tile's tokens in the lower half, read and
//! written once per block per token (one read-modify-write cycle, no hazard); the upper half
//! is never written and keeps its initial zeros, and the first block of a row reads there
//! (index bit `acc_first`), so the accumulator's adder needs no masking logic.

use crate::params::{Params, OUT_WORD_BITS};
use crate::vlog::{decl, pack, sext, to_pattern, wire_eq, wrap_signed, zeros, zext, Text};
use rust_hdl::prelude::*;

/// Runtime shape of a scaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalerShape {
    pub psum_bits: u32,
    pub mant_bits: u32,
    pub acc_bits: u32,
    pub token_tile: u32,
    pub tok_bits: u32,
}

impl ScalerShape {
    pub fn of(p: &Params) -> Self {
        ScalerShape {
            psum_bits: p.psum_bits,
            mant_bits: p.mant_bits,
            acc_bits: p.acc_bits,
            token_tile: p.token_tile,
            tok_bits: p.tok_bits,
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
    /// First block of the row: overwrite instead of accumulate.
    pub acc_first: Signal<In, Bit>,
    /// Token index (accumulator address), bit per port.
    pub acc_addr: Vec<Signal<In, Bit>>,
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
            acc_first: Default::default(),
            acc_addr: (0..shape.tok_bits).map(|_| Default::default()).collect(),
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
    pub acc_first: bool,
    pub acc_addr: usize,
    pub out_load: bool,
}

/// Cycle model of the scaler.
#[derive(Debug, Clone)]
pub struct ScalerModel {
    shape: ScalerShape,
    sc_a: i64,
    sc_m: u64,
    prod: i64,
    acc: Vec<i64>,
    out_q: i64,
}

impl ScalerModel {
    pub fn new(shape: ScalerShape) -> Self {
        ScalerModel {
            shape,
            sc_a: 0,
            sc_m: 0,
            prod: 0,
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
        let old_prod = self.prod;
        self.prod = wrap_signed(self.sc_a as i128 * self.sc_m as i128, s.prod_bits());
        if i.take {
            self.sc_a = wrap_signed(i.psum as i128, s.psum_bits);
        }
        if i.mload {
            self.sc_m = i.scale & ((1u64 << s.mant_bits) - 1);
        }
        let addr = if s.token_tile > 1 { i.acc_addr } else { 0 };
        let base = if i.acc_first {
            0
        } else {
            self.acc.get(addr).copied().unwrap_or(0)
        };
        let new = wrap_signed(
            base as i128 + wrap_signed(old_prod as i128, s.acc_bits) as i128,
            s.acc_bits,
        );
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
    t.comment(format!(
        "2. multiply: signed {p}-bit psum x unsigned {mb}-bit mantissa -> {pw}-bit signed product (exact)"
    ));
    let narrow = pw > acc;
    if narrow {
        t.comment(format!(
            "prod is wider than the {acc}-bit accumulator: its bits [{}:{acc}] are sign copies for every legal input (|p*m| <= max_k * 2^(act_bits-1) * mant_max < 2^({acc}-1)), so only the low {acc} bits are read",
            pw - 1
        ));
        t.line("/* verilator lint_off UNUSEDSIGNAL */");
    }
    t.line(decl("reg", pw, "prod"));
    if narrow {
        t.line("/* verilator lint_on UNUSEDSIGNAL */");
    }
    t.open("always @(posedge clock) begin");
    t.line(format!(
        "if (en) prod <= $signed({}) * $signed({});",
        sext("sc_a", p, pw),
        zext("sc_m", mb, pw)
    ));
    t.close("end");
    t.comment("3. accumulate into the token's output accumulator (read-modify-write)");
    let prod_acc = if narrow {
        format!("prod[{}:0]", acc - 1)
    } else {
        sext("prod", pw, acc)
    };
    // acc_mem: the token's words in the lower half; the upper half is never written and keeps
    // its initial zeros, so the first block of a row reads 0 through the index bit acc_first
    // instead of masking the read (no logic on the accumulator's adder).
    let ab = s.tok_bits + 1;
    let depth = 1u32 << ab;
    let (rd, wr) = if s.token_tile > 1 {
        let addr_ports: Vec<String> = (0..s.tok_bits).map(|i| format!("acc_addr${i}")).collect();
        t.line(wire_eq(s.tok_bits, "acc_a", &pack(&addr_ports)));
        (
            "{acc_first, acc_a}".to_string(),
            "{1'b0, acc_a}".to_string(),
        )
    } else {
        ("acc_first".to_string(), "1'b0".to_string())
    };
    t.line(format!("reg [{}:0] acc_mem [0:{}];", acc - 1, depth - 1));
    t.line("integer acc_i;");
    t.line(format!(
        "initial for (acc_i = 0; acc_i < {depth}; acc_i = acc_i + 1) acc_mem[acc_i[{}:0]] = {};",
        ab - 1,
        zeros(acc)
    ));
    t.line(wire_eq(acc, "acc_old", &format!("acc_mem[{rd}]")));
    t.line(wire_eq(acc, "acc_new", &format!("acc_old + {prod_acc}")));
    t.line(decl("reg", acc, "out_q"));
    t.open("always @(posedge clock) begin");
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
            let mut psum = 0u64;
            for (i, b) in self.psum.iter().enumerate() {
                psum |= (b.val() as u64) << i;
            }
            let mut addr = 0usize;
            for (i, b) in self.acc_addr.iter().enumerate() {
                addr |= (b.val() as usize) << i;
            }
            let input = ScalerIn {
                en: self.en.val(),
                take: self.take.val(),
                mload: self.mload.val(),
                psum: wrap_signed(psum as i128, self._shape.psum_bits),
                scale: self.scale.val().to_u64(),
                acc_we: self.acc_we.val(),
                acc_first: self.acc_first.val(),
                acc_addr: addr,
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
        // the accumulate stage sees each take two cycles later: overlay its controls
        let mut k = 0;
        let takes: Vec<usize> = (0..seq.len()).filter(|&i| seq[i].take).collect();
        for kb in 0..kblocks {
            for t in 0..psums[0].len() {
                let at = takes[k] + 2;
                k += 1;
                while seq.len() <= at {
                    seq.push(ScalerIn {
                        en: true,
                        ..Default::default()
                    });
                }
                seq[at].acc_we = true;
                seq[at].acc_first = kb == 0;
                seq[at].acc_addr = t;
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
        for (seed, gap) in [(1u64, 0usize), (2, 1), (3, 3)] {
            let (psums, mants, expect) = case(seed, 4, 5);
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
        uut.acc_first.connect();
        uut.acc_addr.iter_mut().for_each(|s| s.connect());
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
                x.acc_first.next = s.acc_first;
                for i in 0..2 {
                    x.acc_addr[i].next = (s.acc_addr >> i) & 1 == 1;
                }
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
            v.contains("$signed({{16{sc_a[14]}}, sc_a}) * $signed({{15{1'b0}}, sc_m})"),
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
        assert!(single.contains("acc_mem[acc_first]"));
        assert!(
            v.contains("wire [39:0] acc_old = acc_mem[{acc_first, acc_a}];"),
            "{v}"
        );
        assert!(
            v.contains("wire [39:0] acc_new = acc_old + "),
            "no mask on the adder"
        );
    }
}
