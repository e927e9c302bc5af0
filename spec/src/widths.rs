//! Datapath widths and the no-overflow proof (docs/arithmetic.md §5).
//!
//! Every width here is the smallest two's-complement width that holds the largest
//! magnitude any legal input can produce; `ArrayConfig` refuses narrower ones.
//!
//! * activation `a`: `bits`-bit signed, `a ∈ [-2^(bits-1), 2^(bits-1) - 1]`, so `|a| ≤ 2^(bits-1)`.
//! * block partial sum `p = Σ_{k in block} w_k·a_k` over at most `block_k` terms,
//!   `|w_k| ≤ 1`: `|p| ≤ block_k · 2^(bits-1)`.
//! * scaled block `p·m` with an unsigned mantissa `m ≤ 2^mant_bits - 1`.
//! * output accumulator `acc = Σ_blocks p_b·m_b`. Every weight belongs to exactly one
//!   block, so `|acc| ≤ Σ_k |a_k|·m_max ≤ K · 2^(bits-1) · (2^mant_bits - 1)` for `K ≤ max_k`.

/// Smallest signed width `w` with `-(2^(w-1)) ≤ -mag` and `mag ≤ 2^(w-1) - 1`.
pub fn signed_bits_for_magnitude(mag: u128) -> u32 {
    // need 2^(w-1) - 1 >= mag  <=>  2^(w-1) > mag
    let mut w = 1u32;
    while w < 128 && (1u128 << (w - 1)) <= mag {
        w += 1;
    }
    w
}

/// Largest |activation|: 2^(bits-1) (the most negative code).
pub fn max_abs_activation(act_bits: u32) -> u128 {
    1u128 << (act_bits - 1)
}

/// Largest |p| of one block partial sum.
pub fn max_abs_psum(block_k: u64, act_bits: u32) -> u128 {
    block_k as u128 * max_abs_activation(act_bits)
}

/// Required width of the block partial-sum register (PE accumulator).
pub fn required_psum_bits(block_k: u64, act_bits: u32) -> u32 {
    signed_bits_for_magnitude(max_abs_psum(block_k, act_bits))
}

/// Largest scale mantissa.
pub fn max_mantissa(mant_bits: u32) -> u128 {
    (1u128 << mant_bits) - 1
}

/// Required width of the scaler's product `p·m` (one block, scaled).
pub fn required_product_bits(block_k: u64, act_bits: u32, mant_bits: u32) -> u32 {
    signed_bits_for_magnitude(max_abs_psum(block_k, act_bits) * max_mantissa(mant_bits))
}

/// Largest |acc| for a reduction of length `k`.
pub fn max_abs_acc(k: u64, act_bits: u32, mant_bits: u32) -> u128 {
    k as u128 * max_abs_activation(act_bits) * max_mantissa(mant_bits)
}

/// Required width of the output accumulator for reductions up to `max_k`.
pub fn required_acc_bits(max_k: u64, act_bits: u32, mant_bits: u32) -> u32 {
    signed_bits_for_magnitude(max_abs_acc(max_k, act_bits, mant_bits))
}

/// Bits of an unsigned counter that counts 0..=n.
pub fn counter_bits(n: u64) -> u32 {
    64 - n.leading_zeros().min(63)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_bits() {
        assert_eq!(signed_bits_for_magnitude(0), 1);
        assert_eq!(signed_bits_for_magnitude(1), 2);
        assert_eq!(signed_bits_for_magnitude(127), 8);
        assert_eq!(signed_bits_for_magnitude(128), 9);
        // 64 × 128 = 8192 needs 15 bits: 2^14 - 1 = 16383 ≥ 8192 > 2^13 - 1.
        assert_eq!(required_psum_bits(64, 8), 15);
        assert_eq!(required_psum_bits(1, 4), 5);
    }

    #[test]
    fn default_acc_width() {
        // 32768 · 128 · 65535 = 2^15 · 2^7 · (2^16 - 1) < 2^38 → 39 bits.
        assert_eq!(required_acc_bits(32768, 8, 16), 39);
        assert_eq!(required_product_bits(64, 8, 16), 30);
    }

    #[test]
    fn counters() {
        assert_eq!(counter_bits(1), 1);
        assert_eq!(counter_bits(255), 8);
        assert_eq!(counter_bits(256), 9);
    }
}
