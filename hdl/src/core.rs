//! The core: the controller, the shared activation register and `rows` lanes. Its ports are
//! per element (`w$i`, `act$c`, `scale$r`, `out$r`); the clean wrapper ([`crate::emit`])
//! packs them into buses.

use crate::ctrl::{Controller, CtrlShape};
use crate::lane::{Lane, LaneShape};
use crate::params::Params;
use crate::sig::{drive_bits, read_bits};
use crate::vlog::{bit, decl, pack, slice, wire_eq, zeros, Text};
use rust_hdl::prelude::*;

/// The core block: `A` activation bits, `MB` mantissa bits.
#[derive(LogicBlock)]
pub struct Core<const A: usize, const MB: usize> {
    pub clock: Signal<In, Clock>,
    pub rst: Signal<In, Bit>,
    pub start: Signal<In, Bit>,
    pub cmd_k: Signal<In, Bits<32>>,
    pub cmd_n: Signal<In, Bits<32>>,
    pub cmd_m: Signal<In, Bits<32>>,
    pub busy: Signal<Out, Bit>,
    pub done: Signal<Out, Bit>,
    pub err: Signal<Out, Bit>,
    pub w_valid: Signal<In, Bit>,
    pub w_ready: Signal<Out, Bit>,
    /// Trit codes, lane-major: `w[r * cols + c]`.
    pub w: Vec<Signal<In, Bits<2>>>,
    pub act_valid: Signal<In, Bit>,
    pub act_ready: Signal<Out, Bit>,
    pub act: Vec<Signal<In, Bits<A>>>,
    pub scale_valid: Signal<In, Bit>,
    pub scale_ready: Signal<Out, Bit>,
    pub scale: Vec<Signal<In, Bits<MB>>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    pub out: Vec<Signal<Out, Bits<64>>>,
    pub out_token: Signal<Out, Bits<16>>,
    pub out_n: Signal<Out, Bits<32>>,
    pub out_last: Signal<Out, Bit>,
    pub ctrl: Controller,
    pub lanes: Vec<Lane<A, MB>>,
    _p: Params,
    _x_reg: Vec<Bits<A>>,
    /// The activation register one stage later (`x_2`).
    _xd: Vec<Bits<A>>,
    /// The follower columns' activations one more stage later (`x_f`).
    _x2: Vec<Bits<A>>,
    /// The lanes' registered copies of the controls (one set: every copy holds the same).
    _lc: LaneCopies,
    /// Per lane: the issued beat's trit codes (`lL_wq`), lane-major like `w`.
    _wq: Vec<Bits<2>>,
    /// Per lane: the scale prefetch register (`lL_scn`).
    _scn: Vec<Bits<MB>>,
}

/// The registered copies of the lane-wide controls that the Verilog keeps once per lane.
#[derive(Debug, Clone, Copy, Default)]
struct LaneCopies {
    en: bool,
    scf: bool,
    wwe: bool,
    wa: u64,
    ra: u64,
    vt: bool,
    vlt: bool,
    nst: bool,
    /// Product-stage flags: accumulator write, output load, token (the write address).
    vlp: bool,
    olp: bool,
    tp: u64,
    /// Multiplier-stage first-k-block flag and token: the scaler's read-ahead address.
    kbfm: bool,
    tm: u64,
}

impl<const A: usize, const MB: usize> Core<A, MB> {
    pub fn new(p: &Params) -> Self {
        assert_eq!(p.act_bits as usize, A);
        assert_eq!(p.mant_bits as usize, MB);
        let (r, c) = (p.rows as usize, p.cols as usize);
        let lane = LaneShape::of(p);
        Core {
            clock: Default::default(),
            rst: Default::default(),
            start: Default::default(),
            cmd_k: Default::default(),
            cmd_n: Default::default(),
            cmd_m: Default::default(),
            busy: Default::default(),
            done: Default::default(),
            err: Default::default(),
            w_valid: Default::default(),
            w_ready: Default::default(),
            w: sigs(r * c),
            act_valid: Default::default(),
            act_ready: Default::default(),
            act: sigs(c),
            scale_valid: Default::default(),
            scale_ready: Default::default(),
            scale: sigs(r),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out: sigs(r),
            out_token: Default::default(),
            out_n: Default::default(),
            out_last: Default::default(),
            ctrl: Controller::new(CtrlShape::of(p)),
            lanes: (0..r).map(|_| Lane::new(lane.clone())).collect(),
            _x2: vec![Bits::default(); lane.followers()],
            _p: p.clone(),
            _x_reg: vec![Bits::default(); c],
            _xd: vec![Bits::default(); c],
            _lc: LaneCopies::default(),
            _wq: vec![Bits::default(); r * c],
            _scn: vec![Bits::default(); r],
        }
    }
}

