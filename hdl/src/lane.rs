//! A lane: computes one output (`n = n_base + lane`) of the tile, `cols` trits per beat.
//!
//! Stages (clock enable `en` on every register):
//! 0. the beat's `cols` trit codes are written (`w_we`) into the weight ring at the beat's
//!    index in its block (`w_addr`); the ring is `block.k / cols` beats deep and holds the
//!    block's beats for the tokens after the first, which only read it. With
//!    `token_tile = 1` (or one beat per block) it is a plain input register.
//! 1. the ring is read at the registered index `r_addr` (the input register's contents for
//!    token 0, the replayed beat for later tokens). The *lead* registers take, per column pair
//!    ([`crate::pe`]), the leader's activation masked by its non-zero bit (synchronous reset),
//!    the leader's sign and the follower's two code bits.
//! 2. the sign-factored adder tree ([`crate::tree`]), registered every `tree_reg_every` levels.
//! 3. psum: `psum_next = psum + (-1)^s·R`; the register is cleared (`ps_clr`) after a block's
//!    last beat instead of being masked before its first, so its adder needs no extra logic;
//!    the scaler ([`crate::scaler`]) captures `psum_next` at the last beat.
//!
//! Pad beats (M > 1, partial last block) are not written into the ring; their activations are
//! zero (the core's activation register is cleared), so whatever trits the ring holds add 0.

use crate::params::Params;
use crate::pe::PairIn;
use crate::scaler::{Scaler, ScalerShape};
use crate::sig::{drive_bits, read_in_bits};
use crate::tree::{split_operand, PairNames, TreeModel, TreePlan};
use crate::vlog::{decl, pack, slice, wire_eq, wrap_signed, zeros, zext, Text};
use rust_hdl::prelude::*;

/// Runtime shape of a lane.
#[derive(Debug, Clone)]
pub struct LaneShape {
    pub cols: u32,
    pub bpb: u32,
    pub ring: bool,
    /// Ring index width (0: the ring is a single register).
    pub addr_bits: u32,
    pub act_bits: u32,
    pub psum_bits: u32,
    pub tree: TreePlan,
    pub scaler: ScalerShape,
}

impl LaneShape {
    pub fn of(p: &Params) -> Self {
        LaneShape {
            cols: p.cols,
            bpb: p.bpb,
            ring: p.ring,
            addr_bits: p.ring_addr_bits(),
            act_bits: p.act_bits,
            psum_bits: p.psum_bits,
            tree: p.tree.clone(),
            scaler: ScalerShape::of(p),
        }
    }
    /// Column pairs `(leader, follower)`.
    pub fn pairs(&self) -> Vec<(usize, Option<usize>)> {
        self.tree.pairs()
    }
    /// Number of follower columns.
    pub fn followers(&self) -> usize {
        self.pairs().iter().filter(|(_, b)| b.is_some()).count()
    }
}

/// The lane block: `A` activation bits, `MB` mantissa bits.
#[derive(LogicBlock)]
pub struct Lane<const A: usize, const MB: usize> {
    pub clock: Signal<In, Clock>,
    pub en: Signal<In, Bit>,
    /// Write the beat's trits into the ring (or the input register).
    pub w_we: Signal<In, Bit>,
    /// Ring write index (the beat in its block), bit per port; empty without a ring memory.
    pub w_addr: Vec<Signal<In, Bit>>,
    /// Ring read index, registered in the controller (stage 1).
    pub r_addr: Vec<Signal<In, Bit>>,
    /// This lane's `cols` trit codes from the weight stream.
    pub w: Vec<Signal<In, Bits<2>>>,
    /// Leader activations (the shared activation register, stage 1), one per column pair.
    pub xl: Vec<Signal<In, Bits<A>>>,
    /// Follower activations (the shared activation register delayed, stage 2).
    pub xf: Vec<Signal<In, Bits<A>>>,
    pub ps_valid: Signal<In, Bit>,
    pub ps_clr: Signal<In, Bit>,
    pub sc_take: Signal<In, Bit>,
    pub sc_mload: Signal<In, Bit>,
    pub scale: Signal<In, Bits<MB>>,
    pub acc_we: Signal<In, Bit>,
    pub acc_addr: Vec<Signal<In, Bit>>,
    /// The scaler operand stage's first-k-block flag and token (the scaler reads its word ahead).
    pub rd_first: Signal<In, Bit>,
    pub rd_addr: Vec<Signal<In, Bit>>,
    pub out_load: Signal<In, Bit>,
    pub out: Signal<Out, Bits<64>>,
    pub scaler: Scaler<MB>,
    _shape: LaneShape,
    _m: LaneModel,
}

