//! The array controller: command registers, the K/N/token loop counters, the stream
//! handshakes, the flag pipeline that tells every lane stage what its data is, and the
//! output handshake.
//!
//! Loop order per command (K, N, M ≤ token_tile): for each N tile (`rows` outputs), for each
//! k-block, for each token, for each beat of the block. A beat is *issued* (`fire`) when the
//! activation beat is valid and, for the first token of a block (or always when
//! token_tile = 1), the weight beat is valid too; later tokens replay the block's weights from
//! the lanes' rings. With M > 1, a partial last block is completed with pad beats (zero
//! trits, no stream data) so that the ring stays aligned.
//!
//! `go` (the clock enable of every datapath register) is a register: it is computed one cycle
//! ahead from the next state (`en_d`) and the core keeps one copy per lane. It drops when a
//! vector would reach the output register while that register holds an unaccepted one, or
//! when the scaler must take a block's first mantissa and the one-deep scale prefetch
//! register (`sc_full`) is empty: the whole pipeline freezes, so nothing is lost or
//! duplicated, and no stream input reaches a lane's clock enable combinationally.
//!
//! The issue logic reads registers only: every comparison it needs (the beat is its block's
//! last, a pad beat, the first or last token, the last k-block, the last N tile) is a
//! lookahead register computed with the next value of the counter it depends on (`lb_q` and
//! `pad_q` with `j`, `tz_q` and `tl_q` with `t`, `kbl_q` and `more_q` with `kbrem`, `nl_q`
//! with `nrem`, the N still to do). A start while idle loads the command registers, the
//! counters and the lookahead without waiting for the command check (nothing reads them
//! while idle: no beat is issued and no vector is valid); only `busy`, `done`, `err` and
//! `issuing` wait for it. A good start zeroes the output index through the flag `out_n0`,
//! not the wide `out_nbase`.

use crate::params::{Params, CMD_BITS, OUT_WORD_BITS, TOKEN_FIELD_BITS};
use crate::sig::drive_bits;
use crate::vlog::{bit, decl, lit, pack, wire_eq, zext, Text};
use rust_hdl::prelude::*;

/// Runtime shape of the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtrlShape {
    pub rows: u32,
    pub cols: u32,
    pub block_k: u32,
    pub bpb: u32,
    pub token_tile: u32,
    pub tok_bits: u32,
    pub k_bits: u32,
    pub n_bits: u32,
    pub j_bits: u32,
    pub tree_lat: u32,
    /// Ring index width (0: no ring memory).
    pub addr_bits: u32,
    pub max_k: u64,
    pub max_n: u64,
    /// `(* keep *)` on `go` and the prefetch flag (`HdlOptions::lane_copies`): the core's
    /// per-lane copies load the same next values, and without it synthesis merges the
    /// controller's registers into a copy, which then drives the controller from its lane.
    pub keep: bool,
}

impl CtrlShape {
    pub fn of(p: &Params) -> Self {
        assert!(p.k_bits <= CMD_BITS && p.n_bits <= CMD_BITS);
        CtrlShape {
            rows: p.rows,
            cols: p.cols,
            block_k: p.block_k,
            bpb: p.bpb,
            token_tile: p.token_tile,
            tok_bits: p.tok_bits,
            k_bits: p.k_bits,
            n_bits: p.n_bits,
            j_bits: p.j_bits,
            tree_lat: p.tree_lat(),
            addr_bits: p.ring_addr_bits(),
            max_k: p.max_k,
            max_n: p.max_n,
            keep: p.options.lane_copies,
        }
    }
    fn ring(&self) -> bool {
        self.token_tile > 1
    }
}

/// Inputs of the controller in one cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CtrlIn {
    pub rst: bool,
    pub start: bool,
    pub cmd_k: u64,
    pub cmd_n: u64,
    pub cmd_m: u64,
    pub w_valid: bool,
    pub act_valid: bool,
    pub scale_valid: bool,
    pub out_ready: bool,
}

/// Outputs of the controller in one cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CtrlOut {
    pub busy: bool,
    pub done: bool,
    pub err: bool,
    pub w_ready: bool,
    pub act_ready: bool,
    pub scale_ready: bool,
    /// `go` of the next cycle (the lanes' registered clock enables load it).
    pub en_d: bool,
    /// The scale prefetch register's `full` flag of the next cycle.
    pub sc_full_d: bool,
    /// Issue: write the beat into the weight rings (registered per lane, then written). Not
    /// qualified by `go`: the lanes' copies load it under their own copy of `go`, so the
    /// controller's `go` register is not on the path to the sixteen copies.
    pub w_we: bool,
    pub w_addr: u64,
    pub x_load: bool,
    pub x_zero: bool,
    /// Flags of the stage before the root (`v`, `v & last`, the scaler needs a mantissa):
    /// the lanes' copies of the root-stage flags load them.
    pub pv: bool,
    pub pvl: bool,
    pub pns: bool,
    /// Flags of the scaler's multiplier stage (`v & last`, `v & last & kbl`, token): the
    /// lanes' copies of the product-stage flags (accumulator write, output load, address)
    /// load them.
    pub svl: bool,
    pub sol: bool,
    pub st: u64,
    /// The operand stage's first-k-block flag and token (what the multiplier stage loads
    /// next): the lanes' copies of the multiplier-stage flags load them, for the accumulator
    /// read-ahead.
    pub rkbf: bool,
    pub rt: u64,
    pub out_valid: bool,
    pub out_token: u64,
    pub out_n: u64,
    pub out_last: bool,
}

/// Flags of one beat as it travels down the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flags {
    v: bool,
    last: bool,
    tf: bool,
    /// Last token of the block (and of the tile's output vectors).
    tl: bool,
    kbf: bool,
    kbl: bool,
    /// Last N tile.
    nl: bool,
    t: u64,
}

/// Cycle model of the controller (the same registers as its Verilog).
#[derive(Debug, Clone)]
pub struct CtrlModel {
    s: CtrlShape,
    busy: bool,
    issuing: bool,
    done_q: bool,
    err_q: bool,
    k_reg: u64,
    m_last: u64,
    m_gt1: bool,
    /// K minus the first K index of the current block.
    kbrem: u64,
    /// The current block is the tile's first.
    kbf: bool,
    /// N minus the first output index of the current N tile.
    nrem: u64,
    j: u64,
    t: u64,
    // Issue lookahead, registered with the counters it depends on: while issuing each equals
    // the comparison it replaces (`check`, every cycle).
    /// The beat is a pad beat (`m_gt1 & kb_last & j·cols >= kbrem`).
    pad_q: bool,
    /// The beat is its block's last (`j == bpb − 1`, or without pad beats the block's data
    /// ends in it).
    lb_q: bool,
    /// `t == 0` (the block's first token: the weight beat comes from the stream).
    tz_q: bool,
    /// `t == m_last`.
    tl_q: bool,
    /// The last N tile (`nrem <= rows`).
    nl_q: bool,
    /// The scale prefetch register (in the lanes) holds the next block's mantissas.
    sc_full: bool,
    /// Mantissa vectors the issued beats will need and the prefetch has not accepted yet
    /// (the prefetch takes no scale beat the command does not need).
    sc_owed: u64,
    f0: Flags,
    /// Ring write stage, lead stage, then one per registered tree level.
    fd: Vec<Flags>,
    /// Scaler capture (S), operand (O), multiplier (M) and product register (P) stages.
    fs: Flags,
    fo: Flags,
    fm: Flags,
    fp: Flags,
    out_valid: bool,
    out_tok: u64,
    out_last: bool,
    out_tl: bool,
    /// Output index of the vector in the output register (and of the next tile's after the
    /// tile's last vector is taken), unless `out_n0`.
    out_nbase: u64,
    /// The output index is 0 (set by a good start, which does not touch `out_nbase`: a wide
    /// register less on the command check; cleared when the first tile's last vector is taken).
    out_n0: bool,
}

