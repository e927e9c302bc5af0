//! The lane's pipelined adder tree, in *sign-factored* form.
//!
//! Every value in the tree is carried as a pair `(R, s)`: a two's-complement magnitude `R` and
//! a sign bit `s`, standing for `(-1)^s · R`. The point is the carry chain: an FPGA adder bit
//! is one LUT (the propagate `A ^ B`) plus the chain, *if* the chain's generate input `DI` can
//! be wired straight to one operand. Products like `w · x` are three-input functions, so an
//! adder of two products needs a second LUT per bit just to form `DI`. Here every adder has one
//! operand that is a plain register and puts all the logic on the other one:
//!
//! - **level 1, a pair of columns** `(a, b)` (leader `a`, follower `b`): the leader's register
//!   holds `q = nz_a ? x_a : 0` (a flip-flop with synchronous reset: no LUT), its sign is
//!   `s = neg_a`, and the follower's product is taken relative to it,
//!   `R = q + t·x_b` with `t = (-1)^(s ^ neg_b) · nz_b` (one's complement `nz_b & (x_b ^ {s ^
//!   neg_b})`, the +1 correction as the adder's carry-in). Then `(-1)^s · R = w_a x_a + w_b x_b`
//!   for every pair of codes (a zero leader gives `q = 0`, and its sign cancels out of the
//!   follower's product). A column without a partner is a pair without follower: `R = q`.
//! - **level ≥ 2**: `(R_L, s_L)` and `(R_R, s_R)` combine as `R = R_L + (-1)^u · R_R` with
//!   `u = s_L ^ s_R` (`R_R ^ {u}` plus carry-in `u`) and sign `s_L`: `(-1)^s_L · R` is the sum.
//! - the root `(R, s)` goes to the lane's psum adder as `psum + (R ^ {s}) + s`.
//!
//! Widths: a node over `n` products holds `R ∈ [-n·2^(a-1), n·2^(a-1) - 1]` (the leader
//! contributes `x ∈ [-2^(a-1), 2^(a-1) - 1]`, every other product `t·x ∈ [-2^(a-1), 2^(a-1)]`,
//! and `(-1)^u · R_R` of a subtree lies in `[-n_R·2^(a-1), n_R·2^(a-1)]`), so `a + ceil(log2 n)`
//! bits, as for a plain tree of two's-complement products.
//!
//! The Verilog writes the logic operand of every adder as two wires (low and high half): yosys
//! (0.23's `alumacc`) orders an adder's operands by width, then by number of chunks, and puts
//! the first one on the carry chain's `DI`; the register operand, sign-extended in one
//! concatenation, then always comes first.
//!
//! Levels are registered every `reg_every` levels (clock enable `en`), so the tree's latency is
//! `floor(levels / reg_every)` cycles; it starts from the lane's *lead* registers (one cycle
//! after the input register, see [`crate::lane`]).

use crate::pe::{pair_node, PairIn};
use crate::vlog::{decl, wire_eq, wrap_signed, zext, Text};
use serde::Serialize;

/// One node: a pair of columns (level 1) or of lower nodes, or a pass-through.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Level 1: the leader column. Higher levels: index of the first input below.
    pub a: usize,
    /// Level 1: the follower column. Higher levels: the second input (None: pass-through).
    pub b: Option<usize>,
    /// Products covered.
    pub leaves: u32,
    /// Width of `R` in bits (signed).
    pub width: u32,
}

/// One level of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub nodes: Vec<Node>,
    /// Level output registered.
    pub registered: bool,
}

/// The whole tree.
#[derive(Debug, Clone, Serialize)]
pub struct TreePlan {
    pub inputs: u32,
    pub act_bits: u32,
    pub reg_every: u32,
    pub levels: Vec<Level>,
}

/// Width of a node over `leaves` products: `act_bits + ceil(log2 leaves)`.
pub fn node_width(leaves: u32, act_bits: u32) -> u32 {
    act_bits + (32 - (leaves.max(1) - 1).leading_zeros())
}

/// Names of one column pair's lead-stage signals in the Verilog (see [`TreePlan::verilog`]).
#[derive(Debug, Clone)]
pub struct PairNames {
    /// Leader register `q` (act_bits).
    pub q: String,
    /// Leader sign register (1 bit).
    pub s: String,
    /// Follower: (activation, non-zero bit, negative bit), if the pair has one.
    pub follower: Option<(String, String, String)>,
}

