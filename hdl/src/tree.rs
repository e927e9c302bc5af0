//! The lane's pipelined adder tree: sums `cols` one's-complement products and folds their
//! +1 corrections into the adders' carry-ins.
//!
//! Level 0 holds the PE outputs (`cols` values of `act_bits`) and the `cols` correction bits
//! ("pending" bits). Each level pairs neighbouring values; every pair adder takes one pending
//! bit as its carry-in (oldest first); an odd value passes through. A tree over `cols` values
//! has `cols - 1` adders, so exactly one pending bit is left at the root: the lane adds it as
//! the carry-in of its psum accumulator. A node over `n` products is `act_bits + ceil(log2 n)`
//! bits wide: its n one's-complement products lie in `[-2^(a-1), 2^(a-1) - 1]` each and it
//! took at most `n - 1` carries, so its value lies in `[-n·2^(a-1), n·2^(a-1) - 1]`.
//!
//! Levels are registered every `reg_every` levels (clock enable `en`), so the tree's latency is
//! `floor(levels / reg_every)` cycles.

use crate::vlog::{decl, sext, wire_eq, wrap_signed, zext, Text};
use serde::Serialize;

/// One node of a level: the sum of two lower values (with an optional carry-in taken from
/// the pending list) or a pass-through.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Index of the first input in the level below.
    pub a: usize,
    /// Index of the second input (None: pass-through).
    pub b: Option<usize>,
    /// Index into the pending list below of the carry-in, if any.
    pub cin: Option<usize>,
    /// Products covered.
    pub leaves: u32,
    /// Width in bits (signed).
    pub width: u32,
}

/// One level of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub nodes: Vec<Node>,
    /// Indices (into the pending list below) of the bits passed on unconsumed, in order.
    pub pending: Vec<usize>,
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

impl TreePlan {
    pub fn new(inputs: u32, act_bits: u32, reg_every: u32) -> Self {
        let mut levels = Vec::new();
        // (leaves) of the current values; pending count
        let mut cur: Vec<u32> = vec![1; inputs as usize];
        let mut npend = inputs as usize;
        let mut since_reg = 0u32;
        while cur.len() > 1 {
            since_reg += 1;
            let registered = since_reg == reg_every;
            if registered {
                since_reg = 0;
            }
            let mut nodes = Vec::new();
            let mut next_pend = 0usize;
            let mut i = 0;
            while i < cur.len() {
                if i + 1 < cur.len() {
                    let leaves = cur[i] + cur[i + 1];
                    let cin = if next_pend < npend {
                        next_pend += 1;
                        Some(next_pend - 1)
                    } else {
                        None
                    };
                    nodes.push(Node {
                        a: i,
                        b: Some(i + 1),
                        cin,
                        leaves,
                        width: node_width(leaves, act_bits),
                    });
                    i += 2;
                } else {
                    nodes.push(Node {
                        a: i,
                        b: None,
                        cin: None,
                        leaves: cur[i],
                        width: node_width(cur[i], act_bits),
                    });
                    i += 1;
                }
            }
            let pending: Vec<usize> = (next_pend..npend).collect();
            npend = pending.len();
            cur = nodes.iter().map(|n| n.leaves).collect();
            levels.push(Level {
                nodes,
                pending,
                registered,
            });
        }
        TreePlan {
            inputs,
            act_bits,
            reg_every,
            levels,
        }
    }

    /// Width of the root value.
    pub fn out_width(&self) -> u32 {
        match self.levels.last() {
            Some(l) => l.nodes[0].width,
            None => self.act_bits,
        }
    }

    /// Registered levels (cycles of latency).
    pub fn latency(&self) -> u32 {
        self.levels.iter().filter(|l| l.registered).count() as u32
    }

    /// Flip-flops in the tree registers.
    pub fn flops(&self) -> u32 {
        self.levels
            .iter()
            .filter(|l| l.registered)
            .map(|l| l.nodes.iter().map(|n| n.width).sum::<u32>() + l.pending.len() as u32)
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

    /// Verilog for the tree. Inputs are `vals[i]` (`act_bits` wide) and `pend[i]` (1 bit);
    /// returns the text and the names of the root value and the leftover carry bit.
    pub fn verilog(&self, vals: &[String], pend: &[String]) -> (String, String, String) {
        let mut t = Text::default();
        let mut cur: Vec<(String, u32)> = vals.iter().map(|v| (v.clone(), self.act_bits)).collect();
        let mut pcur: Vec<String> = pend.to_vec();
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
                let (an, aw) = &cur[n.a];
                let expr = match n.b {
                    Some(b) => {
                        let (bn, bw) = &cur[b];
                        let mut e = format!("{} + {}", sext(an, *aw, w), sext(bn, *bw, w));
                        if let Some(c) = n.cin {
                            e.push_str(&format!(" + {}", zext(&pcur[c], 1, w)));
                        }
                        e
                    }
                    None => sext(an, *aw, w),
                };
                t.line(wire_eq(w, &comb, &expr));
                if level.registered {
                    let r = format!("tr{l}_{ni}");
                    t.line(decl("reg", w, &r));
                    regs.push((r.clone(), comb));
                    next.push((r, w));
                } else {
                    next.push((comb, w));
                }
            }
            let mut pnext = Vec::new();
            for (k, &pi) in level.pending.iter().enumerate() {
                if level.registered {
                    let r = format!("tq{l}_{k}");
                    t.line(decl("reg", 1, &r));
                    regs.push((r.clone(), pcur[pi].clone()));
                    pnext.push(r);
                } else {
                    pnext.push(pcur[pi].clone());
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
            pcur = pnext;
        }
        assert_eq!(cur.len(), 1);
        assert_eq!(pcur.len(), 1, "exactly one carry is left at the root");
        (t.finish(), cur[0].0.clone(), pcur[0].clone())
    }
}

/// Cycle model of the tree (values as signed integers, carries as bools).
#[derive(Debug, Clone)]
pub struct TreeModel {
    plan: TreePlan,
    /// Register contents of each registered level: (values, pending).
    regs: Vec<Option<(Vec<i64>, Vec<bool>)>>,
}

impl TreeModel {
    pub fn new(plan: &TreePlan) -> Self {
        let regs = plan
            .levels
            .iter()
            .map(|l| {
                l.registered
                    .then(|| (vec![0; l.nodes.len()], vec![false; l.pending.len()]))
            })
            .collect();
        TreeModel {
            plan: plan.clone(),
            regs,
        }
    }