struct Comb {
    take: bool,
    go: bool,
    need_w: bool,
    pad: bool,
    /// A beat can be issued (`fire` without `go`).
    can: bool,
    fire: bool,
    last_beat: bool,
    t_last: bool,
    kb_last: bool,
    n_last: bool,
    ft: Flags,
}

impl CtrlModel {
    pub fn new(s: CtrlShape) -> Self {
        CtrlModel {
            s,
            busy: false,
            issuing: false,
            done_q: false,
            err_q: false,
            k_reg: 0,
            m_last: 0,
            m_gt1: false,
            kbrem: 0,
            kbf: false,
            nrem: 0,
            j: 0,
            t: 0,
            pad_q: false,
            lb_q: false,
            tz_q: false,
            tl_q: false,
            nl_q: false,
            sc_full: false,
            sc_owed: 0,
            f0: Flags::default(),
            fd: vec![Flags::default(); s.tree_lat as usize + 2],
            fs: Flags::default(),
            fo: Flags::default(),
            fm: Flags::default(),
            fp: Flags::default(),
            out_valid: false,
            out_tok: 0,
            out_last: false,
            out_tl: false,
            out_nbase: 0,
            out_n0: false,
        }
    }

    /// The scaler takes a new mantissa when the beat at the root stage is a block's last beat
    /// of its first token.
    fn need_scale(&self, f: &Flags) -> bool {
        f.v && f.last && (!self.s.ring() || f.tf)
    }

    /// `go` as a function of the registers alone (the Verilog registers it, computed from the
    /// next state): hold when a vector is at the product stage and the output register is
    /// full (whether or not it is taken this cycle), or when the scaler needs a mantissa and
    /// the prefetch register is empty.
    fn go(&self) -> bool {
        let ft = self.fd.last().expect("lead stage");
        let out_full = self.out_valid && self.fp.v && self.fp.kbl;
        let scale_ok = !self.need_scale(ft) || self.sc_full;
        !out_full && scale_ok
    }

    /// The prefetch register takes a scale beat when it is empty (or emptied now) and an
    /// issued beat still needs one.
    fn scale_ready(&self, c: &Comb) -> bool {
        (!self.sc_full || c.take) && self.sc_owed != 0
    }

    fn comb(&self, i: &CtrlIn) -> Comb {
        let ring = self.s.ring();
        let ft = *self.fd.last().expect("lead stage");
        let need_scale = self.need_scale(&ft);
        let go = self.go();
        let need_w = !ring || self.tz_q;
        let pad = self.pad_q;
        let can = self.issuing && (pad || (i.act_valid && (!need_w || i.w_valid)));
        Comb {
            take: go && need_scale,
            go,
            need_w,
            pad,
            can,
            fire: go && can,
            last_beat: self.lb_q,
            t_last: !ring || self.tl_q,
            kb_last: self.kbrem <= self.s.block_k as u64,
            n_last: self.nl_q,
            ft,
        }
    }

    /// Whether beat 0 of a block whose kbrem is `kbrem` is the block's last: one beat per
    /// block, or (without pad beats) the block's data ends in the first beat.
    fn beat0_last(&self, kbrem: u64, m_gt1: bool) -> bool {
        let s = &self.s;
        s.bpb == 1 || (!(s.ring() && m_gt1) && kbrem <= s.cols as u64)
    }

    /// The issue lookahead registers against the comparisons they replace. They are read
    /// only while issuing (a bad command loads the command registers but not `j`, `t`, so
    /// they may disagree while idle).
    fn check(&self) {
        if !self.issuing {
            return;
        }
        let s = &self.s;
        let ring = s.ring();
        let (bk, cols) = (s.block_k as u64, s.cols as u64);
        // the beat's K position within its block, against what remains of K (last block)
        let kb_last = self.kbrem <= bk;
        let jpos = self.j * cols;
        let pad = ring && self.m_gt1 && kb_last && jpos >= self.kbrem;
        let last_beat = self.j == s.bpb as u64 - 1
            || (!(ring && self.m_gt1) && kb_last && jpos + cols >= self.kbrem);
        assert_eq!(self.pad_q, pad, "pad_q: {self:?}");
        assert_eq!(self.lb_q, last_beat, "lb_q: {self:?}");
        assert_eq!(self.nl_q, self.nrem <= s.rows as u64, "nl_q: {self:?}");
        if ring {
            assert_eq!(self.tz_q, self.t == 0, "tz_q: {self:?}");
            assert_eq!(self.tl_q, self.t == self.m_last, "tl_q: {self:?}");
        }
    }

    /// The output index of the vector in the output register.
    fn out_n(&self) -> u64 {
        if self.out_n0 {
            0
        } else {
            self.out_nbase
        }
    }

    /// The outputs in this cycle.
    pub fn outputs(&self, i: &CtrlIn) -> CtrlOut {
        let c = self.comb(i);
        let mut nx = self.clone();
        nx.tick(i);
        let fp = self.fd[self.fd.len() - 2];
        CtrlOut {
            busy: self.busy,
            done: self.done_q,
            err: self.err_q,
            w_ready: c.go && self.issuing && !c.pad && c.need_w && i.act_valid,
            act_ready: c.go && self.issuing && !c.pad && (!c.need_w || i.w_valid),
            scale_ready: self.scale_ready(&c),
            en_d: nx.go(),
            sc_full_d: nx.sc_full,
            w_we: c.can && !c.pad && c.need_w,
            w_addr: self.j,
            x_load: c.fire && !c.pad,
            x_zero: c.fire && c.pad,
            pv: fp.v,
            pvl: fp.v && fp.last,
            pns: self.need_scale(&fp),
            svl: self.fm.v,
            sol: self.fm.v && self.fm.kbl,
            st: self.fm.t,
            rkbf: self.fo.kbf,
            rt: self.fo.t,
            out_valid: self.out_valid,
            out_token: self.out_tok,
            out_n: self.out_n(),
            out_last: self.out_last,
        }
    }

