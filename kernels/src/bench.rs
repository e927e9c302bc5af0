//! `bench_kernels`: weight-streaming throughput of the kernels against the machine's memory
//! read bandwidth, measured in the same run (what `tern bench kernels` prints).
//!
//! Decode (M = 1) reads every weight once per token, so its speed bound is
//! `bytes of weights ÷ memory bandwidth`. To measure the kernel as a model runs it — weights
//! streamed from DRAM, not replayed from cache — each shape is copied until the copies fill
//! `working_set_bytes` (default 1 GiB, larger than the LLC here) and the GEMVs walk the copies
//! round-robin. "Hot" figures (one matrix, cache-resident) show the compute ceiling.
//!
//! The memory read bandwidth is a probe: a sum over a buffer of the same size, on the same
//! thread pool, with SIMD loads and the kernels' software prefetch. It runs before and after
//! everything (the bandwidth table) and, for every DRAM measurement, before each pass of the
//! kernel, so each percentage is the median ratio of kernel to probe under the same load. Each
//! result records `/proc/loadavg`: the machine is shared, and a figure is only as quiet as it was.

use crate::dispatch::{available, gemm_prepared, KernelError, KernelPath};
use crate::layout::{PreparedActs, PreparedMatrix, ROWS};
use crate::threads;
use ndarray::{Array1, Array2};
use rand::{Rng, RngCore, SeedableRng};
use serde::Serialize;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tern_spec::matrix::{QuantizedActs, ScaledTernaryMatrix};
use tern_spec::BlockShape;

/// The GEMV shapes of BitNet b1.58 2B-4T, as (K, N): attention (q/o), FFN up/gate, FFN down.
pub const BITNET_2B_SHAPES: [(usize, usize); 3] = [(2560, 2560), (2560, 6912), (6912, 2560)];
/// Its output (LM head) matrix, K = 2560 → N = 128256.
pub const BITNET_2B_LM_HEAD: (usize, usize) = (2560, 128_256);

/// What to measure.
#[derive(Debug, Clone, Serialize)]
pub struct BenchOptions {
    /// (K, N) shapes.
    pub shapes: Vec<(usize, usize)>,
    /// Kernel paths (unavailable ones are skipped); empty: every available SIMD path, or
    /// portable if there is none.
    pub paths: Vec<KernelPath>,
    /// Scale block shape; `None`: per-tensor (one block, as BitNet b1.58).
    pub block: Option<BlockShape>,
    /// Bytes of weight copies streamed round-robin per shape (and of the bandwidth buffer).
    pub working_set_bytes: usize,
    /// Least time per measurement, seconds.
    pub min_seconds: f64,
    /// Also measure each shape cache-resident (one matrix replayed).
    pub hot: bool,
    /// Tokens of one prefill GEMM measured per shape (0: none).
    pub prefill_m: usize,
    /// RNG seed of the random weights and activations.
    pub seed: u64,
}

impl Default for BenchOptions {
    /// The BitNet 2B-4T shapes plus its LM head, per-tensor scale, 1 GiB working set.
    fn default() -> Self {
        let mut shapes = BITNET_2B_SHAPES.to_vec();
        shapes.push(BITNET_2B_LM_HEAD);
        Self {
            shapes,
            paths: Vec::new(),
            block: None,
            working_set_bytes: 1 << 30,
            min_seconds: 0.5,
            hot: true,
            prefill_m: 32,
            seed: 1,
        }
    }
}

impl BenchOptions {
    /// A tiny configuration (small shapes, 8 MiB working set) for tests and smoke runs.
    pub fn quick() -> Self {
        Self {
            shapes: vec![(300, 70), (64, 33)],
            paths: Vec::new(),
            block: Some(BlockShape { n: 16, k: 64 }),
            working_set_bytes: 8 << 20,
            min_seconds: 0.01,
            hot: true,
            prefill_m: 5,
            seed: 1,
        }
    }
}

