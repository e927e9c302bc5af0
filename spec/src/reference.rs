//! The bit-exact reference: the plainest integer implementation of ternary GEMM/GEMV with
//! per-block scales, exactly as docs/arithmetic.md defines it. Every other engine (RTL under
//! Verilator, rust-hdl simulation, card model, CPU kernels) is tested for equality with it.
//!
//! For a batch of M tokens (codes `a` [M, K]) and W [N, K] in blocks of `bn × bk`:
//!
//! ```text
//! p[t, n, kb]  = Σ_{k in block kb} pe(w[n, k], a[t, k])          (PE: add, sub or hold)
//! acc[t, n]    = Σ_kb p[t, n, kb] · mant[n / bn, kb]              (scaler, exact)
//! y[t, n]      = f32( f64(acc) · 2^(-exp[n / bn]) / f64(s[t]) )   (host, one rounding)
//! ```

use crate::config::ArrayConfig;
use crate::matrix::{OperandError, QuantizedActs, ScaledTernaryMatrix};
use crate::scale::{half_ulp, pow2};
use ndarray::{Array2, ArrayView2};

/// The processing element: a trit selects add, subtract or hold. No multiplier.
#[inline]
pub fn pe(acc: i64, w: i8, a: i8) -> i64 {
    match w {
        1 => acc + a as i64,
        -1 => acc - a as i64,
        _ => acc,
    }
}

/// Checks that W and the activations agree on K.
fn check_k(w: &ScaledTernaryMatrix, a: ArrayView2<i8>) -> Result<(), OperandError> {
    if a.ncols() != w.k() {
        return Err(OperandError::Shape {
            what: "activations",
            got: a.shape().to_vec(),
            expected: vec![a.nrows(), w.k()],
        });
    }
    Ok(())
}

/// One block's partial sum p[t, n, kb].
pub fn block_psum(
    w: &ScaledTernaryMatrix,
    a: ArrayView2<i8>,
    t: usize,
    n: usize,
    kb: usize,
) -> i64 {
    let bk = w.block.k as usize;
    let k0 = kb * bk;
    let k1 = (k0 + bk).min(w.k());
    let mut p = 0i64;
    for k in k0..k1 {
        p = pe(p, w.trits[(n, k)], a[(t, k)]);
    }
    p
}

/// Integer GEMM: acc [M, N] (each value fits `acc_bits` of any config the operands fit).
pub fn gemm_acc(w: &ScaledTernaryMatrix, a: ArrayView2<i8>) -> Result<Array2<i64>, OperandError> {
    check_k(w, a)?;
    let (m, n) = (a.nrows(), w.n());
    let bn = w.block.n as usize;
    let kblocks = w.mants.ncols();
    let mut acc = Array2::<i64>::zeros((m, n));
    for t in 0..m {
        for o in 0..n {
            let mut s = 0i64;
            for kb in 0..kblocks {
                s += block_psum(w, a, t, o, kb) * w.mants[(o / bn, kb)] as i64;
            }
            acc[(t, o)] = s;
        }
    }
    Ok(acc)
}

/// The host's conversion of one output to f32 (docs/arithmetic.md §6).
#[inline]
pub fn output_to_f32(acc: i64, exp: i16, act_scale: f32) -> f32 {
    ((acc as f64) * pow2(-(exp as i64)) / act_scale as f64) as f32
}

/// Converts a whole acc [M, N] to f32 outputs.
pub fn dequantize(acc: &Array2<i64>, w: &ScaledTernaryMatrix, acts: &QuantizedActs) -> Array2<f32> {
    let bn = w.block.n as usize;
    Array2::from_shape_fn(acc.dim(), |(t, o)| {
        output_to_f32(acc[(t, o)], w.exps[o / bn], acts.scales[t])
    })
}

/// The reference result of one GEMM.
#[derive(Debug, Clone, PartialEq)]
pub struct GemmResult {
    /// Exact integer outputs, [M, N].
    pub acc: Array2<i64>,
    /// Host f32 outputs, [M, N].
    pub y: Array2<f32>,
}

/// GEMM with a config check: refuses operands the array cannot run.
pub fn gemm(
    cfg: &ArrayConfig,
    w: &ScaledTernaryMatrix,
    acts: &QuantizedActs,
) -> Result<GemmResult, OperandError> {
    w.check_fits(cfg)?;
    if acts.bits > cfg.activation.bits {
        return Err(OperandError::Range {
            what: "activation bits",
            value: acts.bits.to_string(),
            legal: format!(
                "≤ {} (activation.bits of config {})",
                cfg.activation.bits, cfg.name
            ),
        });
    }
    let acc = gemm_acc(w, acts.q.view())?;
    let y = dequantize(&acc, w, acts);
    Ok(GemmResult { acc, y })
}

/// Wrapping 64-bit FNV-1a checksum of an integer output (little-endian i64 words):
/// a short fingerprint to compare runs.
pub fn checksum(acc: &Array2<i64>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in acc.iter() {
        for b in v.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The float view: f64 dequantized weights (original f32 block scales) × quantized
/// activations, divided by the token scale. [M, N]
pub fn float_view(
    w: &ScaledTernaryMatrix,
    scales_f32: ArrayView2<f32>,
    acts: &QuantizedActs,
) -> Array2<f64> {
    let (bn, bk) = (w.block.n as usize, w.block.k as usize);
    Array2::from_shape_fn((acts.m(), w.n()), |(t, o)| {
        let mut s = 0.0f64;
        for k in 0..w.k() {
            let wf = w.trits[(o, k)] as f64 * scales_f32[(o / bn, k / bk)] as f64;
            s += wf * acts.q[(t, k)] as f64;
        }
        s / acts.scales[t] as f64
    })
}

/// The bound the contract states on |y - float_view| for every output (docs/arithmetic.md §8):
///
/// ```text
/// e_scale = 2^(-E-1) · Σ_k |w[n,k]·q[t,k]| / s[t]          (block-scale rounding)
/// e_f64   = K · 2^-52 · s_max(row) · Σ_k |w q| / s[t]         (f64 summation in the view)
/// bound   = e_scale + e_f64 + 2^-23 · (|view| + e_scale + e_f64)   (f32 output rounding)
/// ```
pub fn error_bound(
    w: &ScaledTernaryMatrix,
    scales_f32: ArrayView2<f32>,
    acts: &QuantizedActs,
    view: &Array2<f64>,
) -> Array2<f64> {
    let bn = w.block.n as usize;
    Array2::from_shape_fn((acts.m(), w.n()), |(t, o)| {
        let abs_sum: f64 = (0..w.k())
            .map(|k| (w.trits[(o, k)] as f64 * acts.q[(t, k)] as f64).abs())
            .sum();
        let st = acts.scales[t] as f64;
        let smax = scales_f32
            .row(o / bn)
            .iter()
            .fold(0.0f64, |m, &s| m.max(s as f64));
        let e_scale = half_ulp(w.exps[o / bn]) * abs_sum / st;
        let e_f64 = w.k() as f64 * pow2(-52) * smax * abs_sum / st;
        e_scale + e_f64 + pow2(-23) * (view[(t, o)].abs() + e_scale + e_f64)
    })
}

/// Multiply-accumulate count of a GEMM (every trit × every token, zeros included).
pub fn macs(m: usize, n: usize, k: usize) -> u64 {
    m as u64 * n as u64 * k as u64
}
