//! `tq2_0`: GGUF TQ2_0 (ggml type 35), 2.0625 bits per weight.
//!
//! Verified against ggml-org/ggml `src/ggml-common.h` (`block_tq2_0`), `src/ggml-quants.c`
//! (`quantize_row_tq2_0_ref`, `dequantize_row_tq2_0`; the same file as llama.cpp's
//! `ggml/src/ggml-quants.c`) and gguf-py `gguf/quants.py` (`class TQ2_0`), gguf 0.19.0:
//!
//! - A row of K weights (K % 256 == 0, ggml's `blck_size = QK_K = 256`) is K/256 blocks of
//!   66 bytes; rows follow each other (row stride K/256·66 bytes).
//! - Block: `qs[64]` then `d` (f16, little-endian) at bytes 64..66.
//! - Weight `w` of a block (0..256): half `c = w / 128`, lane `n = (w % 128) / 32`,
//!   `m = w % 32`; its code `w + 1` (-1 → 0, 0 → 1, +1 → 2) sits in bits `[2n+1 : 2n]` of
//!   `qs[32c + m]`. Code 3 is never written by the quantizer (ggml would read it as +2);
//!   tern refuses it.
//! - Value = (code − 1) · d.

use half::f16;

use super::{offset_code, offset_trit, scales, Layout, PackError};

const LAYOUT: Layout = Layout::Tq2_0;
/// Weights per block (ggml QK_K).
pub(super) const BLOCK: usize = 256;
/// Bytes per block: 64 code bytes + 2 bytes of f16 `d`.
pub(super) const BLOCK_BYTES: usize = 66;
const QS_BYTES: usize = 64;

/// `trits` is N·K checked trits (K % 256 == 0), `d` one checked scale per block,
/// `out` N·K/256·66 bytes.
pub(super) fn pack(trits: &[i8], d: &[f32], out: &mut [u8]) {
    for ((w, o), &d) in trits
        .chunks_exact(BLOCK)
        .zip(out.chunks_exact_mut(BLOCK_BYTES))
        .zip(d)
    {
        for c in 0..2 {
            for n in 0..4 {
                for m in 0..32 {
                    o[32 * c + m] |= offset_code(w[128 * c + 32 * n + m]) << (2 * n);
                }
            }
        }
        o[QS_BYTES..].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    }
}

/// `bytes` is N·K/256·66 bytes, `trits` N·K zeroed trits; returns one scale per block.
pub(super) fn unpack(bytes: &[u8], trits: &mut [i8]) -> Result<Vec<f32>, PackError> {
    let mut scales_out = Vec::with_capacity(bytes.len() / BLOCK_BYTES);
    for (i, (b, w)) in bytes
        .chunks_exact(BLOCK_BYTES)
        .zip(trits.chunks_exact_mut(BLOCK))
        .enumerate()
    {
        let base = i * BLOCK_BYTES;
        for c in 0..2 {
            for n in 0..4 {
                for m in 0..32 {
                    let lo = 2 * n as u32;
                    let code = (b[32 * c + m] >> lo) & 0b11;
                    w[128 * c + 32 * n + m] = offset_trit(LAYOUT, code, base + 32 * c + m, lo)?;
                }
            }
        }
        let d = f16::from_le_bytes([b[QS_BYTES], b[QS_BYTES + 1]]).to_f32();
        scales::check_scale(LAYOUT, i, base + QS_BYTES, d, true)?;
        scales_out.push(d);
    }
    Ok(scales_out)
}

#[cfg(test)]
mod tests {
    use super::super::{pack, unpack, Scales, Shape, OFFSET_CODE_LEGAL};
    use super::*;

    /// Worked by hand from `quantize_row_tq2_0_ref` and checked once against gguf-py:
    /// all-zero block → every code 01 → 0x55; w0 = +1, w32 = -1, w96 = +1 →
    /// qs[0] = 10 (w96) 01 (w64) 00 (w32) 10 (w0) = 0x92; w128 = -1 → qs[32] = 0x54;
    /// d = 1.0 = f16 0x3c00 → bytes 00 3c.
    #[test]
    fn golden_bytes() {
        let s = Shape::new(1, 256);
        let zero = pack(LAYOUT, s, &[0; 256], None).unwrap();
        assert_eq!(&zero[..64], &[0x55; 64]);
        assert_eq!(&zero[64..], &[0x00, 0x3c]);

        let mut t = [0i8; 256];
        t[0] = 1;
        t[32] = -1;
        t[96] = 1;
        t[128] = -1;
        let sc = Scales::PerRowGroup {
            group: 256,
            values: vec![0.5],
        };
        let b = pack(LAYOUT, s, &t, Some(&sc)).unwrap();
        assert_eq!(b[0], 0x92);
        assert_eq!(b[32], 0x54);
        assert!(b[1..32].iter().chain(&b[33..64]).all(|&x| x == 0x55));
        assert_eq!(&b[64..], &[0x00, 0x38]); // 0.5 = f16 0x3800
        let u = unpack(LAYOUT, s, &b).unwrap();
        assert_eq!(u.trits, t);
        assert_eq!(u.scales, Some(sc));
    }

    #[test]
    fn reserved_code_is_refused() {
        // Second row's block, qs[33] bits [5:4] = 11.
        let s = Shape::new(2, 256);
        let mut b = pack(LAYOUT, s, &[0; 512], None).unwrap();
        b[66 + 33] = 0b0111_0101;
        let e = unpack(LAYOUT, s, &b).unwrap_err();
        assert_eq!(
            e,
            PackError::ReservedCode {
                layout: LAYOUT,
                offset: 99,
                lo: 4,
                code: 3,
                legal: OFFSET_CODE_LEGAL
            }
        );
        let m = e.to_string();
        assert!(
            m.contains("tq2_0") && m.contains("byte offset 99") && m.contains("[5:4]"),
            "{m}"
        );
    }

    #[test]
    fn bad_stored_scale_is_refused() {
        let s = Shape::new(1, 512);
        let mut b = pack(LAYOUT, s, &[0; 512], None).unwrap();
        b[66 + 64..].copy_from_slice(&f16::NAN.to_le_bytes());
        let m = unpack(LAYOUT, s, &b).unwrap_err().to_string();
        assert!(
            m.contains("scale 1") && m.contains("byte offset 130") && m.contains("NaN"),
            "{m}"
        );
        b[66 + 64..].copy_from_slice(&f16::from_f32(-2.0).to_le_bytes());
        let m = unpack(LAYOUT, s, &b).unwrap_err().to_string();
        assert!(m.contains("= -2") && m.contains("negative"), "{m}");
    }
}
