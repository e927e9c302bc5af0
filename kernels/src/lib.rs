//! # tern-kernels: fast, bit-exact CPU kernels for ternary GEMV/GEMM
//!
//! Ternary weights with per-block scales (any `bn × bk`, partial edge blocks) times int8 (4..=8
//! bit) activations, producing exactly the i64 accumulators of
//! [`tern_spec::reference::gemm_acc`] (docs/arithmetic.md §5). A [`PreparedMatrix`] lays the
//! weights out once for the kernels (2-bit codes, 16 rows × 16 inputs per 64-byte tile, see
//! [`layout`]); [`gemm`] runs the fastest path this CPU has (AVX-512 VNNI, AVX2, NEON or
//! portable), or the one forced by `TERN_KERNEL` or [`gemm_with`], on `threads` threads.
//!
//! ```
//! use tern_kernels::{gemm, PreparedMatrix};
//! use tern_spec::{random, reference, BlockShape};
//! let (w, _) = random::layer(1, 40, 100, BlockShape { n: 16, k: 64 }, 16,
//!                            random::ScaleDist::Typical).unwrap();
//! let acts = random::acts(2, 3, 100, 8).unwrap();
//! let pm = PreparedMatrix::new(&w);
//! let acc = gemm(&pm, &acts, 2).unwrap();
//! assert_eq!(acc, reference::gemm_acc(&w, acts.q.view()).unwrap());
//! ```

pub mod bench;
pub mod dispatch;
pub mod head;
pub mod layout;
pub mod portable;
pub mod threads;

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "aarch64")]
pub mod neon;

pub use bench::{bench_kernels, BenchOptions, BenchReport};
pub use dispatch::{
    available, default_path, detect, gemm, gemm_many, gemm_prepared, gemm_with, KernelError,
    KernelPath, ENV_VAR,
};
pub use head::{head_logits, head_logits_with, HeadActs, HeadMatrix, HeadType};
pub use layout::{PreparedActs, PreparedMatrix};
