//! x86-64 AVX2 kernel: `vpmaddubsw` + `vpmaddwd` on the same layout, a 64-byte tile as two
//! 32-byte halves (rows 0..8 and 8..16).
//!
//! Per half and plane `p`: `(tile >> 2p) & 3` gives each row's four codes `c ∈ {0, 1, 2}`
//! (unsigned bytes); `vpmaddubsw` against the broadcast activation dword `a[4p..4p+4]` (signed
//! bytes, -128 included) gives pairwise i16 sums, each of magnitude ≤ 2·2·128 = 512, so the four
//! planes add up in i16 without saturating (≤ 2048), and one `vpmaddwd` by ones widens the
//! tile's contribution to the row's i32 lane. At the end of a segment the activation sum is
//! subtracted and `p · mant` (`vpmuldq`) is added to i64 accumulators, as in the AVX-512 kernel.

use crate::layout::{MantMode, PreparedActs, PreparedMatrix, ROWS, TILE_BYTES, TILE_K};
use std::arch::x86_64::*;

/// Software prefetch distance, in tiles, ahead of the weight stream (as in the AVX-512 kernel).
const PF: usize = 32;

/// Whether this CPU has AVX2.
pub fn available() -> bool {
    is_x86_feature_detected!("avx2")
}

/// Computes groups `g0..g1` for every token into `out` (`[row - 16·g0][token]`).
///
/// Panics if the CPU lacks AVX2; the dispatcher only calls it when present.
pub fn run(pm: &PreparedMatrix, acts: &PreparedActs, g0: usize, g1: usize, out: &mut [i64]) {
    assert!(available(), "AVX2 kernel called on a CPU without it");
    assert!(g0 <= g1 && g1 <= pm.groups());
    assert_eq!(out.len(), (g1 - g0) * ROWS * acts.m());
    assert_eq!(acts.kp(), pm.tiles() * TILE_K);
    // SAFETY: AVX2 was checked above; `group` only reads tiles of groups g0..g1
    // (< pm.groups(), each pm.tiles() tiles long), activation bytes < kp() per token, and
    // writes `out` within the length asserted above.
    unsafe { run_groups(pm, acts, g0, g1, out) }
}

/// Wrapping sum of `buf` with 32-byte loads and the kernel's software prefetch: the memory
/// read-bandwidth probe of the benchmarks on CPUs without AVX-512.
pub fn read_sum(buf: &[u64]) -> u64 {
    assert!(available(), "AVX2 probe called on a CPU without it");
    // SAFETY: AVX2 was checked above; `sum` reads only within `buf`.
    unsafe { sum(buf) }
}

#[target_feature(enable = "avx2")]
unsafe fn sum(buf: &[u64]) -> u64 {
    let (chunks, rest) = buf.as_chunks::<32>();
    let mut acc = [_mm256_setzero_si256(); 4];
    let base: *const u64 = buf.as_ptr();
    for (i, c) in chunks.iter().enumerate() {
        _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add((i + PF / 4) * 32).cast());
        _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add((i + PF / 4) * 32 + 16).cast());
        for (q, a) in acc.iter_mut().enumerate() {
            // SAFETY: `c` holds 32 u64 = 8 × 32 bytes; q < 4 reads the first four and the
            // second loop below the other four.
            let v = unsafe { _mm256_loadu_si256(c.as_ptr().add(4 * q).cast()) };
            *a = _mm256_add_epi64(*a, v);
        }
        for (q, a) in acc.iter_mut().enumerate() {
            // SAFETY: as above, u64 16..32 of `c`.
            let v = unsafe { _mm256_loadu_si256(c.as_ptr().add(16 + 4 * q).cast()) };
            *a = _mm256_add_epi64(*a, v);
        }
    }
    let v = _mm256_add_epi64(
        _mm256_add_epi64(acc[0], acc[1]),
        _mm256_add_epi64(acc[2], acc[3]),
    );
    let mut lanes = [0u64; 4];
    // SAFETY: `lanes` holds 4 u64 = 32 bytes.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
    let tail = rest.iter().fold(0u64, |s, &x| s.wrapping_add(x));
    lanes.iter().fold(tail, |s, &x| s.wrapping_add(x))
}

#[target_feature(enable = "avx2")]
unsafe fn run_groups(
    pm: &PreparedMatrix,
    acts: &PreparedActs,
    g0: usize,
    g1: usize,
    out: &mut [i64],
) {
    let m = acts.m();
    let stride = ROWS * m;
    for g in g0..g1 {
        let o = &mut out[(g - g0) * stride..(g + 1 - g0) * stride];
        let mut t = 0;
        while t + 4 <= m {
            // SAFETY: forwarded invariants of `run`; t + 4 <= m.
            unsafe { group::<4>(pm, acts, g, t, o) };
            t += 4;
        }
        // SAFETY: as above, with the remaining tokens.
        unsafe {
            match m - t {
                3 => group::<3>(pm, acts, g, t, o),
                2 => group::<2>(pm, acts, g, t, o),
                1 => group::<1>(pm, acts, g, t, o),
                _ => {}
            }
        }
    }
}

