//! aarch64 NEON kernel on the same layout: a 64-byte tile as four 16-byte quarters (rows
//! 4h..4h+4). Per quarter and plane `p`: `(tile >> 2p) & 3` gives codes `c ∈ {0, 1, 2}`;
//! `smull`/`smull2` against the broadcast activation dword `a[4p..4p+4]` give i16 products
//! (|c·a| ≤ 256, -128 included), the four planes add up in i16 (≤ 1024), and `sadalp` widens
//! pairs into i32 lanes holding half a row each. At the end of a segment `addp` joins the
//! halves into one i32 per row, the activation sum is subtracted and `p · mant` (`smull`,
//! mantissas < 2^31) is added to i64 accumulators.
//!
//! Only base NEON (no `dotprod`), so it runs on every aarch64 CPU. Cargo builds it only on
//! aarch64; on x86-64, `kernels/neon-check/run.sh` builds this file for aarch64 and runs it
//! under qemu against a scalar sum.

use crate::layout::{MantMode, PreparedActs, PreparedMatrix, ROWS, TILE_BYTES, TILE_K};
use std::arch::aarch64::*;

/// Whether this CPU has NEON (every aarch64 Linux CPU does).
pub fn available() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

/// Computes groups `g0..g1` for every token into `out` (`[row - 16·g0][token]`).
pub fn run(pm: &PreparedMatrix, acts: &PreparedActs, g0: usize, g1: usize, out: &mut [i64]) {
    assert!(available(), "NEON kernel called on a CPU without it");
    assert!(g0 <= g1 && g1 <= pm.groups());
    assert_eq!(out.len(), (g1 - g0) * ROWS * acts.m());
    assert_eq!(acts.kp(), pm.tiles() * TILE_K);
    for g in g0..g1 {
        for t in 0..acts.m() {
            let o = &mut out[(g - g0) * ROWS * acts.m()..(g + 1 - g0) * ROWS * acts.m()];
            // SAFETY: NEON was checked above; `group` reads tiles of group g < pm.groups()
            // (pm.tiles() tiles), activation bytes < kp() of token t < m, and writes `o`,
            // which holds 16 rows × m tokens.
            unsafe { group(pm, acts, g, t, o) }
        }
    }
}

#[target_feature(enable = "neon")]
unsafe fn group(pm: &PreparedMatrix, acts: &PreparedActs, g: usize, t: usize, out: &mut [i64]) {
    let m = acts.m();
    let wbase: *const u8 = pm.group_codes(g).as_ptr().cast();
    let abase: *const u8 = acts.token(t).as_ptr().cast();
    let mask = vdupq_n_u8(3);
    let per_row = pm.mant_mode() == MantMode::PerRow;
    let gm = pm.group_mants(g);
    let mut acc = [[vdupq_n_s64(0); 2]; 4];
    for (s, seg) in pm.segs().iter().enumerate() {
        let mut lo = [vdupq_n_s32(0); 4];
        let mut hi = [vdupq_n_s32(0); 4];
        for j in seg.tile0..seg.tile0 + seg.tiles {
            let mut a = [vdupq_n_s8(0); 4];
            for (p, ap) in a.iter_mut().enumerate() {
                // SAFETY: byte j·16 + 4p + 3 < kp() of token t.
                let v = unsafe { abase.add(j * TILE_K + 4 * p).cast::<u32>().read_unaligned() };
                *ap = vreinterpretq_s8_u32(vdupq_n_u32(v));
            }
            for h in 0..4 {
                // SAFETY: 16 bytes inside tile j of group g.
                let w = unsafe { vld1q_u8(wbase.add(j * TILE_BYTES + 16 * h)) };
                let c = [
                    vreinterpretq_s8_u8(vandq_u8(w, mask)),
                    vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8::<2>(w), mask)),
                    vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8::<4>(w), mask)),
                    vreinterpretq_s8_u8(vshrq_n_u8::<6>(w)),
                ];
                let mut sl = vmull_s8(vget_low_s8(c[0]), vget_low_s8(a[0]));
                let mut sh = vmull_high_s8(c[0], a[0]);
                for p in 1..4 {
                    sl = vaddq_s16(sl, vmull_s8(vget_low_s8(c[p]), vget_low_s8(a[p])));
                    sh = vaddq_s16(sh, vmull_high_s8(c[p], a[p]));
                }
                lo[h] = vpadalq_s16(lo[h], sl);
                hi[h] = vpadalq_s16(hi[h], sh);
            }
        }
        let asum = vdupq_n_s32(acts.asums(t)[s]);
        for h in 0..4 {
            let p = vsubq_s32(vpaddq_s32(lo[h], hi[h]), asum);
            let mv = if per_row {
                let ms = &gm[s * ROWS + 4 * h..s * ROWS + 4 * h + 4];
                // SAFETY: `ms` holds exactly 4 u32.
                vreinterpretq_s32_u32(unsafe { vld1q_u32(ms.as_ptr()) })
            } else {
                vdupq_n_s32(gm[s] as i32)
            };
            acc[h][0] = vaddq_s64(acc[h][0], vmull_s32(vget_low_s32(p), vget_low_s32(mv)));
            acc[h][1] = vaddq_s64(acc[h][1], vmull_high_s32(p, mv));
        }
    }
    for (h, ah) in acc.iter().enumerate() {
        let mut v = [0i64; 4];
        // SAFETY: `v` holds 4 i64, two per store.
        unsafe {
            vst1q_s64(v.as_mut_ptr(), ah[0]);
            vst1q_s64(v.as_mut_ptr().add(2), ah[1]);
        }
        for (i, &x) in v.iter().enumerate() {
            out[(4 * h + i) * m + t] = x;
        }
    }
}
