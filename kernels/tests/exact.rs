//! Every kernel path this CPU runs, on every thread count tried, equals
//! `tern_spec::reference::gemm_acc` exactly: random shapes (odd sizes, N = 1, K = 1), block
//! shapes (1 × k, 64 × 64, per-tensor, odd), activation widths 4..=8 and extremes (-128, 127,
//! all -1 weights), mantissas up to 31 bits, and forced segment splitting. A failing case
//! prints its `Case`, whose `seed` replays it.

use ndarray::{Array1, Array2};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tern_kernels::layout::ROWS;
use tern_kernels::{available, gemm_prepared, gemm_with, KernelPath, PreparedActs, PreparedMatrix};
use tern_spec::act::{qmax, qmin};
use tern_spec::matrix::{QuantizedActs, ScaledTernaryMatrix};
use tern_spec::reference::gemm_acc;
use tern_spec::BlockShape;

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    n: usize,
    k: usize,
    m: usize,
    bits: u32,
    bn_kind: u8,
    bk_kind: u8,
    weights: u8,
    acts: u8,
    mant_bits: u32,
    max_seg: u8,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        prop_oneof![Just(1usize), 1..=70usize],
        prop_oneof![Just(1usize), 1..=300usize],
        1..=9usize,
        4u32..=8,
        0u8..5,
        0u8..6,
        0u8..4,
        0u8..4,
        prop_oneof![Just(16u32), Just(31u32), 1..=31u32],
        0u8..3,
    )
        .prop_map(
            |(seed, n, k, m, bits, bn_kind, bk_kind, weights, acts, mant_bits, max_seg)| Case {
                seed,
                n,
                k,
                m,
                bits,
                bn_kind,
                bk_kind,
                weights,
                acts,
                mant_bits,
                max_seg,
            },
        )
}

fn build(c: &Case) -> (ScaledTernaryMatrix, QuantizedActs, usize) {
    let mut r = ChaCha8Rng::seed_from_u64(c.seed);
    let bn = match c.bn_kind {
        0 => 1,
        1 => 16,
        2 => 64,
        3 => c.n,
        _ => r.gen_range(1..=c.n),
    };
    let bk = match c.bk_kind {
        0 => 1,
        1 => 16,
        2 => 64,
        3 => 256,
        4 => c.k,
        _ => r.gen_range(1..=c.k),
    };
    let trits = Array2::from_shape_fn((c.n, c.k), |_| match c.weights {
        0 => r.gen_range(-1i8..=1),
        1 => -1,
        2 => 1,
        _ => {
            if r.gen_bool(0.9) {
                0
            } else {
                r.gen_range(-1i8..=1)
            }
        }
    });
    let (lo, hi) = (qmin(c.bits) as i8, qmax(c.bits) as i8);
    let q = Array2::from_shape_fn((c.m, c.k), |_| match c.acts {
        0 => match r.gen_range(0..6) {
            0 => lo,
            1 => hi,
            _ => r.gen_range(lo..=hi),
        },
        1 => lo,
        2 => hi,
        _ => {
            if r.gen_bool(0.5) {
                lo
            } else {
                hi
            }
        }
    });
    let (nb, kb) = (c.n.div_ceil(bn), c.k.div_ceil(bk));
    let top = (1u64 << c.mant_bits) - 1;
    let mants = Array2::from_shape_fn((nb, kb), |_| match r.gen_range(0..10) {
        0 => 0,
        1 | 2 => top as u32,
        _ => r.gen_range(0..=top) as u32,
    });
    let block = BlockShape {
        n: bn as u32,
        k: bk as u32,
    };
    let w = ScaledTernaryMatrix::new(trits, block, mants, Array1::zeros(nb), c.mant_bits)
        .expect("valid matrix");
    let acts = QuantizedActs::from_codes(q, Array1::from_elem(c.m, 1.5), c.bits)
        .expect("valid activations");
    let max_seg = [usize::MAX, 1, 3][c.max_seg as usize];
    (w, acts, max_seg)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn every_path_equals_the_reference(c in case()) {
        let (w, acts, max_seg) = build(&c);
        let want = gemm_acc(&w, acts.q.view()).unwrap();
        let pm = PreparedMatrix::with_max_segment(&w, max_seg);
        for path in available() {
            for threads in [1, 2, 3] {
                let got = gemm_with(&pm, &acts, threads, path).unwrap();
                prop_assert_eq!(&got, &want, "path {} threads {} seed {}", path, threads, c.seed);
            }
            // Every kernel writes every value of its output (the GEMM entry points reuse an
            // output buffer without clearing it): none of a sentinel fill survives.
            let pa = PreparedActs::new(&pm, &acts).unwrap();
            let mut out = vec![i64::MIN; pm.groups() * ROWS * acts.m()];
            gemm_prepared(&pm, &pa, 2, path, &mut out).unwrap();
            prop_assert!(!out.contains(&i64::MIN), "path {} left a value unwritten, seed {}", path, c.seed);
        }
    }
}

