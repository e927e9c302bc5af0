//! Criterion benches: GEMV on the BitNet 2B-4T shapes (cache-resident; `bench_kernels` and
//! `tern bench kernels` measure the DRAM-streaming case) and one prefill GEMM, per available
//! path, at 1 and 2 threads; the dense output head (f32, f16, q8) on a BitNet-2B-shaped
//! slice of the vocabulary (16384 × 2560; the full 128256 rows scale linearly).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tern_kernels::bench::{random_acts, random_matrix, BITNET_2B_SHAPES};
use tern_kernels::layout::ROWS;
use tern_kernels::{available, gemm_prepared, KernelPath, PreparedActs, PreparedMatrix};

fn kernels(c: &mut Criterion) {
    let paths: Vec<KernelPath> = available()
        .into_iter()
        .filter(|p| *p != KernelPath::Portable)
        .collect();
    for (i, &(k, n)) in BITNET_2B_SHAPES.iter().enumerate() {
        let pm = PreparedMatrix::new(&random_matrix(i as u64, k, n, None));
        for m in [1usize, 16] {
            let pa = PreparedActs::new(&pm, &random_acts(i as u64, m, k)).unwrap();
            let mut out = vec![0i64; pm.groups() * ROWS * m];
            let mut g = c.benchmark_group(format!("gemm_k{k}_n{n}_m{m}"));
            g.throughput(Throughput::Bytes(pm.bytes() as u64));
            for &path in &paths {
                for threads in [1usize, 2] {
                    g.bench_function(BenchmarkId::new(path.name(), threads), |b| {
                        b.iter(|| gemm_prepared(&pm, &pa, threads, path, &mut out).unwrap())
                    });
                }
            }
            g.finish();
        }
    }
}

fn heads(c: &mut Criterion) {
    use rand::{Rng, SeedableRng};
    use tern_kernels::head::{head_prepared, HeadActs, HeadMatrix, HeadType};
    let (v, k) = (16384usize, 2560usize);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let w = ndarray::Array2::from_shape_simple_fn((v, k), || rng.gen_range(-0.05f32..0.05));
    let x = ndarray::Array2::from_shape_simple_fn((1, k), || rng.gen_range(-1.0f32..1.0));
    for ty in HeadType::ALL {
        let h = HeadMatrix::new(ty, w.view()).unwrap();
        let acts = HeadActs::new(&h, x.view()).unwrap();
        let mut g = c.benchmark_group(format!("head_{ty}_v{v}_k{k}"));
        g.throughput(Throughput::Bytes(h.bytes() as u64));
        for path in available() {
            for threads in [1usize, 2] {
                g.bench_function(BenchmarkId::new(path.name(), threads), |b| {
                    b.iter(|| head_prepared(&h, &acts, threads, path).unwrap())
                });
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = kernels, heads
}
criterion_main!(benches);
