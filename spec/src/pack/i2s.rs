//! `i2_s`: microsoft/BitNet (bitnet.cpp) I2_S, GGUF type 36 in its llama.cpp fork.
//!
//! Verified against microsoft/BitNet (snapshot of 2026-07-16, commit 16da220):
//! `src/ggml-bitnet-mad.cpp` (`quantize_i2_s`, `ggml_vec_dot_i2_i8_s_*`),
//! `include/gemm-config.h` (`#define ACT_PARALLEL`), `utils/convert-hf-to-gguf-bitnet.py` and
//! `utils/convert-bitnet-embedding-to-gguf.py` (`quantize_to_i2_s`); and its llama.cpp fork
//! (Eddie-Wang1120/llama.cpp, branch merge-dev) `ggml/src/ggml.c` (type traits
//! `blck_size = 1, type_size = 1`, `ggml_nbytes`, the scale pointer in `ggml_compute_forward_mul_mat`):
//!
//! - The tensor is coded as ONE flat row-major sequence of n = N·K weights (not per row):
//!   block `i` = flat weights `128i .. 128i+128` (x86 build: `QK_I2_S = 128`) in bytes
//!   `32i .. 32i+32`; byte `32i + p` holds weights `128i + 32g + p`, g = 0..3, in bits
//!   `[7−2g : 6−2g]` (g = 0 in the top bits).
//! - Code: 0 = −1, 1 = 0, 2 = +1 (3 is never written; the kernels would read it as +2;
//!   tern refuses it).
//! - After the n/4 code bytes: the tensor scale as f32 little-endian at byte offset n/4,
//!   then padding to `ggml_nbytes = n/4 + 32` bytes total (28 bytes after the scale).
//!   The Python converters write those 28 bytes as zeros; the C quantizer leaves them as
//!   whatever the buffer held. tern writes zeros and ignores them on unpack.
//! - The kernels read row r at byte `r·K/4` and take K/128 whole blocks, so K % 128 == 0
//!   (then the flat blocks never straddle rows). 2B-4T: K ∈ {2560, 6912} = 128·{20, 54}.
//! - Weight value = trit · scale. `quantize_i2_s` stores max|w| (= the absmean scale for an
//!   already-ternarized tensor); the converter with an offline checkpoint stores its
//!   `weight_scale`.
//! - ARM builds (`__ARM_NEON`, `QK_I2_S = 64`) use 64-weight blocks of 16 bytes: a file
//!   quantized on ARM by `llama-quantize` differs. tern implements the x86 / converter layout.

use super::{offset_code, offset_trit, scales, Layout, PackError};

const LAYOUT: Layout = Layout::I2S;
/// Weights per block (x86 `QK_I2_S`).
pub(super) const BLOCK: usize = 128;
/// Bytes per block of codes.
const BLOCK_BYTES: usize = 32;
/// Bytes after the n/4 code bytes: the f32 scale and 28 bytes of padding.
pub(super) const TAIL_BYTES: usize = 32;

/// `trits` is n = N·K checked trits (K % 128 == 0), `out` n/4 + 32 zeroed bytes.
pub(super) fn pack(trits: &[i8], scale: f32, out: &mut [u8]) {
    let code_bytes = trits.len() / 4;
    let (codes, tail) = out.split_at_mut(code_bytes);
    for (w, o) in trits
        .chunks_exact(BLOCK)
        .zip(codes.chunks_exact_mut(BLOCK_BYTES))
    {
        for g in 0..4 {
            for p in 0..BLOCK_BYTES {
                o[p] |= offset_code(w[32 * g + p]) << (6 - 2 * g);
            }
        }
    }
    tail[..4].copy_from_slice(&scale.to_le_bytes());
}

/// `bytes` is n/4 + 32 bytes, `trits` n zeroed trits; returns the tensor scale.
pub(super) fn unpack(bytes: &[u8], trits: &mut [i8]) -> Result<f32, PackError> {
    let code_bytes = trits.len() / 4;
    let (codes, tail) = bytes.split_at(code_bytes);
    for (i, (b, w)) in codes
        .chunks_exact(BLOCK_BYTES)
        .zip(trits.chunks_exact_mut(BLOCK))
        .enumerate()
    {
        for g in 0..4 {
            let lo = (6 - 2 * g) as u32;
            for p in 0..BLOCK_BYTES {
                let code = (b[p] >> lo) & 0b11;
                w[32 * g + p] = offset_trit(LAYOUT, code, i * BLOCK_BYTES + p, lo)?;
            }
        }
    }
    let scale = f32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    scales::check_scale(LAYOUT, 0, code_bytes, scale, false)?;
    Ok(scale)
}