/// Memory read bandwidth at a thread count.
#[derive(Debug, Clone, Serialize)]
pub struct Bandwidth {
    pub threads: usize,
    /// Best of the samples, GB/s (10^9 bytes per second).
    pub gbps: f64,
    /// Every sample, GB/s, in the order taken.
    pub samples: Vec<f64>,
    /// `/proc/loadavg` after the last sample.
    pub loadavg: String,
}

/// One kernel measurement.
#[derive(Debug, Clone, Serialize)]
pub struct KernelResult {
    pub path: KernelPath,
    pub threads: usize,
    pub k: usize,
    pub n: usize,
    /// Tokens per call.
    pub m: usize,
    /// `true`: weights streamed from a working set larger than the caches ("DRAM");
    /// `false`: one matrix replayed ("replay": cache-resident when it fits the caches).
    pub cold: bool,
    /// Bytes of prepared weights (codes + mantissas) read per call.
    pub bytes_per_call: usize,
    /// Median time per call, nanoseconds.
    pub ns_per_call: f64,
    /// Weight bytes per second, GB/s.
    pub weights_gbps: f64,
    /// Ternary multiply-accumulates (M·N·K) per second, 10^9.
    pub gmacs: f64,
    /// Memory read bandwidth this result is compared with, GB/s: for DRAM runs the median of
    /// probe passes interleaved with the kernel passes (same threads, same moment); for
    /// cache-resident runs the best probe figure of the run.
    pub bandwidth_gbps: f64,
    /// Weight GB/s as a percentage of that bandwidth (DRAM runs: the median over passes of the
    /// ratio to the probe pass just before): the fraction of the decode bound reached.
    pub pct_of_bandwidth: f64,
    /// `/proc/loadavg` right after the measurement.
    pub loadavg: String,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub cpu: String,
    pub available: Vec<KernelPath>,
    pub options: BenchOptions,
    pub bandwidth: Vec<Bandwidth>,
    pub results: Vec<KernelResult>,
    /// Each shape's result on the measured paths equalled the portable kernel's.
    pub verified: bool,
}

impl BenchReport {
    /// Measured bandwidth at `threads`, GB/s.
    pub fn bandwidth_at(&self, threads: usize) -> Option<f64> {
        self.bandwidth
            .iter()
            .find(|b| b.threads == threads)
            .map(|b| b.gbps)
    }

    /// A Markdown summary (tables of bandwidth and kernel results).
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let avail: Vec<_> = self.available.iter().map(|p| p.name()).collect();
        let _ = writeln!(
            s,
            "CPU: {} (kernel paths: {})\n",
            self.cpu,
            avail.join(", ")
        );
        let _ = writeln!(
            s,
            "| threads | memory read GB/s (best) | samples | loadavg |"
        );
        let _ = writeln!(s, "|---|---|---|---|");
        for b in &self.bandwidth {
            let samples: Vec<_> = b.samples.iter().map(|x| format!("{x:.1}")).collect();
            let _ = writeln!(
                s,
                "| {} | {:.1} | {} | {} |",
                b.threads,
                b.gbps,
                samples.join(", "),
                b.loadavg
            );
        }
        let _ = writeln!(
            s,
            "\n| path | threads | K→N | M | data | MB/call | µs/call | weight GB/s | GMAC/s | probe GB/s | % of bandwidth | loadavg |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &self.results {
            let _ = writeln!(
                s,
                "| {} | {} | {}→{} | {} | {} | {:.2} | {:.1} | {:.2} | {:.1} | {:.1} | {:.0}% | {} |",
                r.path,
                r.threads,
                r.k,
                r.n,
                r.m,
                if r.cold { "DRAM" } else { "replay" },
                r.bytes_per_call as f64 / 1e6,
                r.ns_per_call / 1e3,
                r.weights_gbps,
                r.gmacs,
                r.bandwidth_gbps,
                r.pct_of_bandwidth,
                r.loadavg
            );
        }
        let _ = writeln!(
            s,
            "\nresults equal to the portable kernel: {}",
            if self.verified { "yes" } else { "NO" }
        );
        s
    }
}

