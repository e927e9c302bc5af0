//! Scales that travel with packed trits, and the checks applied to them.
//!
//! | layout         | scales stored                                   | on disk          |
//! |----------------|-------------------------------------------------|------------------|
//! | tq1_0, tq2_0   | one per 256-weight group of each row            | f16, little-endian |
//! | i2_s           | one per tensor                                  | f32, little-endian |
//! | i8, tern2, tern5, hf | none                                      | —                |
//!
//! Policy (docs/src/packing.md §Scales): tern never rounds a scale behind the caller's back.
//! A scale for an f16 layout must be exactly an f16 value (`f16::from_f32(v).to_f32()` is
//! bit-identical to `v`), else packing fails with [`ScaleProblem::NotF16`]; callers that
//! want rounding call [`Scales::round_to_f16`] (round to nearest, ties to even) first.
//! Every scale must be finite and ≥ 0 (-0.0 is accepted). An all-zero upstream block has
//! d = 0 (ggml `quantize_row_tq2_0_ref`: `d = amax`), so 0 is legal.

use std::fmt;

use half::f16;

use super::{Layout, PackError, ScaleProblem};

/// Where a layout keeps scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleKind {
    /// The layout carries no scales.
    None,
    /// One f16 scale per `group` consecutive weights of each row (GGUF TQ1_0/TQ2_0: 256).
    PerRowGroup { group: usize },
    /// One f32 scale for the whole tensor (bitnet.cpp I2_S).
    PerTensor,
}

impl ScaleKind {
    /// True when the scales are stored as f16 on disk.
    pub fn is_f16(self) -> bool {
        matches!(self, ScaleKind::PerRowGroup { .. })
    }
}

impl fmt::Display for ScaleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaleKind::None => write!(f, "nowhere (it carries no scales)"),
            ScaleKind::PerRowGroup { group } => write!(f, "per {group}-weight group of each row"),
            ScaleKind::PerTensor => write!(f, "per tensor"),
        }
    }
}

/// Scales of a ternary matrix: weight value = trit × scale.
#[derive(Debug, Clone, PartialEq)]
pub enum Scales {
    /// `values[r * (cols / group) + g]` scales weights `[g·group, (g+1)·group)` of row `r`.
    PerRowGroup { group: usize, values: Vec<f32> },
    /// One scale for every weight of the tensor.
    PerTensor(f32),
}

impl Scales {
    /// The granularity of these scales.
    pub fn kind(&self) -> ScaleKind {
        match self {
            Scales::PerRowGroup { group, .. } => ScaleKind::PerRowGroup { group: *group },
            Scales::PerTensor(_) => ScaleKind::PerTensor,
        }
    }

    /// A copy with every value rounded to the nearest f16 (ties to even, as `half::f16::from_f32`
    /// and ggml's `GGML_FP32_TO_FP16`). NaN stays NaN; values beyond f16 range become ±∞
    /// (both are then refused by [`pack`](super::pack)).
    pub fn round_to_f16(&self) -> Scales {
        let r = |v: f32| f16::from_f32(v).to_f32();
        match self {
            Scales::PerRowGroup { group, values } => Scales::PerRowGroup {
                group: *group,
                values: values.iter().map(|&v| r(v)).collect(),
            },
            Scales::PerTensor(v) => Scales::PerTensor(r(*v)),
        }
    }
}

/// Checks one scale: finite, ≥ 0, and (if `need_f16`) exactly an f16.
/// `index` is the scale's index, `offset` the byte offset where it lives in the packed buffer.
pub(super) fn check_scale(
    layout: Layout,
    index: usize,
    offset: usize,
    value: f32,
    need_f16: bool,
) -> Result<(), PackError> {
    let problem = if value.is_nan() {
        Some(ScaleProblem::NaN)
    } else if value.is_infinite() {
        Some(ScaleProblem::Infinite)
    } else if value < 0.0 {
        Some(ScaleProblem::Negative)
    } else if need_f16 && f16::from_f32(value).to_f32().to_bits() != value.to_bits() {
        Some(ScaleProblem::NotF16 {
            nearest: f16::from_f32(value).to_f32(),
        })
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(PackError::BadScale {
            layout,
            index,
            offset,
            value,
            problem,
        }),
    }
}
