//! x86-64 AVX-512 kernel (F + BW + VNNI): one `vpdpbusd` per plane of a 64-byte tile.
//!
//! Per tile (16 rows × 16 inputs) and plane `p`: `tile & (3 << 2p)` gives each row's four
//! codes `c · 4^p` (unsigned bytes ≤ 128), and `vpdpbusd` adds `Σ (c·4^p) · a` against the
//! broadcast activation dword `a[4p..4p+4]` (signed bytes, so -128 is an ordinary operand) into
//! that row's i32 lane. There is one accumulator per plane; at the end of a segment they are
//! combined as `d0 + d1>>2 + d2>>4 + d3>>6` (each `d_p` is an exact multiple of `4^p`, so the
//! arithmetic shifts are exact), the segment's activation sum is subtracted, and the i32 partial
//! sum times the row's mantissa (`vpmuldq`, 32×32→64 signed; mantissas are < 2^31) is added to
//! i64 accumulators for the even and the odd rows.
//!
//! Decode (M = 1) runs two row groups side by side (two weight streams, shared activation
//! broadcasts); prefill runs one group against four tokens, so every tile is loaded once per
//! four tokens while the group's tiles stay in L1/L2 across the token blocks.

use crate::layout::{MantMode, PreparedActs, PreparedMatrix, ROWS, TILE_BYTES, TILE_K};
use std::arch::x86_64::*;

/// Software prefetch distance, in tiles, ahead of each weight stream (the hardware prefetchers
/// alone left single-thread decode at about 60% of the read bandwidth here).
const PF: usize = 32;

/// Whether this CPU has what the kernel uses.
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

/// Computes groups `g0..g1` for every token into `out` (`[row - 16·g0][token]`).
///
/// Panics if the CPU lacks the features ([`available`]); the dispatcher only calls it when
/// they are present.
pub fn run(pm: &PreparedMatrix, acts: &PreparedActs, g0: usize, g1: usize, out: &mut [i64]) {
    assert!(
        available(),
        "AVX-512 VNNI kernel called on a CPU without it"
    );
    assert!(g0 <= g1 && g1 <= pm.groups());
    assert_eq!(out.len(), (g1 - g0) * ROWS * acts.m());
    assert_eq!(acts.kp(), pm.tiles() * TILE_K);
    // SAFETY: the features were checked above; `run_groups` only reads tiles of groups
    // g0..g1 (< pm.groups(), each pm.tiles() tiles long), activation bytes < kp() per token,
    // and writes `out` within the length asserted above.
    unsafe { run_groups(pm, acts, g0, g1, out) }
}

/// Wrapping sum of `buf` with 64-byte loads and the kernel's software prefetch: the memory
/// read-bandwidth probe of the benchmarks, as strong a reader as the kernel.
pub fn read_sum(buf: &[u64]) -> u64 {
    assert!(available(), "AVX-512 probe called on a CPU without it");
    // SAFETY: AVX-512F was checked above; `sum` reads only within `buf`.
    unsafe { sum(buf) }
}

#[target_feature(enable = "avx512f")]
unsafe fn sum(buf: &[u64]) -> u64 {
    let (chunks, rest) = buf.as_chunks::<32>();
    let mut acc = [_mm512_setzero_si512(); 4];
    let base: *const u64 = buf.as_ptr();
    for (i, c) in chunks.iter().enumerate() {
        _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add((i + PF / 4) * 32).cast());
        for (q, a) in acc.iter_mut().enumerate() {
            // SAFETY: `c` holds 32 u64 = 4 × 64 bytes.
            let v = unsafe { _mm512_loadu_si512(c.as_ptr().add(8 * q).cast()) };
            *a = _mm512_add_epi64(*a, v);
        }
    }
    let v = _mm512_add_epi64(
        _mm512_add_epi64(acc[0], acc[1]),
        _mm512_add_epi64(acc[2], acc[3]),
    );
    let tail = rest.iter().fold(0u64, |s, &x| s.wrapping_add(x));
    (_mm512_reduce_add_epi64(v) as u64).wrapping_add(tail)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run_groups(
    pm: &PreparedMatrix,
    acts: &PreparedActs,
    g0: usize,
    g1: usize,
    out: &mut [i64],
) {
    let m = acts.m();
    let stride = ROWS * m;
    if m == 1 {
        let mut g = g0;
        while g + 2 <= g1 {
            let o = &mut out[(g - g0) * stride..(g + 2 - g0) * stride];
            tile_kernel::<2, 1>(pm, acts, g, 0, o);
            g += 2;
        }
        if g < g1 {
            tile_kernel::<1, 1>(pm, acts, g, 0, &mut out[(g - g0) * stride..]);
        }
        return;
    }
    for g in g0..g1 {
        let o = &mut out[(g - g0) * stride..(g + 1 - g0) * stride];
        let mut t = 0;
        while t + 4 <= m {
            tile_kernel::<1, 4>(pm, acts, g, t, o);
            t += 4;
        }
        match m - t {
            3 => tile_kernel::<1, 3>(pm, acts, g, t, o),
            2 => tile_kernel::<1, 2>(pm, acts, g, t, o),
            1 => tile_kernel::<1, 1>(pm, acts, g, t, o),
            _ => {}
        }
    }
}

