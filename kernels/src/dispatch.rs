//! Kernel selection: run-time CPU feature detection, an override (`TERN_KERNEL` or an explicit
//! [`KernelPath`]), and the GEMM entry points.

use crate::layout::{PreparedActs, PreparedMatrix, ROWS};
use crate::{portable, threads};
use ndarray::Array2;
use serde::Serialize;
use std::fmt;
use std::sync::OnceLock;
use tern_spec::matrix::{OperandError, QuantizedActs};
use thiserror::Error;

/// Environment variable that forces a kernel path (`portable`, `avx2`, `avx512vnni`,
/// `neon`); unset or `auto` means the best one this CPU has.
pub const ENV_VAR: &str = "TERN_KERNEL";

/// Kernel errors.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum KernelError {
    #[error(transparent)]
    Operand(#[from] OperandError),
    #[error("kernel path `{0}` is not available on this CPU (available: {1})")]
    Unavailable(KernelPath, String),
    #[error(
        "{ENV_VAR}={0:?} names no kernel path (legal: auto, portable, avx2, avx512vnni, neon)"
    )]
    BadName(String),
    #[error("output head: {0}")]
    Head(String),
}

/// An implementation of the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelPath {
    /// Plain Rust; every CPU.
    Portable,
    /// x86-64 AVX2 (`vpmaddubsw` + `vpmaddwd`).
    Avx2,
    /// x86-64 AVX-512 F/BW + VNNI (`vpdpbusd`).
    Avx512Vnni,
    /// aarch64 NEON (`smull` + `sadalp`).
    Neon,
}

impl KernelPath {
    /// Every path, slowest first.
    pub const ALL: [KernelPath; 4] = [
        KernelPath::Portable,
        KernelPath::Avx2,
        KernelPath::Avx512Vnni,
        KernelPath::Neon,
    ];

