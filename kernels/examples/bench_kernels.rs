//! Prints `bench_kernels` as Markdown (or JSON with `--json`).
//!
//! `cargo run --release -p tern-kernels --example bench_kernels -- [--json] [--quick]
//!  [--threads 1,2] [--paths avx512vnni,avx2] [--block 64x64] [--no-lm-head] [--ws-mib 1024]
//!  [--shapes 2560x6912,...] [--no-hot] [--prefill M] [--min-seconds S]`

use tern_kernels::bench::{BenchOptions, BITNET_2B_LM_HEAD};
use tern_kernels::{bench_kernels, KernelPath};
use tern_spec::BlockShape;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let value = |f: &str| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let mut opts = if flag("--quick") {
        BenchOptions::quick()
    } else {
        BenchOptions::default()
    };
    if flag("--no-lm-head") {
        opts.shapes.retain(|&s| s != BITNET_2B_LM_HEAD);
    }
    if let Some(sh) = value("--shapes") {
        opts.shapes = sh
            .split(',')
            .map(|s| {
                let (k, n) = s.split_once('x').expect("--shapes KxN,KxN");
                (k.parse().expect("K"), n.parse().expect("N"))
            })
            .collect();
    }
    if flag("--no-hot") {
        opts.hot = false;
    }
    if let Some(m) = value("--prefill") {
        opts.prefill_m = m.parse().expect("--prefill M");
    }
    if let Some(p) = value("--paths") {
        opts.paths = p
            .split(',')
            .map(|s| KernelPath::parse(s).unwrap_or_else(|| panic!("unknown path {s}")))
            .collect();
    }
    if let Some(b) = value("--block") {
        let (n, k) = b.split_once('x').expect("--block NxK");
        opts.block = Some(BlockShape {
            n: n.parse().expect("block n"),
            k: k.parse().expect("block k"),
        });
    }
    if let Some(w) = value("--ws-mib") {
        opts.working_set_bytes = w.parse::<usize>().expect("--ws-mib MiB") << 20;
    }
    if let Some(s) = value("--min-seconds") {
        opts.min_seconds = s.parse().expect("--min-seconds");
    }
    let threads: Vec<usize> = value("--threads")
        .unwrap_or_else(|| "1,2".into())
        .split(',')
        .map(|t| t.parse().expect("--threads N,M"))
        .collect();
    let report = bench_kernels(&threads, &opts).expect("benchmark");
    if flag("--json") {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    } else {
        print!("{}", report.to_markdown());
    }
}