impl TreePlan {
    pub fn new(inputs: u32, act_bits: u32, reg_every: u32) -> Self {
        let mut levels = Vec::new();
        let mut since_reg = 0u32;
        let mut level = |nodes: Vec<Node>, levels: &mut Vec<Level>| {
            since_reg += 1;
            let registered = since_reg == reg_every;
            if registered {
                since_reg = 0;
            }
            levels.push(Level { nodes, registered });
        };
        if inputs >= 2 {
            let pairs: Vec<Node> = (0..inputs.div_ceil(2) as usize)
                .map(|i| {
                    let follower = 2 * i + 1 < inputs as usize;
                    let leaves = 1 + follower as u32;
                    Node {
                        a: 2 * i,
                        b: follower.then_some(2 * i + 1),
                        leaves,
                        width: node_width(leaves, act_bits),
                    }
                })
                .collect();
            let mut cur: Vec<u32> = pairs.iter().map(|n| n.leaves).collect();
            level(pairs, &mut levels);
            while cur.len() > 1 {
                let nodes: Vec<Node> = (0..cur.len().div_ceil(2))
                    .map(|k| {
                        let (i, j) = (2 * k, 2 * k + 1);
                        let leaves = cur[i] + cur.get(j).copied().unwrap_or(0);
                        Node {
                            a: i,
                            b: (j < cur.len()).then_some(j),
                            leaves,
                            width: node_width(leaves, act_bits),
                        }
                    })
                    .collect();
                cur = nodes.iter().map(|n| n.leaves).collect();
                level(nodes, &mut levels);
            }
        }
        TreePlan {
            inputs,
            act_bits,
            reg_every,
            levels,
        }
    }

    /// Column pairs (leader, optional follower): the lead stage's registers.
    pub fn pairs(&self) -> Vec<(usize, Option<usize>)> {
        match self.levels.first() {
            Some(l) => l.nodes.iter().map(|n| (n.a, n.b)).collect(),
            None => vec![(0, None)],
        }
    }

    /// Width of the root value `R`.
    pub fn out_width(&self) -> u32 {
        match self.levels.last() {
            Some(l) => l.nodes[0].width,
            None => self.act_bits,
        }
    }

    /// Registered levels (cycles of latency after the lead stage).
    pub fn latency(&self) -> u32 {
        self.levels.iter().filter(|l| l.registered).count() as u32
    }

    /// Flip-flops in the tree registers (values and signs).
    pub fn flops(&self) -> u32 {
        self.levels
            .iter()
            .filter(|l| l.registered)
            .map(|l| l.nodes.iter().map(|n| n.width + 1).sum::<u32>())
            .sum()
    }

    /// Adder bits (sum of adder widths).
    pub fn adder_bits(&self) -> u32 {
        self.levels
            .iter()
            .flat_map(|l| l.nodes.iter())
            .filter(|n| n.b.is_some())
            .map(|n| n.width)
            .sum()
    }

    /// Verilog for the tree from the lead stage's registers (`pairs[i]` for level-1 node `i`).
    /// Returns the text and the names of the root value `R` and its sign bit.
    pub fn verilog(&self, pairs: &[PairNames]) -> (String, String, String) {
        let a = self.act_bits;
        let mut t = Text::default();
        // (value name, width, sign name) of the current level
        let mut cur: Vec<(String, u32, String)> = Vec::new();
        if self.levels.is_empty() {
            let p = &pairs[0];
            return (String::new(), p.q.clone(), p.s.clone());
        }
        for (li, level) in self.levels.iter().enumerate() {
            let l = li + 1;
            t.comment(format!(
                "tree level {l}{}",
                if level.registered {
                    " (registered)"
                } else {
                    ""
                }
            ));
            let mut next = Vec::new();
            let mut regs = Vec::new();
            for (ni, n) in level.nodes.iter().enumerate() {
                let w = n.width;
                let comb = format!("tv{l}_{ni}");
                let (lhs, lw, sign) = if l == 1 {
                    let p = &pairs[ni];
                    (p.q.clone(), a, p.s.clone())
                } else {
                    cur[n.a].clone()
                };
                let expr = match (l, n.b) {
                    (1, Some(_)) => {
                        let (x, nz, ng) = pairs[ni].follower.clone().expect("follower");
                        let tn = format!("tn{l}_{ni}");
                        t.line(wire_eq(1, &tn, &format!("{sign} ^ {ng}")));
                        let b = split_operand(&mut t, &format!("tb{l}_{ni}"), a, w, |lo, bw| {
                            format!(
                                "{{{bw}{{{nz}}}}} & ({} ^ {{{bw}{{{tn}}}}})",
                                crate::vlog::slice(&x, lo, bw)
                            )
                        });
                        format!(
                            "{} + {b} + {}",
                            crate::vlog::sext(&lhs, lw, w),
                            zext(&format!("({nz} & {tn})"), 1, w)
                        )
                    }
                    (_, Some(bi)) => {
                        let (rn, rw, rs) = cur[bi].clone();
                        let un = format!("un{l}_{ni}");
                        t.line(wire_eq(1, &un, &format!("{sign} ^ {rs}")));
                        let b = split_operand(&mut t, &format!("tb{l}_{ni}"), rw, w, |lo, bw| {
                            format!("{} ^ {{{bw}{{{un}}}}}", crate::vlog::slice(&rn, lo, bw))
                        });
                        format!(
                            "{} + {b} + {}",
                            crate::vlog::sext(&lhs, lw, w),
                            zext(&un, 1, w)
                        )
                    }
                    (_, None) => crate::vlog::sext(&lhs, lw, w),
                };
                t.line(wire_eq(w, &comb, &expr));
                if level.registered {
                    let r = format!("tr{l}_{ni}");
                    let rs = format!("ts{l}_{ni}");
                    t.line(decl("reg", w, &r));
                    t.line(decl("reg", 1, &rs));
                    regs.push((r.clone(), comb));
                    regs.push((rs.clone(), sign));
                    next.push((r, w, rs));
                } else {
                    next.push((comb, w, sign));
                }
            }
            if level.registered {
                t.open("always @(posedge clock) begin");
                t.open("if (en) begin");
                for (r, d) in &regs {
                    t.line(format!("{r} <= {d};"));
                }
                t.close("end");
                t.close("end");
            }
            cur = next;
        }
        assert_eq!(cur.len(), 1);
        let (root, _, sign) = cur.pop().expect("root");
        (t.finish(), root, sign)
    }
}

