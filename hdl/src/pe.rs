//! The processing elements: ternary products without a multiplier, two columns at a time.
//!
//! A trit code (bit 0 = non-zero, bit 1 = negative; `10` is reserved and acts as 0) selects
//! add, subtract or hold of an activation. The lane pairs its columns `(2i, 2i+1)`: the
//! *leader* `a` and the *follower* `b`. Their two products are formed as one signed value
//! `(-1)^s · R` (the tree's sign-factored form, [`crate::tree`]):
//!
//! ```text
//! q = nz_a ? x_a : 0              leader register (flip-flop with synchronous reset)
//! s = neg_a                       leader sign
//! t = nz_b ? (-1)^(s ^ neg_b) : 0 follower weight relative to the leader
//! R = q + t·x_b                   one adder: q + (nz_b & (x_b ^ {s ^ neg_b})) + (nz_b & (s ^ neg_b))
//! (-1)^s · R = w_a·x_a + w_b·x_b
//! ```
//!
//! The follower's product is a one's complement with its +1 correction as the adder's carry-in,
//! so a negation costs no adder of its own; the leader costs no logic at all (its zero is the
//! register's synchronous reset). The identity holds for every code pair, reserved ones
//! included: a zero leader has `q = 0` and its sign cancels, `(-1)^s · t = w_b`.

use crate::vlog::{to_pattern, wrap_signed};

/// The lead stage's contents for one column pair, as numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairIn {
    /// Leader register: `nz_a ? x_a : 0`.
    pub q: i64,
    /// Leader sign (`neg_a`).
    pub s: bool,
    /// Follower activation (zero when there is no follower).
    pub xb: i64,
    pub nzb: bool,
    pub ngb: bool,
}

impl PairIn {
    /// The pair's lead-stage registers for trit codes `code_a`, `code_b` (bit 0 non-zero,
    /// bit 1 negative) and activations `xa`, `xb`.
    pub fn of(code_a: u64, xa: i64, follower: Option<(u64, i64)>) -> Self {
        let (code_b, xb) = follower.unwrap_or((0, 0));
        PairIn {
            q: if code_a & 1 == 1 { xa } else { 0 },
            s: code_a & 2 == 2,
            xb,
            nzb: code_b & 1 == 1,
            ngb: code_b & 2 == 2,
        }
    }
}

/// The pair's adder: `R = q + t·x_b` (wrapped to `width` bits) and its sign `s`.
pub fn pair_node(p: &PairIn, width: u32) -> (i64, bool) {
    let t = if !p.nzb {
        0
    } else if p.s ^ p.ngb {
        -1
    } else {
        1
    };
    (wrap_signed((p.q + t * p.xb) as i128, width), p.s)
}

/// The signed value a `(R, s)` pair stands for.
pub fn signed_value(r: i64, s: bool) -> i64 {
    if s {
        -r
    } else {
        r
    }
}

/// The product one PE stands for: `w·x` for a trit code (reserved `10` = 0).
pub fn pe_value(code: u64, act: i64) -> i64 {
    match code & 3 {
        1 => act,
        3 => -act,
        _ => 0,
    }
}

/// Bit pattern of an activation value.
pub fn act_pattern(a: i64, a_bits: u32) -> u64 {
    to_pattern(a, a_bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::node_width;
    use tern_spec::reference::pe;
    use tern_spec::trit::trit_to_code;

    /// Exhaustive for A = 4..=6 (every code pair, reserved included, × every activation pair)
    /// and on the extremes for A = 7, 8: the pair is exact and its `R` fits the level-1 width.
    #[test]
    fn pairs_are_exact() {
        for a_bits in 4..=8u32 {
            let lo = -(1i64 << (a_bits - 1));
            let hi = (1i64 << (a_bits - 1)) - 1;
            let acts: Vec<i64> = if a_bits <= 6 {
                (lo..=hi).collect()
            } else {
                vec![lo, lo + 1, -1, 0, 1, hi - 1, hi]
            };
            let w = node_width(2, a_bits);
            for ca in 0..4u64 {
                for cb in 0..4u64 {
                    for &xa in &acts {
                        for &xb in &acts {
                            let p = PairIn::of(ca, xa, Some((cb, xb)));
                            let (r, s) = pair_node(&p, 64);
                            assert_eq!(wrap_signed(r as i128, w), r, "R fits {w} bits");
                            assert_eq!(
                                signed_value(r, s),
                                pe_value(ca, xa) + pe_value(cb, xb),
                                "codes {ca} {cb} acts {xa} {xb}"
                            );
                        }
                    }
                    // a leader without follower
                    for &xa in &acts {
                        let (r, s) = pair_node(&PairIn::of(ca, xa, None), a_bits);
                        assert_eq!(signed_value(r, s), pe_value(ca, xa));
                    }
                }
            }
        }
    }

    /// The trit codes and `pe_value` are the reference's: every trit × every int8 activation.
    #[test]
    fn pe_value_matches_reference_pe() {
        for a in -128i64..=127 {
            for w in -1i8..=1 {
                let code = trit_to_code(w) as u64;
                assert_eq!(pe_value(code, a), pe(0, w, a as i8), "w={w} a={a}");
            }
            assert_eq!(pe_value(0b10, a), 0, "reserved");
            assert_eq!(act_pattern(a, 8), (a as u8) as u64);
        }
    }
}