    /// One clock edge.
    pub fn tick(&mut self, i: &CtrlIn) {
        // assert, not debug_assert: the tests run in release mode, and this is cheap
        self.check();
        let s = self.s;
        let ring = s.ring();
        let (bk, cols, rows) = (s.block_k as u64, s.cols as u64, s.rows as u64);
        let mask = |w: u32| if w >= 64 { u64::MAX } else { (1u64 << w) - 1 };
        if i.rst {
            self.busy = false;
            self.issuing = false;
            self.done_q = false;
            self.err_q = false;
            self.f0.v = false;
            self.fd.iter_mut().for_each(|f| f.v = false);
            self.fs.v = false;
            self.fo.v = false;
            self.fm.v = false;
            self.fp.v = false;
            self.out_valid = false;
            self.sc_full = false;
            self.sc_owed = 0;
            return;
        }
        let c = self.comb(i);
        let cmd_ok = i.cmd_k != 0
            && i.cmd_k <= s.max_k
            && i.cmd_n != 0
            && i.cmd_n <= s.max_n
            && i.cmd_m != 0
            && i.cmd_m <= s.token_tile as u64;
        // the command registers load on any start while idle (nothing reads them while idle,
        // so a bad command's values are harmless); what is visible needs cmd_ok
        let start_ld = i.start && !self.busy;
        let start_ok = start_ld && cmd_ok;
        let start_bad = start_ld && !cmd_ok;
        let mut nx = self.clone();
        nx.done_q = false;
        let sc_ready = self.scale_ready(&c);
        if !self.sc_full || c.take {
            nx.sc_full = sc_ready && i.scale_valid;
        }
        let demand = c.fire && c.last_beat && c.need_w;
        nx.sc_owed = self.sc_owed + demand as u64 - (sc_ready && i.scale_valid) as u64;
        if c.go {
            nx.f0 = Flags {
                v: c.fire,
                last: c.last_beat,
                tf: self.tz_q,
                tl: c.t_last,
                kbf: self.kbf,
                kbl: c.kb_last,
                nl: c.n_last,
                t: self.t,
            };
            if c.fire {
                if !c.last_beat {
                    // beat j + 1 of the same block (this one is not the last, so it exists)
                    let j1 = self.j + 1;
                    nx.j = j1;
                    nx.pad_q = ring && self.m_gt1 && j1 * cols >= self.kbrem;
                    nx.lb_q = j1 == s.bpb as u64 - 1
                        || (!(ring && self.m_gt1) && (j1 + 1) * cols >= self.kbrem);
                } else {
                    // beat 0 of the next token or block: never a pad beat
                    nx.j = 0;
                    nx.pad_q = false;
                    if !c.t_last {
                        nx.t = self.t + 1;
                        nx.tz_q = false;
                        nx.tl_q = self.t + 1 == self.m_last;
                    } else {
                        nx.t = 0;
                        nx.tz_q = true;
                        nx.tl_q = !self.m_gt1;
                        if !c.kb_last {
                            nx.kbrem = self.kbrem - bk;
                            nx.kbf = false;
                        } else {
                            nx.kbrem = self.k_reg;
                            nx.kbf = true;
                            if !c.n_last {
                                nx.nrem = self.nrem - rows;
                                // nrem > rows here: nrem - rows <= rows is nrem <= 2 rows
                                nx.nl_q = self.nrem <= 2 * rows;
                            } else {
                                nx.issuing = false;
                            }
                        }
                    }
                    nx.lb_q = self.beat0_last(nx.kbrem, self.m_gt1);
                }
            }
            for k in 0..self.fd.len() {
                nx.fd[k] = if k == 0 { self.f0 } else { self.fd[k - 1] };
            }
            nx.fs = Flags {
                v: c.ft.v && c.ft.last,
                ..c.ft
            };
            nx.fo = self.fs;
            nx.fm = self.fo;
            nx.fp = self.fm;
            if self.fp.v && self.fp.kbl {
                nx.out_valid = true;
                nx.out_tok = self.fp.t;
                nx.out_last = self.fp.tl && self.fp.nl;
                nx.out_tl = self.fp.tl;
            } else if i.out_ready {
                nx.out_valid = false;
            }
        } else if i.out_ready {
            nx.out_valid = false;
        }
        if self.out_valid && i.out_ready && self.out_tl {
            nx.out_nbase = self.out_n() + rows;
            nx.out_n0 = false;
        }
        if self.out_valid && i.out_ready && self.out_last {
            nx.busy = false;
            nx.done_q = true;
        }
        if start_ld {
            // the Verilog's register widths
            let k = i.cmd_k & mask(s.k_bits);
            let n = i.cmd_n & mask(s.n_bits);
            let m_gt1 = i.cmd_m & mask(s.tok_bits + 1) != 1;
            nx.k_reg = k;
            nx.kbrem = k;
            nx.nrem = n;
            nx.nl_q = n <= rows;
            nx.m_last = i.cmd_m.wrapping_sub(1) & mask(s.tok_bits);
            nx.m_gt1 = m_gt1;
            nx.pad_q = false;
            nx.lb_q = self.beat0_last(k, m_gt1);
            nx.tz_q = true;
            nx.tl_q = !m_gt1;
            // the beat counters and the output index restart on any start while idle: a bad
            // command leaves them at a command's beginning, which nothing reads while idle (no
            // beat is issued and no vector is valid), and keeps the range check off their
            // load enables
            nx.kbf = true;
            nx.j = 0;
            nx.t = 0;
            nx.out_n0 = true;
        }
        if start_ok {
            // visible while idle: only a good command changes them
            nx.busy = true;
            nx.issuing = true;
            nx.err_q = false;
        }
        if start_bad {
            nx.done_q = true;
            nx.err_q = true;
        }
        *self = nx;
    }
}

/// The controller block (no const generics: every width is runtime).
#[derive(LogicBlock)]
pub struct Controller {
    pub clock: Signal<In, Clock>,
    pub rst: Signal<In, Bit>,
    pub start: Signal<In, Bit>,
    pub cmd_k: Signal<In, Bits<32>>,
    pub cmd_n: Signal<In, Bits<32>>,
    pub cmd_m: Signal<In, Bits<32>>,
    pub w_valid: Signal<In, Bit>,
    pub act_valid: Signal<In, Bit>,
    pub scale_valid: Signal<In, Bit>,
    pub out_ready: Signal<In, Bit>,
    pub busy: Signal<Out, Bit>,
    pub done: Signal<Out, Bit>,
    pub err: Signal<Out, Bit>,
    pub w_ready: Signal<Out, Bit>,
    pub act_ready: Signal<Out, Bit>,
    pub scale_ready: Signal<Out, Bit>,
    /// `go` of the next cycle: the D input of every registered copy of the clock enable.
    pub en_d: Signal<Out, Bit>,
    /// The scale prefetch register's `full` flag of the next cycle (the lanes' copies).
    pub sc_full_d: Signal<Out, Bit>,
    /// Issue: the beat is written into the lanes' weight rings (registered per lane first).
    pub w_we: Signal<Out, Bit>,
    /// Ring write index (the beat in its block), bit per port (empty without a ring memory).
    pub w_addr: Vec<Signal<Out, Bit>>,
    pub x_load: Signal<Out, Bit>,
    /// Clear the activation register (a pad beat; present when token_tile > 1).
    pub x_zero: Vec<Signal<Out, Bit>>,
    /// Stage before the root: valid, valid & last beat, needs a mantissa.
    pub pv: Signal<Out, Bit>,
    pub pvl: Signal<Out, Bit>,
    pub pns: Signal<Out, Bit>,
    /// Scaler operand stage: valid (block end), last k-block, token bits.
    pub svl: Signal<Out, Bit>,
    pub sol: Signal<Out, Bit>,
    pub st: Vec<Signal<Out, Bit>>,
    /// Scaler capture stage: first k-block, token bits (the lanes' operand-stage copies
    /// load them).
    pub rkbf: Signal<Out, Bit>,
    pub rt: Vec<Signal<Out, Bit>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_token: Signal<Out, Bits<16>>,
    pub out_n: Signal<Out, Bits<32>>,
    pub out_last: Signal<Out, Bit>,
    _shape: CtrlShape,
    _m: CtrlModel,
}

