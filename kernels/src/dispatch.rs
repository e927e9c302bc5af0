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

fn check_available(p: KernelPath) -> Result<KernelPath, KernelError> {
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
    let mut buf = vec![0i64; pm.groups() * ROWS * pa.m()];
    gemm_prepared(pm, &pa, threads, path, &mut buf)?;
    let m = pa.m();
    Ok(Array2::from_shape_fn((m, pm.n()), |(t, o)| buf[o * m + t]))
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