fn sigs<D: Direction, T: Synth>(n: usize) -> Vec<Signal<D, T>> {
    (0..n).map(|_| Signal::default()).collect()
}

/// Controller inputs driven from core ports, and core outputs driven by the controller.
const CTRL_IN: [&str; 10] = [
    "clock",
    "rst",
    "start",
    "cmd_k",
    "cmd_n",
    "cmd_m",
    "w_valid",
    "act_valid",
    "scale_valid",
    "out_ready",
];
const CTRL_OUT: [&str; 10] = [
    "busy",
    "done",
    "err",
    "w_ready",
    "act_ready",
    "scale_ready",
    "out_valid",
    "out_token",
    "out_n",
    "out_last",
];
/// The core's Verilog body.
pub fn core_verilog(p: &Params) -> String {
    let (r, c, a) = (p.rows, p.cols, p.act_bits);
    let xw = c * a;
    let pairs = p.pairs();
    let followers: Vec<usize> = pairs.iter().filter_map(|&(_, b)| b).collect();
    let ab = p.ring_addr_bits();
    // the per-lane control copies stay apart only when asked (HdlOptions::lane_copies)
    let keep = if p.options.lane_copies {
        "(* keep *) "
    } else {
        ""
    };
    let tw = p.tok_bits;
    let mb = p.mant_bits;
    let mut t = Text::default();
    t.comment("the activation register, shared by all lanes (loaded when a beat is issued, cleared for a pad beat)");
    let acts: Vec<String> = (0..c).map(|i| format!("act${i}")).collect();
    t.line(wire_eq(xw, "act_in", &pack(&acts)));
    t.line(decl("reg", xw, "x_reg"));
    t.open("always @(posedge clock) begin");
    if p.ring {
        t.line(format!("if (ctrl$x_zero$0) x_reg <= {};", zeros(xw)));
        t.line("else if (ctrl$x_load) x_reg <= act_in;");
    } else {
        t.line("if (ctrl$x_load) x_reg <= act_in;");
    }
    t.close("end");
    t.comment("the activations one stage later (the lanes' ring write stage), the leaders' input");
    t.line(decl("reg", 1, "en_x"));
    t.line(decl("reg", xw, "x_2"));
    t.open(format!("{keep}always @(posedge clock) begin"));
    t.line("en_x <= ctrl$en_d;");
    t.close("end");
    t.open("always @(posedge clock) begin");
    t.line("if (en_x) x_2 <= x_reg;");
    t.close("end");
    if !followers.is_empty() {
        let fw = followers.len() as u32 * a;
        t.comment("the follower columns' activations one stage later (the lanes' lead registers hold the leaders')");
        let parts: Vec<String> = followers
            .iter()
            .map(|&f| slice("x_2", f as u32 * a, a))
            .collect();
        t.line(decl("reg", fw, "x_f"));
        t.open("always @(posedge clock) begin");
        t.line(format!("if (en_x) x_f <= {};", pack(&parts)));
        t.close("end");
    }
    t.comment("per lane, registered copies of the lane-wide controls (kept apart so that each fans out inside its lane): the clock enable, the scale prefetch flag, the issued beat's ring write (enable, index, trit codes) and ring read index, the root-stage, multiplier-stage and product-stage flags; and the lane's scale prefetch register");
    let st_bits: Vec<String> = (0..tw).map(|b| format!("ctrl$st${b}")).collect();
    let rt_bits: Vec<String> = (0..tw).map(|b| format!("ctrl$rt${b}")).collect();
    let wa_bits: Vec<String> = (0..ab).map(|b| format!("ctrl$w_addr${b}")).collect();
    for l in 0..r {
        let n = |x: &str| format!("l{l}_{x}");
        for x in ["en", "scf", "wwe", "vT", "vlT", "nsT", "kbfM", "vlP", "olP"] {
            t.line(decl("reg", 1, &n(x)));
        }
        if ab > 0 {
            t.line(decl("reg", ab, &n("wa")));
            t.line(decl("reg", ab, &n("ra")));
        }
        if tw > 0 {
            t.line(decl("reg", tw, &n("tM")));
            t.line(decl("reg", tw, &n("tP")));
        }
        t.line(decl("reg", 2 * c, &n("wq")));
        t.line(decl("reg", mb, &n("scn")));
        let ws: Vec<String> = (0..c).map(|i| format!("w${}", l * c + i)).collect();
        t.open(format!("{keep}always @(posedge clock) begin"));
        t.line(format!("{} <= ctrl$en_d;", n("en")));
        t.line(format!("{} <= ctrl$sc_full_d;", n("scf")));
        t.open("if (rst) begin");
        for x in ["wwe", "vT", "vlT", "nsT", "vlP", "olP"] {
            t.line(format!("{} <= 1'b0;", n(x)));
        }
        t.close(format!("end else if ({}) begin", n("en")));
        t.indent_more();
        t.line(format!("{} <= ctrl$w_we;", n("wwe")));
        if ab > 0 {
            t.line(format!("{} <= {};", n("wa"), pack(&wa_bits)));
            t.line(format!("{} <= {};", n("ra"), n("wa")));
        }
        t.line(format!("{} <= {};", n("wq"), pack(&ws)));
        t.line(format!("{} <= ctrl$pv;", n("vT")));
        t.line(format!("{} <= ctrl$pvl;", n("vlT")));
        t.line(format!("{} <= ctrl$pns;", n("nsT")));
        t.line(format!("{} <= ctrl$rkbf;", n("kbfM")));
        t.line(format!("{} <= ctrl$svl;", n("vlP")));
        t.line(format!("{} <= ctrl$sol;", n("olP")));
        if tw > 0 {
            t.line(format!("{} <= {};", n("tM"), pack(&rt_bits)));
            t.line(format!("{} <= {};", n("tP"), pack(&st_bits)));
        }
        t.close("end");
        t.line(format!(
            "if (~{} | ({} & {})) {} <= scale${l};",
            n("scf"),
            n("en"),
            n("nsT"),
            n("scn")
        ));
        t.close("end");
    }
    t.open("always @(*) begin");
    for n in CTRL_IN {
        t.line(format!("ctrl${n} = {n};"));
    }
    for n in CTRL_OUT {
        t.line(format!("{n} = ctrl${n};"));
    }
    for l in 0..r {
        let n = |x: &str| format!("l{l}_{x}");
        t.comment(format!("lane {l}"));
        t.line(format!("lanes${l}$clock = clock;"));
        t.line(format!("lanes${l}$en = {};", n("en")));
        t.line(format!("lanes${l}$w_we = {};", n("wwe")));
        t.line(format!("lanes${l}$ps_valid = {};", n("vT")));
        t.line(format!(
            "lanes${l}$ps_clr = rst | ({} & {});",
            n("en"),
            n("vlT")
        ));
        t.line(format!("lanes${l}$sc_take = {};", n("vlT")));
        t.line(format!("lanes${l}$sc_mload = {};", n("nsT")));
        t.line(format!("lanes${l}$acc_we = {};", n("vlP")));
        t.line(format!("lanes${l}$rd_first = {};", n("kbfM")));
        t.line(format!("lanes${l}$out_load = {};", n("olP")));
        for b in 0..ab {
            t.line(format!("lanes${l}$w_addr${b} = {};", bit(&n("wa"), ab, b)));
            t.line(format!("lanes${l}$r_addr${b} = {};", bit(&n("ra"), ab, b)));
        }
        for b in 0..tw {
            t.line(format!(
                "lanes${l}$acc_addr${b} = {};",
                bit(&n("tP"), tw, b)
            ));
            t.line(format!("lanes${l}$rd_addr${b} = {};", bit(&n("tM"), tw, b)));
        }
        for i in 0..c {
            t.line(format!("lanes${l}$w${i} = {};", slice(&n("wq"), 2 * i, 2)));
        }
        for (k, &(la, _)) in pairs.iter().enumerate() {
            t.line(format!(
                "lanes${l}$xl${k} = {};",
                slice("x_2", la as u32 * a, a)
            ));
        }
        for k in 0..followers.len() {
            t.line(format!(
                "lanes${l}$xf${k} = {};",
                slice("x_f", k as u32 * a, a)
            ));
        }
        t.line(format!("lanes${l}$scale = {};", n("scn")));
        t.line(format!("out${l} = lanes${l}$out;"));
    }
    t.close("end");
    t.finish()
}