impl Controller {
    pub fn new(shape: CtrlShape) -> Self {
        let opt = |on: bool| {
            (0..on as usize)
                .map(|_| Signal::default())
                .collect::<Vec<_>>()
        };
        Controller {
            clock: Default::default(),
            rst: Default::default(),
            start: Default::default(),
            cmd_k: Default::default(),
            cmd_n: Default::default(),
            cmd_m: Default::default(),
            w_valid: Default::default(),
            act_valid: Default::default(),
            scale_valid: Default::default(),
            out_ready: Default::default(),
            busy: Default::default(),
            done: Default::default(),
            err: Default::default(),
            w_ready: Default::default(),
            act_ready: Default::default(),
            scale_ready: Default::default(),
            en_d: Default::default(),
            sc_full_d: Default::default(),
            w_we: Default::default(),
            w_addr: (0..shape.addr_bits).map(|_| Default::default()).collect(),
            x_load: Default::default(),
            x_zero: opt(shape.ring()),
            pv: Default::default(),
            pvl: Default::default(),
            pns: Default::default(),
            svl: Default::default(),
            sol: Default::default(),
            st: (0..shape.tok_bits).map(|_| Default::default()).collect(),
            rkbf: Default::default(),
            rt: (0..shape.tok_bits).map(|_| Default::default()).collect(),
            out_valid: Default::default(),
            out_token: Default::default(),
            out_n: Default::default(),
            out_last: Default::default(),
            _m: CtrlModel::new(shape),
            _shape: shape,
        }
    }

    fn inputs(&self) -> CtrlIn {
        CtrlIn {
            rst: self.rst.val(),
            start: self.start.val(),
            cmd_k: self.cmd_k.val().to_u64(),
            cmd_n: self.cmd_n.val().to_u64(),
            cmd_m: self.cmd_m.val().to_u64(),
            w_valid: self.w_valid.val(),
            act_valid: self.act_valid.val(),
            scale_valid: self.scale_valid.val(),
            out_ready: self.out_ready.val(),
        }
    }
}

impl Logic for Controller {
    fn update(&mut self) {
        let i = self.inputs();
        if self.clock.pos_edge() {
            self._m.tick(&i);
        }
        let o = self._m.outputs(&i);
        self.busy.next = o.busy;
        self.done.next = o.done;
        self.err.next = o.err;
        self.w_ready.next = o.w_ready;
        self.act_ready.next = o.act_ready;
        self.scale_ready.next = o.scale_ready;
        self.en_d.next = o.en_d;
        self.sc_full_d.next = o.sc_full_d;
        self.w_we.next = o.w_we;
        drive_bits(&mut self.w_addr, o.w_addr);
        self.x_load.next = o.x_load;
        self.x_zero.iter_mut().for_each(|x| x.next = o.x_zero);
        self.pv.next = o.pv;
        self.pvl.next = o.pvl;
        self.pns.next = o.pns;
        self.svl.next = o.svl;
        self.sol.next = o.sol;
        drive_bits(&mut self.st, o.st);
        self.rkbf.next = o.rkbf;
        drive_bits(&mut self.rt, o.rt);
        self.out_valid.next = o.out_valid;
        self.out_token.next = bits::<16>(o.out_token);
        self.out_n.next = bits::<32>(o.out_n);
        self.out_last.next = o.out_last;
    }
    fn connect(&mut self) {
        self.busy.connect();
        self.done.connect();
        self.err.connect();
        self.w_ready.connect();
        self.act_ready.connect();
        self.scale_ready.connect();
        self.en_d.connect();
        self.sc_full_d.connect();
        self.w_we.connect();
        self.w_addr.iter_mut().for_each(|x| x.connect());
        self.x_load.connect();
        self.x_zero.iter_mut().for_each(|x| x.connect());
        self.pv.connect();
        self.pvl.connect();
        self.pns.connect();
        self.svl.connect();
        self.sol.connect();
        self.st.iter_mut().for_each(|x| x.connect());
        self.rkbf.connect();
        self.rt.iter_mut().for_each(|x| x.connect());
        self.out_valid.connect();
        self.out_token.connect();
        self.out_n.connect();
        self.out_last.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(ctrl_verilog(&self._shape))
    }
}

/// A boolean over the bits of a signal, built to compare it with a constant (see [`le_const`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BitExpr {
    True,
    /// Bits `[hi:lo]` all zero.
    Zero(u32, u32),
    /// Bits `[hi:lo]` not all one.
    NotAllOnes(u32, u32),
    And(Box<BitExpr>, Box<BitExpr>),
    Or(Box<BitExpr>, Box<BitExpr>),
}

impl BitExpr {
    /// Evaluates the expression on `x`.
    pub fn eval(&self, x: u64) -> bool {
        let field = |hi: u32, lo: u32| (x >> lo) & ((1u64 << (hi - lo + 1)) - 1);
        match self {
            BitExpr::True => true,
            BitExpr::Zero(hi, lo) => field(*hi, *lo) == 0,
            BitExpr::NotAllOnes(hi, lo) => field(*hi, *lo) != (1u64 << (hi - lo + 1)) - 1,
            BitExpr::And(a, b) => a.eval(x) && b.eval(x),
            BitExpr::Or(a, b) => a.eval(x) || b.eval(x),
        }
    }
    /// Verilog text on the `width`-bit signal `sig`.
    pub fn verilog(&self, sig: &str, width: u32) -> String {
        let field = |hi: u32, lo: u32| {
            if width == 1 {
                sig.to_string()
            } else if hi == lo {
                format!("{sig}[{hi}]")
            } else {
                format!("{sig}[{hi}:{lo}]")
            }
        };
        match self {
            BitExpr::True => "1'b1".into(),
            BitExpr::Zero(hi, lo) => format!("~(|{})", field(*hi, *lo)),
            BitExpr::NotAllOnes(hi, lo) => format!("~(&{})", field(*hi, *lo)),
            BitExpr::And(a, b) => {
                format!("({} & {})", a.verilog(sig, width), b.verilog(sig, width))
            }
            BitExpr::Or(a, b) => format!("({} | {})", a.verilog(sig, width), b.verilog(sig, width)),
        }
    }
}