/// Inputs of the lane's own registers at one clock edge.
#[derive(Debug, Clone, Default)]
pub struct LaneIn {
    pub en: bool,
    pub w_we: bool,
    pub w_addr: usize,
    pub r_addr: usize,
    pub w_in: Vec<u64>,
    /// Leader activations, one per pair.
    pub xl: Vec<i64>,
    /// Follower activations, one per follower.
    pub xf: Vec<i64>,
    pub ps_valid: bool,
    pub ps_clr: bool,
}

/// Cycle model of the lane's own registers (the scaler is a block of its own).
#[derive(Debug, Clone)]
pub struct LaneModel {
    /// The ring (one entry without a ring memory: the input register).
    ring: Vec<Vec<u64>>,
    /// Lead registers per pair: (q, s, nzb, ngb).
    lead: Vec<(i64, bool, bool, bool)>,
    tree: TreeModel,
    psum: i64,
}

impl LaneModel {
    pub fn new(s: &LaneShape) -> Self {
        let depth = if s.addr_bits > 0 { s.bpb as usize } else { 1 };
        LaneModel {
            ring: vec![vec![0; s.cols as usize]; depth],
            lead: vec![(0, false, false, false); s.pairs().len()],
            tree: TreeModel::new(&s.tree),
            psum: 0,
        }
    }

    /// The psum register.
    pub fn psum(&self) -> i64 {
        self.psum
    }

    fn pairs_in(&self, s: &LaneShape, xf: &[i64]) -> Vec<PairIn> {
        let mut f = 0;
        s.pairs()
            .iter()
            .zip(&self.lead)
            .map(|(&(_, b), &(q, sg, nzb, ngb))| {
                let xb = if b.is_some() {
                    f += 1;
                    xf[f - 1]
                } else {
                    0
                };
                PairIn {
                    q,
                    s: sg,
                    xb,
                    nzb,
                    ngb,
                }
            })
            .collect()
    }

    /// `psum_next` as the psum adder computes it now (what the scaler captures).
    pub fn psum_next(&self, s: &LaneShape, xf: &[i64]) -> i64 {
        let (r, sg) = self.tree.output(&self.pairs_in(s, xf));
        wrap_signed(
            self.psum as i128 + crate::pe::signed_value(r, sg) as i128,
            s.psum_bits,
        )
    }

    /// One clock edge.
    pub fn tick(&mut self, s: &LaneShape, i: &LaneIn) {
        let psum_next = self.psum_next(s, &i.xf);
        if i.ps_clr {
            self.psum = 0;
        } else if i.en && i.ps_valid {
            self.psum = psum_next;
        }
        if !i.en {
            return;
        }
        let pairs = self.pairs_in(s, &i.xf);
        self.tree.tick(&pairs);
        let w1 = self.ring[if s.addr_bits > 0 { i.r_addr } else { 0 }].clone();
        for (k, &(a, b)) in s.pairs().iter().enumerate() {
            let ca = w1[a];
            let cb = b.map(|b| w1[b]).unwrap_or(0);
            self.lead[k] = (
                if ca & 1 == 1 { i.xl[k] } else { 0 },
                ca & 2 == 2,
                cb & 1 == 1,
                cb & 2 == 2,
            );
        }
        if i.w_we {
            let at = if s.addr_bits > 0 { i.w_addr } else { 0 };
            if let Some(slot) = self.ring.get_mut(at) {
                *slot = i.w_in.clone();
            }
        }
    }
}

