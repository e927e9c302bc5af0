//! Deterministic random operands (ChaCha8 from a u64 seed), shared by the CLI, tests,
//! simulators and benchmarks so that a seed printed anywhere replays everywhere.

use crate::config::BlockShape;
use crate::matrix::{div_ceil, OperandError, QuantizedActs, ScaledTernaryMatrix};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The RNG every tern random stream uses.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// How block scales are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleDist {
    /// Log-uniform over [2^-8, 1] × 0.05: typical absmean scales.
    Typical,
    /// Mixes typical values with extremes: 0, the largest and smallest normal f32 within a
    /// row's dynamic range, values that round to the mantissa limit.
    Extreme,
}

/// A random trit with P(0) = `zero_frac`, ±1 equally likely otherwise.
pub fn trit<R: Rng>(r: &mut R, zero_frac: f64) -> i8 {
    if r.gen_bool(zero_frac) {
        0
    } else if r.gen_bool(0.5) {
        1
    } else {
        -1
    }
}

/// Random f32 block scales, [ceil(N/bn), ceil(K/bk)].
pub fn block_scales<R: Rng>(
    r: &mut R,
    n: usize,
    k: usize,
    block: BlockShape,
    dist: ScaleDist,
) -> Array2<f32> {
    let shape = (div_ceil(n, block.n as usize), div_ceil(k, block.k as usize));
    Array2::from_shape_fn(shape, |_| {
        let typical = 0.05 * 2f32.powf(-8.0 * r.gen::<f32>());
        match dist {
            ScaleDist::Typical => typical,
            ScaleDist::Extreme => match r.gen_range(0..8) {
                0 => 0.0,
                1 => 1.0e30,
                2 => 1.0e-30,
                3 => (2.0f64 - 2f64.powi(-20)) as f32,
                _ => typical,
            },
        }
    })
}

/// A random layer: W [n, k] with ~1/3 zeros and random block scales, in hardware format,
/// plus the f32 scales it was made from.
pub fn layer(
    seed: u64,
    n: usize,
    k: usize,
    block: BlockShape,
    mant_bits: u32,
    dist: ScaleDist,
) -> Result<(ScaledTernaryMatrix, Array2<f32>), OperandError> {
    let mut r = rng(seed);
    let trits = Array2::from_shape_fn((n, k), |_| trit(&mut r, 1.0 / 3.0));
    let scales = block_scales(&mut r, n, k, block, dist);
    let w = ScaledTernaryMatrix::from_f32_scales(trits, block, scales.view(), mant_bits)?;
    Ok((w, scales))
}

/// Random activations: f32 tokens [m, k] (roughly Gaussian with outliers), quantized.
pub fn acts(seed: u64, m: usize, k: usize, bits: u32) -> Result<QuantizedActs, OperandError> {
    let mut r = rng(seed ^ 0xa5a5_5a5a_0f0f_f0f0);
    let x = Array2::from_shape_fn((m, k), |_| {
        let g: f32 = (0..4).map(|_| r.gen::<f32>() - 0.5).sum();
        if r.gen_bool(0.01) {
            g * 20.0
        } else {
            g
        }
    });
    QuantizedActs::quantize(x.view(), bits)
}

/// Random activation codes over the whole `bits` range (extremes included), with
/// random positive token scales.
pub fn act_codes(seed: u64, m: usize, k: usize, bits: u32) -> QuantizedActs {
    let mut r = rng(seed ^ 0x0123_4567_89ab_cdef);
    let (lo, hi) = (crate::act::qmin(bits), crate::act::qmax(bits));
    let q = Array2::from_shape_fn((m, k), |_| match r.gen_range(0..10) {
        0 => lo as i8,
        1 => hi as i8,
        _ => r.gen_range(lo..=hi) as i8,
    });
    let scales = Array1::from_shape_fn(m, |_| 1.0 + 100.0 * r.gen::<f32>());
    QuantizedActs { bits, q, scales }
}
