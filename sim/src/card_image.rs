//! Card memory images for the card top, laid out as docs/card.md says: the weight region
//! (header, weight beats, scale vectors) of a layer, the activation rows, the output rows.
//! Built from [`tern_hdl::host::command_streams`], the order the array consumes.

use ndarray::{Array2, ArrayView2};
use tern_hdl::card::{hdr, CardGeometry};
use tern_hdl::host::command_streams;
use tern_hdl::{HdlError, Params};
use tern_spec::ScaledTernaryMatrix;

fn pad64(x: usize) -> usize {
    x.div_ceil(64) * 64
}

/// Appends the low `w` bits of each beat (little-endian `u64` words) densely into `out`.
fn pack_beats(beats: &[Vec<u64>], w: usize, stride: usize) -> Vec<u8> {
    let total = beats.len() * stride;
    let mut out = vec![0u8; pad64(total.div_ceil(8))];
    for (i, b) in beats.iter().enumerate() {
        let base = i * stride;
        for bit in 0..w {
            if (b[bit / 64] >> (bit % 64)) & 1 == 1 {
                let at = base + bit;
                out[at / 8] |= 1 << (at % 8);
            }
        }
    }
    out
}

/// The weight region of `w` for the array `p` (64-byte aligned parts).
pub fn region(p: &Params, w: &ScaledTernaryMatrix) -> Result<Vec<u8>, HdlError> {
    let g = CardGeometry::new(p)?;
    let (k, n) = (w.k(), w.n());
    let a = Array2::<i8>::zeros((1, k));
    let acc = Array2::<i64>::zeros((1, n));
    let st = command_streams(p, w, a.view(), &acc);
    let wb = g.wb as usize;
    let weights = pack_beats(&st.weights, wb, wb);
    let sb = (p.rows * p.mant_bits) as usize;
    let scales = pack_beats(&st.scales, sb, g.scale_vec_bits as usize);
    let soff = 64 + weights.len();
    let mut h = [0u8; 64];
    h[hdr::MAGIC..hdr::MAGIC + 4].copy_from_slice(&hdr::MAGIC_VALUE.to_le_bytes());
    h[hdr::VERSION..hdr::VERSION + 2].copy_from_slice(&1u16.to_le_bytes());
    h[hdr::K..hdr::K + 4].copy_from_slice(&(k as u32).to_le_bytes());
    h[hdr::N..hdr::N + 4].copy_from_slice(&(n as u32).to_le_bytes());
    h[hdr::ROWS..hdr::ROWS + 2].copy_from_slice(&(p.rows as u16).to_le_bytes());
    h[hdr::COLS..hdr::COLS + 2].copy_from_slice(&(p.cols as u16).to_le_bytes());
    h[hdr::BLOCK_K..hdr::BLOCK_K + 2].copy_from_slice(&(p.block_k as u16).to_le_bytes());
    h[hdr::MANT_BITS..hdr::MANT_BITS + 2].copy_from_slice(&(p.mant_bits as u16).to_le_bytes());
    h[hdr::WEIGHT_BEATS..hdr::WEIGHT_BEATS + 4]
        .copy_from_slice(&(st.weights.len() as u32).to_le_bytes());
    h[hdr::WEIGHT_BYTES..hdr::WEIGHT_BYTES + 8]
        .copy_from_slice(&(weights.len() as u64).to_le_bytes());
    h[hdr::SCALE_OFFSET..hdr::SCALE_OFFSET + 8].copy_from_slice(&(soff as u64).to_le_bytes());
    h[hdr::SCALE_BYTES..hdr::SCALE_BYTES + 8].copy_from_slice(&(scales.len() as u64).to_le_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(&weights);
    out.extend_from_slice(&scales);
    Ok(out)
}

/// Activation rows: M rows of i8 codes, row stride `round_up(K, 64)`, zero padded.
pub fn acts(a: ArrayView2<i8>) -> Vec<u8> {
    let (m, k) = a.dim();
    let stride = pad64(k);
    let mut out = vec![0u8; m * stride];
    for t in 0..m {
        for kk in 0..k {
            out[t * stride + kk] = a[(t, kk)] as u8;
        }
    }
    out
}

/// Bytes of the output rows of an M × N GEMM on an array with `rows` lanes.
pub fn outputs_len(m: usize, n: usize, rows: usize) -> usize {
    m * n.div_ceil(rows) * rows * 8
}

/// Decodes output rows into acc [M, N].
pub fn decode_outputs(bytes: &[u8], m: usize, n: usize, rows: usize) -> Array2<i64> {
    let stride = n.div_ceil(rows) * rows * 8;
    Array2::from_shape_fn((m, n), |(t, j)| {
        let o = t * stride + 8 * j;
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[o..o + 8]);
        i64::from_le_bytes(b)
    })
}