impl<const A: usize, const MB: usize> Lane<A, MB> {
    pub fn new(shape: LaneShape) -> Self {
        assert_eq!(shape.act_bits as usize, A);
        let c = shape.cols as usize;
        let sigs = |n: usize| (0..n).map(|_| Signal::default()).collect::<Vec<_>>();
        Lane {
            clock: Default::default(),
            en: Default::default(),
            w_we: Default::default(),
            w_addr: sigs(shape.addr_bits as usize),
            r_addr: sigs(shape.addr_bits as usize),
            w: (0..c).map(|_| Default::default()).collect(),
            xl: (0..shape.pairs().len())
                .map(|_| Default::default())
                .collect(),
            xf: (0..shape.followers()).map(|_| Default::default()).collect(),
            ps_valid: Default::default(),
            ps_clr: Default::default(),
            sc_take: Default::default(),
            sc_mload: Default::default(),
            scale: Default::default(),
            acc_we: Default::default(),
            acc_addr: sigs(shape.scaler.tok_bits as usize),
            rd_first: Default::default(),
            rd_addr: sigs(shape.scaler.tok_bits as usize),
            out_load: Default::default(),
            out: Default::default(),
            scaler: Scaler::new(shape.scaler),
            _m: LaneModel::new(&shape),
            _shape: shape,
        }
    }
}

/// The lane's Verilog body (its scaler is the sub-module `scaler`).
pub fn lane_verilog(s: &LaneShape) -> String {
    let (c, a, p) = (s.cols, s.act_bits, s.psum_bits);
    let ww = 2 * c;
    let mut t = Text::default();
    let w_ports: Vec<String> = (0..c).map(|i| format!("w${i}")).collect();
    t.comment("stage 0: the beat's trit codes into the weight ring (or the input register)");
    t.line(wire_eq(ww, "w_in", &pack(&w_ports)));
    if s.addr_bits > 0 {
        let ab = s.addr_bits;
        let wa: Vec<String> = (0..ab).map(|i| format!("w_addr${i}")).collect();
        let ra: Vec<String> = (0..ab).map(|i| format!("r_addr${i}")).collect();
        t.line(wire_eq(ab, "wa", &pack(&wa)));
        t.line(wire_eq(ab, "ra", &pack(&ra)));
        t.line(format!("reg [{}:0] ring [0:{}];", ww - 1, s.bpb - 1));
        t.open("always @(posedge clock) begin");
        t.line("if (en & w_we) ring[wa] <= w_in;");
        t.close("end");
        t.comment("stage 1: read at the registered index");
        t.line(wire_eq(ww, "w1", "ring[ra]"));
    } else {
        t.line(decl("reg", ww, "w1"));
        t.open("always @(posedge clock) begin");
        t.line("if (en & w_we) w1 <= w_in;");
        t.close("end");
        t.comment("stage 1: the input register");
    }
    t.comment("lead registers per column pair: leader activation masked by its non-zero bit (synchronous reset), leader sign, follower code");
    let mut names = Vec::new();
    let mut f = 0;
    for (k, &(la, fb)) in s.pairs().iter().enumerate() {
        let (q, sg) = (format!("lq{k}"), format!("ls{k}"));
        t.line(decl("reg", a, &q));
        t.line(decl("reg", 1, &sg));
        t.line(wire_eq(
            1,
            &format!("lz{k}"),
            &format!("en & ~w1[{}]", 2 * la),
        ));
        t.open("always @(posedge clock) begin");
        t.line(format!("if (lz{k}) {q} <= {};", zeros(a)));
        t.line(format!("else if (en) {q} <= xl${k};"));
        t.close("end");
        let follower = fb.map(|b| {
            let (nz, ng) = (format!("lnz{k}"), format!("lng{k}"));
            t.line(decl("reg", 1, &nz));
            t.line(decl("reg", 1, &ng));
            t.open("always @(posedge clock) begin");
            t.open("if (en) begin");
            t.line(format!("{nz} <= w1[{}];", 2 * b));
            t.line(format!("{ng} <= w1[{}];", 2 * b + 1));
            t.close("end");
            t.close("end");
            f += 1;
            (format!("xf${}", f - 1), nz, ng)
        });
        t.open("always @(posedge clock) begin");
        t.line(format!("if (en) {sg} <= w1[{}];", 2 * la + 1));
        t.close("end");
        names.push(PairNames { q, s: sg, follower });
    }
    t.comment("stage 2: the sign-factored adder tree");
    let (tree_text, root, rsign) = s.tree.verilog(&names);
    if !tree_text.is_empty() {
        t.line(tree_text.trim_end());
    }
    let tw = s.tree.out_width();
    assert!(tw <= p, "tree width {tw} exceeds psum width {p}");
    t.comment("stage 3: block partial sum, psum + (-1)^s * R; cleared after the block's last beat");
    t.line(decl("reg", p, "psum"));
    let b = split_operand(&mut t, "pb", tw, p, |lo, bw| {
        format!("{} ^ {{{bw}{{{rsign}}}}}", slice(&root, lo, bw))
    });
    t.line(wire_eq(
        p,
        "psum_next",
        &format!("psum + {b} + {}", zext(&rsign, 1, p)),
    ));
    t.open("always @(posedge clock) begin");
    t.line(format!("if (ps_clr) psum <= {};", zeros(p)));
    t.line("else if (en & ps_valid) psum <= psum_next;");
    t.close("end");
    t.comment("stage 4: the scaler (sub-module) captures psum_next at the block's last beat");
    t.open("always @(*) begin");
    for n in ["clock", "en"] {
        t.line(format!("scaler${n} = {n};"));
    }
    t.line("scaler$take = sc_take;");
    t.line("scaler$mload = sc_mload;");
    for i in 0..p {
        t.line(format!("scaler$psum${i} = psum_next[{i}];"));
    }
    t.line("scaler$scale = scale;");
    t.line("scaler$acc_we = acc_we;");
    t.line("scaler$rd_first = rd_first;");
    for i in 0..s.scaler.tok_bits {
        t.line(format!("scaler$acc_addr${i} = acc_addr${i};"));
        t.line(format!("scaler$rd_addr${i} = rd_addr${i};"));
    }
    t.line("scaler$out_load = out_load;");
    t.line("out = scaler$out;");
    t.close("end");
    t.finish()
}

