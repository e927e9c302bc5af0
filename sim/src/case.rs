//! Test cases: one stimulus (weights, scales, activations, stall pattern) that every engine
//! runs, regenerated exactly from a few numbers so a failure replays anywhere.

use ndarray::Array2;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tern_spec::config::BlockShape;
use tern_spec::random::{self, ScaleDist};
use tern_spec::{ArrayConfig, OperandError, QuantizedActs, ScaledTernaryMatrix};

/// Probabilities that a stream is *not* ready/valid in a cycle (0 = never stalls).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Stalls {
    /// Weight stream source withholds `valid`.
    pub weights: f64,
    /// Activation stream source withholds `valid`.
    pub acts: f64,
    /// Scale stream source withholds `valid`.
    pub scales: f64,
    /// Output sink withholds `ready`.
    pub out: f64,
}

impl Stalls {
    pub const NONE: Stalls = Stalls {
        weights: 0.0,
        acts: 0.0,
        scales: 0.0,
        out: 0.0,
    };
}

/// Everything that defines one case; [`CaseSpec::build`] turns it into operands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSpec {
    pub seed: u64,
    /// Tokens.
    pub m: usize,
    /// Outputs.
    pub n: usize,
    /// Inputs.
    pub k: usize,
    /// Block shape of the layer's scales (block.k a multiple of the array's block.k).
    pub block_n: u32,
    pub block_k: u32,
    /// Extreme scales (zeros, huge, tiny, just-below-limit) mixed in.
    pub extreme_scales: bool,
    /// Activation codes over the full range (-2^(B-1) included) instead of quantized floats.
    pub full_range_acts: bool,
    pub stalls: Stalls,
}

/// A built case.
#[derive(Debug, Clone)]
pub struct Case {
    pub spec: CaseSpec,
    pub w: ScaledTernaryMatrix,
    /// The f32 block scales `w` was made from.
    pub scales_f32: Array2<f32>,
    pub acts: QuantizedActs,
}

impl CaseSpec {
    /// A plain case: given shape, the config's block, no stalls.
    pub fn simple(cfg: &ArrayConfig, seed: u64, m: usize, n: usize, k: usize) -> Self {
        Self {
            seed,
            m,
            n,
            k,
            block_n: cfg.block.n,
            block_k: cfg.block.k,
            extreme_scales: false,
            full_range_acts: false,
            stalls: Stalls::NONE,
        }
    }

    /// A random case for fuzzing: shapes around the array's tile sizes (K not a multiple of
    /// block.k, N not a multiple of rows, M = 1 and M > 1), random block shapes that the
    /// array can run, extreme scales and activations, random stalls. `max_macs` bounds M·N·K.
    pub fn random(cfg: &ArrayConfig, seed: u64, max_macs: u64) -> Self {
        let mut r = random::rng(seed ^ 0x5eed_ca5e);
        let rows = cfg.array.rows as usize;
        let bk = cfg.block.k as usize;
        let tile = cfg.array.token_tile as usize;
        let max_k = (cfg.accumulator.max_k as usize).min(8 * bk + 7);
        loop {
            let m = match r.gen_range(0..4) {
                0 | 1 => 1,
                2 => r.gen_range(2..=tile.max(2)),
                _ => r.gen_range(1..=2 * tile + 1),
            };
            let k = match r.gen_range(0..4) {
                0 => r.gen_range(1..=bk),
                1 => bk * r.gen_range(1..=4),
                _ => r.gen_range(1..=max_k),
            };
            let n = match r.gen_range(0..3) {
                0 => r.gen_range(1..=rows),
                1 => rows * r.gen_range(1..=3),
                _ => r.gen_range(1..=3 * rows + 1),
            };
            if (m * n * k) as u64 > max_macs {
                continue;
            }
            let block_n = match r.gen_range(0..4) {
                0 => 1,
                1 => cfg.block.n,
                2 => n as u32,
                _ => r.gen_range(1..=2 * rows as u32),
            };
            let block_k = cfg.block.k * r.gen_range(1..=3);
            let stall = |r: &mut rand_chacha::ChaCha8Rng| {
                if r.gen_bool(0.4) {
                    0.0
                } else {
                    r.gen_range(0.05..0.6)
                }
            };
            let stalls = Stalls {
                weights: stall(&mut r),
                acts: stall(&mut r),
                scales: stall(&mut r),
                out: stall(&mut r),
            };
            return Self {
                seed,
                m,
                n,
                k,
                block_n,
                block_k,
                extreme_scales: r.gen_bool(0.3),
                full_range_acts: r.gen_bool(0.5),
                stalls,
            };
        }
    }

    /// Multiply-accumulates of the case.
    pub fn macs(&self) -> u64 {
        (self.m * self.n * self.k) as u64
    }

    /// Builds the operands (deterministic in the spec).
    pub fn build(&self, cfg: &ArrayConfig) -> Result<Case, OperandError> {
        let block = BlockShape {
            n: self.block_n,
            k: self.block_k,
        };
        let dist = if self.extreme_scales {
            ScaleDist::Extreme
        } else {
            ScaleDist::Typical
        };
        let (w, scales_f32) = random::layer(
            self.seed,
            self.n,
            self.k,
            block,
            cfg.scale.mantissa_bits,
            dist,
        )?;
        let acts = if self.full_range_acts {
            random::act_codes(self.seed, self.m, self.k, cfg.activation.bits)
        } else {
            random::acts(self.seed, self.m, self.k, cfg.activation.bits)?
        };
        w.check_fits(cfg)?;
        Ok(Case {
            spec: self.clone(),
            w,
            scales_f32,
            acts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_specs_fit_and_replay() {
        for name in ["small", "default", "large"] {
            let cfg = ArrayConfig::builtin(name).unwrap();
            for seed in 0..200 {
                let s = CaseSpec::random(&cfg, seed, 200_000);
                assert_eq!(s, CaseSpec::random(&cfg, seed, 200_000));
                assert!(s.macs() <= 200_000);
                let c = s.build(&cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                assert_eq!(c.w.n(), s.n);
                assert_eq!(c.acts.m(), s.m);
            }
        }
    }
}