    /// Its name (as parsed by [`KernelPath::parse`]).
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Portable => "portable",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512Vnni => "avx512vnni",
            KernelPath::Neon => "neon",
        }
    }

    /// Parses a name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether this CPU runs it.
    pub fn is_available(self) -> bool {
        match self {
            KernelPath::Portable => true,
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx2 => crate::avx2::available(),
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx512Vnni => crate::avx512::available(),
            #[cfg(target_arch = "aarch64")]
            KernelPath::Neon => crate::neon::available(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    fn kernel(self) -> Kernel {
        match self {
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx2 => crate::avx2::run,
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx512Vnni => crate::avx512::run,
            #[cfg(target_arch = "aarch64")]
            KernelPath::Neon => crate::neon::run,
            _ => portable::run,
        }
    }
}

impl fmt::Display for KernelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

type Kernel = fn(&PreparedMatrix, &PreparedActs, usize, usize, &mut [i64]);

/// The paths this CPU runs, slowest first.
pub fn available() -> Vec<KernelPath> {
    KernelPath::ALL
        .into_iter()
        .filter(|p| p.is_available())
        .collect()
}

/// The fastest path this CPU runs.
pub fn detect() -> KernelPath {
    *available().last().unwrap_or(&KernelPath::Portable)
}

/// The path a value of [`ENV_VAR`] selects (`None`, empty or `auto`: [`detect`]).
pub fn path_from_env_value(v: Option<&str>) -> Result<KernelPath, KernelError> {
    match v.map(str::trim) {
        None | Some("") => Ok(detect()),
        Some(s) if s.eq_ignore_ascii_case("auto") => Ok(detect()),
        Some(s) => {
            let p = KernelPath::parse(s).ok_or_else(|| KernelError::BadName(s.to_string()))?;
            check_available(p)
        }
    }
}

pub(crate) fn check_available(p: KernelPath) -> Result<KernelPath, KernelError> {
    if p.is_available() {
        Ok(p)
    } else {
        let names: Vec<_> = available().iter().map(|p| p.name()).collect();
        Err(KernelError::Unavailable(p, names.join(", ")))
    }
}

/// The default path: [`ENV_VAR`] if set, else [`detect`]; read once per process.
pub fn default_path() -> Result<KernelPath, KernelError> {
    static PATH: OnceLock<Result<KernelPath, KernelError>> = OnceLock::new();
    PATH.get_or_init(|| path_from_env_value(std::env::var(ENV_VAR).ok().as_deref()))
        .clone()
}

/// Exact integer GEMM, `acc [M, N]`, equal to `tern_spec::reference::gemm_acc`, on the
/// default path with `threads` threads (0 or 1: the calling thread only).
pub fn gemm(
    pm: &PreparedMatrix,
    acts: &QuantizedActs,
    threads: usize,
) -> Result<Array2<i64>, KernelError> {
    gemm_with(pm, acts, threads, default_path()?)
}

/// As [`gemm`] on a chosen path (an error if this CPU lacks it).
pub fn gemm_with(
    pm: &PreparedMatrix,
    acts: &QuantizedActs,
    threads: usize,
    path: KernelPath,
) -> Result<Array2<i64>, KernelError> {
    let path = check_available(path)?;
    let pa = PreparedActs::new(pm, acts)?;
    let (m, n) = (pa.m(), pm.n());
    with_scratch(pm.groups() * ROWS * m, |buf| {
        gemm_prepared(pm, &pa, threads, path, buf)?;
        Ok(token_major(buf, m, n, threads))
    })
}

thread_local! {
    /// The calling thread's kernel output buffer, `[padded row][token]`, kept between calls:
    /// a prefill GEMM's output is megabytes, and a fresh one per call costs page faults and
    /// zeroing. It is never read before the kernel writes it (every kernel writes every value
    /// of its chunk: `kernels_write_every_output_value`).
    static SCRATCH: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` values of the calling thread's scratch (a fresh buffer when the scratch
/// is already in use further up the stack).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [i64]) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, 0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0i64; len]),
    })
}

/// `[padded row][token]` kernel output (`⌈N/16⌉·16·M` values) → `acc [M, N]`, split over
/// `threads` by token.
fn token_major(buf: &[i64], m: usize, n: usize, threads: usize) -> Array2<i64> {
    Array2::from_shape_vec((m, n), token_major_vec(buf, m, n, threads)).expect("m × n")
}

fn token_major_vec(buf: &[i64], m: usize, n: usize, threads: usize) -> Vec<i64> {
    if m == 1 {
        return buf[..n].to_vec();
    }
    let mut y: Vec<i64> = Vec::with_capacity(m * n);
    // Tokens per task: about 4 tasks per thread. Each task reads, per 16-row group, a
    // contiguous run of its tokens for each row, and writes its tokens' rows.
    let tpt = m.div_ceil(threads.max(1) * 4).max(1);
    threads::for_chunks_mut(
        threads,
        &mut y.spare_capacity_mut()[..m * n],
        tpt * n,
        |i, ys| {
            let t0 = i * tpt;
            let tn = ys.len() / n;
            for (g, blk) in buf.chunks_exact(ROWS * m).enumerate() {
                let o0 = g * ROWS;
                if o0 >= n {
                    break;
                }
                for r in 0..ROWS.min(n - o0) {
                    for (dt, &v) in blk[r * m + t0..][..tn].iter().enumerate() {
                        ys[dt * n + o0 + r].write(v);
                    }
                }
            }
        },
    );
    // SAFETY: the groups cover rows 0..n (⌈N/16⌉ groups of 16), so every (token, row) of
    // the m·n values was written above.
    unsafe { y.set_len(m * n) };
    y
}

/// Several matrices of the same K times the same activations (Q, K, V; gate, up) in one
/// hand-off to the thread pool: `[acc [M, N_i]]`, each equal to [`gemm`] of its matrix.
pub fn gemm_many(
    pms: &[&PreparedMatrix],
    acts: &QuantizedActs,
    threads: usize,
) -> Result<Vec<Array2<i64>>, KernelError> {
    let path = default_path()?;
    // Matrices with the same segments (same K and block shape) share one activation layout.
    let mut pas: Vec<PreparedActs> = Vec::new();
    let mut pa_of = Vec::with_capacity(pms.len());
    for (i, pm) in pms.iter().enumerate() {
        match (0..i).find(|&j| pms[j].segs() == pm.segs() && pms[j].tiles() == pm.tiles()) {
            Some(j) => pa_of.push(pa_of[j]),
            None => {
                pas.push(PreparedActs::new(pm, acts)?);
                pa_of.push(pas.len() - 1);
            }
        }
    }
    let m = acts.m();
    let lens: Vec<usize> = pms.iter().map(|pm| pm.groups() * ROWS * m).collect();
    let kernel = path.kernel();
    let total: usize = pms.iter().map(|pm| pm.groups()).sum();
    let cg = threads::chunk_groups(total, threads.max(1));
    with_scratch(lens.iter().sum(), |scratch| {
        let mut bufs: Vec<&mut [i64]> = Vec::with_capacity(pms.len());
        let mut rest = scratch;
        for &l in &lens {
            let (b, r) = rest.split_at_mut(l);
            bufs.push(b);
            rest = r;
        }
        let mut tasks = Vec::new();
        for (i, buf) in bufs.iter_mut().enumerate() {
            for (c, chunk) in buf.chunks_mut(cg * ROWS * m).enumerate() {
                tasks.push((i, c * cg, chunk));
            }
        }
        threads::for_each_mut(threads, &mut tasks, |_, (i, g0, chunk)| {
            let g1 = *g0 + chunk.len() / (ROWS * m);
            kernel(pms[*i], &pas[pa_of[*i]], *g0, g1, chunk)
        });
        drop(tasks);
        Ok(pms
            .iter()
            .zip(bufs)
            .map(|(pm, buf)| token_major(buf, m, pm.n(), threads))
            .collect())
    })
}

/// The kernel itself on prepared activations, into `out` laid out `[padded row][token]`
/// (`groups · 16 · M` values): what the benchmarks time.
pub fn gemm_prepared(
    pm: &PreparedMatrix,
    pa: &PreparedActs,
    threads: usize,
    path: KernelPath,
    out: &mut [i64],
) -> Result<(), KernelError> {
    let path = check_available(path)?;
    let expect = pm.groups() * ROWS * pa.m();
    if out.len() != expect || pa.kp() != pm.tiles() * crate::layout::TILE_K {
        return Err(OperandError::Shape {
            what: "prepared output or activations",
            got: vec![out.len(), pa.kp()],
            expected: vec![expect, pm.tiles() * crate::layout::TILE_K],
        }
        .into());
    }
    let kernel = path.kernel();
    threads::for_groups(threads, pm.groups(), ROWS * pa.m(), out, |g0, g1, chunk| {
        kernel(pm, pa, g0, g1, chunk)
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_many_equals_gemm_of_each() {
        use tern_spec::{random, reference, BlockShape};
        for (seed, m) in [(1u64, 1usize), (2, 3), (3, 5)] {
            let shapes = [(40usize, 100usize), (17, 100), (64, 100)];
            let ws: Vec<_> = shapes
                .iter()
                .enumerate()
                .map(|(i, &(n, k))| {
                    random::layer(
                        seed + i as u64,
                        n,
                        k,
                        BlockShape { n: 16, k: 64 },
                        16,
                        random::ScaleDist::Typical,
                    )
                    .unwrap()
                    .0
                })
                .collect();
            let pms: Vec<_> = ws.iter().map(PreparedMatrix::new).collect();
            let refs: Vec<&PreparedMatrix> = pms.iter().collect();
            let acts = random::acts(seed, m, 100, 8).unwrap();
            for threads in 1..=3 {
                let got = gemm_many(&refs, &acts, threads).unwrap();
                for (w, g) in ws.iter().zip(&got) {
                    assert_eq!(g, &reference::gemm_acc(w, acts.q.view()).unwrap());
                }
            }
        }
    }

    #[test]
    fn names_round_trip_and_env_values() {
        for p in KernelPath::ALL {
            assert_eq!(KernelPath::parse(p.name()), Some(p));
            assert_eq!(KernelPath::parse(&p.name().to_uppercase()), Some(p));
        }
        assert_eq!(path_from_env_value(None), Ok(detect()));
        assert_eq!(path_from_env_value(Some("auto")), Ok(detect()));
        assert_eq!(
            path_from_env_value(Some("portable")),
            Ok(KernelPath::Portable)
        );
        let e = path_from_env_value(Some("sse9")).unwrap_err();
        assert!(e.to_string().contains("\"sse9\""), "{e}");
        for p in KernelPath::ALL {
            let r = path_from_env_value(Some(p.name()));
            assert_eq!(r.is_ok(), p.is_available(), "{p}: {r:?}");
        }
        assert!(available().contains(&KernelPath::Portable));
        assert!(detect().is_available());
    }
}
