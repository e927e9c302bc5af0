//! `hf`: Hugging Face transformers BitNet packed weight (`quantization_config.quant_method =
//! "bitnet"`), a `uint8` tensor of shape `[N/4, K]`, row-major.
//!
//! Verified against huggingface/transformers `src/transformers/integrations/bitnet.py`
//! (`VALUES_PER_ITEM = 4`, `pack_weights`, `unpack_weights` and its docstring example,
//! `BitLinear.__init__` registering `weight` as `(out_features // 4, in_features)` uint8):
//!
//! - Packing runs along dim 0 (output rows): with Q = N/4, byte `(r, c)` (offset `r·K + c`)
//!   holds `W[r + i·Q, c] + 1` in bits `[2i+1 : 2i]`, i = 0..3 (i = 0 in the low bits).
//! - Code: 0 = −1, 1 = 0, 2 = +1 (`unpack_weights` subtracts 1; code 3 would give +2 and
//!   is never written; tern refuses it).
//! - N % 4 == 0: `BitLinear` allocates exactly `N // 4` rows, and `unpack_weights` always
//!   returns `4·(N/4)` rows (`pack_weights` rounds up, which `BitLinear` cannot load).
//! - The scale is a separate tensor `weight_scale` (shape `[1]`), not part of these bytes.

use super::{offset_code, offset_trit, Layout, PackError, Shape};

const LAYOUT: Layout = Layout::Hf;
/// N must be a multiple of this (4 values per byte along dim 0).
pub(super) const ROWS_MULTIPLE: usize = 4;

/// `trits` is N·K checked trits (N % 4 == 0), `out` (N/4)·K zeroed bytes (`[N/4, K]`).
pub(super) fn pack(shape: Shape, trits: &[i8], out: &mut [u8]) {
    let Shape { rows, cols } = shape;
    if cols == 0 {
        return;
    }
    let q = rows / ROWS_MULTIPLE;
    for (r, o) in out.chunks_exact_mut(cols).enumerate() {
        for i in 0..ROWS_MULTIPLE {
            let src = &trits[(r + i * q) * cols..][..cols];
            for (byte, &t) in o.iter_mut().zip(src) {
                *byte |= offset_code(t) << (2 * i);
            }
        }
    }
}

/// `bytes` is (N/4)·K bytes (`[N/4, K]`), `trits` N·K zeroed trits.
pub(super) fn unpack(shape: Shape, bytes: &[u8], trits: &mut [i8]) -> Result<(), PackError> {
    let Shape { rows, cols } = shape;
    if cols == 0 {
        return Ok(());
    }
    let q = rows / ROWS_MULTIPLE;
    for (r, b) in bytes.chunks_exact(cols).enumerate() {
        for i in 0..ROWS_MULTIPLE {
            let lo = 2 * i as u32;
            let dst = &mut trits[(r + i * q) * cols..][..cols];
            for (c, (slot, &byte)) in dst.iter_mut().zip(b).enumerate() {
                *slot = offset_trit(LAYOUT, (byte >> lo) & 0b11, r * cols + c, lo)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{pack, unpack, Shape, OFFSET_CODE_LEGAL};
    use super::*;

    /// The example in the `unpack_weights` docstring of transformers' integrations/bitnet.py:
    /// packed `[[0b10100001, 0b00011000], [0b10010000, 0b00001010]]` (shape [2, 2]) unpacks to
    /// the 8×2 matrix below.
    #[test]
    fn golden_bytes_from_upstream_docstring() {
        let packed = [0b1010_0001, 0b0001_1000, 0b1001_0000, 0b0000_1010];
        #[rustfmt::skip]
        let w = [
            0, -1,
            -1, 1,
            -1, 1,
            -1, 1,
            1, 0,
            0, -1,
            1, -1,
            1, -1,
        ];
        let s = Shape::new(8, 2);
        assert_eq!(unpack(LAYOUT, s, &packed).unwrap().trits, w);
        assert_eq!(pack(LAYOUT, s, &w, None).unwrap(), packed);
    }

    #[test]
    fn reserved_code_is_refused() {
        // [4, 3]: byte (0, 2) bits [7:6] = 11.
        let s = Shape::new(4, 3);
        let e = unpack(LAYOUT, s, &[0x55, 0x55, 0b1101_0101]).unwrap_err();
        assert_eq!(
            e,
            PackError::ReservedCode {
                layout: LAYOUT,
                offset: 2,
                lo: 6,
                code: 3,
                legal: OFFSET_CODE_LEGAL
            }
        );
        let m = e.to_string();
        assert!(
            m.contains("hf") && m.contains("byte offset 2") && m.contains("[7:6]"),
            "{m}"
        );
    }

    #[test]
    fn rows_must_be_a_multiple_of_4() {
        let e = pack(LAYOUT, Shape::new(6, 2), &[0; 12], None).unwrap_err();
        assert_eq!(
            e,
            PackError::RowsNotMultiple {
                layout: LAYOUT,
                rows: 6,
                multiple: 4
            }
        );
        let m = e.to_string();
        assert!(
            m.contains("hf") && m.contains("rows (N) = 6") && m.contains("multiple of 4"),
            "{m}"
        );
    }
}
