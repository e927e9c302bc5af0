//! Block-scale format (docs/arithmetic.md §4).
//!
//! A block row (the `block.n` output rows that share a row of blocks) has one exponent
//! `E` (i16, host side) and each of its blocks an unsigned mantissa `m` of `mantissa_bits`:
//!
//! ```text
//! scale(block) = m · 2^(-E)
//! ```
//!
//! Conversion from f32 (`quantize_block_row`): with `s_max` the largest scale in the row,
//! `E = mantissa_bits - 1 - floor(log2 s_max)` puts `s_max · 2^E` in `[2^(mb-1), 2^mb)`;
//! each `m = round_half_even(s · 2^E)` (exact in f64: scaling by a power of two is exact).
//! If `s_max` rounds up to `2^mb`, `E` is lowered by one and the row is redone.
//! An all-zero row has `E = 0` and all `m = 0`.
//!
//! Error bound: `|m·2^(-E) - s| ≤ 2^(-E-1) ≤ s_max / (2^mantissa_bits - 1)`. (Normally
//! `s_max·2^E ≥ 2^(mb-1)` gives `2^(-E-1) ≤ s_max·2^(-mb)`; when `s_max` rounded up and `E`
//! was lowered, `s_max·2^E ≥ 2^(mb-1) - 1/2`, hence the `- 1`.)

use thiserror::Error;

/// Problems converting float scales.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ScaleError {
    #[error("block scale [{row}, {col}] = {value} is not a finite number ≥ 0")]
    Invalid { row: usize, col: usize, value: f64 },
    #[error("block scale [{row}, {col}] = {value} makes the exponent {exp} leave the i16 range")]
    ExponentRange {
        row: usize,
        col: usize,
        value: f64,
        exp: i64,
    },
    #[error("mantissa {mant} at block [{row}, {col}] exceeds 2^{mant_bits} - 1")]
    MantissaRange {
        row: usize,
        col: usize,
        mant: u64,
        mant_bits: u32,
    },
}

/// One block row's scales in hardware format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowScales {
    /// Host-side exponent: scale = m · 2^(-exp).
    pub exp: i16,
    /// One unsigned mantissa per block of the row.
    pub mants: Vec<u32>,
}

/// floor(log2 x) of a positive finite f64, exactly.
pub fn floor_log2(x: f64) -> i64 {
    debug_assert!(x > 0.0 && x.is_finite());
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    if exp == 0 {
        // subnormal: value = frac · 2^-1074
        let frac = bits & ((1u64 << 52) - 1);
        (63 - frac.leading_zeros() as i64) - 1074
    } else {
        exp - 1023
    }
}

/// 2^e as f64: exact for -1074 ≤ e ≤ 1023, 0 below, +∞ above.
pub fn pow2(e: i64) -> f64 {
    if e > 1023 {
        f64::INFINITY
    } else if e < -1074 {
        0.0
    } else if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (e + 1074))
    }
}

/// Converts one block row of f32 scales (already known to be finite and ≥ 0) to hardware
/// format. `row` is only used in error messages.
pub fn quantize_block_row(
    scales: &[f32],
    mant_bits: u32,
    row: usize,
) -> Result<RowScales, ScaleError> {
    for (col, &s) in scales.iter().enumerate() {
        if !(s.is_finite() && s >= 0.0) {
            return Err(ScaleError::Invalid {
                row,
                col,
                value: s as f64,
            });
        }
    }
    let (argmax, smax) = scales
        .iter()
        .enumerate()
        .fold((0usize, 0.0f64), |(bi, bv), (i, &s)| {
            if (s as f64) > bv {
                (i, s as f64)
            } else {
                (bi, bv)
            }
        });
    if smax == 0.0 {
        return Ok(RowScales {
            exp: 0,
            mants: vec![0; scales.len()],
        });
    }
    let mut e = mant_bits as i64 - 1 - floor_log2(smax);
    let limit = 1u64 << mant_bits;
    loop {
        if e < i16::MIN as i64 || e > i16::MAX as i64 {
            return Err(ScaleError::ExponentRange {
                row,
                col: argmax,
                value: smax,
                exp: e,
            });
        }
        let p = pow2(e);
        let mants: Vec<u64> = scales
            .iter()
            .map(|&s| (s as f64 * p).round_ties_even() as u64)
            .collect();
        if mants.iter().any(|&m| m >= limit) {
            e -= 1;
            continue;
        }
        return Ok(RowScales {
            exp: e as i16,
            mants: mants.into_iter().map(|m| m as u32).collect(),
        });
    }
}

/// The value a hardware scale stands for, m · 2^(-exp), in f64 (exact).
pub fn scale_value(mant: u32, exp: i16) -> f64 {
    mant as f64 * pow2(-(exp as i64))
}

/// Half a unit in the last place of the row's mantissas: the bound on
/// `|m·2^(-E) - s|` for every block of the row.
pub fn half_ulp(exp: i16) -> f64 {
    pow2(-(exp as i64) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_and_pow2() {
        for e in [-1074i64, -1060, -1022, -1, 0, 1, 52, 1023] {
            assert_eq!(floor_log2(pow2(e)), e, "{e}");
        }
        assert_eq!(floor_log2(3.0), 1);
        assert_eq!(floor_log2(0.75), -1);
    }

    #[test]
    fn max_scale_uses_full_mantissa() {
        let r = quantize_block_row(&[1.0, 0.5, 0.0, 0.3], 16, 0).unwrap();
        assert_eq!(r.exp, 15);
        assert_eq!(r.mants[0], 32768);
        assert_eq!(r.mants[1], 16384);
        assert_eq!(r.mants[2], 0);
        assert_eq!(
            r.mants[3],
            (0.3f32 as f64 * 32768.0).round_ties_even() as u32
        );
    }

    #[test]
    fn rounding_up_to_limit_lowers_exponent() {
        // 2 - 2^-20 sits just under 2: with 8 bits, e = 7 gives 255.99… → 256 → e = 6.
        let s = (2.0f64 - pow2(-20)) as f32;
        let r = quantize_block_row(&[s], 8, 0).unwrap();
        assert_eq!(r.exp, 6);
        assert_eq!(r.mants[0], 128);
    }

    #[test]
    fn error_bound_holds_on_extremes() {
        for &s in &[f32::MAX, f32::MIN_POSITIVE, 1e-45, 1.0, 3.3e-7, 65504.0] {
            let row = [s, s / 3.0, s / 1000.0];
            let r = quantize_block_row(&row, 16, 0).unwrap();
            for (i, &x) in row.iter().enumerate() {
                let err = (scale_value(r.mants[i], r.exp) - x as f64).abs();
                assert!(err <= half_ulp(r.exp), "{s} {i}");
                assert!(half_ulp(r.exp) <= s as f64 / 65535.0, "{s}");
            }
        }
    }

    #[test]
    fn bad_scales_are_named() {
        let e = quantize_block_row(&[1.0, -2.0], 16, 7).unwrap_err();
        assert_eq!(
            e,
            ScaleError::Invalid {
                row: 7,
                col: 1,
                value: -2.0
            }
        );
        assert!(quantize_block_row(&[f32::NAN], 16, 0).is_err());
        assert!(quantize_block_row(&[f32::INFINITY], 16, 0).is_err());
        assert_eq!(quantize_block_row(&[0.0, 0.0], 16, 0).unwrap().exp, 0);
    }
}
