//! Every head kernel path this CPU runs, on 1–3 threads, equals `head::reference` bit for
//! bit: random shapes (odd V and K, K = 1, K not a multiple of 16 or 64, M = 1..5), weights
//! and activations of ordinary, tiny (subnormal f16), huge and zero magnitude, all-equal rows,
//! Q8 codes at -128/127 (given directly). A failing case prints its `Case`; `seed` replays it.
//! F16 heads of f16-exact weights also equal the F32 head.

use ndarray::Array2;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tern_kernels::head::{head_prepared, reference, HeadActs, HeadMatrix, HeadType};
use tern_kernels::{available, KernelPath};

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    v: usize,
    k: usize,
    m: usize,
    weights: u8,
    acts: u8,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        prop_oneof![Just(1usize), 1..=70usize],
        prop_oneof![Just(1usize), Just(64usize), 1..=300usize],
        1..=5usize,
        0u8..5,
        0u8..5,
    )
        .prop_map(|(seed, v, k, m, weights, acts)| Case {
            seed,
            v,
            k,
            m,
            weights,
            acts,
        })
}

/// A value of kind `kind`: 0 ordinary, 1 tiny, 2 huge, 3 zeros and ±1, 4 mixed.
fn value(rng: &mut ChaCha8Rng, kind: u8) -> f32 {
    let u: f32 = rng.gen_range(-1.0..1.0);
    match kind {
        0 => u,
        1 => u * 1e-6,
        2 => u * 6.0e4,
        3 => [0.0, 1.0, -1.0, -0.0][rng.gen_range(0..4)],
        _ => match rng.gen_range(0..3) {
            0 => u * 1e-7,
            1 => u * 1e3,
            _ => u,
        },
    }
}

fn matrix(rng: &mut ChaCha8Rng, rows: usize, cols: usize, kind: u8) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || value(rng, kind))
}

fn same(a: &Array2<f32>, b: &Array2<f32>) -> bool {
    a.dim() == b.dim()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
    // f16-exact weights half the time, so F16 == F32 can be checked.
    let mut w = matrix(&mut rng, c.v, c.k, c.weights);
    let f16_exact = rng.gen_bool(0.5);
    if f16_exact {
        w.mapv_inplace(|x| half::f16::from_f32(x).to_f32());
    }
    let x = matrix(&mut rng, c.m, c.k, c.acts);
    let mut f32_logits = None;
    for ty in HeadType::ALL {
        let h = HeadMatrix::new(ty, w.view()).unwrap();
        let acts = HeadActs::new(&h, x.view()).unwrap();
        let want = reference(&h, &acts);
        for path in available() {
            for threads in 1..=3 {
                let got = head_prepared(&h, &acts, threads, path).unwrap();
                prop_assert!(
                    same(&got, &want),
                    "{c:?} {ty} {path} {threads} threads:\n{got}\n!=\n{want}"
                );
            }
        }
        match ty {
            HeadType::F32 => f32_logits = Some(want),
            HeadType::F16 if f16_exact => {
                prop_assert!(h.exact());
                prop_assert!(
                    same(&want, f32_logits.as_ref().unwrap()),
                    "{c:?}: F16 != F32"
                );
            }
            _ => {}
        }
    }
    // Q8 with extreme codes given directly.
    let h = HeadMatrix::new(HeadType::Q8, w.view()).unwrap();
    let codes = Array2::from_shape_simple_fn((c.m, c.k), || match rng.gen_range(0..4) {
        0 => -128i8,
        1 => 127,
        _ => rng.gen(),
    });
    let inv: Vec<f32> = (0..c.m).map(|_| rng.gen_range(1e-3..10.0)).collect();
    let acts = HeadActs::from_codes(&h, codes.view(), &inv).unwrap();
    let want = reference(&h, &acts);
    for path in available() {
        let got = head_prepared(&h, &acts, 2, path).unwrap();
        prop_assert!(same(&got, &want), "{c:?} q8 codes {path}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]
    #[test]
    fn head_kernels_equal_the_reference(c in case()) {
        check(&c)?;
    }
}

#[test]
fn vocab_sized_rows_split_over_threads() {
    let c = Case {
        seed: 7,
        v: 1003,
        k: 2560,
        m: 1,
        weights: 4,
        acts: 0,
    };
    check(&c).unwrap();
}

#[test]
fn q8_extreme_weights_and_paths() {
    // All-±max rows and an all-zero row; K = 300 (not a multiple of 64).
    let mut w = Array2::<f32>::zeros((9, 300));
    for (r, mut row) in w.rows_mut().into_iter().enumerate() {
        if r < 8 {
            row.fill(if r % 2 == 0 { 3.5e4 } else { -1e-30 });
        }
    }
    let x = Array2::from_shape_fn((2, 300), |(t, i)| if (t + i) % 3 == 0 { -7.0 } else { 7.0 });
    let h = HeadMatrix::new(HeadType::Q8, w.view()).unwrap();
    let acts = HeadActs::new(&h, x.view()).unwrap();
    let want = reference(&h, &acts);
    for path in available() {
        assert!(
            same(&head_prepared(&h, &acts, 2, path).unwrap(), &want),
            "{path}"
        );
    }
    assert!(!KernelPath::Portable.name().is_empty());
}
