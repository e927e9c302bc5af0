//! The reference against independent computations: random cases within the stated error
//! bound, exact integer identity, and the extremes the width proof predicts.

use ndarray::{Array1, Array2};
use proptest::prelude::*;
use tern_spec::config::BlockShape;
use tern_spec::random::{self, ScaleDist};
use tern_spec::reference::{self, block_psum, error_bound, float_view, gemm_acc};
use tern_spec::widths;
use tern_spec::{ArrayConfig, QuantizedActs, ScaledTernaryMatrix};

/// Independent integer check: Σ_k w·m·q computed per weight (not per block) in i128.
fn acc_per_weight(w: &ScaledTernaryMatrix, a: &Array2<i8>) -> Array2<i128> {
    let (bn, bk) = (w.block.n as usize, w.block.k as usize);
    Array2::from_shape_fn((a.nrows(), w.n()), |(t, o)| {
        (0..w.k())
            .map(|k| {
                w.trits[(o, k)] as i128 * w.mants[(o / bn, k / bk)] as i128 * a[(t, k)] as i128
            })
            .sum()
    })
}

fn case(seed: u64, m: usize, n: usize, k: usize, block: BlockShape, bits: u32, dist: ScaleDist) {
    let (w, s) = random::layer(seed, n, k, block, 16, dist).unwrap();
    let acts = if seed.is_multiple_of(2) {
        random::acts(seed, m, k, bits).unwrap()
    } else {
        random::act_codes(seed, m, k, bits)
    };
    let acc = gemm_acc(&w, acts.q.view()).unwrap();
    let indep = acc_per_weight(&w, &acts.q);
    for ((t, o), &v) in acc.indexed_iter() {
        assert_eq!(v as i128, indep[(t, o)], "seed {seed}: acc [{t},{o}]");
    }
    let y = reference::dequantize(&acc, &w, &acts);
    let view = float_view(&w, s.view(), &acts);
    let bound = error_bound(&w, s.view(), &acts, &view);
    for ((t, o), &yv) in y.indexed_iter() {
        let err = (yv as f64 - view[(t, o)]).abs();
        assert!(
            err <= bound[(t, o)],
            "seed {seed}: y[{t},{o}] = {yv}, view {}, error {err:e} > bound {:e}",
            view[(t, o)],
            bound[(t, o)]
        );
    }
}

proptest! {
    // 200 cases by default; `make verify-long` raises it through PROPTEST_CASES.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
    ))]
    #[test]
    fn random_cases_within_bound(
        seed in any::<u64>(),
        m in 1usize..4,
        n in 1usize..70,
        k in 1usize..300,
        bn in 1u32..70,
        bk in 1u32..130,
        bits in 4u32..=8,
        extreme in any::<bool>(),
    ) {
        let dist = if extreme { ScaleDist::Extreme } else { ScaleDist::Typical };
        case(seed, m, n, k, BlockShape { n: bn, k: bk }, bits, dist);
    }
}

#[test]
fn bitnet_like_shapes() {
    // Per-tensor (one block), 1×128 row groups and 64×64 blocks on one shape.
    for (i, block) in [
        BlockShape { n: 256, k: 512 },
        BlockShape { n: 1, k: 128 },
        BlockShape { n: 64, k: 64 },
    ]
    .into_iter()
    .enumerate()
    {
        case(1000 + i as u64, 3, 256, 512, block, 8, ScaleDist::Typical);
    }
}

fn uniform_matrix(
    n: usize,
    k: usize,
    trit: i8,
    mant: u32,
    block: BlockShape,
) -> ScaledTernaryMatrix {
    let nb = n.div_ceil(block.n as usize);
    let kb = k.div_ceil(block.k as usize);
    ScaledTernaryMatrix::new(
        Array2::from_elem((n, k), trit),
        block,
        Array2::from_elem((nb, kb), mant),
        Array1::zeros(nb),
        16,
    )
    .unwrap()
}

fn codes(m: usize, k: usize, v: i8) -> QuantizedActs {
    QuantizedActs::from_codes(Array2::from_elem((m, k), v), Array1::from_elem(m, 1.0), 8).unwrap()
}

