//! `tq1_0`: GGUF TQ1_0 (ggml type 34), 1.6875 bits per weight.
//!
//! Verified against ggml-org/ggml `src/ggml-common.h` (`block_tq1_0`), `src/ggml-quants.c`
//! (`quantize_row_tq1_0_ref`, `dequantize_row_tq1_0`; the same file as llama.cpp's
//! `ggml/src/ggml-quants.c`) and gguf-py `gguf/quants.py` (`class TQ1_0`), gguf 0.19.0:
//!
//! - A row of K weights (K % 256 == 0) is K/256 blocks of 54 bytes; rows follow each other.
//! - Block: `qs[48]` (bytes 0..48), `qh[4]` (bytes 48..52), `d` f16 little-endian (52..54).
//! - Each byte holds base-3 digits `x = w + 1` (-1 → 0, 0 → 1, +1 → 2), the FIRST weight in
//!   the MOST significant digit:
//!   - `qs[m]`, m < 32: weights `m + 32n`, n = 0..4 (weights 0..160);
//!   - `qs[32 + m]`, m < 16: weights `160 + m + 16n`, n = 0..4 (weights 160..240);
//!   - `qh[j]`, j < 4: weights `240 + j + 4n`, n = 0..3 (weights 240..256), then ×3 so that
//!     the 4 digits occupy 3^4..3^1 and the last digit is 0.
//! - Ceiling trick: with `q = Σ x_n·3^(4−n)` ∈ 0..=242 the byte is `⌈q·256/243⌉`
//!   (`(q·256 + 242) / 243`), so that digit n reads back as
//!   `((byte·3^n mod 256) · 3) >> 8` without a division.
//! - Only 243 byte values are produced (81 for `qh`). ggml decodes any byte; tern refuses
//!   the others (naming the byte), so unpack → pack is always byte-identical.

use half::f16;

use super::{scales, Layout, PackError};

const LAYOUT: Layout = Layout::Tq1_0;
/// Weights per block (ggml QK_K).
pub(super) const BLOCK: usize = 256;
/// Bytes per block: 48 `qs` + 4 `qh` + 2 bytes of f16 `d`.
pub(super) const BLOCK_BYTES: usize = 54;
/// Bytes of base-3 digits per block (`qs` then `qh`).
const DIGIT_BYTES: usize = 52;
const POW3: [u8; 5] = [1, 3, 9, 27, 81];
const LEGAL_QS: &str = "one of the 243 values ⌈q·256/243⌉, q = 0..=242, the TQ1_0 encoder writes";
const LEGAL_QH: &str =
    "one of the 81 values ⌈3q·256/243⌉, q = 0..=80, the TQ1_0 encoder writes into qh";

/// Number of weights (base-3 digits) in block byte `byte` (0..52).
fn digits_in(byte: usize) -> usize {
    if byte < 48 {
        5
    } else {
        4
    }
}

/// Index within the block (0..256) of digit `n` of block byte `byte`.
fn weight_index(byte: usize, n: usize) -> usize {
    if byte < 32 {
        byte + 32 * n
    } else if byte < 48 {
        160 + (byte - 32) + 16 * n
    } else {
        240 + (byte - 48) + 4 * n
    }
}

/// The byte for digits `x_0..` (each 0..=2, `x_0` most significant, ≤ 5 of them).
fn encode(digits: impl Iterator<Item = u8>) -> u8 {
    let mut q: u16 = 0;
    let mut count = 0;
    for x in digits {
        q = q * 3 + x as u16;
        count += 1;
    }
    for _ in count..5 {
        q *= 3; // qh: shift the 4 digits up to 3^4..3^1
    }
    // ggml: `(q * 256 + (243 - 1)) / 243`, i.e. ⌈q·256/243⌉ ≤ 255.
    (q * 256).div_ceil(243) as u8
}