/// Group `g` × `T` tokens from `t0`; `out` starts at group `g`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn group<const T: usize>(
    pm: &PreparedMatrix,
    acts: &PreparedActs,
    g: usize,
    t0: usize,
    out: &mut [i64],
) {
    let m = acts.m();
    debug_assert!(out.len() >= ROWS * m && t0 + T <= m && g < pm.groups());
    let mask = _mm256_set1_epi8(0x03);
    let ones = _mm256_set1_epi16(1);
    let zero = _mm256_setzero_si256();
    let wbase: *const u8 = pm.group_codes(g).as_ptr().cast();
    let abase: [*const u8; T] = std::array::from_fn(|ti| acts.token(t0 + ti).as_ptr().cast());
    let mut acc_e = [[zero; T]; 2];
    let mut acc_o = [[zero; T]; 2];
    let per_row = pm.mant_mode() == MantMode::PerRow;
    for (s, seg) in pm.segs().iter().enumerate() {
        let mut d = [[zero; T]; 2];
        for j in seg.tile0..seg.tile0 + seg.tiles {
            let mut planes = [[zero; 4]; 2];
            for (h, ph) in planes.iter_mut().enumerate() {
                // SAFETY: tile j < pm.tiles() of group g < pm.groups(); tiles are 64-byte
                // aligned, so both 32-byte halves are aligned.
                let w = unsafe { _mm256_load_si256(wbase.add(j * TILE_BYTES + 32 * h).cast()) };
                if h == 0 {
                    _mm_prefetch::<_MM_HINT_T0>(wbase.wrapping_add((j + PF) * TILE_BYTES).cast());
                }
                ph[0] = _mm256_and_si256(w, mask);
                ph[1] = _mm256_and_si256(_mm256_srli_epi16::<2>(w), mask);
                ph[2] = _mm256_and_si256(_mm256_srli_epi16::<4>(w), mask);
                ph[3] = _mm256_and_si256(_mm256_srli_epi16::<6>(w), mask);
            }
            for ti in 0..T {
                let mut a = [zero; 4];
                for (p, ap) in a.iter_mut().enumerate() {
                    // SAFETY: byte j·16 + 4p + 3 < kp() of token t0 + ti < m.
                    let v = unsafe {
                        abase[ti]
                            .add(j * TILE_K + 4 * p)
                            .cast::<i32>()
                            .read_unaligned()
                    };
                    *ap = _mm256_set1_epi32(v);
                }
                for h in 0..2 {
                    let mut s16 = _mm256_maddubs_epi16(planes[h][0], a[0]);
                    for p in 1..4 {
                        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(planes[h][p], a[p]));
                    }
                    d[h][ti] = _mm256_add_epi32(d[h][ti], _mm256_madd_epi16(s16, ones));
                }
            }
        }
        let gm = pm.group_mants(g);
        for h in 0..2 {
            let mv = if per_row {
                let ms = &gm[s * ROWS + 8 * h..s * ROWS + 8 * h + 8];
                // SAFETY: `ms` holds exactly 8 u32 = 32 bytes.
                unsafe { _mm256_loadu_si256(ms.as_ptr().cast()) }
            } else {
                _mm256_set1_epi32(gm[s] as i32)
            };
            let mv_odd = _mm256_srli_epi64::<32>(mv);
            for ti in 0..T {
                let asum = acts.asums(t0 + ti)[s];
                let p = _mm256_sub_epi32(d[h][ti], _mm256_set1_epi32(asum));
                acc_e[h][ti] = _mm256_add_epi64(acc_e[h][ti], _mm256_mul_epi32(p, mv));
                let p_odd = _mm256_srli_epi64::<32>(p);
                acc_o[h][ti] = _mm256_add_epi64(acc_o[h][ti], _mm256_mul_epi32(p_odd, mv_odd));
            }
        }
    }
    for h in 0..2 {
        for ti in 0..T {
            let mut e = [0i64; 4];
            let mut o = [0i64; 4];
            // SAFETY: each array holds 4 i64 = 32 bytes.
            unsafe {
                _mm256_storeu_si256(e.as_mut_ptr().cast(), acc_e[h][ti]);
                _mm256_storeu_si256(o.as_mut_ptr().cast(), acc_o[h][ti]);
            }
            let base = (8 * h) * m + t0 + ti;
            for i in 0..4 {
                out[base + (2 * i) * m] = e[i];
                out[base + (2 * i + 1) * m] = o[i];
            }
        }
    }
}

