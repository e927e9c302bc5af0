//! `tern2`: tern's hardware layout, 2 bits per trit.
//!
//! Code per trit: the 2-bit two's-complement code of [`crate::trit`] (0 → `00`, +1 → `01`,
//! -1 → `11`, `10` reserved). Trit `j` of a row lives in bits `[2(j%4)+1 : 2(j%4)]` of byte
//! `j/4` of that row; each row is padded independently with 0 trits to whole bytes, so the
//! row stride is ⌈K/4⌉ bytes and row `r` starts at byte `r·⌈K/4⌉`.
//!
//! ```text
//! byte j/4 of a row:  bit 7..6    5..4    3..2    1..0
//!                     t[4q+3] t[4q+2] t[4q+1] t[4q]
//! ```

use super::{Layout, PackError, Shape};
use crate::trit::{code_to_trit, trit_to_code};

const LAYOUT: Layout = Layout::Tern2;
const TRITS_PER_BYTE: usize = 4;

/// Bytes per row: ⌈K/4⌉.
pub(super) fn row_bytes(cols: usize) -> usize {
    cols.div_ceil(TRITS_PER_BYTE)
}

/// `trits` is N·K checked trits, `out` is N·⌈K/4⌉ zeroed bytes.
pub(super) fn pack(shape: Shape, trits: &[i8], out: &mut [u8]) {
    if shape.cols == 0 {
        return;
    }
    let stride = row_bytes(shape.cols);
    for (row, o) in trits
        .chunks_exact(shape.cols)
        .zip(out.chunks_exact_mut(stride))
    {
        for (j, &t) in row.iter().enumerate() {
            o[j / TRITS_PER_BYTE] |= trit_to_code(t) << (2 * (j % TRITS_PER_BYTE));
        }
    }
}

/// `bytes` is N·⌈K/4⌉ bytes, `trits` N·K zeroed trits. Refuses the reserved code `10`
/// anywhere and non-zero trits in the padding.
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
        for j in 0..stride * TRITS_PER_BYTE {
            let offset = r * stride + j / TRITS_PER_BYTE;
            let lo = 2 * (j % TRITS_PER_BYTE) as u32;
            let code = (b[j / TRITS_PER_BYTE] >> lo) & 0b11;
            let t = code_to_trit(code).map_err(|_| PackError::ReservedCode {
                layout: LAYOUT,
                offset,
                lo,
                code,
                legal: "00 = 0, 01 = +1, 11 = -1",
            })?;
            match row.get_mut(j) {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{pack, unpack};
    use super::*;

    /// Worked by hand from the definition: [+1, -1, 0, +1 | -1] →
    /// byte 0 = 01 (t3) 00 (t2) 11 (t1) 01 (t0) = 0b0100_1101, byte 1 = 11 (t4) = 0b11.
    #[test]
    fn golden_bytes() {
        let s = Shape::new(2, 5);
        let trits = [1, -1, 0, 1, -1, 0, 0, 0, 0, 1];
        let bytes = pack(LAYOUT, s, &trits, None).unwrap();
        assert_eq!(bytes, [0b0100_1101, 0b0000_0011, 0x00, 0b0000_0001]);
        assert_eq!(unpack(LAYOUT, s, &bytes).unwrap().trits, trits);
        // K = 4 has no padding: all -1 is 0xff.
        assert_eq!(
            pack(LAYOUT, Shape::new(1, 4), &[-1; 4], None).unwrap(),
            [0xff]
        );
    }

    #[test]
    fn reserved_code_is_refused() {
        // bits [3:2] of byte 1 hold 10.
        let e = unpack(LAYOUT, Shape::new(2, 3), &[0x00, 0b0000_1000]).unwrap_err();
        assert_eq!(
            e,
            PackError::ReservedCode {
                layout: LAYOUT,
                offset: 1,
                lo: 2,
                code: 0b10,
                legal: "00 = 0, 01 = +1, 11 = -1"
            }
        );
        let m = e.to_string();
        assert!(
            m.contains("tern2") && m.contains("byte offset 1") && m.contains("bits [3:2]"),
            "{m}"
        );
        assert!(m.contains("0b10"), "{m}");
    }

    #[test]
    fn padding_must_be_zero() {
        // K = 3: bits [7:6] are padding; 01 there is a +1.
        let e = unpack(LAYOUT, Shape::new(1, 3), &[0b0100_0000]).unwrap_err();
        assert_eq!(
            e,
            PackError::NonZeroPadding {
                layout: LAYOUT,
                offset: 0,
                row: 0,
                cols: 3,
                value: 1
            }
        );
        let m = e.to_string();
        assert!(
            m.contains("byte offset 0") && m.contains("row 0") && m.contains("col 3"),
            "{m}"
        );
    }
}
