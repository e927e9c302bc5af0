//! The portable kernel: plain Rust over the prepared layout, same arithmetic as the SIMD
//! kernels (`Σ c·a` per segment, minus the segment's activation sum, times the mantissa,
//! accumulated in i64). Runs everywhere; the SIMD paths are checked against it and against
//! the reference.

use crate::layout::{PreparedActs, PreparedMatrix, ROWS, TILE_K};

/// Computes groups `g0..g1` for every token into `out`, laid out `[row - 16·g0][token]`
/// (`out.len() == (g1 - g0) · 16 · M`).
pub fn run(pm: &PreparedMatrix, acts: &PreparedActs, g0: usize, g1: usize, out: &mut [i64]) {
    let m = acts.m();
    debug_assert_eq!(out.len(), (g1 - g0) * ROWS * m);
    for g in g0..g1 {
        let codes = pm.group_codes(g);
        for t in 0..m {
            let a = acts.token(t);
            let asums = acts.asums(t);
            let mut acc = [0i64; ROWS];
            for (s, seg) in pm.segs().iter().enumerate() {
                let mut d = [0i32; ROWS];
                for j in seg.tile0..seg.tile0 + seg.tiles {
                    let tile = &codes[j].0;
                    let at = &a[j * TILE_K..(j + 1) * TILE_K];
                    for (r, dr) in d.iter_mut().enumerate() {
                        let lane = &tile[4 * r..4 * r + 4];
                        let mut sum = 0i32;
                        for (b, &byte) in lane.iter().enumerate() {
                            for p in 0..4 {
                                let c = ((byte >> (2 * p)) & 3) as i32;
                                sum += c * at[4 * p + b] as i32;
                            }
                        }
                        *dr += sum;
                    }
                }
                for (r, ar) in acc.iter_mut().enumerate() {
                    let p = (d[r] - asums[s]) as i64;
                    *ar += p * pm.mant(g, s, r) as i64;
                }
            }
            let base = (g - g0) * ROWS * m;
            for (r, &v) in acc.iter().enumerate() {
                out[base + r * m + t] = v;
            }
        }
    }
}
