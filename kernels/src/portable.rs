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

/// The dense head (see [`crate::head`]): rows `r0..r1` for every token into
/// `out [row - r0][token]`, in plain Rust over the padded layout.
pub fn head_run(
    h: &crate::head::HeadMatrix,
    a: &crate::head::HeadActs,
    r0: usize,
    r1: usize,
    out: &mut [f32],
) {
    use crate::head::{q8_logit, reduce_lanes, HeadType, LANES};
    let m = a.m();
    debug_assert_eq!(out.len(), (r1 - r0) * m);
    for r in r0..r1 {
        for t in 0..m {
            out[(r - r0) * m + t] = match h.head_type() {
                HeadType::F32 | HeadType::F16 => {
                    let x = a.values(t);
                    let mut lanes = [0.0f32; LANES];
                    for (c, xs) in x.chunks_exact(LANES).enumerate() {
                        for (j, (l, &xv)) in lanes.iter_mut().zip(xs).enumerate() {
                            *l = h.weight(r, c * LANES + j).mul_add(xv, *l);
                        }
                    }
                    reduce_lanes(&lanes)
                }
                HeadType::Q8 => {
                    let w = h.row(r);
                    let dot = w
                        .iter()
                        .zip(a.codes(t))
                        .fold(0i32, |s, (&wv, &av)| s + wv as i8 as i32 * av as i32);
                    q8_logit(dot, h.scale(r), a.inv_scale(t))
                }
            };
        }
    }
}