impl<const A: usize, const MB: usize> Logic for Lane<A, MB> {
    fn update(&mut self) {
        // Drive the scaler from the pre-edge state first: it sees this edge one delta later
        // (its clock is a copy) and must read what the Verilog's non-blocking assignments
        // give it.
        let s = &self._shape;
        let xf: Vec<i64> = self
            .xf
            .iter()
            .map(|x| wrap_signed(x.val().to_u64() as i128, A as u32))
            .collect();
        let ps = self._m.psum_next(s, &xf) as u64;
        self.scaler.clock.next = self.clock.val();
        self.scaler.en.next = self.en.val();
        self.scaler.take.next = self.sc_take.val();
        self.scaler.mload.next = self.sc_mload.val();
        drive_bits(&mut self.scaler.psum, ps);
        self.scaler.scale.next = self.scale.val();
        self.scaler.acc_we.next = self.acc_we.val();
        for (i, b) in self.scaler.acc_addr.iter_mut().enumerate() {
            b.next = self.acc_addr[i].val();
        }
        self.scaler.rd_first.next = self.rd_first.val();
        for (i, b) in self.scaler.rd_addr.iter_mut().enumerate() {
            b.next = self.rd_addr[i].val();
        }
        self.scaler.out_load.next = self.out_load.val();
        self.out.next = self.scaler.out.val();
        if self.clock.pos_edge() {
            let bits_of = |v: &[Signal<In, Bit>]| read_in_bits(v) as usize;
            let input = LaneIn {
                en: self.en.val(),
                w_we: self.w_we.val(),
                w_addr: bits_of(&self.w_addr),
                r_addr: bits_of(&self.r_addr),
                w_in: self.w.iter().map(|w| w.val().to_u64()).collect(),
                xl: self
                    .xl
                    .iter()
                    .map(|x| wrap_signed(x.val().to_u64() as i128, A as u32))
                    .collect(),
                xf,
                ps_valid: self.ps_valid.val(),
                ps_clr: self.ps_clr.val(),
            };
            self._m.tick(&self._shape, &input);
        }
    }

    fn connect(&mut self) {
        self.scaler.clock.connect();
        self.scaler.en.connect();
        self.scaler.take.connect();
        self.scaler.mload.connect();
        self.scaler.psum.iter_mut().for_each(|b| b.connect());
        self.scaler.scale.connect();
        self.scaler.acc_we.connect();
        self.scaler.acc_addr.iter_mut().for_each(|b| b.connect());
        self.scaler.rd_first.connect();
        self.scaler.rd_addr.iter_mut().for_each(|b| b.connect());
        self.scaler.out_load.connect();
        self.out.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(lane_verilog(&self._shape))
    }
}