/// Digit `n` (0..5) of `byte`: `((byte·3^n mod 256)·3) >> 8`, always 0..=2.
fn digit(byte: u8, n: usize) -> u8 {
    let q = byte.wrapping_mul(POW3[n]);
    ((q as u16 * 3) >> 8) as u8
}

/// `trits` is N·K checked trits (K % 256 == 0), `d` one checked scale per block,
/// `out` N·K/256·54 bytes.
pub(super) fn pack(trits: &[i8], d: &[f32], out: &mut [u8]) {
    for ((w, o), &d) in trits
        .chunks_exact(BLOCK)
        .zip(out.chunks_exact_mut(BLOCK_BYTES))
        .zip(d)
    {
        for (byte, slot) in o[..DIGIT_BYTES].iter_mut().enumerate() {
            *slot = encode((0..digits_in(byte)).map(|n| (w[weight_index(byte, n)] + 1) as u8));
        }
        o[DIGIT_BYTES..].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    }
}

/// `bytes` is N·K/256·54 bytes, `trits` N·K zeroed trits; returns one scale per block.
pub(super) fn unpack(bytes: &[u8], trits: &mut [i8]) -> Result<Vec<f32>, PackError> {
    let mut scales_out = Vec::with_capacity(bytes.len() / BLOCK_BYTES);
    for (i, (b, w)) in bytes
        .chunks_exact(BLOCK_BYTES)
        .zip(trits.chunks_exact_mut(BLOCK))
        .enumerate()
    {
        let base = i * BLOCK_BYTES;
        for (byte, &value) in b[..DIGIT_BYTES].iter().enumerate() {
            let k = digits_in(byte);
            if encode((0..k).map(|n| digit(value, n))) != value {
                let legal = if k == 5 { LEGAL_QS } else { LEGAL_QH };
                return Err(PackError::InvalidBase3 {
                    layout: LAYOUT,
                    offset: base + byte,
                    value,
                    legal,
                });
            }
            for n in 0..k {
                w[weight_index(byte, n)] = digit(value, n) as i8 - 1;
            }
        }
        let d = f16::from_le_bytes([b[DIGIT_BYTES], b[DIGIT_BYTES + 1]]).to_f32();
        scales::check_scale(LAYOUT, i, base + DIGIT_BYTES, d, true)?;
        scales_out.push(d);
    }
    Ok(scales_out)
}

#[cfg(test)]
mod tests {
    use super::super::{pack, unpack, Scales, Shape};
    use super::*;