/// `G` groups from `g` × `T` tokens from `t0`; `out` starts at group `g` (`[row][token]`,
/// M tokens per row).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn tile_kernel<const G: usize, const T: usize>(
    pm: &PreparedMatrix,
    acts: &PreparedActs,
    g: usize,
    t0: usize,
    out: &mut [i64],
) {
    let m = acts.m();
    debug_assert!(out.len() >= G * ROWS * m && t0 + T <= m && g + G <= pm.groups());
    let masks = [
        _mm512_set1_epi8(0x03),
        _mm512_set1_epi8(0x0c),
        _mm512_set1_epi8(0x30),
        _mm512_set1_epi8(0xc0u8 as i8),
    ];
    let zero = _mm512_setzero_si512();
    let wbase: [*const u8; G] = std::array::from_fn(|gi| pm.group_codes(g + gi).as_ptr().cast());
    let abase: [*const u8; T] = std::array::from_fn(|ti| acts.token(t0 + ti).as_ptr().cast());
    let mut acc_e = [[zero; T]; G];
    let mut acc_o = [[zero; T]; G];
    let per_row = pm.mant_mode() == MantMode::PerRow;
    let tiles = pm.tiles();
    for (s, seg) in pm.segs().iter().enumerate() {
        let mut d = [[[zero; 4]; T]; G];
        for j in seg.tile0..seg.tile0 + seg.tiles {
            let mut planes = [[zero; 4]; G];
            for gi in 0..G {
                // SAFETY: tile j < pm.tiles() of a group < pm.groups(); tiles are 64-byte aligned.
                let w = unsafe { _mm512_load_si512(wbase[gi].add(j * TILE_BYTES).cast()) };
                // groups are contiguous: past its end, each stream prefetches the group it
                // reads next (G further on), not the one beside it that another stream reads
                let ahead = j + PF + if j + PF >= tiles { (G - 1) * tiles } else { 0 };
                _mm_prefetch::<_MM_HINT_T0>(wbase[gi].wrapping_add(ahead * TILE_BYTES).cast());
                for p in 0..4 {
                    planes[gi][p] = _mm512_and_si512(w, masks[p]);
                }
            }
            for ti in 0..T {
                for p in 0..4 {
                    // SAFETY: byte j·16 + 4p + 3 < kp() of token t0 + ti < m.
                    let a = unsafe {
                        abase[ti]
                            .add(j * TILE_K + 4 * p)
                            .cast::<i32>()
                            .read_unaligned()
                    };
                    let a = _mm512_set1_epi32(a);
                    for gi in 0..G {
                        d[gi][ti][p] = _mm512_dpbusd_epi32(d[gi][ti][p], planes[gi][p], a);
                    }
                }
            }
        }
        for gi in 0..G {
            let mv = if per_row {
                let ms = &pm.group_mants(g + gi)[s * ROWS..(s + 1) * ROWS];
                // SAFETY: `ms` holds exactly 16 u32.
                unsafe { _mm512_loadu_si512(ms.as_ptr().cast()) }
            } else {
                _mm512_set1_epi32(pm.group_mants(g + gi)[s] as i32)
            };
            let mv_odd = _mm512_srli_epi64::<32>(mv);
            for ti in 0..T {
                let [d0, d1, d2, d3] = d[gi][ti];
                let mut p = _mm512_add_epi32(d0, _mm512_srai_epi32::<2>(d1));
                p = _mm512_add_epi32(p, _mm512_srai_epi32::<4>(d2));
                p = _mm512_add_epi32(p, _mm512_srai_epi32::<6>(d3));
                let asum = acts.asums(t0 + ti)[s];
                p = _mm512_sub_epi32(p, _mm512_set1_epi32(asum));
                acc_e[gi][ti] = _mm512_add_epi64(acc_e[gi][ti], _mm512_mul_epi32(p, mv));
                let p_odd = _mm512_srli_epi64::<32>(p);
                acc_o[gi][ti] = _mm512_add_epi64(acc_o[gi][ti], _mm512_mul_epi32(p_odd, mv_odd));
            }
        }
    }
    for gi in 0..G {
        for ti in 0..T {
            let mut e = [0i64; 8];
            let mut o = [0i64; 8];
            // SAFETY: each array holds 8 i64 = 64 bytes.
            unsafe {
                _mm512_storeu_si512(e.as_mut_ptr().cast(), acc_e[gi][ti]);
                _mm512_storeu_si512(o.as_mut_ptr().cast(), acc_o[gi][ti]);
            }
            let base = gi * ROWS * m + t0 + ti;
            for i in 0..8 {
                out[base + (2 * i) * m] = e[i];
                out[base + (2 * i + 1) * m] = o[i];
            }
        }
    }
}