#[cfg(test)]
mod tests {
    use super::super::{pack, unpack, Scales, Shape, OFFSET_CODE_LEGAL};
    use super::*;

    /// Worked by hand from `quantize_i2_s` (x86): all-zero → code 01 everywhere → 0x55.
    /// w0 = +1 → byte 0 bits [7:6] = 10 → 0b1001_0101 = 0x95. w127 = −1 → byte 31 bits
    /// [1:0] = 00 → 0x54. w33 = +1 → byte 1 bits [5:4] = 10 → 0b0110_0101 = 0x65.
    /// Scale 0.5 = f32 0x3f000000 → bytes 00 00 00 3f at offset 32, then 28 zeros.
    #[test]
    fn golden_bytes() {
        let s = Shape::new(1, 128);
        let mut t = [0i8; 128];
        t[0] = 1;
        t[127] = -1;
        t[33] = 1;
        let b = pack(LAYOUT, s, &t, Some(&Scales::PerTensor(0.5))).unwrap();
        assert_eq!(b.len(), 64);
        assert_eq!(b[0], 0x95);
        assert_eq!(b[1], 0x65);
        assert_eq!(b[31], 0x54);
        assert!(b[2..31].iter().all(|&x| x == 0x55));
        assert_eq!(&b[32..36], &[0x00, 0x00, 0x00, 0x3f]);
        assert!(b[36..].iter().all(|&x| x == 0));
        let u = unpack(LAYOUT, s, &b).unwrap();
        assert_eq!(u.trits, t);
        assert_eq!(u.scales, Some(Scales::PerTensor(0.5)));
    }

    /// The blocks run along the flattened tensor: 2 rows of 128 are blocks 0 and 1, and the
    /// scale follows all code bytes (offset N·K/4 = 64).
    #[test]
    fn blocks_run_along_the_flat_tensor() {
        let s = Shape::new(2, 128);
        let mut t = [0i8; 256];
        t[128] = -1; // row 1, col 0 → block 1, byte 32, bits [7:6] = 00
        let b = pack(LAYOUT, s, &t, None).unwrap();
        assert_eq!(b.len(), 96);
        assert_eq!(b[32], 0x15);
        assert_eq!(&b[64..68], &1.0f32.to_le_bytes());
    }

    #[test]
    fn tail_padding_is_ignored_on_unpack() {
        let s = Shape::new(1, 128);
        let mut b = pack(LAYOUT, s, &[0; 128], None).unwrap();
        b[40] = 0xaa;
        assert_eq!(unpack(LAYOUT, s, &b).unwrap().trits, [0; 128]);
    }

    #[test]
    fn reserved_code_is_refused() {
        let s = Shape::new(1, 256);
        let mut b = pack(LAYOUT, s, &[0; 256], None).unwrap();
        b[40] = 0b0101_1101; // bits [3:2] = 11
        let e = unpack(LAYOUT, s, &b).unwrap_err();
        assert_eq!(
            e,
            PackError::ReservedCode {
                layout: LAYOUT,
                offset: 40,
                lo: 2,
                code: 3,
                legal: OFFSET_CODE_LEGAL
            }
        );
        let m = e.to_string();
        assert!(
            m.contains("i2_s") && m.contains("byte offset 40") && m.contains("[3:2]"),
            "{m}"
        );
    }

    #[test]
    fn bad_stored_scale_is_refused() {
        let s = Shape::new(1, 128);
        let mut b = pack(LAYOUT, s, &[0; 128], None).unwrap();
        b[32..36].copy_from_slice(&(-0.5f32).to_le_bytes());
        let m = unpack(LAYOUT, s, &b).unwrap_err().to_string();
        assert!(
            m.contains("i2_s") && m.contains("byte offset 32") && m.contains("negative"),
            "{m}"
        );
        b[32..36].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(unpack(LAYOUT, s, &b)
            .unwrap_err()
            .to_string()
            .contains("NaN"));
    }
}