impl<const A: usize, const MB: usize> Logic for Core<A, MB> {
    fn update(&mut self) {
        let cl = &mut self.ctrl;
        cl.clock.next = self.clock.val();
        cl.rst.next = self.rst.val();
        cl.start.next = self.start.val();
        cl.cmd_k.next = self.cmd_k.val();
        cl.cmd_n.next = self.cmd_n.val();
        cl.cmd_m.next = self.cmd_m.val();
        cl.w_valid.next = self.w_valid.val();
        cl.act_valid.next = self.act_valid.val();
        cl.scale_valid.next = self.scale_valid.val();
        cl.out_ready.next = self.out_ready.val();
        self.busy.next = cl.busy.val();
        self.done.next = cl.done.val();
        self.err.next = cl.err.val();
        self.w_ready.next = cl.w_ready.val();
        self.act_ready.next = cl.act_ready.val();
        self.scale_ready.next = cl.scale_ready.val();
        self.out_valid.next = cl.out_valid.val();
        self.out_token.next = cl.out_token.val();
        self.out_n.next = cl.out_n.val();
        self.out_last.next = cl.out_last.val();
        let c = self._p.cols as usize;
        let pairs = self._p.pairs();
        let lc = self._lc;
        let rst = self.rst.val();
        for (l, lane) in self.lanes.iter_mut().enumerate() {
            lane.clock.next = self.clock.val();
            lane.en.next = lc.en;
            lane.w_we.next = lc.wwe;
            drive_bits(&mut lane.w_addr, lc.wa);
            drive_bits(&mut lane.r_addr, lc.ra);
            lane.ps_valid.next = lc.vt;
            lane.ps_clr.next = rst || (lc.en && lc.vlt);
            lane.sc_take.next = lc.vlt;
            lane.sc_mload.next = lc.nst;
            lane.acc_we.next = lc.vlp;
            drive_bits(&mut lane.acc_addr, lc.tp);
            lane.rd_first.next = lc.kbfm;
            drive_bits(&mut lane.rd_addr, lc.tm);
            lane.out_load.next = lc.olp;
            for i in 0..c {
                lane.w[i].next = self._wq[l * c + i];
            }
            for (k, &(la, _)) in pairs.iter().enumerate() {
                lane.xl[k].next = self._xd[la];
            }
            for (k, x) in self._x2.iter().enumerate() {
                lane.xf[k].next = *x;
            }
            lane.scale.next = self._scn[l];
            self.out[l].next = lane.out.val();
        }
        // Registers last: the children see this edge one delta later (their clocks are
        // copies), so they must still read the pre-edge values driven above, as the Verilog
        // (non-blocking assignments) gives them.
        if self.clock.pos_edge() {
            let cl = &self.ctrl;
            if lc.en {
                let followers = pairs.iter().filter_map(|&(_, b)| b);
                for (k, f) in followers.enumerate() {
                    self._x2[k] = self._xd[f];
                }
                self._xd.clone_from(&self._x_reg);
            }
            if cl.x_zero.first().map(|x| x.val()).unwrap_or(false) {
                self._x_reg.iter_mut().for_each(|x| *x = Bits::default());
            } else if cl.x_load.val() {
                for (i, x) in self._x_reg.iter_mut().enumerate() {
                    *x = self.act[i].val();
                }
            }
            if !lc.scf || (lc.en && lc.nst) {
                for (l, x) in self._scn.iter_mut().enumerate() {
                    *x = self.scale[l].val();
                }
            }
            let mut n = lc;
            n.en = cl.en_d.val();
            n.scf = cl.sc_full_d.val();
            if rst {
                n.wwe = false;
                n.vt = false;
                n.vlt = false;
                n.nst = false;
                n.vlp = false;
                n.olp = false;
            } else if lc.en {
                n.wwe = cl.w_we.val();
                n.wa = read_bits(&cl.w_addr);
                n.ra = lc.wa;
                for (d, s) in self._wq.iter_mut().zip(self.w.iter()) {
                    *d = s.val();
                }
                n.vt = cl.pv.val();
                n.vlt = cl.pvl.val();
                n.nst = cl.pns.val();
                n.vlp = cl.svl.val();
                n.olp = cl.sol.val();
                n.tp = read_bits(&cl.st);
                n.kbfm = cl.rkbf.val();
                n.tm = read_bits(&cl.rt);
            }
            self._lc = n;
        }
    }
    fn connect(&mut self) {
        let cl = &mut self.ctrl;
        cl.clock.connect();
        cl.rst.connect();
        cl.start.connect();
        cl.cmd_k.connect();
        cl.cmd_n.connect();
        cl.cmd_m.connect();
        cl.w_valid.connect();
        cl.act_valid.connect();
        cl.scale_valid.connect();
        cl.out_ready.connect();
        self.busy.connect();
        self.done.connect();
        self.err.connect();
        self.w_ready.connect();
        self.act_ready.connect();
        self.scale_ready.connect();
        self.out_valid.connect();
        self.out_token.connect();
        self.out_n.connect();
        self.out_last.connect();
        self.out.iter_mut().for_each(|o| o.connect());
        for lane in self.lanes.iter_mut() {
            lane.clock.connect();
            lane.en.connect();
            lane.w_we.connect();
            lane.w_addr.iter_mut().for_each(|x| x.connect());
            lane.r_addr.iter_mut().for_each(|x| x.connect());
            lane.ps_valid.connect();
            lane.ps_clr.connect();
            lane.sc_take.connect();
            lane.sc_mload.connect();
            lane.acc_we.connect();
            lane.acc_addr.iter_mut().for_each(|x| x.connect());
            lane.rd_first.connect();
            lane.rd_addr.iter_mut().for_each(|x| x.connect());
            lane.out_load.connect();
            lane.w.iter_mut().for_each(|x| x.connect());
            lane.xl.iter_mut().for_each(|x| x.connect());
            lane.xf.iter_mut().for_each(|x| x.connect());
            lane.scale.connect();
        }
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(core_verilog(&self._p))
    }
}