/// `/proc/loadavg`'s first three fields (or "n/a").
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// A random K→N matrix (≈1/3 zeros) with the given block shape and 16-bit mantissas, built
/// fast enough for the LM head.
pub fn random_matrix(
    seed: u64,
    k: usize,
    n: usize,
    block: Option<BlockShape>,
) -> ScaledTernaryMatrix {
    let block = block.unwrap_or(BlockShape {
        n: n as u32,
        k: k as u32,
    });
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut bytes = vec![0u8; n * k];
    r.fill_bytes(&mut bytes);
    let trits: Vec<i8> = bytes.into_iter().map(|b| (b % 3) as i8 - 1).collect();
    let trits = Array2::from_shape_vec((n, k), trits).expect("n·k trits");
    let (nb, kb) = (n.div_ceil(block.n as usize), k.div_ceil(block.k as usize));
    let mants = Array2::from_shape_fn((nb, kb), |_| r.gen_range(1u32 << 15..1u32 << 16));
    ScaledTernaryMatrix::new(trits, block, mants, Array1::zeros(nb), 16)
        .expect("a well-formed random matrix")
}

/// Random full-range 8-bit activations [m, k].
pub fn random_acts(seed: u64, m: usize, k: usize) -> QuantizedActs {
    tern_spec::random::act_codes(seed, m, k, 8)
}

/// Wrapping sum of `buf` with the strongest reader this CPU has (SIMD loads and software
/// prefetch, as the kernels read weights): the bandwidth probe.
pub fn probe_sum(buf: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if crate::avx512::available() {
        return crate::avx512::read_sum(buf);
    } else if crate::avx2::available() {
        return crate::avx2::read_sum(buf);
    }
    let mut acc = [0u64; 8];
    let (chunks, rest) = buf.as_chunks::<8>();
    for v in chunks {
        for i in 0..8 {
            acc[i] = acc[i].wrapping_add(v[i]);
        }
    }
    acc.iter().chain(rest).fold(0u64, |a, &b| a.wrapping_add(b))
}