#[test]
fn extremes_hit_the_width_proof_exactly() {
    let cfg = ArrayConfig::default();
    let max_k = cfg.accumulator.max_k as usize;
    let mmax = cfg.mant_max();
    let block = cfg.block;
    let bits = cfg.activation.bits;
    // all -1 weights × all -128 activations: the largest positive value of every width
    let w = uniform_matrix(2, max_k, -1, mmax, block);
    let a = codes(1, max_k, -128);
    let acc = reference::gemm(&cfg, &w, &a).unwrap().acc;
    let predicted = widths::max_abs_acc(max_k as u64, bits, cfg.scale.mantissa_bits);
    assert_eq!(acc[(0, 0)] as u128, predicted);
    assert_eq!(predicted, 32768 * 128 * 65535);
    let need = widths::required_acc_bits(max_k as u64, bits, cfg.scale.mantissa_bits);
    assert!(predicted < 1u128 << (need - 1), "fits in acc_bits");
    assert!(
        predicted >= 1u128 << (need - 2),
        "and acc_bits - 1 would not do"
    );
    assert!(need <= cfg.accumulator.acc_bits);
    let p = block_psum(&w, a.q.view(), 0, 0, 0);
    assert_eq!(p as u128, widths::max_abs_psum(block.k as u64, bits));
    assert_eq!(p, 64 * 128);
    assert_eq!(
        widths::signed_bits_for_magnitude(p as u128),
        cfg.accumulator.psum_bits
    );

    // all +1 × all -128: the most negative
    let w = uniform_matrix(1, max_k, 1, mmax, block);
    let acc = reference::gemm(&cfg, &w, &a).unwrap().acc;
    assert_eq!(acc[(0, 0)], -(predicted as i64));
    // all +1 × all 127
    let acc = reference::gemm(&cfg, &w, &codes(1, max_k, 127))
        .unwrap()
        .acc;
    assert_eq!(acc[(0, 0)], max_k as i64 * 127 * mmax as i64);
    // all 0 weights
    let w = uniform_matrix(3, 100, 0, mmax, block);
    let acc = reference::gemm(&cfg, &w, &codes(2, 100, 127)).unwrap().acc;
    assert!(acc.iter().all(|&v| v == 0));
}

#[test]
fn partial_blocks_and_single_row() {
    // K = 65 with 64-wide blocks: the second block has one input and its own scale.
    let block = BlockShape { n: 64, k: 64 };
    let mut mants = Array2::zeros((1, 2));
    mants[(0, 0)] = 3;
    mants[(0, 1)] = 1000;
    let w = ScaledTernaryMatrix::new(
        Array2::from_elem((1, 65), 1),
        block,
        mants,
        Array1::zeros(1),
        16,
    )
    .unwrap();
    let acc = gemm_acc(&w, Array2::from_elem((1, 65), 2i8).view()).unwrap();
    assert_eq!(acc[(0, 0)], 64 * 2 * 3 + 2 * 1000);
}

#[test]
fn refusals_are_clear() {
    let cfg = ArrayConfig::default();
    let (w, _) = random::layer(1, 4, 64, cfg.block, 16, ScaleDist::Typical).unwrap();
    let bad = random::act_codes(1, 1, 63, 8);
    let e = gemm_acc(&w, bad.q.view()).unwrap_err();
    assert!(e.to_string().contains("[1, 63]"), "{e}");
    let (w, _) =
        random::layer(1, 4, 64, BlockShape { n: 4, k: 32 }, 16, ScaleDist::Typical).unwrap();
    let e = reference::gemm(&cfg, &w, &random::act_codes(1, 1, 64, 8)).unwrap_err();
    assert!(e.to_string().contains("block.k"), "{e}");
    let (w, _) = random::layer(1, 1, 70000, cfg.block, 16, ScaleDist::Typical).unwrap();
    let e = reference::gemm(&cfg, &w, &random::act_codes(1, 1, 70000, 8)).unwrap_err();
    assert!(e.to_string().contains("max_k"), "{e}");
    let e = ScaledTernaryMatrix::new(
        Array2::from_elem((1, 2), 2),
        cfg.block,
        Array2::zeros((1, 1)),
        Array1::zeros(1),
        16,
    )
    .unwrap_err();
    assert!(e.to_string().contains("[0, 0] = 2"), "{e}");
}