/// `x <= c` for a `width`-bit unsigned `x` and a constant `c`, as and/or of bit-field tests
/// (yosys turns a comparison with a constant into a full carry chain and multiplexers; this
/// is a handful of LUTs).
pub fn le_const(width: u32, c: u64) -> BitExpr {
    assert!((1..=64).contains(&width));
    if width == 64 || c >= (1u64 << width) - 1 {
        return BitExpr::True;
    }
    let b = 64 - c.leading_zeros(); // bits of c; x[width-1:b] must be zero
                                    // lexicographic comparison from the LSB up: runs of equal bits of c
    let mut e = BitExpr::True;
    let mut i = 0;
    while i < b {
        let bit = (c >> i) & 1;
        let mut j = i;
        while j + 1 < b && (c >> (j + 1)) & 1 == bit {
            j += 1;
        }
        e = if bit == 1 {
            // x[j:i] below all-ones: true; equal: decided below
            match e {
                BitExpr::True => BitExpr::True,
                e => BitExpr::Or(Box::new(BitExpr::NotAllOnes(j, i)), Box::new(e)),
            }
        } else {
            // x[j:i] must be zero
            match e {
                BitExpr::True => BitExpr::Zero(j, i),
                e => BitExpr::And(Box::new(BitExpr::Zero(j, i)), Box::new(e)),
            }
        };
        i = j + 1;
    }
    if b < width {
        let hi = BitExpr::Zero(width - 1, b);
        match e {
            BitExpr::True => hi,
            e => BitExpr::And(Box::new(hi), Box::new(e)),
        }
    } else {
        e
    }
}

