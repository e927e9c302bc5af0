//! Criterion benches: GEMV on the BitNet 2B-4T shapes (cache-resident; `bench_kernels` and
//! `tern bench kernels` measure the DRAM-streaming case) and one prefill GEMM, per available
//! path, at 1 and 2 threads.

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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = kernels
}
criterion_main!(benches);
