//! A lane: computes one output (`n = n_base + lane`) of the tile, `cols` trits per beat.
//!
//! Stages (clock enable `en` on every register):
//! 0. input register `w_reg` (the beat's `cols` trit codes) loaded on `s0_load`, from the
//!    weight stream or, for tokens after the first, from the replay ring (`s0_replay`); pad
//!    beats (`s0_pad`) load zero trits. The ring is `block.k / cols` beats deep: every
//!    loaded beat is shifted in, so its tail is the same beat of the previous token.
//! 1. `cols` PEs (one per trit, [`crate::pe`]) on `w_reg` and the shared activation
//!    register `x`, then the pipelined adder tree ([`crate::tree`]).
//! 2. psum accumulator: `psum <= (ps_first ? 0 : psum) + tree + carry` on `ps_valid`.
//! 3. the scaler ([`crate::scaler`]): multiply by the block's mantissa, accumulate per token.

use crate::params::Params;
use crate::pe::Pe;
use crate::scaler::{Scaler, ScalerShape};
use crate::tree::{TreeModel, TreePlan};
use crate::vlog::{decl, pack, sext, slice, wire_eq, wrap_signed, zeros, zext, Text};
use rust_hdl::prelude::*;

/// Runtime shape of a lane.
#[derive(Debug, Clone)]
pub struct LaneShape {
    pub cols: u32,
    pub bpb: u32,
    pub ring: bool,
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
            act_bits: p.act_bits,
            psum_bits: p.psum_bits,
            tree: p.tree.clone(),
            scaler: ScalerShape::of(p),
        }
    }
}

/// The lane block: `A` activation bits, `MB` mantissa bits.
#[derive(LogicBlock)]
pub struct Lane<const A: usize, const MB: usize> {
    pub clock: Signal<In, Clock>,
    pub en: Signal<In, Bit>,
    pub s0_load: Signal<In, Bit>,
    /// Take the beat from the replay ring (present when token_tile > 1).
    pub s0_replay: Vec<Signal<In, Bit>>,
    /// Pad beat: zero trits (present when token_tile > 1).
    pub s0_pad: Vec<Signal<In, Bit>>,
    /// This lane's `cols` trit codes from the weight stream.
    pub w: Vec<Signal<In, Bits<2>>>,
    /// The `cols` activation codes (shared register).
    pub x: Vec<Signal<In, Bits<A>>>,
    pub ps_valid: Signal<In, Bit>,
    pub ps_first: Signal<In, Bit>,
    pub sc_take: Signal<In, Bit>,
    pub sc_mload: Signal<In, Bit>,
    pub scale: Signal<In, Bits<MB>>,
    pub acc_we: Signal<In, Bit>,
    pub acc_first: Signal<In, Bit>,
    pub acc_addr: Vec<Signal<In, Bit>>,
    pub out_load: Signal<In, Bit>,
    pub out: Signal<Out, Bits<64>>,
    pub pes: Vec<Pe<A>>,
    pub scaler: Scaler<MB>,
    _shape: LaneShape,
    _m: LaneModel,
}

/// Cycle model of the lane's own registers (the PEs and the scaler are blocks of their own).
#[derive(Debug, Clone)]
pub struct LaneModel {
    w_reg: Vec<u64>,
    ring: Vec<Vec<u64>>,
    tree: TreeModel,
    psum: i64,
}

impl LaneModel {
    pub fn new(s: &LaneShape) -> Self {
        LaneModel {
            w_reg: vec![0; s.cols as usize],
            ring: if s.ring {
                vec![vec![0; s.cols as usize]; s.bpb as usize]
            } else {
                vec![]
            },
            tree: TreeModel::new(&s.tree),
            psum: 0,
        }
    }

    /// Trit codes in the input register.
    pub fn w_reg(&self) -> &[u64] {
        &self.w_reg
    }

    /// The psum register.
    pub fn psum(&self) -> i64 {
        self.psum
    }