/// The controller's Verilog body.
pub fn ctrl_verilog(s: &CtrlShape) -> String {
    let ring = s.ring();
    let (kw, nw, jw, tw) = (s.k_bits, s.n_bits, s.j_bits, s.tok_bits);
    let cb = CMD_BITS;
    let bk = s.block_k as u64;
    let mut t = Text::default();
    // flag sets per stage: (name, width)
    let f0: Vec<(&str, u32)> = {
        let mut v = vec![("v", 1), ("last", 1), ("kbf", 1), ("kbl", 1), ("nl", 1)];
        if ring {
            v.push(("tf", 1));
            v.push(("tl", 1));
            v.push(("t", tw));
        }
        v
    };
    t.comment("command registers and loop counters");
    for (n, w) in [
        ("busy_q", 1),
        ("issuing", 1),
        ("done_q", 1),
        ("err_q", 1),
        ("k_sub", kw),
        ("kb_sub", kw),
        ("kbf_q", 1),
        ("nrem", nw),
        ("j", jw),
        ("out_nbase", nw),
    ] {
        t.line(decl("reg", w, n));
    }
    if ring {
        t.line(decl("reg", tw, "m_last"));
        t.line(decl("reg", 1, "m_gt1"));
        t.line(decl("reg", tw, "t"));
    }
    t.comment(
        "go (registered, computed from the next state) and the scale prefetch register's full flag",
    );
    t.line(decl("reg", 1, "en_q"));
    t.line(decl("reg", 1, "sc_full_q"));
    // at most one demand per stage between issue and the root, plus the one being taken
    let ow = 32 - (s.tree_lat + 6).leading_zeros();
    t.comment("mantissa vectors owed to the prefetch register: issued block ends (first token) not yet matched by an accepted scale beat");
    t.line(decl("reg", ow, "sc_owed"));
    // Single-bit copies of what go's next value reads, so that it is two LUT levels from its
    // registers in the RTL (yosys' abc9 maps it to three or four: docs/hdl-controller.md);
    // each is registered with what it stands for, under the same enables:
    //   owed_nz = (sc_owed != 0), ns_p / ns_t = a mantissa is needed by the beat in the stage
    //   before the root / at the root, vk_o / vk_m / vk_p = a tile's vector (vl & kbl) in the
    //   operand / multiplier / product stage
    t.comment("single-bit copies for go's next value: owed_nz = (sc_owed != 0), ns_p/ns_t = mantissa needed before/at the root stage, vk_o/vk_m/vk_p = a tile's vector (vl & kbl) in the operand/multiplier/product stage");
    for n in ["owed_nz", "ns_p", "ns_t", "vk_o", "vk_m", "vk_p"] {
        t.line(decl("reg", 1, n));
    }
    // Block-end lookahead, registered whenever kbrem is (the same values the comparisons on
    // kbrem would give, without a carry chain in front of the issue logic):
    //   kbl_q     = kbrem <= block.k                    (the tile's last k-block)
    //   more_q[j] = kbrem > (j+1)·cols, j < bpb−1       (beat j+1 of the last block has data)
    // Without a ring only j >= 1 is read (beat 0's lookahead is taken from the loaded value
    // straight into lb_q): more_q holds bits mlo.. of that vector.
    let bpb = s.block_k / s.cols;
    let mlo = if ring { 0 } else { 1 };
    let mw = (bpb - 1).saturating_sub(mlo);
    t.comment(format!("block-end lookahead: kbl_q = (kbrem <= block.k), more_q[j] = (kbrem > (j+{})*cols); registered with kbrem", mlo + 1));
    t.line(decl("reg", 1, "kbl_q"));
    if mw > 0 {
        t.line(decl("reg", mw, "more_q"));
    }
    // kbrem itself is not kept: kb_sub = kbrem − block.k is (the next block's kbrem, whose
    // lookahead is then comparisons on a register), and k_sub = K − block.k for the reload
    // at a tile's end, whose lookahead lk_* is loaded with the command's
    t.comment("kbrem is kept as kb_sub = kbrem - block.k (K as k_sub = K - block.k); lk_kbl, lk_more, lk_lb = the lookahead of kbrem = K (a tile's first block), loaded at the start");
    t.line(decl("reg", 1, "lk_kbl"));
    if mw > 0 {
        t.line(decl("reg", mw, "lk_more"));
    }
    t.line(decl("reg", 1, "lk_lb"));
    // the part of a la_*_more vector (bpb − 1 bits) that more_q keeps
    let more_part = |name: &str| {
        if mw == bpb - 1 {
            name.to_string()
        } else {
            crate::vlog::slice(name, mlo, mw)
        }
    };
    // Issue lookahead, registered with the counters it depends on (j, t, kbrem, nrem), so
    // that no comparison lies between the registers and the issue logic. While issuing each
    // equals the comparison it replaces (the model checks it every cycle):
    //   lb_q  = the beat is its block's last: j == bpb−1, or (M = 1) the last beat with data
    //   nl_q  = nrem <= rows                               (the last N tile)
    //   pad_q = m_gt1 & kb_last & (j·cols >= kbrem)        (a pad beat; ring, bpb > 1)
    //   tz_q  = t == 0, tl_q = t == m_last                 (ring)
    t.comment("issue lookahead: lb_q = last beat of the block, nl_q = (nrem <= rows); with a ring pad_q = pad beat, tz_q = (t == 0), tl_q = (t == m_last)");
    t.line(decl("reg", 1, "lb_q"));
    t.line(decl("reg", 1, "nl_q"));
    if ring {
        if bpb > 1 {
            t.line(decl("reg", 1, "pad_q"));
        }
        t.line(decl("reg", 1, "tz_q"));
        t.line(decl("reg", 1, "tl_q"));
    }
    t.comment(format!(
        "beat flags: issue (0), ring write (r), lead registers (l), {} tree stage(s), scaler capture (S), operands (O), multiplier (M), product (P)",
        s.tree_lat
    ));
    let stage_names: Vec<String> = ["0".to_string(), "r".to_string(), "l".to_string()]
        .into_iter()
        .chain((1..=s.tree_lat).map(|i| format!("d{i}")))
        .collect();
    // tf is read up to the stage before ps (ns_p is registered from it)
    let nst = stage_names.len();
    let has = |k: usize, n: &str| n != "tf" || k + 3 <= nst;
    for (k, st) in stage_names.iter().enumerate() {
        for (n, w) in f0.iter().filter(|(n, _)| has(k, n)) {
            t.line(decl("reg", *w, &format!("{n}{st}")));
        }
    }
    let ts = stage_names.last().expect("stage 0").clone();
    let ps = stage_names[nst - 2].clone();
    let smflags: Vec<(&str, u32)> = {
        let mut v = vec![("vl", 1), ("kbf", 1), ("kbl", 1), ("nl", 1)];
        if ring {
            v.push(("tl", 1));
            v.push(("t", tw));
        }
        v
    };
    // kbl is not kept past the capture stage (vk_o, vk_m, vk_p stand for vl & kbl), kbf not
    // past the operand stage (the lanes' multiply-stage copies load it from there, rkbf, for
    // the accumulator's read-ahead), vl not past the multiply stage (the lanes' copies load
    // their accumulator write enable from it, svl)
    let without = |fl: &[(&'static str, u32)], x: &str| -> Vec<(&'static str, u32)> {
        fl.iter().copied().filter(|(n, _)| *n != x).collect()
    };
    let oflags = without(&smflags, "kbl");
    let mflags = without(&oflags, "kbf");
    let pflags = without(&mflags, "vl");
    for (n, w) in &smflags {
        t.line(decl("reg", *w, &format!("{n}S")));
    }
    for (st, fl) in [("O", &oflags), ("M", &mflags), ("P", &pflags)] {
        for (n, w) in fl {
            t.line(decl("reg", *w, &format!("{n}{st}")));
        }
    }
    t.comment("output register (the lanes hold the data); out_nv is the vector's output index: out_nbase, or 0 when out_n0_q (set by a good start, cleared when the first tile's last vector is taken)");
    t.line(decl("reg", 1, "out_n0_q"));
    t.line(decl("reg", 1, "out_valid_q"));
    t.line(decl("reg", 1, "out_last_q"));
    if ring {
        t.line(decl("reg", 1, "out_tl_q"));
        t.line(decl("reg", tw, "out_tok_q"));
    }
    t.comment("command check: 1 <= K <= max_k, 1 <= N <= max_n, 1 <= M <= token_tile");
    let check = |sig: &str, max: u64| format!("(|{sig}) & {}", le_const(cb, max).verilog(sig, cb));
    t.line(wire_eq(
        1,
        "cmd_ok",
        &format!(
            "{} & {} & {}",
            check("cmd_k", s.max_k),
            check("cmd_n", s.max_n),
            check("cmd_m", s.token_tile as u64)
        ),
    ));
    t.comment("a start while idle loads the command registers, the counters and the lookahead whether or not the command is good (nothing reads them while idle); what is visible while idle (busy, done, err, issuing) waits for cmd_ok");
    t.line(wire_eq(1, "start_ld", "start & ~busy_q"));
    t.line(wire_eq(1, "start_ok", "start_ld & cmd_ok"));
    t.line(wire_eq(1, "start_bad", "start_ld & ~cmd_ok"));
    t.line(wire_eq(
        nw,
        "out_nv",
        &format!("out_nbase & {{{nw}{{~out_n0_q}}}}"),
    ));
    t.line(wire_eq(
        nw,
        "on_r",
        &format!("out_nv + {}", lit(nw, s.rows as u64)),
    ));
    t.comment("go: the clock enable of every datapath register, a register (en_q; the core keeps a copy per lane)");
    let ns = |st: &str| {
        if ring {
            format!("v{st} & last{st} & tf{st}")
        } else {
            format!("v{st} & last{st}")
        }
    };
    let pps = stage_names[nst - 3].clone();
    t.line(wire_eq(1, "need_scale", "ns_t"));
    t.line(wire_eq(1, "pns_w", "ns_p"));
    t.line(wire_eq(1, "go", "en_q"));
    t.line(wire_eq(1, "take", "go & need_scale"));
    t.line(wire_eq(1, "sc_ready", "(~sc_full_q | take) & owed_nz"));
    t.line(wire_eq(1, "sc_acc", "sc_ready & scale_valid"));
    t.comment("next state of the registers go depends on: output register full, a vector at the multiplier stage, a mantissa needed at the root, the prefetch register full");
    t.line(wire_eq(
        1,
        "sc_full_n",
        "~rst & (sc_acc | (sc_full_q & ~take))",
    ));
    t.line(wire_eq(
        1,
        "ov_n",
        "~rst & ((go & vk_p) | (out_valid_q & ~out_ready))",
    ));
    t.line(wire_eq(1, "ld_n", "~rst & (go ? vk_m : vk_p)"));
    t.line(wire_eq(1, "ns_n", "~rst & (go ? pns_w : need_scale)"));
    t.line(wire_eq(1, "en_n", "~(ov_n & ld_n) & ~(ns_n & ~sc_full_n)"));
    t.open(format!(
        "{}always @(posedge clock) begin",
        if s.keep { "(* keep *) " } else { "" }
    ));
    t.line("en_q <= en_n;");
    t.line("sc_full_q <= sc_full_n;");
    t.close("end");
    t.comment(format!(
        "issue: kbrem = K - (first K index of the block); in the last block (kbrem <= {bk}) the beat at jpos = j * {} is a pad beat from jpos >= kbrem on, and ends a partial block (M = 1) when jpos + {} >= kbrem; nrem = N - (first output of the tile); the lookahead registers hold these tests for the current beat",
        s.cols, s.cols
    ));
    t.line(wire_eq(1, "kb_last", "kbl_q"));
    // In the last block, beat j+1 has data when more_q[j], and beat j+1 ends the data when
    // ~more_q[j+1] (kbrem <= (j+1)·cols implies kbrem <= block.k: kb_last adds nothing).
    // Without pad beats (~m_gt1) the block ends with its data.
    let nopad = |m: &str| {
        if ring {
            format!("~{m} & ")
        } else {
            String::new()
        }
    };
    // lb_q for beat 0 of a block whose more_q is `more`
    let lb0 = |more: &str, m: &str| {
        if bpb == 1 {
            "1'b1".to_string()
        } else {
            format!("{}~{}", nopad(m), bit(more, bpb - 1, 0))
        }
    };
    if ring {
        t.line(wire_eq(
            1,
            "mg_cmd",
            &format!("cmd_m[{tw}:0] != {}", lit(tw + 1, 1)),
        ));
    }
    // the lookahead of each value kbrem is loaded with
    let look = |t: &mut Text, name: &str, val: &str, m: &str| {
        t.line(wire_eq(kw, &format!("{name}_v"), val));
        t.line(wire_eq(
            1,
            &format!("{name}_kbl"),
            &le_const(kw, bk).verilog(&format!("{name}_v"), kw),
        ));
        if bpb > 1 {
            let more: Vec<String> = (0..bpb - 1)
                .map(|j| {
                    format!(
                        "~{}",
                        le_const(kw, (j as u64 + 1) * s.cols as u64)
                            .verilog(&format!("{name}_v"), kw)
                    )
                })
                .collect();
            t.line(wire_eq(bpb - 1, &format!("{name}_more"), &pack(&more)));
        }
        t.line(wire_eq(
            1,
            &format!("{name}_lb"),
            &lb0(&format!("{name}_more"), m),
        ));
    };
    look(&mut t, "la_sub", "kb_sub", "m_gt1");
    look(
        &mut t,
        "la_cmd",
        &crate::vlog::slice("cmd_k", 0, kw),
        "mg_cmd",
    );
    t.line(wire_eq(
        kw,
        "la_cmd_sub",
        &format!("la_cmd_v - {}", lit(kw, bk)),
    ));
    // lb_q for beat j+1 (beat j is not the block's last)
    if bpb > 2 {
        t.line(wire_eq(
            bpb,
            "lb_nx",
            &format!(
                "{{2'b11, {}~{}}}",
                if ring {
                    format!("{{{}{{~m_gt1}}}} & ", bpb - 2)
                } else {
                    String::new()
                },
                if mw == bpb - 2 {
                    "more_q".to_string()
                } else {
                    crate::vlog::slice("more_q", 1, bpb - 2)
                }
            ),
        ));
        t.line(wire_eq(1, "lb_inc", "lb_nx[j]"));
    } else {
        t.line(wire_eq(1, "lb_inc", "1'b1"));
    }
    t.line(wire_eq(1, "last_beat", "lb_q"));
    if ring {
        t.line(wire_eq(1, "t_zero", "tz_q"));
        t.line(wire_eq(1, "need_w", "t_zero"));
        t.line(wire_eq(1, "t_last", "tl_q"));
        t.line(wire_eq(tw, "t_inc", &format!("t + {}", lit(tw, 1))));
        t.line(wire_eq(1, "tl_inc", "t_inc == m_last"));
        // beat 0 of the block's next token
        t.line(wire_eq(1, "lb_zero", &lb0("more_q", "m_gt1")));
        if bpb > 1 {
            // pad_q for beat j+1: it has no data
            t.line(wire_eq(bpb, "has_nx", "{1'b1, more_q}"));
            t.line(wire_eq(1, "pad_inc", "m_gt1 & ~has_nx[j]"));
            t.line(wire_eq(1, "pad", "pad_q"));
        } else {
            t.line(wire_eq(1, "pad", "1'b0"));
        }
        t.line(wire_eq(
            1,
            "can",
            "issuing & (pad | (act_valid & (~need_w | w_valid)))",
        ));
    } else {
        t.line(wire_eq(1, "can", "issuing & act_valid & w_valid"));
    }
    // the last N tile: nrem <= rows; after a tile that is not the last (nrem > rows),
    // nrem - rows <= rows is nrem <= 2·rows
    t.line(wire_eq(1, "n_last", "nl_q"));
    t.line(wire_eq(
        1,
        "nl_sub",
        &le_const(nw, 2 * s.rows as u64).verilog("nrem", nw),
    ));
    t.line(wire_eq(nw, "la_n_v", &crate::vlog::slice("cmd_n", 0, nw)));
    t.line(wire_eq(
        1,
        "la_n_nl",
        &le_const(nw, s.rows as u64).verilog("la_n_v", nw),
    ));
    t.line(wire_eq(1, "fire", "go & can"));
    if ring {
        t.line(wire_eq(1, "sc_demand", "fire & last_beat & t_zero"));
    } else {
        t.line(wire_eq(1, "sc_demand", "fire & last_beat"));
    }
    t.open("always @(posedge clock) begin");
    t.open("if (rst) begin");
    t.line(format!("sc_owed <= {};", lit(ow, 0)));
    t.line("owed_nz <= 1'b0;");
    t.close("end else begin");
    t.indent_more();
    t.line(format!(
        "sc_owed <= sc_owed + {{{}, sc_demand}} - {{{}, sc_acc}};",
        lit(ow - 1, 0),
        lit(ow - 1, 0)
    ));
    // nonzero after the update: a demand, or more than one owed, or one owed and not taken
    // (sc_acc needs owed_nz)
    t.line(format!(
        "owed_nz <= sc_demand | (|{}) | (sc_owed[0] & ~sc_acc);",
        crate::vlog::slice("sc_owed", 1, ow - 1)
    ));
    t.close("end");
    t.close("end");
    t.open("always @(posedge clock) begin");
    t.open("if (rst) begin");
    let mut resets = vec![
        "busy_q",
        "issuing",
        "done_q",
        "err_q",
        "vlS",
        "vlO",
        "vlM",
        "ns_p",
        "ns_t",
        "vk_o",
        "vk_m",
        "vk_p",
        "out_valid_q",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    for st in &stage_names {
        resets.push(format!("v{st}"));
    }
    for r in &resets {
        t.line(format!("{r} <= 1'b0;"));
    }
    t.close("end else begin");
    t.indent_more();
    t.line("done_q <= 1'b0;");
    t.open("if (go) begin");
    t.line("v0 <= fire;");
    t.line("last0 <= last_beat;");
    t.line("kbf0 <= kbf_q;");
    t.line("kbl0 <= kb_last;");
    t.line("nl0 <= n_last;");
    if ring {
        t.line("tf0 <= t_zero;");
        t.line("tl0 <= t_last;");
        t.line("t0 <= t;");
    }
    t.open("if (fire) begin");
    t.open("if (~last_beat) begin");
    t.line(format!("j <= j + {};", lit(jw, 1)));
    t.line("lb_q <= lb_inc;");
    if ring && bpb > 1 {
        t.line("pad_q <= pad_inc;");
    }
    t.close("end else begin");
    t.indent_more();
    t.line(format!("j <= {};", lit(jw, 0)));
    if ring && bpb > 1 {
        t.line("pad_q <= 1'b0;");
    }
    let tile_end = |t: &mut Text| {
        t.open("if (~kb_last) begin");
        t.line(format!("kb_sub <= kb_sub - {};", lit(kw, bk)));
        t.line("kbl_q <= la_sub_kbl;");
        if mw > 0 {
            t.line(format!("more_q <= {};", more_part("la_sub_more")));
        }
        t.line("lb_q <= la_sub_lb;");
        t.line("kbf_q <= 1'b0;");
        t.close("end else begin");
        t.indent_more();
        t.line("kb_sub <= k_sub;");
        t.line("kbl_q <= lk_kbl;");
        if mw > 0 {
            t.line("more_q <= lk_more;");
        }
        t.line("lb_q <= lk_lb;");
        t.line("kbf_q <= 1'b1;");
        t.open("if (~n_last) begin");
        t.line(format!("nrem <= nrem - {};", lit(nw, s.rows as u64)));
        t.line("nl_q <= nl_sub;");
        t.close("end else issuing <= 1'b0;");
        t.close("end");
    };
    if ring {
        t.open("if (~t_last) begin");
        t.line("t <= t_inc;");
        t.line("tz_q <= 1'b0;");
        t.line("tl_q <= tl_inc;");
        t.line("lb_q <= lb_zero;");
        t.close("end else begin");
        t.indent_more();
        t.line(format!("t <= {};", lit(tw, 0)));
        t.line("tz_q <= 1'b1;");
        t.line("tl_q <= ~m_gt1;");
        tile_end(&mut t);
        t.close("end");
    } else {
        tile_end(&mut t);
    }
    t.close("end");
    t.close("end");
    // delay line
    for (k, st) in stage_names.iter().enumerate().skip(1) {
        let prev = &stage_names[k - 1];
        for (n, _) in f0.iter().filter(|(n, _)| has(k, n)) {
            t.line(format!("{n}{st} <= {n}{prev};"));
        }
    }
    t.line(format!("vlS <= v{ts} & last{ts};"));
    t.line(format!("ns_p <= {};", ns(&pps)));
    t.line("ns_t <= ns_p;");
    t.line("vk_o <= vlS & kblS;");
    t.line("vk_m <= vk_o;");
    t.line("vk_p <= vk_m;");
    for n in ["kbf", "kbl", "nl"] {
        t.line(format!("{n}S <= {n}{ts};"));
    }
    if ring {
        t.line(format!("tlS <= tl{ts};"));
        t.line(format!("tS <= t{ts};"));
    }
    for (n, _) in &oflags {
        t.line(format!("{n}O <= {n}S;"));
    }
    for (n, _) in &mflags {
        t.line(format!("{n}M <= {n}O;"));
    }
    for (n, _) in &pflags {
        t.line(format!("{n}P <= {n}M;"));
    }
    t.open("if (vk_p) begin");
    t.line("out_valid_q <= 1'b1;");
    if ring {
        t.line("out_tok_q <= tP;");
        t.line("out_tl_q <= tlP;");
        t.line("out_last_q <= tlP & nlP;");
    } else {
        t.line("out_last_q <= nlP;");
    }
    t.close("end else if (out_ready) out_valid_q <= 1'b0;");
    t.close("end else if (out_ready) out_valid_q <= 1'b0;");
    t.comment("the tile's last vector taken: the next vector is the next tile's");
    if ring {
        t.open("if (out_valid_q & out_ready & out_tl_q) begin");
    } else {
        t.open("if (out_valid_q & out_ready) begin");
    }
    t.line("out_nbase <= on_r;");
    t.line("out_n0_q <= 1'b0;");
    t.close("end");
    t.open("if (out_valid_q & out_ready & out_last_q) begin");
    t.line("busy_q <= 1'b0;");
    t.line("done_q <= 1'b1;");
    t.close("end");
    t.comment("command registers and lookahead (for beat 0, t = 0 and the first tile): on any start while idle");
    t.open("if (start_ld) begin");
    t.line("k_sub <= la_cmd_sub;");
    t.line("kb_sub <= la_cmd_sub;");
    t.line("kbl_q <= la_cmd_kbl;");
    t.line("lk_kbl <= la_cmd_kbl;");
    if mw > 0 {
        t.line(format!("more_q <= {};", more_part("la_cmd_more")));
        t.line(format!("lk_more <= {};", more_part("la_cmd_more")));
    }
    t.line("lb_q <= la_cmd_lb;");
    t.line("lk_lb <= la_cmd_lb;");
    t.line("nrem <= la_n_v;");
    t.line("nl_q <= la_n_nl;");
    if ring {
        t.line(format!(
            "m_last <= {} - {};",
            crate::vlog::slice("cmd_m", 0, tw),
            lit(tw, 1)
        ));
        t.line("m_gt1 <= mg_cmd;");
        if bpb > 1 {
            t.line("pad_q <= 1'b0;");
        }
        t.line("tz_q <= 1'b1;");
        t.line("tl_q <= ~mg_cmd;");
        t.line(format!("t <= {};", lit(tw, 0)));
    }
    t.line("kbf_q <= 1'b1;");
    t.line(format!("j <= {};", lit(jw, 0)));
    t.line("out_n0_q <= 1'b1;");
    t.close("end");
    t.comment("visible while idle (busy, err, issuing): only on a good command");
    t.open("if (start_ok) begin");
    t.line("busy_q <= 1'b1;");
    t.line("issuing <= 1'b1;");
    t.line("err_q <= 1'b0;");
    t.close("end");
    t.open("if (start_bad) begin");
    t.line("done_q <= 1'b1;");
    t.line("err_q <= 1'b1;");
    t.close("end");
    t.close("end");
    t.close("end");
    t.comment("outputs");
    t.open("always @(*) begin");
    t.line("busy = busy_q;");
    t.line("done = done_q;");
    t.line("err = err_q;");
    t.line("en_d = en_n;");
    t.line("sc_full_d = sc_full_n;");
    if s.addr_bits > 0 {
        assert_eq!(s.addr_bits, jw);
    }
    for b in 0..s.addr_bits {
        t.line(format!("w_addr${b} = {};", bit("j", jw, b)));
    }
    if ring {
        t.line("w_we = can & ~pad & need_w;");
        t.line("x_zero$0 = fire & pad;");
        t.line("x_load = fire & ~pad;");
        t.line("w_ready = go & issuing & ~pad & need_w & act_valid;");
        t.line("act_ready = go & issuing & ~pad & (~need_w | w_valid);");
    } else {
        t.line("w_we = can;");
        t.line("x_load = fire;");
        t.line("w_ready = go & issuing & act_valid;");
        t.line("act_ready = go & issuing & w_valid;");
    }
    t.line("scale_ready = sc_ready;");
    t.line(format!("pv = v{ps};"));
    t.line(format!("pvl = v{ps} & last{ps};"));
    t.line("pns = pns_w;");
    t.line("svl = vlM;");
    t.line("sol = vk_m;");
    for b in 0..tw {
        t.line(format!("st${b} = {};", bit("tM", tw, b)));
    }
    t.line("rkbf = kbfO;");
    for b in 0..tw {
        t.line(format!("rt${b} = {};", bit("tO", tw, b)));
    }
    t.line("out_valid = out_valid_q;");
    if ring {
        t.line(format!(
            "out_token = {};",
            zext("out_tok_q", tw, TOKEN_FIELD_BITS)
        ));
    } else {
        t.line(format!("out_token = {};", lit(TOKEN_FIELD_BITS, 0)));
    }
    t.line(format!("out_n = {};", zext("out_nv", nw, CMD_BITS)));
    t.line("out_last = out_last_q;");
    t.close("end");
    let _ = OUT_WORD_BITS;
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `le_const` against `<=` on every value of small widths and on the boundaries of wide
    /// ones (the command checks' constants among them).
    #[test]
    fn le_const_is_exact() {
        for width in 1..=8u32 {
            for c in 0..(1u64 << width) + 2 {
                let e = le_const(width, c);
                for x in 0..(1u64 << width) {
                    assert_eq!(e.eval(x), x <= c, "width {width} c {c} x {x}");
                }
            }
        }
        for c in [
            1u64,
            16,
            256,
            4096,
            32768,
            32767,
            262144,
            1 << 20,
            123_457,
            (1 << 32) - 2,
        ] {
            let e = le_const(32, c);
            for x in [
                0u64,
                1,
                c - 1,
                c,
                c + 1,
                c + 2,
                2 * c,
                1 << 31,
                (1 << 32) - 1,
            ] {
                let x = x & 0xffff_ffff;
                assert_eq!(e.eval(x), x <= c, "c {c} x {x}");
            }
        }
        assert_eq!(
            le_const(32, 32768).verilog("k", 32),
            "(~(|k[31:16]) & (~(&k[15]) | ~(|k[14:0])))"
        );
    }
}
