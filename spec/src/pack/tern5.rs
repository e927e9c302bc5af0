//! `tern5`: tern's dense storage layout, 5 trits per byte (1.6 bits per trit).
//!
//! Trits `5q .. 5q+4` of a row form byte `q` of that row:
//! `v = Σ_{i=0..4} (t_{5q+i} + 1) · 3^i` (the lowest-index trit is the least significant
//! base-3 digit), so v ∈ 0..=242. Values 243..=255 are invalid. Each row is padded
//! independently with 0 trits (digit 1), so the row stride is ⌈K/5⌉ bytes.
//!
//! Note the digit order is the opposite of GGUF TQ1_0's (which puts the first trit in the
//! most significant digit) and tern5 needs no ceiling trick: it is read by division.

use super::{Layout, PackError, Shape};

const LAYOUT: Layout = Layout::Tern5;
const TRITS_PER_BYTE: usize = 5;
/// Largest valid byte: 3^5 - 1.
const MAX_BYTE: u8 = 242;

/// Bytes per row: ⌈K/5⌉.
pub(super) fn row_bytes(cols: usize) -> usize {
    cols.div_ceil(TRITS_PER_BYTE)
}

/// `trits` is N·K checked trits, `out` is N·⌈K/5⌉ bytes.
pub(super) fn pack(shape: Shape, trits: &[i8], out: &mut [u8]) {
    if shape.cols == 0 {
        return;
    }
    let stride = row_bytes(shape.cols);
    for (row, o) in trits
        .chunks_exact(shape.cols)
        .zip(out.chunks_exact_mut(stride))
    {
        for (q, byte) in o.iter_mut().enumerate() {
            // Horner from the most significant digit (i = 4) down; padding trits are 0.
            let mut v: u8 = 0;
            for i in (0..TRITS_PER_BYTE).rev() {
                let t = row.get(q * TRITS_PER_BYTE + i).copied().unwrap_or(0);
                v = v * 3 + (t + 1) as u8;
            }
            *byte = v;
        }
    }
}

/// `bytes` is N·⌈K/5⌉ bytes, `trits` N·K zeroed trits. Refuses bytes above 242 and non-zero
/// trits in the padding.
pub(super) fn unpack(shape: Shape, bytes: &[u8], trits: &mut [i8]) -> Result<(), PackError> {
    let Shape { cols, .. } = shape;
    if cols == 0 {
        return Ok(());
    }
    let stride = row_bytes(cols);
    for (r, (row, b)) in trits
        .chunks_exact_mut(cols)
        .zip(bytes.chunks_exact(stride))
        .enumerate()
    {
        for (q, &value) in b.iter().enumerate() {
            let offset = r * stride + q;
            if value > MAX_BYTE {
                return Err(PackError::InvalidBase3 {
                    layout: LAYOUT,
                    offset,
                    value,
                    legal: "0..=242",
                });
            }
            let mut v = value;
            for i in 0..TRITS_PER_BYTE {
                let t = (v % 3) as i8 - 1;
                v /= 3;
                match row.get_mut(q * TRITS_PER_BYTE + i) {
                    Some(slot) => *slot = t,
                    None if t != 0 => {
                        return Err(PackError::NonZeroPadding {
                            layout: LAYOUT,
                            offset,
                            row: r,
                            cols,
                            value: t,
                        })
                    }
                    None => {}
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{pack, unpack};
    use super::*;

    /// Worked by hand: digits (t+1) of [+1, -1, 0, +1, -1] are 2, 0, 1, 2, 0 →
    /// 2 + 0·3 + 1·9 + 2·27 + 0·81 = 65. All -1 → 0, all +1 → 242.
    /// A lone +1 with four padding zeros: 2 + 1·3 + 1·9 + 1·27 + 1·81 = 122.
    #[test]
    fn golden_bytes() {
        let s = Shape::new(1, 5);
        assert_eq!(pack(LAYOUT, s, &[1, -1, 0, 1, -1], None).unwrap(), [65]);
        assert_eq!(pack(LAYOUT, s, &[-1; 5], None).unwrap(), [0]);
        assert_eq!(pack(LAYOUT, s, &[1; 5], None).unwrap(), [242]);
        assert_eq!(pack(LAYOUT, s, &[0; 5], None).unwrap(), [121]);
        let s = Shape::new(2, 6);
        let trits = [1, -1, 0, 1, -1, 1, 0, 0, 0, 0, 0, -1];
        let bytes = pack(LAYOUT, s, &trits, None).unwrap();
        // Row 1: [0,0,0,0,0] = 121, then [-1 + 4 pads] = 0 + 3 + 9 + 27 + 81 = 120.
        assert_eq!(bytes, [65, 122, 121, 120]);
        assert_eq!(unpack(LAYOUT, s, &bytes).unwrap().trits, trits);
    }

    #[test]
    fn invalid_byte_is_refused() {
        for value in 243..=255u8 {
            let e = unpack(LAYOUT, Shape::new(2, 5), &[0, value]).unwrap_err();
            assert_eq!(
                e,
                PackError::InvalidBase3 {
                    layout: LAYOUT,
                    offset: 1,
                    value,
                    legal: "0..=242"
                }
            );
            let m = e.to_string();
            assert!(m.contains("tern5") && m.contains("byte offset 1"), "{m}");
            assert!(
                m.contains(&format!("value {value}")) && m.contains("0..=242"),
                "{m}"
            );
        }
    }

    #[test]
    fn padding_must_be_zero() {
        // K = 1: digits 1..4 are padding. 2 + 0·3 + ... has a -1 in digit 1.
        let e = unpack(LAYOUT, Shape::new(1, 1), &[2 + 9 + 27 + 81]).unwrap_err();
        assert_eq!(
            e,
            PackError::NonZeroPadding {
                layout: LAYOUT,
                offset: 0,
                row: 0,
                cols: 1,
                value: -1
            }
        );
    }

    #[test]
    fn every_valid_byte_round_trips() {
        for v in 0..=MAX_BYTE {
            let u = unpack(LAYOUT, Shape::new(1, 5), &[v]).unwrap();
            assert_eq!(pack(LAYOUT, Shape::new(1, 5), &u.trits, None).unwrap(), [v]);
        }
    }
}