    /// One clock edge. `prods`/`corrs` are the PE outputs (before the edge).
    #[allow(clippy::too_many_arguments)]
    pub fn tick(
        &mut self,
        s: &LaneShape,
        en: bool,
        load: bool,
        replay: bool,
        pad: bool,
        w_in: &[u64],
        prods: &[i64],
        corrs: &[bool],
        ps_valid: bool,
        ps_first: bool,
    ) {
        if !en {
            return;
        }
        let (sum, cin) = self.tree.output(prods, corrs);
        let psum_next = wrap_signed(
            if ps_first { 0 } else { self.psum as i128 } + sum as i128 + cin as i128,
            s.psum_bits,
        );
        self.tree.tick(prods, corrs);
        if ps_valid {
            self.psum = psum_next;
        }
        if load {
            let sel: Vec<u64> = if s.ring && pad {
                vec![0; s.cols as usize]
            } else if s.ring && replay {
                self.ring.last().expect("ring").clone()
            } else {
                w_in.to_vec()
            };
            if s.ring {
                self.ring.rotate_right(1);
                self.ring[0] = sel.clone();
            }
            self.w_reg = sel;
        }
    }
}

impl<const A: usize, const MB: usize> Lane<A, MB> {
    pub fn new(shape: LaneShape) -> Self {
        assert_eq!(shape.act_bits as usize, A);
        let c = shape.cols as usize;
        let opt = |on: bool| {
            (0..on as usize)
                .map(|_| Signal::default())
                .collect::<Vec<_>>()
        };
        Lane {
            clock: Default::default(),
            en: Default::default(),
            s0_load: Default::default(),
            s0_replay: opt(shape.ring),
            s0_pad: opt(shape.ring),
            w: (0..c).map(|_| Default::default()).collect(),
            x: (0..c).map(|_| Default::default()).collect(),
            ps_valid: Default::default(),
            ps_first: Default::default(),
            sc_take: Default::default(),
            sc_mload: Default::default(),
            scale: Default::default(),
            acc_we: Default::default(),
            acc_first: Default::default(),
            acc_addr: (0..shape.scaler.tok_bits)
                .map(|_| Default::default())
                .collect(),
            out_load: Default::default(),
            out: Default::default(),
            pes: (0..c).map(|_| Pe::default()).collect(),
            scaler: Scaler::new(shape.scaler),
            _m: LaneModel::new(&shape),
            _shape: shape,
        }
    }
}

/// The lane's Verilog body (its PEs and scaler are sub-modules `pes$i`, `scaler`).
pub fn lane_verilog(s: &LaneShape) -> String {
    let (c, a, p) = (s.cols, s.act_bits, s.psum_bits);
    let ww = 2 * c;
    let mut t = Text::default();
    let w_ports: Vec<String> = (0..c).map(|i| format!("w${i}")).collect();
    t.comment("stage 0: the beat's trit codes (stream, replay ring or pad zeros)");
    t.line(wire_eq(ww, "w_in", &pack(&w_ports)));
    t.line(decl("reg", ww, "w_reg"));
    if s.ring {
        for i in 0..s.bpb {
            t.line(decl("reg", ww, &format!("ring_{i}")));
        }
        t.line(wire_eq(
            ww,
            "w_sel",
            &format!(
                "s0_pad$0 ? {} : (s0_replay$0 ? ring_{} : w_in)",
                zeros(ww),
                s.bpb - 1
            ),
        ));
    } else {
        t.line(wire_eq(ww, "w_sel", "w_in"));
    }
    t.open("always @(posedge clock) begin");
    t.open("if (en & s0_load) begin");
    t.line("w_reg <= w_sel;");
    if s.ring {
        t.line("ring_0 <= w_sel;");
        for i in 1..s.bpb {
            t.line(format!("ring_{i} <= ring_{};", i - 1));
        }
    }
    t.close("end");
    t.close("end");
    t.comment(format!("stage 1: {c} PEs (sub-modules) and the adder tree"));
    t.open("always @(*) begin");
    for i in 0..c {
        t.line(format!("pes${i}$trit = {};", slice("w_reg", 2 * i, 2)));
        t.line(format!("pes${i}$act = x${i};"));
    }
    t.close("end");
    let vals: Vec<String> = (0..c).map(|i| format!("pes${i}$prod")).collect();
    let pend: Vec<String> = (0..c).map(|i| format!("pes${i}$corr")).collect();
    let (tree_text, root, cin) = s.tree.verilog(&vals, &pend);
    t.line(tree_text.trim_end());
    let tw = s.tree.out_width();
    assert!(tw <= p, "tree width {tw} exceeds psum width {p}");
    let _ = a;
    t.comment("stage 2: block partial sum; the tree's last correction is its carry-in");
    t.line(decl("reg", p, "psum"));
    t.line(wire_eq(
        p,
        "psum_next",
        &format!(
            "(ps_first ? {} : psum) + {} + {}",
            zeros(p),
            sext(&root, tw, p),
            zext(&cin, 1, p)
        ),
    ));
    t.open("always @(posedge clock) begin");
    t.line("if (en & ps_valid) psum <= psum_next;");
    t.close("end");
    t.comment("stage 3: the scaler (sub-module)");
    t.open("always @(*) begin");
    for n in ["clock", "en"] {
        t.line(format!("scaler${n} = {n};"));
    }
    t.line("scaler$take = sc_take;");
    t.line("scaler$mload = sc_mload;");
    for i in 0..p {
        t.line(format!("scaler$psum${i} = psum[{i}];"));
    }
    t.line("scaler$scale = scale;");
    t.line("scaler$acc_we = acc_we;");
    t.line("scaler$acc_first = acc_first;");
    for i in 0..s.scaler.tok_bits {
        t.line(format!("scaler$acc_addr${i} = acc_addr${i};"));
    }
    t.line("scaler$out_load = out_load;");
    t.line("out = scaler$out;");
    t.close("end");
    t.finish()
}