/// The dense head (see [`crate::head`]) on AVX-512: F32/F16 rows with `vfmadd` (F16 widened
/// by `vcvtph2ps`), Q8 rows with `vpdpbusd` on `code + 128` minus `128 · rowsum`; four rows
/// at a time share each activation load. Rows `r0..r1` for every token into
/// `out [row - r0][token]`.
pub fn head_run(
    h: &crate::head::HeadMatrix,
    a: &crate::head::HeadActs,
    r0: usize,
    r1: usize,
    out: &mut [f32],
) {
    assert!(
        available(),
        "AVX-512 VNNI kernel called on a CPU without it"
    );
    assert!(r0 <= r1 && r1 <= h.rows());
    assert_eq!(out.len(), (r1 - r0) * a.m());
    assert_eq!(a.kp(), h.kp());
    assert_eq!(h.kp() % crate::head::HEAD_PAD, 0);
    // SAFETY: the features were checked above; rows r0..r1 < h.rows() each hold kp()
    // elements, activations kp() per token, and `out` has the length asserted.
    unsafe { head_rows(h, a, r0, r1, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn head_rows(
    h: &crate::head::HeadMatrix,
    a: &crate::head::HeadActs,
    r0: usize,
    r1: usize,
    out: &mut [f32],
) {
    let m = a.m();
    let mut r = r0;
    while r < r1 {
        let nb = (r1 - r).min(4);
        for t in 0..m {
            let mut v = [0.0f32; 4];
            match nb {
                4 => head_block::<4>(h, a, r, t, &mut v),
                3 => head_block::<3>(h, a, r, t, &mut v),
                2 => head_block::<2>(h, a, r, t, &mut v),
                _ => head_block::<1>(h, a, r, t, &mut v),
            }
            for (i, &x) in v.iter().take(nb).enumerate() {
                out[(r - r0 + i) * m + t] = x;
            }
        }
        r += nb;
    }
}

/// Bytes ahead of each head row stream to prefetch.
const HEAD_PF: usize = 1024;

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn head_block<const R: usize>(
    h: &crate::head::HeadMatrix,
    a: &crate::head::HeadActs,
    r: usize,
    t: usize,
    v: &mut [f32; 4],
) {
    use crate::head::{q8_logit, reduce_lanes, HeadType, LANES};
    let kp = h.kp();
    let rows: [*const u8; R] = std::array::from_fn(|i| h.row(r + i).as_ptr());
    match h.head_type() {
        HeadType::F32 | HeadType::F16 => {
            let half = h.head_type() == HeadType::F16;
            let x = a.values(t).as_ptr();
            let mut acc = [_mm512_setzero_ps(); R];
            for c in (0..kp).step_by(LANES) {
                // SAFETY: c + 16 <= kp values of the token.
                let xv = unsafe { _mm512_loadu_ps(x.add(c)) };
                for i in 0..R {
                    let w = if half {
                        let p = rows[i].wrapping_add(2 * c);
                        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(HEAD_PF).cast());
                        // SAFETY: 16 f16 = 32 bytes within the row (kp is a multiple of 64,
                        // rows 64-byte aligned).
                        _mm512_cvtph_ps(unsafe { _mm256_load_si256(p.cast()) })
                    } else {
                        let p = rows[i].wrapping_add(4 * c);
                        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(HEAD_PF).cast());
                        // SAFETY: 16 f32 = 64 bytes within the 64-byte aligned row.
                        unsafe { _mm512_load_ps(p.cast()) }
                    };
                    acc[i] = _mm512_fmadd_ps(w, xv, acc[i]);
                }
            }
            for i in 0..R {
                let mut l = [0.0f32; LANES];
                // SAFETY: `l` holds 16 f32.
                unsafe { _mm512_storeu_ps(l.as_mut_ptr(), acc[i]) };
                v[i] = reduce_lanes(&l);
            }
        }
        HeadType::Q8 => {
            let u = a.offset_codes(t).as_ptr();
            let mut acc = [_mm512_setzero_si512(); R];
            for c in (0..kp).step_by(64) {
                // SAFETY: c + 64 <= kp codes of the token.
                let uv = unsafe { _mm512_loadu_si512(u.add(c).cast()) };
                for i in 0..R {
                    let p = rows[i].wrapping_add(c);
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(HEAD_PF).cast());
                    // SAFETY: 64 codes within the 64-byte aligned row.
                    let w = unsafe { _mm512_load_si512(p.cast()) };
                    acc[i] = _mm512_dpbusd_epi32(acc[i], uv, w);
                }
            }
            for i in 0..R {
                let s = _mm512_reduce_add_epi32(acc[i]);
                let dot = s.wrapping_sub(h.rowsum(r + i).wrapping_mul(128));
                v[i] = q8_logit(dot, h.scale(r + i), a.inv_scale(t));
            }
        }
    }
}
