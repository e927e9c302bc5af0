//! Scaled ternary matrices and quantized activation batches: the operands of the contract.

use crate::act::{self, ActError};
use crate::config::{ArrayConfig, BlockShape};
use crate::scale::{self, ScaleError};
use crate::trit::TritError;
use ndarray::{Array1, Array2, ArrayView2};
use thiserror::Error;

/// Shape and range problems of operands.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum OperandError {
    #[error("{what}: shape {got:?} does not match the expected {expected:?}")]
    Shape {
        what: &'static str,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{what} = {value} is out of range: {legal}")]
    Range {
        what: &'static str,
        value: String,
        legal: String,
    },
    #[error("weights: {0}")]
    Trit(#[from] TritError),
    #[error("scales: {0}")]
    Scale(#[from] ScaleError),
    #[error("activations: {0}")]
    Act(#[from] ActError),
}

/// Ceiling division.
pub fn div_ceil(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// A ternary weight matrix W [N out × K in] cut into Scaled Ternary Blocks of
/// `block.n × block.k`, each with a mantissa; one exponent per block row.
///
/// Blocks at the right and bottom edges may be partial (K or N not a multiple of the block).
#[derive(Debug, Clone, PartialEq)]
pub struct ScaledTernaryMatrix {
    /// Block shape (rows × inputs sharing one scale).
    pub block: BlockShape,
    /// Trits, [N, K], each -1, 0 or +1.
    pub trits: Array2<i8>,
    /// Scale mantissas, [ceil(N/block.n), ceil(K/block.k)], each < 2^mant_bits.
    pub mants: Array2<u32>,
    /// Scale exponents, [ceil(N/block.n)]: block scale = mant · 2^(-exp).
    pub exps: Array1<i16>,
    /// Mantissa width.
    pub mant_bits: u32,
}

impl ScaledTernaryMatrix {
    /// Builds from hardware-format scales, checking every shape and range.
    pub fn new(
        trits: Array2<i8>,
        block: BlockShape,
        mants: Array2<u32>,
        exps: Array1<i16>,
        mant_bits: u32,
    ) -> Result<Self, OperandError> {
        if block.n == 0 || block.k == 0 {
            return Err(OperandError::Range {
                what: "block shape",
                value: block.to_string(),
                legal: "both sides ≥ 1".into(),
            });
        }
        if !(1..=31).contains(&mant_bits) {
            return Err(OperandError::Range {
                what: "mant_bits",
                value: mant_bits.to_string(),
                legal: "1..=31".into(),
            });
        }
        let (n, k) = trits.dim();
        let (nb, kb) = (div_ceil(n, block.n as usize), div_ceil(k, block.k as usize));
        if mants.dim() != (nb, kb) {
            return Err(OperandError::Shape {
                what: "scale mantissas",
                got: mants.shape().to_vec(),
                expected: vec![nb, kb],
            });
        }
        if exps.len() != nb {
            return Err(OperandError::Shape {
                what: "scale exponents",
                got: exps.shape().to_vec(),
                expected: vec![nb],
            });
        }
        if let Some(((r, c), &t)) = trits.indexed_iter().find(|(_, &t)| !(-1..=1).contains(&t)) {
            return Err(OperandError::Range {
                what: "weight",
                value: format!("[{r}, {c}] = {t}"),
                legal: "a trit: -1, 0 or +1".into(),
            });
        }
        let limit = 1u64 << mant_bits;
        for ((r, c), &m) in mants.indexed_iter() {
            if m as u64 >= limit {
                return Err(ScaleError::MantissaRange {
                    row: r,
                    col: c,
                    mant: m as u64,
                    mant_bits,
                }
                .into());
            }
        }
        Ok(Self {
            block,
            trits,
            mants,
            exps,
            mant_bits,
        })
    }

    /// Builds from f32 block scales [ceil(N/bn), ceil(K/bk)] (see [`scale::quantize_block_row`]).
    pub fn from_f32_scales(
        trits: Array2<i8>,
        block: BlockShape,
        scales: ArrayView2<f32>,
        mant_bits: u32,
    ) -> Result<Self, OperandError> {
        let (n, k) = trits.dim();
        if block.n == 0 || block.k == 0 {
            return Err(OperandError::Range {
                what: "block shape",
                value: block.to_string(),
                legal: "both sides ≥ 1".into(),
            });
        }
        let (nb, kb) = (div_ceil(n, block.n as usize), div_ceil(k, block.k as usize));
        if scales.dim() != (nb, kb) {
            return Err(OperandError::Shape {
                what: "block scales",
                got: scales.shape().to_vec(),
                expected: vec![nb, kb],
            });
        }
        let mut mants = Array2::<u32>::zeros((nb, kb));
        let mut exps = Array1::<i16>::zeros(nb);
        for r in 0..nb {
            let row: Vec<f32> = scales.row(r).to_vec();
            let q = scale::quantize_block_row(&row, mant_bits, r)?;
            exps[r] = q.exp;
            for (c, m) in q.mants.into_iter().enumerate() {
                mants[(r, c)] = m;
            }
        }
        Self::new(trits, block, mants, exps, mant_bits)
    }

    /// Block rows `[br0, br1)` as a matrix of their own (same blocks, same scales).
    pub fn block_rows(&self, br0: usize, br1: usize) -> Self {
        let bn = self.block.n as usize;
        let nb = self.mants.nrows();
        let (br0, br1) = (br0.min(nb), br1.min(nb).max(br0.min(nb)));
        let (r0, r1) = ((br0 * bn).min(self.n()), (br1 * bn).min(self.n()));
        Self {
            block: self.block,
            trits: self.trits.slice(ndarray::s![r0..r1, ..]).to_owned(),
            mants: self.mants.slice(ndarray::s![br0..br1, ..]).to_owned(),
            exps: self.exps.slice(ndarray::s![br0..br1]).to_owned(),
            mant_bits: self.mant_bits,
        }
    }

    /// N (outputs).
    pub fn n(&self) -> usize {
        self.trits.nrows()
    }

    /// K (inputs).
    pub fn k(&self) -> usize {
        self.trits.ncols()
    }

    /// The value block (r, c) stands for, m · 2^(-E), exactly.
    pub fn block_scale(&self, r: usize, c: usize) -> f64 {
        scale::scale_value(self.mants[(r, c)], self.exps[r])
    }

    /// Checks that this matrix can run on an array built from `cfg`.
    pub fn check_fits(&self, cfg: &ArrayConfig) -> Result<(), OperandError> {
        let acc = &cfg.accumulator;
        if self.k() as u64 > acc.max_k || self.k() == 0 {
            return Err(OperandError::Range {
                what: "K",
                value: self.k().to_string(),
                legal: format!(
                    "1..={} (accumulator.max_k of config {})",
                    acc.max_k, cfg.name
                ),
            });
        }
        if self.n() as u64 > acc.max_n || self.n() == 0 {
            return Err(OperandError::Range {
                what: "N",
                value: self.n().to_string(),
                legal: format!(
                    "1..={} (accumulator.max_n of config {})",
                    acc.max_n, cfg.name
                ),
            });
        }
        if self.mant_bits != cfg.scale.mantissa_bits {
            return Err(OperandError::Range {
                what: "mant_bits",
                value: self.mant_bits.to_string(),
                legal: format!(
                    "{} (scale.mantissa_bits of config {})",
                    cfg.scale.mantissa_bits, cfg.name
                ),
            });
        }
        if !self.block.k.is_multiple_of(cfg.block.k) {
            return Err(OperandError::Range {
                what: "block.k",
                value: self.block.k.to_string(),
                legal: format!(
                    "a multiple of the array's block.k = {} (config {})",
                    cfg.block.k, cfg.name
                ),
            });
        }
        Ok(())
    }
}

/// A batch of M quantized tokens: codes [M, K] and one f32 scale per token.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedActs {
    /// Activation width in bits (4..=8).
    pub bits: u32,
    /// Codes, [M, K], in [-2^(bits-1), 2^(bits-1) - 1].
    pub q: Array2<i8>,
    /// Per-token scale s, [M]: code ≈ x · s.
    pub scales: Array1<f32>,
}

impl QuantizedActs {
    /// Quantizes f32 activations [M, K] per token (see [`act::quantize_token`]).
    pub fn quantize(x: ArrayView2<f32>, bits: u32) -> Result<Self, OperandError> {
        check_bits(bits)?;
        let (m, k) = x.dim();
        let mut q = Array2::<i8>::zeros((m, k));
        let mut scales = Array1::<f32>::zeros(m);
        for t in 0..m {
            let row: Vec<f32> = x.row(t).to_vec();
            let (codes, s) = act::quantize_token(&row, bits, t)?;
            q.row_mut(t).assign(&Array1::from(codes));
            scales[t] = s;
        }
        Ok(Self { bits, q, scales })
    }

    /// Wraps existing codes, checking their range and the scales' shape.
    pub fn from_codes(q: Array2<i8>, scales: Array1<f32>, bits: u32) -> Result<Self, OperandError> {
        check_bits(bits)?;
        if scales.len() != q.nrows() {
            return Err(OperandError::Shape {
                what: "activation scales",
                got: scales.shape().to_vec(),
                expected: vec![q.nrows()],
            });
        }
        for (t, row) in q.rows().into_iter().enumerate() {
            act::check_codes(&row.to_vec(), bits, t)?;
        }
        if let Some((t, &s)) = scales
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            return Err(OperandError::Range {
                what: "activation scale",
                value: format!("[{t}] = {s}"),
                legal: "finite and > 0".into(),
            });
        }
        Ok(Self { bits, q, scales })
    }

    /// M (tokens).
    pub fn m(&self) -> usize {
        self.q.nrows()
    }

    /// K (inputs).
    pub fn k(&self) -> usize {
        self.q.ncols()
    }
}

fn check_bits(bits: u32) -> Result<(), OperandError> {
    if (4..=8).contains(&bits) {
        Ok(())
    } else {
        Err(OperandError::Range {
            what: "activation bits",
            value: bits.to_string(),
            legal: "4..=8".into(),
        })
    }
}