impl<const A: usize, const MB: usize> Logic for Lane<A, MB> {
    fn update(&mut self) {
        // Drive the sub-blocks from the pre-edge state first: they see this edge one delta
        // later (their clocks are copies) and must read what the Verilog's non-blocking
        // assignments give them.
        for (i, pe) in self.pes.iter_mut().enumerate() {
            pe.trit.next = bits::<2>(self._m.w_reg[i]);
            pe.act.next = self.x[i].val();
        }
        self.scaler.clock.next = self.clock.val();
        self.scaler.en.next = self.en.val();
        self.scaler.take.next = self.sc_take.val();
        self.scaler.mload.next = self.sc_mload.val();
        let ps = self._m.psum as u64;
        for (i, b) in self.scaler.psum.iter_mut().enumerate() {
            b.next = (ps >> i) & 1 == 1;
        }
        self.scaler.scale.next = self.scale.val();
        self.scaler.acc_we.next = self.acc_we.val();
        self.scaler.acc_first.next = self.acc_first.val();
        for (i, b) in self.scaler.acc_addr.iter_mut().enumerate() {
            b.next = self.acc_addr[i].val();
        }
        self.scaler.out_load.next = self.out_load.val();
        self.out.next = self.scaler.out.val();
        if self.clock.pos_edge() {
            let s = &self._shape;
            let prods: Vec<i64> = self
                .pes
                .iter()
                .map(|pe| wrap_signed(pe.prod.val().to_u64() as i128, A as u32))
                .collect();
            let corrs: Vec<bool> = self.pes.iter().map(|pe| pe.corr.val()).collect();
            let w_in: Vec<u64> = self.w.iter().map(|w| w.val().to_u64()).collect();
            let replay = self.s0_replay.first().map(|x| x.val()).unwrap_or(false);
            let pad = self.s0_pad.first().map(|x| x.val()).unwrap_or(false);
            self._m.tick(
                s,
                self.en.val(),
                self.s0_load.val(),
                replay,
                pad,
                &w_in,
                &prods,
                &corrs,
                self.ps_valid.val(),
                self.ps_first.val(),
            );
        }
    }

    fn connect(&mut self) {
        for pe in self.pes.iter_mut() {
            pe.trit.connect();
            pe.act.connect();
        }
        self.scaler.clock.connect();
        self.scaler.en.connect();
        self.scaler.take.connect();
        self.scaler.mload.connect();
        self.scaler.psum.iter_mut().for_each(|b| b.connect());
        self.scaler.scale.connect();
        self.scaler.acc_we.connect();
        self.scaler.acc_first.connect();
        self.scaler.acc_addr.iter_mut().for_each(|b| b.connect());
        self.scaler.out_load.connect();
        self.out.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(lane_verilog(&self._shape))
    }
}