    /// Every byte position covers each weight of the block exactly once.
    #[test]
    fn byte_map_is_a_bijection() {
        let mut seen = [0u8; BLOCK];
        for byte in 0..DIGIT_BYTES {
            for n in 0..digits_in(byte) {
                seen[weight_index(byte, n)] += 1;
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
    }

    /// The ceiling trick decodes every q exactly (all 243 five-digit and 81 four-digit groups),
    /// and exactly those bytes are accepted.
    #[test]
    fn ceiling_trick_is_exact() {
        let mut canonical5 = 0;
        let mut canonical4 = 0;
        for q in 0..243u16 {
            let digits: Vec<u8> = (0..5)
                .rev()
                .map(|p| ((q / 3u16.pow(p)) % 3) as u8)
                .collect();
            let b = encode(digits.iter().copied());
            assert_eq!(b as u16, (q * 256).div_ceil(243));
            let back: Vec<u8> = (0..5).map(|n| digit(b, n)).collect();
            assert_eq!(back, digits, "q = {q}");
        }
        for v in 0..=255u8 {
            canonical5 += (encode((0..5).map(|n| digit(v, n))) == v) as u32;
            canonical4 += (encode((0..4).map(|n| digit(v, n))) == v) as u32;
        }
        assert_eq!((canonical5, canonical4), (243, 81));
    }

    /// Worked by hand from `quantize_row_tq1_0_ref`, checked once against gguf-py:
    /// weights 0, 32, 64, 96, 128 = +1, -1, 0, +1, -1 → digits 2, 0, 1, 2, 0 →
    /// q = 2·81 + 0·27 + 1·9 + 2·3 + 0 = 177 → ⌈177·256/243⌉ = ⌈186.47⌉ = 187.
    /// An all-zero qs byte: q = 121 → ⌈127.47⌉ = 128; an all-zero qh byte:
    /// q = (27 + 9 + 3 + 1)·3 = 120 → ⌈126.42⌉ = 127. d = 1.0 → f16 0x3c00.
    #[test]
    fn golden_bytes() {
        let s = Shape::new(1, 256);
        let zero = pack(LAYOUT, s, &[0; 256], None).unwrap();
        assert_eq!(&zero[..48], &[128; 48]);
        assert_eq!(&zero[48..52], &[127; 4]);
        assert_eq!(&zero[52..], &[0x00, 0x3c]);

        let mut t = [0i8; 256];
        t[0] = 1;
        t[32] = -1;
        t[96] = 1;
        t[128] = -1;
        // qh[1] holds weights 241, 245, 249, 253: set them -1, +1, 0, -1 →
        // digits 0, 2, 1, 0 → (0·27 + 2·9 + 1·3 + 0)·3 = 63 → ⌈63·256/243⌉ = ⌈66.37⌉ = 67.
        t[241] = -1;
        t[245] = 1;
        t[253] = -1;
        // qs[32] holds weights 160, 176, 192, 208, 224: set +1 at 160 → digits 2,1,1,1,1 →
        // q = 162 + 27 + 9 + 3 + 1 = 202 → ⌈212.8⌉ = 213.
        t[160] = 1;
        let sc = Scales::PerRowGroup {
            group: 256,
            values: vec![0.25],
        };
        let b = pack(LAYOUT, s, &t, Some(&sc)).unwrap();
        assert_eq!(b[0], 187);
        assert_eq!(b[32], 213);
        assert_eq!(b[49], 67);
        assert_eq!(&b[52..], &[0x00, 0x34]); // 0.25 = f16 0x3400
        let u = unpack(LAYOUT, s, &b).unwrap();
        assert_eq!(u.trits, t);
        assert_eq!(u.scales, Some(sc));
    }

    #[test]
    fn non_canonical_bytes_are_refused() {
        let s = Shape::new(1, 256);
        let mut b = pack(LAYOUT, s, &[0; 256], None).unwrap();
        // 13 of the 256 byte values are never written into qs; take the smallest.
        let bad = (0..=255u8)
            .find(|&v| encode((0..5).map(|n| digit(v, n))) != v)
            .unwrap();
        b[7] = bad;
        let e = unpack(LAYOUT, s, &b).unwrap_err();
        assert_eq!(
            e,
            PackError::InvalidBase3 {
                layout: LAYOUT,
                offset: 7,
                value: bad,
                legal: LEGAL_QS
            }
        );
        let m = e.to_string();
        assert!(
            m.contains("tq1_0")
                && m.contains("byte offset 7")
                && m.contains(&format!("value {bad}")),
            "{m}"
        );
        // In qh a byte whose 5th digit is not 0 is refused too: 128 is a valid qs byte
        // (all digits 1) but not a valid qh byte.
        let mut b = pack(LAYOUT, s, &[0; 256], None).unwrap();
        b[50] = 128;
        let e = unpack(LAYOUT, s, &b).unwrap_err();
        assert_eq!(
            e,
            PackError::InvalidBase3 {
                layout: LAYOUT,
                offset: 50,
                value: 128,
                legal: LEGAL_QH
            }
        );
    }

    #[test]
    fn bad_stored_scale_is_refused() {
        let s = Shape::new(2, 256);
        let mut b = pack(LAYOUT, s, &[0; 512], None).unwrap();
        b[54 + 52..].copy_from_slice(&f16::INFINITY.to_le_bytes());
        let m = unpack(LAYOUT, s, &b).unwrap_err().to_string();
        assert!(
            m.contains("scale 1") && m.contains("byte offset 106") && m.contains("infinite"),
            "{m}"
        );
    }
}