/// `n × k` all `w`, activations all `a`, every mantissa `mant`, on `block`.
fn constant(
    n: usize,
    k: usize,
    w: i8,
    a: i8,
    block: BlockShape,
    mant: u32,
    mant_bits: u32,
) -> (ScaledTernaryMatrix, QuantizedActs) {
    let (nb, kb) = (n.div_ceil(block.n as usize), k.div_ceil(block.k as usize));
    let m = ScaledTernaryMatrix::new(
        Array2::from_elem((n, k), w),
        block,
        Array2::from_elem((nb, kb), mant),
        Array1::zeros(nb),
        mant_bits,
    )
    .unwrap();
    let acts = QuantizedActs::from_codes(Array2::from_elem((1, k), a), Array1::ones(1), 8).unwrap();
    (m, acts)
}

fn check_all_paths(w: &ScaledTernaryMatrix, acts: &QuantizedActs, expect: i64) {
    let pm = PreparedMatrix::new(w);
    let want = gemm_acc(w, acts.q.view()).unwrap();
    assert!(
        want.iter().all(|&v| v == expect),
        "reference disagrees with the formula"
    );
    for path in available() {
        let got = gemm_with(&pm, acts, 2, path).unwrap();
        assert_eq!(got, want, "path {path}");
    }
}

#[test]
fn width_extremes_at_max_k() {
    // docs/arithmetic.md §5: all weights -1, all activations -128, mantissas 2^16 - 1 reach
    // +K·128·(2^16 - 1); all +1 reach the negative bound.
    let k = 32768;
    let bound = k as i64 * 128 * ((1 << 16) - 1);
    for block in [
        BlockShape { n: 64, k: 64 },
        BlockShape { n: 1, k: 256 },
        BlockShape { n: 17, k: k as u32 },
    ] {
        let (w, a) = constant(17, k, -1, -128, block, (1 << 16) - 1, 16);
        check_all_paths(&w, &a, bound);
        let (w, a) = constant(17, k, 1, -128, block, (1 << 16) - 1, 16);
        check_all_paths(&w, &a, -bound);
    }
}

#[test]
fn a_block_longer_than_a_segment_is_split_exactly() {
    // K = 300 000 > 2^18 inputs per segment: one per-tensor block split in two segments, with
    // the largest mantissa the matrix type allows.
    let k = 300_000;
    let mant = (1u32 << 31) - 1;
    let (w, a) = constant(3, k, -1, -128, BlockShape { n: 3, k: k as u32 }, mant, 31);
    assert_eq!(PreparedMatrix::new(&w).segs().len(), 2);
    check_all_paths(&w, &a, k as i64 * 128 * mant as i64);
}

#[test]
fn forced_paths_and_thread_counts_agree() {
    let (w, _) = tern_spec::random::layer(
        7,
        200,
        1000,
        BlockShape { n: 64, k: 64 },
        16,
        tern_spec::random::ScaleDist::Extreme,
    )
    .unwrap();
    let acts = tern_spec::random::act_codes(8, 7, 1000, 8);
    let pm = PreparedMatrix::new(&w);
    let first = gemm_with(&pm, &acts, 1, KernelPath::Portable).unwrap();
    for path in available() {
        for threads in 1..=4 {
            assert_eq!(
                gemm_with(&pm, &acts, threads, path).unwrap(),
                first,
                "{path} × {threads}"
            );
        }
    }
    assert_eq!(first, gemm_acc(&w, acts.q.view()).unwrap());
    // and the host conversion matches the reference's
    let y = pm.dequantize(&first, &acts);
    assert_eq!(y, tern_spec::reference::dequantize(&first, &w, &acts));
}

#[test]
fn unavailable_paths_and_shape_mismatches_are_errors() {
    let (w, _) = constant(3, 10, 1, 1, BlockShape { n: 3, k: 10 }, 1, 16);
    let pm = PreparedMatrix::new(&w);
    let acts = QuantizedActs::from_codes(Array2::zeros((2, 11)), Array1::ones(2), 8).unwrap();
    let e = gemm_with(&pm, &acts, 1, KernelPath::Portable).unwrap_err();
    assert!(e.to_string().contains("activations"), "{e}");
    for p in KernelPath::ALL {
        if !p.is_available() {
            let acts =
                QuantizedActs::from_codes(Array2::zeros((1, 10)), Array1::ones(1), 8).unwrap();
            let e = gemm_with(&pm, &acts, 1, p).unwrap_err();
            assert!(e.to_string().contains("not available"), "{e}");
        }
    }
}