/// Declares the `width`-bit logic operand `expr(lo, w)` of an adder as two wires (`NAMEl`,
/// `NAMEh`: bits below and from `width/2`), and returns it sign-extended to `to` bits. See the
/// module documentation for why it is split.
pub fn split_operand(
    t: &mut Text,
    name: &str,
    width: u32,
    to: u32,
    expr: impl Fn(u32, u32) -> String,
) -> String {
    assert!(width >= 2 && to >= width);
    let lo_w = width / 2;
    let hi_w = width - lo_w;
    let (lo, hi) = (format!("{name}l"), format!("{name}h"));
    t.line(wire_eq(lo_w, &lo, &expr(0, lo_w)));
    t.line(wire_eq(hi_w, &hi, &expr(lo_w, hi_w)));
    let msb = crate::vlog::bit(&hi, hi_w, hi_w - 1);
    if to > width {
        format!("{{{{{}{{{msb}}}}}, {hi}, {lo}}}", to - width)
    } else {
        format!("{{{hi}, {lo}}}")
    }
}

/// Cycle model of the tree: `(R, s)` per node, registers per registered level.
#[derive(Debug, Clone)]
pub struct TreeModel {
    plan: TreePlan,
    #[allow(clippy::type_complexity)]
    regs: Vec<Option<Vec<(i64, bool)>>>,
}

impl TreeModel {
    pub fn new(plan: &TreePlan) -> Self {
        let regs = plan
            .levels
            .iter()
            .map(|l| l.registered.then(|| vec![(0, false); l.nodes.len()]))
            .collect();
        TreeModel {
            plan: plan.clone(),
            regs,
        }
    }

    /// Evaluates all levels from the lead stage and the registers: returns the root `(R, s)`
    /// seen by the psum adder now, and the next contents of every registered level.
    #[allow(clippy::type_complexity)]
    fn eval(&self, pairs: &[PairIn]) -> ((i64, bool), Vec<Option<Vec<(i64, bool)>>>) {
        if self.plan.levels.is_empty() {
            return ((pairs[0].q, pairs[0].s), vec![]);
        }
        let mut cur: Vec<(i64, bool)> = Vec::new();
        let mut next_regs = Vec::new();
        for (li, level) in self.plan.levels.iter().enumerate() {
            let comb: Vec<(i64, bool)> = level
                .nodes
                .iter()
                .enumerate()
                .map(|(ni, n)| {
                    if li == 0 {
                        pair_node(&pairs[ni], n.width)
                    } else {
                        let (rl, sl) = cur[n.a];
                        match n.b {
                            Some(b) => {
                                let (rr, sr) = cur[b];
                                let v =
                                    rl as i128 + if sl ^ sr { -(rr as i128) } else { rr as i128 };
                                (wrap_signed(v, n.width), sl)
                            }
                            None => (rl, sl),
                        }
                    }
                })
                .collect();
            if level.registered {
                next_regs.push(Some(comb));
                cur = self.regs[li].clone().expect("registered level");
            } else {
                next_regs.push(None);
                cur = comb;
            }
        }
        (cur[0], next_regs)
    }

