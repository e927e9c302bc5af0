//! Activation quantization (docs/arithmetic.md §2): per-token absmax to `bits`-bit signed.
//!
//! For one token `x[0..K]` (f32), with `Qp = 2^(bits-1) - 1`:
//!
//! ```text
//! amax  = max_k |x_k|                    (f32)
//! s     = Qp / max(amax, 1e-5)           (f32 division, round to nearest)
//! q_k   = clamp(round_half_even(x_k · s), -(Qp+1), Qp)   (x_k · s is an f32 product)
//! ```
//!
//! This is BitNet b1.58's activation quantizer (transformers' `BitLinear`, `torch.round`
//! rounds half to even) evaluated in f32. The host keeps `s` to turn outputs back into floats.

use thiserror::Error;

/// Smallest absmax used, so an all-zero token gets a finite scale.
pub const AMAX_FLOOR: f32 = 1e-5;

/// Activation quantization problems.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ActError {
    #[error("activation [{token}, {index}] = {value} is not finite")]
    NotFinite {
        token: usize,
        index: usize,
        value: f32,
    },
    #[error(
        "activation code [{token}, {index}] = {value} is outside the {bits}-bit range {lo}..={hi}"
    )]
    OutOfRange {
        token: usize,
        index: usize,
        value: i32,
        bits: u32,
        lo: i32,
        hi: i32,
    },
}

/// Largest code for `bits`.
pub fn qmax(bits: u32) -> i32 {
    (1 << (bits - 1)) - 1
}

/// Smallest code for `bits`.
pub fn qmin(bits: u32) -> i32 {
    -(1 << (bits - 1))
}

/// Quantizes one token; returns the codes and the scale `s` (codes ≈ x · s).
pub fn quantize_token(x: &[f32], bits: u32, token: usize) -> Result<(Vec<i8>, f32), ActError> {
    let mut amax = 0.0f32;
    for (index, &v) in x.iter().enumerate() {
        if !v.is_finite() {
            return Err(ActError::NotFinite {
                token,
                index,
                value: v,
            });
        }
        amax = amax.max(v.abs());
    }
    let qp = qmax(bits);
    let s = qp as f32 / amax.max(AMAX_FLOOR);
    let (lo, hi) = (qmin(bits) as f32, qp as f32);
    let q = x
        .iter()
        .map(|&v| (v * s).round_ties_even().clamp(lo, hi) as i8)
        .collect();
    Ok((q, s))
}

/// Checks that codes fit `bits`.
pub fn check_codes(q: &[i8], bits: u32, token: usize) -> Result<(), ActError> {
    let (lo, hi) = (qmin(bits), qmax(bits));
    match q.iter().position(|&v| (v as i32) < lo || (v as i32) > hi) {
        None => Ok(()),
        Some(index) => Err(ActError::OutOfRange {
            token,
            index,
            value: q[index] as i32,
            bits,
            lo,
            hi,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absmax_maps_to_qmax() {
        let (q, s) = quantize_token(&[0.5, -1.0, 0.25, 0.0], 8, 0).unwrap();
        assert_eq!(s, 127.0);
        assert_eq!(q, vec![64, -127, 32, 0]); // 63.5 → 64 (half to even), 31.75 → 32
    }

    #[test]
    fn half_to_even() {
        // s = 127/127 = 1: 0.5 → 0, 1.5 → 2, 2.5 → 2, -0.5 → -0
        let (q, _) = quantize_token(&[127.0, 0.5, 1.5, 2.5, -0.5], 8, 0).unwrap();
        assert_eq!(q, vec![127, 0, 2, 2, 0]);
    }

    #[test]
    fn zero_token_and_small_widths() {
        let (q, s) = quantize_token(&[0.0; 4], 8, 0).unwrap();
        assert_eq!(q, vec![0; 4]);
        assert_eq!(s, 127.0 / 1e-5);
        let (q, _) = quantize_token(&[1.0, -1.0, 0.3], 4, 0).unwrap();
        assert_eq!(q, vec![7, -7, 2]);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            quantize_token(&[1.0, f32::NAN], 8, 3),
            Err(ActError::NotFinite {
                token: 3,
                index: 1,
                ..
            })
        ));
        let e = check_codes(&[0, -8, -9], 4, 0).unwrap_err();
        assert!(e.to_string().contains("[0, 2] = -9"), "{e}");
    }
}
