//! Trits: the ternary weight values {-1, 0, +1} and their 2-bit hardware code.
//!
//! In software a trit is an `i8` holding -1, 0 or +1 (the "unpacked" layout).
//! In hardware a trit is a 2-bit two's-complement code (see docs/arithmetic.md §1):
//!
//! | trit | code (bits [1:0]) |
//! |------|-------------------|
//! |  0   | `00`              |
//! | +1   | `01`              |
//! | -1   | `11`              |
//! |  —   | `10` reserved: never produced; the host refuses it, the PE treats it as 0 |
//!
//! Bit 0 is "non-zero", bit 1 is "negative": a PE computes
//! `acc + (nz ? (neg ? -a : a) : 0)` with no multiplier.

use thiserror::Error;

/// Number of bits of one trit in the hardware code.
pub const TRIT_CODE_BITS: u32 = 2;

/// The 2-bit hardware code of a trit.
///
/// # Errors
/// None: every `i8` in {-1, 0, 1} has a code; callers holding unchecked data use
/// [`check_trit`] first.
#[inline]
pub fn trit_to_code(t: i8) -> u8 {
    (t as u8) & 0b11
}

/// Decodes a 2-bit hardware code. `0b10` is reserved and rejected.
#[inline]
pub fn code_to_trit(code: u8) -> Result<i8, TritError> {
    match code & 0b11 {
        0b00 => Ok(0),
        0b01 => Ok(1),
        0b11 => Ok(-1),
        _ => Err(TritError::ReservedCode { code }),
    }
}

/// Checks that a value is a legal trit.
#[inline]
pub fn check_trit(v: i8) -> Result<i8, TritError> {
    if (-1..=1).contains(&v) {
        Ok(v)
    } else {
        Err(TritError::NotATrit { value: v as i64 })
    }
}

/// Checks a whole slice of trits, naming the first bad index.
pub fn check_trits(ts: &[i8]) -> Result<(), TritError> {
    match ts.iter().position(|&t| !(-1..=1).contains(&t)) {
        None => Ok(()),
        Some(i) => Err(TritError::NotATritAt {
            index: i,
            value: ts[i] as i64,
        }),
    }
}

/// Errors about single trits.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TritError {
    #[error("value {value} is not a trit (legal: -1, 0, +1)")]
    NotATrit { value: i64 },
    #[error("element {index} has value {value}, which is not a trit (legal: -1, 0, +1)")]
    NotATritAt { index: usize, value: i64 },
    #[error("2-bit code {code:#04b} is reserved (legal codes: 00 = 0, 01 = +1, 11 = -1)")]
    ReservedCode { code: u8 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for t in -1i8..=1 {
            assert_eq!(code_to_trit(trit_to_code(t)).unwrap(), t);
        }
        assert_eq!(trit_to_code(0), 0b00);
        assert_eq!(trit_to_code(1), 0b01);
        assert_eq!(trit_to_code(-1), 0b11);
        assert!(code_to_trit(0b10).is_err());
    }

    #[test]
    fn check_names_index() {
        let e = check_trits(&[0, 1, -1, 2]).unwrap_err();
        assert_eq!(e, TritError::NotATritAt { index: 3, value: 2 });
        assert!(e.to_string().contains("element 3"));
    }
}