/// Whether this CPU has what the AVX2 head kernel uses (AVX2, FMA, F16C).
pub fn head_available() -> bool {
    available() && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
}

/// The dense head (see [`crate::head`]) on AVX2: F32/F16 rows as two 8-lane `vfmadd`
/// accumulators (lanes 0–7 and 8–15 of the definition), Q8 rows with
/// `vpmaddubsw(|a|, sign(w, a))` + `vpmaddwd` (pairs ≤ 2·128·127, no saturation; the codes
/// are in [-127, 127]). On a CPU without FMA/F16C it runs the portable kernel (same result).
pub fn head_run(
    h: &crate::head::HeadMatrix,
    a: &crate::head::HeadActs,
    r0: usize,
    r1: usize,
    out: &mut [f32],
) {
    if !head_available() {
        return crate::portable::head_run(h, a, r0, r1, out);
    }
    assert!(r0 <= r1 && r1 <= h.rows());
    assert_eq!(out.len(), (r1 - r0) * a.m());
    assert_eq!(a.kp(), h.kp());
    assert_eq!(h.kp() % crate::head::HEAD_PAD, 0);
    // SAFETY: the features were checked above; rows r0..r1 < h.rows() each hold kp()
    // elements, activations kp() per token, and `out` has the length asserted.
    unsafe { head_rows(h, a, r0, r1, out) }
}

#[target_feature(enable = "avx2,fma,f16c")]
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

#[target_feature(enable = "avx2,fma,f16c")]
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
            let mut lo = [_mm256_setzero_ps(); R];
            let mut hi = [_mm256_setzero_ps(); R];
            for c in (0..kp).step_by(LANES) {
                // SAFETY: c + 16 <= kp values of the token.
                let (xl, xh) =
                    unsafe { (_mm256_loadu_ps(x.add(c)), _mm256_loadu_ps(x.add(c + 8))) };
                for i in 0..R {
                    let (wl, wh) = if half {
                        let p = rows[i].wrapping_add(2 * c);
                        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(HEAD_PF).cast());
                        // SAFETY: 16 f16 = 32 bytes within the row.
                        let w = unsafe { _mm256_load_si256(p.cast()) };
                        (
                            _mm256_cvtph_ps(_mm256_castsi256_si128(w)),
                            _mm256_cvtph_ps(_mm256_extracti128_si256::<1>(w)),
                        )
                    } else {
                        let p = rows[i].wrapping_add(4 * c);
                        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(HEAD_PF).cast());
                        // SAFETY: 16 f32 = 64 bytes within the 64-byte aligned row.
                        unsafe {
                            (
                                _mm256_load_ps(p.cast()),
                                _mm256_load_ps(p.cast::<f32>().add(8)),
                            )
                        }
                    };
                    lo[i] = _mm256_fmadd_ps(wl, xl, lo[i]);
                    hi[i] = _mm256_fmadd_ps(wh, xh, hi[i]);
                }
            }
            for i in 0..R {
                let mut l = [0.0f32; LANES];
                // SAFETY: `l` holds 16 f32.
                unsafe {
                    _mm256_storeu_ps(l.as_mut_ptr(), lo[i]);
                    _mm256_storeu_ps(l.as_mut_ptr().add(8), hi[i]);
                }
                v[i] = reduce_lanes(&l);
            }
        }
        HeadType::Q8 => {
            let q = a.codes(t).as_ptr();
            let ones = _mm256_set1_epi16(1);
            let mut acc = [_mm256_setzero_si256(); R];
            for c in (0..kp).step_by(32) {
                // SAFETY: c + 32 <= kp codes of the token.
                let av = unsafe { _mm256_loadu_si256(q.add(c).cast()) };
                let ua = _mm256_abs_epi8(av);
                for i in 0..R {
                    let p = rows[i].wrapping_add(c);
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(HEAD_PF).cast());
                    // SAFETY: 32 codes within the 64-byte aligned row.
                    let w = unsafe { _mm256_load_si256(p.cast()) };
                    let pr = _mm256_maddubs_epi16(ua, _mm256_sign_epi8(w, av));
                    acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(pr, ones));
                }
            }
            for i in 0..R {
                let mut l = [0i32; 8];
                // SAFETY: `l` holds 8 i32.
                unsafe { _mm256_storeu_si256(l.as_mut_ptr().cast(), acc[i]) };
                let dot = l.iter().fold(0i32, |s, &x| s.wrapping_add(x));
                v[i] = q8_logit(dot, h.scale(r + i), a.inv_scale(t));
            }
        }
    }
}