/// Sums `buf` on `threads` threads (the bandwidth probe); returns GB/s.
fn read_bandwidth(buf: &[u64], threads: usize) -> f64 {
    let sum_chunk = probe_sum;
    let t = Instant::now();
    let total = if threads <= 1 {
        sum_chunk(buf)
    } else {
        let chunk = buf.len().div_ceil(threads * 8).next_multiple_of(8);
        let chunks: Vec<&[u64]> = buf.chunks(chunk).collect();
        let sums: Vec<AtomicU64> = chunks.iter().map(|_| AtomicU64::new(0)).collect();
        threads::run(threads, chunks.len(), |i| {
            sums[i].store(sum_chunk(chunks[i]), Ordering::Relaxed)
        });
        sums.iter()
            .map(|s| s.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    };
    black_box(total);
    (buf.len() * 8) as f64 / t.elapsed().as_secs_f64() / 1e9
}

fn measure_bandwidth(buf: &[u64], threads: usize, min_seconds: f64) -> Vec<f64> {
    let start = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < 3 || start.elapsed().as_secs_f64() < min_seconds {
        samples.push(read_bandwidth(buf, threads));
        if samples.len() >= 50 {
            break;
        }
    }
    samples
}

/// The memory read bandwidth probe alone: for each thread count, samples over a buffer of
/// `bytes` for at least `min_seconds` (best sample reported, every sample kept).
pub fn memory_bandwidth(threads: &[usize], bytes: usize, min_seconds: f64) -> Vec<Bandwidth> {
    let probe: Vec<u64> = (0..bytes.max(8) / 8).map(|i| i as u64).collect();
    read_bandwidth(&probe, 1); // page faults
    threads
        .iter()
        .map(|&t| {
            let samples = measure_bandwidth(&probe, t.max(1), min_seconds);
            Bandwidth {
                threads: t.max(1),
                gbps: samples.iter().copied().fold(0.0, f64::max),
                samples,
                loadavg: loadavg(),
            }
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Per-call time of one configuration and, when paired with the probe, the bandwidth.
struct Timing {
    /// Median seconds per call.
    secs: f64,
    /// Median probe GB/s taken between the kernel passes.
    paired_gbps: Option<f64>,
    /// Median over passes of kernel GB/s ÷ the probe GB/s just before it, in %.
    paired_pct: Option<f64>,
}

/// Times calls over `copies` round-robin (one pass = every copy once): median per call over
/// passes. With `probe`, each pass is preceded by a probe pass on the same threads, so every
/// kernel figure has a bandwidth figure taken under the same load.
fn time_calls(
    copies: &[PreparedMatrix],
    pa: &PreparedActs,
    threads: usize,
    path: KernelPath,
    out: &mut [i64],
    min_seconds: f64,
    probe: Option<&[u64]>,
) -> Result<Timing, KernelError> {
    gemm_prepared(&copies[0], pa, threads, path, out)?; // warm-up: pool, page faults
    let bytes = copies[0].bytes() as f64;
    let start = Instant::now();
    let (mut per_call, mut bw, mut pct) = (Vec::new(), Vec::new(), Vec::new());
    while per_call.len() < 5 || start.elapsed().as_secs_f64() < min_seconds {
        let probe_gbps = probe.map(|p| read_bandwidth(p, threads));
        let reps = if copies.len() == 1 { 8 } else { copies.len() };
        let t = Instant::now();
        for i in 0..reps {
            gemm_prepared(&copies[i % copies.len()], pa, threads, path, out)?;
        }
        let secs = t.elapsed().as_secs_f64() / reps as f64;
        per_call.push(secs);
        if let Some(b) = probe_gbps {
            bw.push(b);
            pct.push(100.0 * bytes / secs / 1e9 / b);
        }
        if per_call.len() >= 1000 {
            break;
        }
    }
    Ok(Timing {
        secs: median(&mut per_call),
        paired_gbps: (!bw.is_empty()).then(|| median(&mut bw)),
        paired_pct: (!pct.is_empty()).then(|| median(&mut pct)),
    })
}

/// Runs the benchmark on `threads` thread counts (e.g. `[1, 2]`).
pub fn bench_kernels(threads: &[usize], opts: &BenchOptions) -> Result<BenchReport, KernelError> {
    let avail = available();
    let paths: Vec<KernelPath> = if opts.paths.is_empty() {
        let simd: Vec<_> = avail
            .iter()
            .copied()
            .filter(|p| *p != KernelPath::Portable)
            .collect();
        if simd.is_empty() {
            vec![KernelPath::Portable]
        } else {
            simd
        }
    } else {
        opts.paths
            .iter()
            .copied()
            .filter(|p| p.is_available())
            .collect()
    };
    let threads: Vec<usize> = threads.iter().map(|&t| t.max(1)).collect();

    let probe: Vec<u64> = (0..opts.working_set_bytes / 8).map(|i| i as u64).collect();
    let mut bw_samples: Vec<Vec<f64>> = threads
        .iter()
        .map(|&t| measure_bandwidth(&probe, t, opts.min_seconds))
        .collect();

    let mut results = Vec::new();
    let mut verified = true;
    for (si, &(k, n)) in opts.shapes.iter().enumerate() {
        let seed = opts.seed.wrapping_add(si as u64);
        let w = random_matrix(seed, k, n, opts.block);
        let pm = PreparedMatrix::new(&w);
        drop(w);
        let bytes = pm.bytes();
        let ncopies = opts.working_set_bytes.div_ceil(bytes).max(2);
        let acts = random_acts(seed, 1, k);
        let pa = PreparedActs::new(&pm, &acts)?;
        let mut want = vec![0i64; pm.groups() * ROWS];
        gemm_prepared(&pm, &pa, 1, KernelPath::Portable, &mut want)?;
        let mut out = vec![0i64; want.len()];
        for &path in &paths {
            gemm_prepared(&pm, &pa, 2, path, &mut out)?;
            verified &= out == want;
        }
        let copies: Vec<PreparedMatrix> = (0..ncopies).map(|_| pm.clone()).collect();
        drop(pm);
        let push = |path, t, m, cold, tm: Timing, results: &mut Vec<KernelResult>| {
            let gbps = bytes as f64 / tm.secs / 1e9;
            results.push(KernelResult {
                path,
                threads: t,
                k,
                n,
                m,
                cold,
                bytes_per_call: bytes,
                ns_per_call: tm.secs * 1e9,
                weights_gbps: gbps,
                gmacs: (m * n * k) as f64 / tm.secs / 1e9,
                bandwidth_gbps: tm.paired_gbps.unwrap_or(f64::NAN),
                pct_of_bandwidth: tm.paired_pct.unwrap_or(f64::NAN),
                loadavg: loadavg(),
            });
        };
        let probe = Some(probe.as_slice());
        for &path in &paths {
            for &t in &threads {
                let tm = time_calls(&copies, &pa, t, path, &mut out, opts.min_seconds, probe)?;
                push(path, t, 1, true, tm, &mut results);
                if opts.hot {
                    let tm =
                        time_calls(&copies[..1], &pa, t, path, &mut out, opts.min_seconds, None)?;
                    push(path, t, 1, false, tm, &mut results);
                }
                if opts.prefill_m > 1 {
                    let acts = random_acts(seed ^ 7, opts.prefill_m, k);
                    let pam = PreparedActs::new(&copies[0], &acts)?;
                    let mut outm = vec![0i64; copies[0].groups() * ROWS * opts.prefill_m];
                    let tm =
                        time_calls(&copies, &pam, t, path, &mut outm, opts.min_seconds, probe)?;
                    push(path, t, opts.prefill_m, true, tm, &mut results);
                }
            }
        }
    }
    for (i, &t) in threads.iter().enumerate() {
        bw_samples[i].extend(measure_bandwidth(&probe, t, opts.min_seconds));
    }
    let la = loadavg();
    let bandwidth: Vec<Bandwidth> = threads
        .iter()
        .zip(bw_samples)
        .map(|(&t, samples)| Bandwidth {
            threads: t,
            gbps: samples.iter().fold(0.0f64, |a, &b| a.max(b)),
            samples,
            loadavg: la.clone(),
        })
        .collect();
    // Cache-resident runs have no paired probe: compare them with the best bandwidth seen.
    for r in results.iter_mut().filter(|r| !r.cold) {
        if let Some(b) = bandwidth.iter().find(|b| b.threads == r.threads) {
            r.bandwidth_gbps = b.gbps;
            r.pct_of_bandwidth = 100.0 * r.weights_gbps / b.gbps;
        }
    }
    Ok(BenchReport {
        cpu: cpu_name(),
        available: avail,
        options: opts.clone(),
        bandwidth,
        results,
        verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_sums_exactly() {
        for len in [0usize, 1, 31, 32, 33, 1000, 4099] {
            let buf: Vec<u64> = (0..len as u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
            let want = buf.iter().fold(0u64, |a, &b| a.wrapping_add(b));
            assert_eq!(probe_sum(&buf), want, "len {len}");
        }
    }

    #[test]
    fn quick_report_is_complete_and_verified() {
        let opts = BenchOptions {
            min_seconds: 0.0,
            ..BenchOptions::quick()
        };
        let r = bench_kernels(&[1, 2], &opts).unwrap();
        assert!(r.verified);
        assert_eq!(r.bandwidth.len(), 2);
        assert!(r
            .bandwidth
            .iter()
            .all(|b| b.gbps > 0.0 && b.samples.len() >= 6));
        let npaths = r.available.len().max(2) - 1; // SIMD paths, or portable alone
                                                   // per shape, path and thread count: cold, hot, prefill
        assert_eq!(r.results.len(), opts.shapes.len() * npaths * 2 * 3);
        for x in &r.results {
            assert!(x.ns_per_call > 0.0 && x.gmacs > 0.0, "{x:?}");
            assert!(x.pct_of_bandwidth > 0.0 && x.bandwidth_gbps > 0.0, "{x:?}");
            assert_eq!(x.loadavg.split(' ').count(), 3);
        }
        let md = r.to_markdown();
        assert!(md.contains("| 2 |") && md.contains("300→70"), "{md}");
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"weights_gbps\""));
    }
}