    /// The root `(R, s)` visible now.
    pub fn output(&self, pairs: &[PairIn]) -> (i64, bool) {
        self.eval(pairs).0
    }

    /// A clock edge with the given lead stage (callers apply the clock enable).
    pub fn tick(&mut self, pairs: &[PairIn]) {
        self.regs = self.eval(pairs).1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pe::signed_value;

    #[test]
    fn shapes() {
        for cols in [1u32, 2, 3, 5, 7, 8, 16, 31, 32, 64, 100, 256] {
            for every in 1..=3 {
                let p = TreePlan::new(cols, 8, every);
                let levels = if cols == 1 {
                    0
                } else {
                    32 - (cols - 1).leading_zeros()
                };
                assert_eq!(p.levels.len() as u32, levels, "cols {cols}");
                assert_eq!(p.latency(), levels / every);
                let adders: usize = p
                    .levels
                    .iter()
                    .flat_map(|l| &l.nodes)
                    .filter(|n| n.b.is_some())
                    .count();
                assert_eq!(adders as u32, cols - 1);
                assert_eq!(p.out_width(), 8 + levels, "root width for {cols}");
                let cover: u32 = p.pairs().iter().map(|(_, b)| 1 + b.is_some() as u32).sum();
                assert_eq!(cover, cols);
            }
        }
        assert_eq!(TreePlan::new(16, 8, 1).out_width(), 12);
    }

    /// The model sums exactly, with the plan's latency, for random and extreme inputs.
    #[test]
    fn model_is_exact_with_latency() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for cols in [1u32, 2, 3, 6, 8, 13, 16] {
            for every in [1u32, 2] {
                let plan = TreePlan::new(cols, 8, every);
                let lat = plan.latency() as usize;
                let mut m = TreeModel::new(&plan);
                let mut expect = std::collections::VecDeque::new();
                for step in 0..60 {
                    let extreme = step % 5 == 0;
                    let codes: Vec<u64> = (0..cols)
                        .map(|_| if extreme { 3 } else { rng.gen_range(0..4) })
                        .collect();
                    let xs: Vec<i64> = (0..cols)
                        .map(|_| {
                            if extreme {
                                -128
                            } else {
                                rng.gen_range(-128..=127)
                            }
                        })
                        .collect();
                    let pairs: Vec<PairIn> = plan
                        .pairs()
                        .iter()
                        .map(|&(a, b)| PairIn::of(codes[a], xs[a], b.map(|b| (codes[b], xs[b]))))
                        .collect();
                    let exact: i64 = (0..cols as usize)
                        .map(|c| match codes[c] {
                            1 => xs[c],
                            3 => -xs[c],
                            _ => 0,
                        })
                        .sum();
                    expect.push_back(exact);
                    if expect.len() > lat {
                        let (r, s) = m.output(&pairs);
                        let want = expect.pop_front().unwrap();
                        assert_eq!(
                            signed_value(r, s),
                            want,
                            "cols {cols} every {every} step {step}"
                        );
                    }
                    m.tick(&pairs);
                }
            }
        }
    }

    #[test]
    fn verilog_names_and_operand_order() {
        let plan = TreePlan::new(3, 8, 1);
        let pairs: Vec<PairNames> = plan
            .pairs()
            .iter()
            .enumerate()
            .map(|(i, &(_, b))| PairNames {
                q: format!("q{i}"),
                s: format!("s{i}"),
                follower: b.map(|_| (format!("x{i}"), format!("nz{i}"), format!("ng{i}"))),
            })
            .collect();
        let (text, root, sign) = plan.verilog(&pairs);
        // the register operand first, sign-extended in one concatenation
        assert!(
            text.contains("wire [8:0] tv1_0 = {{1{q0[7]}}, q0} + {{1{tb1_0h[3]}}, tb1_0h, tb1_0l} + {{8{1'b0}}, (nz0 & tn1_0)};"),
            "{text}"
        );
        assert!(text.contains("wire [3:0] tb1_0l = {4{nz0}} & (x0[3:0] ^ {4{tn1_0}});"));
        assert!(text.contains("wire un2_0 = ts1_0 ^ ts1_1;"), "{text}");
        assert_eq!(root, "tr2_0");
        assert_eq!(sign, "ts2_0");
    }
}
