//! Errors of [`crate::pack`]. Every message names the layout, the field (rows, cols, byte
//! offset, element or scale index), the bad value and what would have been legal.

use std::fmt;

use thiserror::Error;

use super::{Layout, ScaleKind};

/// Why a scale value was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScaleProblem {
    /// The value is NaN.
    NaN,
    /// The value is +∞ or -∞.
    Infinite,
    /// The value is below zero (-0.0 is accepted: it is bit-exactly representable).
    Negative,
    /// The value has no exact f16 representation; `nearest` is the round-to-nearest-even f16.
    NotF16 { nearest: f32 },
}

impl fmt::Display for ScaleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaleProblem::NaN => write!(f, "NaN"),
            ScaleProblem::Infinite => write!(f, "infinite"),
            ScaleProblem::Negative => write!(f, "negative"),
            ScaleProblem::NotF16 { nearest } => write!(
                f,
                "not exactly representable in f16 (nearest f16 is {nearest}; \
                 use Scales::round_to_f16 to round explicitly)"
            ),
        }
    }
}

/// Extra "legal" wording for layouts whose scales are f16 on disk.
fn f16_note(layout: &Layout) -> &'static str {
    if layout.scale_kind().is_f16() {
        ", exactly an f16"
    } else {
        ""
    }
}

/// Everything that can go wrong converting between trits and packed bytes.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PackError {
    /// A layout name that [`Layout::from_str`](std::str::FromStr) does not know.
    #[error("unknown layout name {name:?} (legal: {legal})", legal = Layout::names_joined())]
    UnknownLayout { name: String },

    /// `rows × cols` (or the byte count derived from it) does not fit in `usize`.
    #[error("{layout}: shape rows = {rows} × cols = {cols} is too large (element or byte count overflows usize)")]
    ShapeOverflow {
        layout: Layout,
        rows: usize,
        cols: usize,
    },

    /// K must be a multiple of the layout's block length.
    #[error("{layout}: cols (K) = {cols} is not a multiple of {multiple} (legal: K = {multiple}·m, m ≥ 0)")]
    ColsNotMultiple {
        layout: Layout,
        cols: usize,
        multiple: usize,
    },

    /// N must be a multiple of the layout's row interleave.
    #[error("{layout}: rows (N) = {rows} is not a multiple of {multiple} (legal: N = {multiple}·m, m ≥ 0)")]
    RowsNotMultiple {
        layout: Layout,
        rows: usize,
        multiple: usize,
    },

    /// The packed buffer does not have exactly the size the shape implies.
    #[error("{layout}: byte length {actual} is wrong for rows = {rows}, cols = {cols} (legal: exactly {expected} bytes)")]
    ByteLength {
        layout: Layout,
        rows: usize,
        cols: usize,
        expected: usize,
        actual: usize,
    },

    /// The unpacked trit buffer does not have `rows × cols` elements.
    #[error("{layout}: trit buffer has {actual} elements, but rows = {rows} × cols = {cols} needs exactly {expected}")]
    TritCount {
        layout: Layout,
        rows: usize,
        cols: usize,
        expected: usize,
        actual: usize,
    },

    /// An input element is not -1, 0 or +1.
    #[error("{layout}: element {index} (row {row}, col {col}) has value {value}, which is not a trit (legal: -1, 0, +1)")]
    NotATrit {
        layout: Layout,
        index: usize,
        row: usize,
        col: usize,
        value: i8,
    },

    /// A base-3 byte that the layout's encoder never produces.
    #[error("{layout}: byte offset {offset} has value {value}, which is not a valid base-3 byte (legal: {legal})")]
    InvalidBase3 {
        layout: Layout,
        offset: usize,
        value: u8,
        legal: &'static str,
    },

    /// A 2-bit field holds the layout's reserved code.
    #[error("{layout}: byte offset {offset}, bits [{hi}:{lo}] hold reserved code {code:#04b} (legal codes: {legal})", hi = .lo + 1)]
    ReservedCode {
        layout: Layout,
        offset: usize,
        lo: u32,
        code: u8,
        legal: &'static str,
    },

    /// Row padding (tern2, tern5) must hold 0 trits, or unpack→pack would not give the same bytes.
    #[error("{layout}: byte offset {offset} pads row {row} past col {cols} with trit {value}, but padding must be 0")]
    NonZeroPadding {
        layout: Layout,
        offset: usize,
        row: usize,
        cols: usize,
        value: i8,
    },

    /// A scale is NaN, infinite, negative or (for f16 layouts) not exactly an f16.
    #[error("{layout}: scale {index} (byte offset {offset}) = {value} is {problem} (legal: finite, ≥ 0{f16})",
        f16 = f16_note(.layout))]
    BadScale {
        layout: Layout,
        index: usize,
        offset: usize,
        value: f32,
        problem: ScaleProblem,
    },

    /// Scales of another granularity than the layout stores.
    #[error("{layout}: scales given {given}, but this layout stores scales {expected}")]
    ScaleKind {
        layout: Layout,
        expected: ScaleKind,
        given: String,
    },

    /// Wrong number of per-group scales.
    #[error("{layout}: {actual} scales given, but rows = {rows} × cols = {cols} needs exactly {expected} (one per {group}-weight group of each row)")]
    ScaleCount {
        layout: Layout,
        rows: usize,
        cols: usize,
        group: usize,
        expected: usize,
        actual: usize,
    },

    /// [`convert`](super::convert) cannot express the source scales in the target layout.
    #[error("cannot convert {from} to {to}: {reason}")]
    ScalesNotConvertible {
        from: Layout,
        to: Layout,
        reason: String,
    },
}