    /// Evaluates all levels from the inputs and the registers: returns the root (value,
    /// carry) seen by the psum adder now, and the next contents of every registered level.
    #[allow(clippy::type_complexity)]
    fn eval(
        &self,
        vals: &[i64],
        pend: &[bool],
    ) -> ((i64, bool), Vec<Option<(Vec<i64>, Vec<bool>)>>) {
        let mut cur: Vec<i64> = vals.to_vec();
        let mut pcur: Vec<bool> = pend.to_vec();
        let mut next_regs = Vec::new();
        for (li, level) in self.plan.levels.iter().enumerate() {
            let comb: Vec<i64> = level
                .nodes
                .iter()
                .map(|n| {
                    let mut v = cur[n.a] as i128;
                    if let Some(b) = n.b {
                        v += cur[b] as i128;
                    }
                    if let Some(c) = n.cin {
                        v += pcur[c] as i128;
                    }
                    wrap_signed(v, n.width)
                })
                .collect();
            let pcomb: Vec<bool> = level.pending.iter().map(|&i| pcur[i]).collect();
            if level.registered {
                next_regs.push(Some((comb, pcomb)));
                let (rv, rp) = self.regs[li].clone().expect("registered level");
                cur = rv;
                pcur = rp;
            } else {
                next_regs.push(None);
                cur = comb;
                pcur = pcomb;
            }
        }
        ((cur[0], pcur[0]), next_regs)
    }

    /// The root value and carry visible now.
    pub fn output(&self, vals: &[i64], pend: &[bool]) -> (i64, bool) {
        self.eval(vals, pend).0
    }

    /// A clock edge with the given inputs (callers apply the clock enable).
    pub fn tick(&mut self, vals: &[i64], pend: &[bool]) {
        self.regs = self.eval(vals, pend).1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                let with_cin: usize = p
                    .levels
                    .iter()
                    .flat_map(|l| &l.nodes)
                    .filter(|n| n.cin.is_some())
                    .count();
                assert_eq!(
                    with_cin as u32,
                    cols - 1,
                    "every adder takes one correction"
                );
                assert_eq!(p.out_width(), 8 + levels, "root width for {cols}");
            }
        }
        assert_eq!(TreePlan::new(16, 8, 1).out_width(), 12);
    }

    /// The model sums products and corrections exactly, with the plan's latency.
    #[test]
    fn model_is_exact_with_latency() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for cols in [1u32, 2, 3, 6, 8, 13] {
            for every in [1u32, 2] {
                let plan = TreePlan::new(cols, 8, every);
                let lat = plan.latency() as usize;
                let mut m = TreeModel::new(&plan);
                let mut expect = std::collections::VecDeque::new();
                for step in 0..40 {
                    let vals: Vec<i64> = (0..cols).map(|_| rng.gen_range(-128..=127)).collect();
                    let pend: Vec<bool> = (0..cols).map(|_| rng.gen_bool(0.5)).collect();
                    let exact: i64 =
                        vals.iter().sum::<i64>() + pend.iter().filter(|&&b| b).count() as i64;
                    expect.push_back(exact);
                    if expect.len() > lat {
                        let (v, c) = m.output(&vals, &pend);
                        let want = expect.pop_front().unwrap();
                        assert_eq!(v + c as i64, want, "cols {cols} every {every} step {step}");
                    }
                    m.tick(&vals, &pend);
                }
            }
        }
    }

    #[test]
    fn verilog_names_and_carry() {
        let plan = TreePlan::new(3, 8, 1);
        let vals: Vec<String> = (0..3).map(|i| format!("p{i}")).collect();
        let pend: Vec<String> = (0..3).map(|i| format!("c{i}")).collect();
        let (text, root, cin) = plan.verilog(&vals, &pend);
        assert!(
            text.contains(
                "wire [8:0] tv1_0 = {{1{p0[7]}}, p0} + {{1{p1[7]}}, p1} + {{8{1'b0}}, c0};"
            ),
            "{text}"
        );
        assert_eq!(root, "tr2_0");
        assert_eq!(cin, "tq2_0");
    }
}
