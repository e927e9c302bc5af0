//! The cycle-level driver of the array's wrapper ports, independent of the simulator: it
//! decides, cycle by cycle, which stream beats to present (with random valid/ready stalls),
//! observes the handshakes and collects the output vectors. Every engine (Verilator,
//! rust-hdl) runs the same driver, so they see the same stimulus and the same stalls.
//!
//! Protocol (docs/array.md, tern_hdl::host): a command is started with `start` and
//! `cmd_k/n/m` (M ≤ token_tile) while `busy` = 0; then the weight, activation and scale
//! streams are fed in the order of [`tern_hdl::host::command_streams`]; a beat moves when
//! `valid & ready` at a rising edge; output vectors (`rows` sign-extended accumulators,
//! token, n of lane 0, last) move when `out_valid & out_ready`.

use crate::case::Stalls;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tern_hdl::host::CommandStreams;

/// What the driver presents in one cycle (before the rising edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CycleInputs {
    /// Index of the weight beat on `w_data` when `w_valid`.
    pub w: Option<usize>,
    pub act: Option<usize>,
    pub scale: Option<usize>,
    pub out_ready: bool,
}

/// What the array showed in that cycle (sampled before the rising edge).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleOutputs {
    pub w_ready: bool,
    pub act_ready: bool,
    pub scale_ready: bool,
    pub out_valid: bool,
    /// The output vector, read only when `out_valid & out_ready`.
    pub out: Option<OutVector>,
}

/// One output vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutVector {
    /// One value per lane, sign-extended.
    pub values: Vec<i64>,
    pub token: usize,
    /// Output index of lane 0.
    pub n: usize,
    pub last: bool,
}

/// The driver of one command.
pub struct CommandDriver<'a> {
    pub streams: &'a CommandStreams,
    stalls: Stalls,
    wi: usize,
    ai: usize,
    si: usize,
    /// Output vectors received, in order.
    pub outputs: Vec<OutVector>,
    /// Cycles stepped.
    pub cycles: u64,
    /// Cycle of the last progress (any beat moved).
    last_progress: u64,
    pending: CycleInputs,
}

impl<'a> CommandDriver<'a> {
    pub fn new(streams: &'a CommandStreams, stalls: Stalls) -> Self {
        Self {
            streams,
            stalls,
            wi: 0,
            ai: 0,
            si: 0,
            outputs: Vec::new(),
            cycles: 0,
            last_progress: 0,
            pending: CycleInputs::default(),
        }
    }

    /// Chooses this cycle's inputs.
    pub fn inputs(&mut self, rng: &mut ChaCha8Rng) -> CycleInputs {
        let mut go = |p: f64| p <= 0.0 || !rng.gen_bool(p.min(1.0));
        let s = &self.streams;
        let i = CycleInputs {
            w: (self.wi < s.weights.len() && go(self.stalls.weights)).then_some(self.wi),
            act: (self.ai < s.acts.len() && go(self.stalls.acts)).then_some(self.ai),
            scale: (self.si < s.scales.len() && go(self.stalls.scales)).then_some(self.si),
            out_ready: go(self.stalls.out),
        };
        self.pending = i;
        i
    }

    /// Records what happened at the edge that ends this cycle.
    pub fn observe(&mut self, o: CycleOutputs) {
        let i = self.pending;
        let mut moved = false;
        if i.w.is_some() && o.w_ready {
            self.wi += 1;
            moved = true;
        }
        if i.act.is_some() && o.act_ready {
            self.ai += 1;
            moved = true;
        }
        if i.scale.is_some() && o.scale_ready {
            self.si += 1;
            moved = true;
        }
        if let (true, true, Some(v)) = (o.out_valid, i.out_ready, o.out) {
            self.outputs.push(v);
            moved = true;
        }
        self.cycles += 1;
        if moved {
            self.last_progress = self.cycles;
        }
    }

    /// Whether the last output vector has been accepted.
    pub fn finished(&self) -> bool {
        self.outputs.last().is_some_and(|v| v.last)
    }

    /// Cycles since anything moved.
    pub fn idle_cycles(&self) -> u64 {
        self.cycles - self.last_progress
    }

    /// Beats still to send: (weights, acts, scales).
    pub fn remaining(&self) -> (usize, usize, usize) {
        let s = self.streams;
        (
            s.weights.len() - self.wi,
            s.acts.len() - self.ai,
            s.scales.len() - self.si,
        )
    }
}

/// Reads `w` bits at bit `at` of little-endian u64 words.
pub fn get_bits(words: &[u64], at: usize, w: usize) -> u64 {
    let mut v = 0u64;
    for b in 0..w {
        let bit = at + b;
        if (words[bit / 64] >> (bit % 64)) & 1 == 1 {
            v |= 1 << b;
        }
    }
    v
}

/// u64 words → the u32 words of a `width`-bit port.
pub fn to_u32_words(words: &[u64], width: u32, out: &mut Vec<u32>) {
    out.clear();
    let n = width.div_ceil(32) as usize;
    for i in 0..n {
        let w = words.get(i / 2).copied().unwrap_or(0);
        out.push(if i % 2 == 0 {
            w as u32
        } else {
            (w >> 32) as u32
        });
    }
}
