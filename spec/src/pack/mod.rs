//! Packing: conversion between unpacked trits and the packed byte layouts tern reads and writes.
//!
//! The unpacked form is a row-major `i8` matrix in {-1, 0, +1} of `rows` = N output rows ×
//! `cols` = K inputs (PyTorch's `nn.Linear.weight` orientation, `[out_features, in_features]`).
//! Each packed layout is bit-exact with its real format; docs/src/packing.md has the byte
//! diagrams and the upstream source each fact was verified against.
//!
//! | name    | bits/trit | constraint        | scales                          |
//! |---------|-----------|-------------------|---------------------------------|
//! | `i8`    | 8         | —                 | none                            |
//! | `tern2` | 2         | —                 | none                            |
//! | `tern5` | 1.6       | —                 | none                            |
//! | `tq2_0` | 2.0625    | K % 256 == 0      | f16 per 256-weight row group    |
//! | `tq1_0` | 1.6875    | K % 256 == 0      | f16 per 256-weight row group    |
//! | `i2_s`  | 2 (+32 B) | K % 128 == 0      | one f32 per tensor              |
//! | `hf`    | 2         | N % 4 == 0        | none (kept beside, as `weight_scale`) |
//!
//! ```
//! use tern_spec::pack::{pack, unpack, Layout, Shape};
//! let shape = Shape::new(1, 5);
//! let bytes = pack(Layout::Tern5, shape, &[1, -1, 0, 1, -1], None).unwrap();
//! assert_eq!(bytes, [65]); // digits 2,0,1,2,0 → 2 + 0·3 + 1·9 + 2·27 + 0·81
//! assert_eq!(unpack(Layout::Tern5, shape, &bytes).unwrap().trits, [1, -1, 0, 1, -1]);
//! ```
//!
//! Nothing here panics on bad input: lengths are checked against the shape before any
//! indexing, and buffers are only allocated after the byte length matched the shape.

mod error;
mod hf;
mod i2s;
mod scales;
mod tern2;
mod tern5;
mod tq1_0;
mod tq2_0;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use error::{PackError, ScaleProblem};
pub use scales::{ScaleKind, Scales};

/// A packed byte layout of a ternary matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One trit per byte (as `i8`), row-major. The identity layout.
    I8,
    /// tern's hardware layout: 2-bit two's-complement codes, 4 trits per byte, rows padded.
    Tern2,
    /// tern's dense storage layout: 5 trits per byte in base 3, rows padded.
    Tern5,
    /// GGUF TQ2_0 (type 35): 256-weight blocks of 64 code bytes + f16 scale.
    Tq2_0,
    /// GGUF TQ1_0 (type 34): 256-weight blocks of 48 base-3 bytes + 4 bytes + f16 scale.
    Tq1_0,
    /// microsoft/BitNet (bitnet.cpp) I2_S: 128-weight blocks of 32 bytes + f32 tensor scale.
    I2S,
    /// Hugging Face transformers BitNet packed `uint8` weight `[N/4, K]`.
    Hf,
}

impl Layout {
    /// Every layout, in documentation order.
    pub const ALL: [Layout; 7] = [
        Layout::I8,
        Layout::Tern2,
        Layout::Tern5,
        Layout::Tq2_0,
        Layout::Tq1_0,
        Layout::I2S,
        Layout::Hf,
    ];

    /// The layout's name, as parsed by `FromStr` and printed by `Display`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::I8 => "i8",
            Layout::Tern2 => "tern2",
            Layout::Tern5 => "tern5",
            Layout::Tq2_0 => "tq2_0",
            Layout::Tq1_0 => "tq1_0",
            Layout::I2S => "i2_s",
            Layout::Hf => "hf",
        }
    }

    /// GGUF tensor type id, where the layout is a GGUF type. TQ1_0 = 34 and TQ2_0 = 35 are
    /// upstream (ggml/include/ggml.h); I2_S = 36 is microsoft/BitNet's fork numbering
    /// (3rdparty llama.cpp ggml.h), which upstream had given to the removed IQ4_NL_4_4.
    pub fn gguf_type_id(self) -> Option<u32> {
        match self {
            Layout::Tq1_0 => Some(34),
            Layout::Tq2_0 => Some(35),
            Layout::I2S => Some(36),
            _ => None,
        }
    }

    /// Where this layout stores scales.
    pub fn scale_kind(self) -> ScaleKind {
        match self {
            Layout::Tq1_0 | Layout::Tq2_0 => ScaleKind::PerRowGroup { group: 256 },
            Layout::I2S => ScaleKind::PerTensor,
            Layout::I8 | Layout::Tern2 | Layout::Tern5 | Layout::Hf => ScaleKind::None,
        }
    }

    /// `rows` (N) must be a multiple of this.
    pub fn rows_multiple(self) -> usize {
        match self {
            Layout::Hf => hf::ROWS_MULTIPLE,
            _ => 1,
        }
    }

    /// `cols` (K) must be a multiple of this.
    pub fn cols_multiple(self) -> usize {
        match self {
            Layout::Tq1_0 | Layout::Tq2_0 => 256,
            Layout::I2S => i2s::BLOCK,
            _ => 1,
        }
    }

    /// Checks the shape constraints of this layout (multiples and overflow).
    pub fn check_shape(self, shape: Shape) -> Result<(), PackError> {
        packed_len(self, shape).map(|_| ())
    }

    fn names_joined() -> String {
        Layout::ALL
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = PackError;

    /// Parses a layout name, ignoring ASCII case ("tq2_0", "TQ2_0", "I2_S" all work).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layout::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| PackError::UnknownLayout {
                name: s.to_string(),
            })
    }
}

/// Matrix shape: `rows` = N output rows, `cols` = K inputs (weights per row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    pub rows: usize,
    pub cols: usize,
}

impl Shape {
    pub fn new(rows: usize, cols: usize) -> Shape {
        Shape { rows, cols }
    }

    /// rows × cols, or `None` on overflow.
    pub fn elems(self) -> Option<usize> {
        self.rows.checked_mul(self.cols)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}", self.rows, self.cols)
    }
}

/// A decoded matrix: row-major trits (`trits[r * cols + c]`) and the scales the layout carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpacked {
    pub shape: Shape,
    pub trits: Vec<i8>,
    /// `Some` exactly for layouts whose [`Layout::scale_kind`] is not `None`.
    pub scales: Option<Scales>,
}

/// Exact size in bytes of `layout` for `shape`, after checking the layout's shape constraints.
///
/// | layout  | bytes                         |
/// |---------|-------------------------------|
/// | i8      | N·K                           |
/// | hf      | (N/4)·K                       |
/// | tern2   | N·⌈K/4⌉                       |
/// | tern5   | N·⌈K/5⌉                       |
/// | tq2_0   | N·(K/256)·66                  |
/// | tq1_0   | N·(K/256)·54                  |
/// | i2_s    | N·K/4 + 32                    |
pub fn packed_len(layout: Layout, shape: Shape) -> Result<usize, PackError> {
    let Shape { rows, cols } = shape;
    let overflow = || PackError::ShapeOverflow { layout, rows, cols };
    if cols % layout.cols_multiple() != 0 {
        return Err(PackError::ColsNotMultiple {
            layout,
            cols,
            multiple: layout.cols_multiple(),
        });
    }
    if rows % layout.rows_multiple() != 0 {
        return Err(PackError::RowsNotMultiple {
            layout,
            rows,
            multiple: layout.rows_multiple(),
        });
    }
    // The element count must fit even where the byte count is smaller: unpack allocates it.
    let elems = shape.elems().ok_or_else(overflow)?;
    let len = match layout {
        Layout::I8 => Some(elems),
        Layout::Hf => Some(elems / 4), // [N/4, K] bytes, N % 4 == 0
        Layout::Tern2 => rows.checked_mul(tern2::row_bytes(cols)),
        Layout::Tern5 => rows.checked_mul(tern5::row_bytes(cols)),
        Layout::Tq2_0 => rows.checked_mul(cols / tq2_0::BLOCK * tq2_0::BLOCK_BYTES),
        Layout::Tq1_0 => rows.checked_mul(cols / tq1_0::BLOCK * tq1_0::BLOCK_BYTES),
        Layout::I2S => (elems / 4).checked_add(i2s::TAIL_BYTES),
    };
    len.ok_or_else(overflow)
}

/// Packs a row-major trit matrix into `layout`.
///
/// `scales` must match [`Layout::scale_kind`]: for tq1_0/tq2_0 per-256-group scales
/// (`rows · K/256` exact f16 values) or one per-tensor scale (written to every group); for
/// i2_s a per-tensor scale; `None` for the other layouts. `None` for a scaled layout writes
/// scale 1.0 everywhere.
pub fn pack(
    layout: Layout,
    shape: Shape,
    trits: &[i8],
    scales: Option<&Scales>,
) -> Result<Vec<u8>, PackError> {
    let len = packed_len(layout, shape)?;
    let Shape { rows, cols } = shape;
    let elems = rows * cols; // cannot overflow: packed_len checked it
    if trits.len() != elems {
        return Err(PackError::TritCount {
            layout,
            rows,
            cols,
            expected: elems,
            actual: trits.len(),
        });
    }
    check_trits(layout, shape, trits)?;
    if let (ScaleKind::None, Some(s)) = (layout.scale_kind(), scales) {
        return Err(PackError::ScaleKind {
            layout,
            expected: ScaleKind::None,
            given: s.kind().to_string(),
        });
    }
    let mut out = vec![0u8; len];
    match layout {
        Layout::I8 => {
            for (o, &t) in out.iter_mut().zip(trits) {
                *o = t as u8;
            }
        }
        Layout::Tern2 => tern2::pack(shape, trits, &mut out),
        Layout::Tern5 => tern5::pack(shape, trits, &mut out),
        Layout::Tq2_0 => {
            let d = group_scales(layout, shape, scales, tq2_0::BLOCK_BYTES)?;
            tq2_0::pack(trits, &d, &mut out);
        }
        Layout::Tq1_0 => {
            let d = group_scales(layout, shape, scales, tq1_0::BLOCK_BYTES)?;
            tq1_0::pack(trits, &d, &mut out);
        }
        Layout::I2S => {
            let s = tensor_scale(layout, elems, scales)?;
            i2s::pack(trits, s, &mut out);
        }
        Layout::Hf => hf::pack(shape, trits, &mut out),
    }
    Ok(out)
}

/// Unpacks `bytes` (exactly [`packed_len`] long) of `layout` into trits and scales.
pub fn unpack(layout: Layout, shape: Shape, bytes: &[u8]) -> Result<Unpacked, PackError> {
    let len = packed_len(layout, shape)?;
    let Shape { rows, cols } = shape;
    if bytes.len() != len {
        return Err(PackError::ByteLength {
            layout,
            rows,
            cols,
            expected: len,
            actual: bytes.len(),
        });
    }
    // Allocation is bounded by the byte length just checked (at most 5 trits per byte,
    // or 4·(len - 32) for i2_s).
    let mut trits = vec![0i8; rows * cols];
    let scales = match layout {
        Layout::I8 => {
            for (i, (t, &b)) in trits.iter_mut().zip(bytes).enumerate() {
                let v = b as i8;
                if !(-1..=1).contains(&v) {
                    let (row, col) = (i / cols, i % cols);
                    return Err(PackError::NotATrit {
                        layout,
                        index: i,
                        row,
                        col,
                        value: v,
                    });
                }
                *t = v;
            }
            None
        }
        Layout::Tern2 => {
            tern2::unpack(shape, bytes, &mut trits)?;
            None
        }
        Layout::Tern5 => {
            tern5::unpack(shape, bytes, &mut trits)?;
            None
        }
        Layout::Tq2_0 => {
            let values = tq2_0::unpack(bytes, &mut trits)?;
            Some(Scales::PerRowGroup {
                group: tq2_0::BLOCK,
                values,
            })
        }
        Layout::Tq1_0 => {
            let values = tq1_0::unpack(bytes, &mut trits)?;
            Some(Scales::PerRowGroup {
                group: tq1_0::BLOCK,
                values,
            })
        }
        Layout::I2S => Some(Scales::PerTensor(i2s::unpack(bytes, &mut trits)?)),
        Layout::Hf => {
            hf::unpack(shape, bytes, &mut trits)?;
            None
        }
    };
    Ok(Unpacked {
        shape,
        trits,
        scales,
    })
}

/// Converts packed bytes from one layout to another, preserving every trit.
///
/// Scales: carried over when the target stores them and they are exactly expressible there
/// (same granularity; a per-tensor scale that is an exact f16 becomes every group's scale;
/// equal group scales become the tensor scale). A source without scales gives 1.0. A target
/// that carries no scales drops them (use [`unpack`] first to keep them). Scales that the
/// target cannot express exactly give [`PackError::ScalesNotConvertible`].
pub fn convert(from: Layout, to: Layout, shape: Shape, bytes: &[u8]) -> Result<Vec<u8>, PackError> {
    // Refuse an impossible target shape before decoding anything.
    packed_len(to, shape)?;
    let u = unpack(from, shape, bytes)?;
    let scales = adapt_scales(from, to, u.scales)?;
    pack(to, shape, &u.trits, scales.as_ref())
}

/// Re-expresses `scales` (from layout `from`) in the granularity of layout `to`.
fn adapt_scales(
    from: Layout,
    to: Layout,
    scales: Option<Scales>,
) -> Result<Option<Scales>, PackError> {
    let Some(scales) = scales else {
        return Ok(None);
    };
    let not_convertible = |reason: String| PackError::ScalesNotConvertible { from, to, reason };
    match (to.scale_kind(), scales) {
        (ScaleKind::None, _) => Ok(None),
        (want, s) if want == s.kind() => Ok(Some(s)),
        (ScaleKind::PerTensor, Scales::PerRowGroup { group, values }) => {
            let first = values.first().copied().unwrap_or(1.0);
            match values.iter().position(|&v| v != first) {
                None => Ok(Some(Scales::PerTensor(first))),
                Some(i) => Err(not_convertible(format!(
                    "{to} stores one scale per tensor, but the {group}-weight group scales differ \
                     (scale 0 = {first}, scale {i} = {})",
                    values[i]
                ))),
            }
        }
        (ScaleKind::PerRowGroup { group }, Scales::PerTensor(v)) => {
            if half::f16::from_f32(v).to_f32().to_bits() != v.to_bits() {
                return Err(not_convertible(format!(
                    "the tensor scale {v} is not exactly an f16, which {to} stores per {group}-weight group"
                )));
            }
            // pack broadcasts a per-tensor scale to every group of a TQ layout.
            Ok(Some(Scales::PerTensor(v)))
        }
        (want, s) => Err(not_convertible(format!(
            "scales given {}, {to} stores them {want}",
            s.kind()
        ))),
    }
}

/// Checks that every element is a trit, naming the first bad one.
fn check_trits(layout: Layout, shape: Shape, trits: &[i8]) -> Result<(), PackError> {
    match trits.iter().position(|&t| !(-1..=1).contains(&t)) {
        None => Ok(()),
        Some(index) => Err(PackError::NotATrit {
            layout,
            index,
            row: index / shape.cols,
            col: index % shape.cols,
            value: trits[index],
        }),
    }
}

/// The per-group scales for a TQ layout: validated, or 1.0 for every group if `None`.
/// The f16 `d` of group `i` sits at byte offset `i·block_bytes + block_bytes - 2`.
fn group_scales(
    layout: Layout,
    shape: Shape,
    scales: Option<&Scales>,
    block_bytes: usize,
) -> Result<Vec<f32>, PackError> {
    let group = layout.cols_multiple();
    let n_groups = shape.rows * (shape.cols / group);
    match scales {
        None => Ok(vec![1.0; n_groups]),
        Some(Scales::PerRowGroup { group: g, values }) if *g == group => {
            if values.len() != n_groups {
                return Err(PackError::ScaleCount {
                    layout,
                    rows: shape.rows,
                    cols: shape.cols,
                    group,
                    expected: n_groups,
                    actual: values.len(),
                });
            }
            for (i, &v) in values.iter().enumerate() {
                scales::check_scale(layout, i, i * block_bytes + block_bytes - 2, v, true)?;
            }
            Ok(values.clone())
        }
        Some(Scales::PerTensor(v)) => {
            // A broadcast is unambiguous; still refuse values that are not exact f16.
            scales::check_scale(layout, 0, block_bytes - 2, *v, true)?;
            Ok(vec![*v; n_groups])
        }
        Some(s) => Err(PackError::ScaleKind {
            layout,
            expected: layout.scale_kind(),
            given: s.kind().to_string(),
        }),
    }
}

/// The per-tensor scale for i2_s: validated, or 1.0 if `None`. It sits at byte offset N·K/4.
fn tensor_scale(layout: Layout, elems: usize, scales: Option<&Scales>) -> Result<f32, PackError> {
    match scales {
        None => Ok(1.0),
        Some(Scales::PerTensor(v)) => {
            scales::check_scale(layout, 0, elems / 4, *v, false)?;
            Ok(*v)
        }
        Some(s) => Err(PackError::ScaleKind {
            layout,
            expected: layout.scale_kind(),
            given: s.kind().to_string(),
        }),
    }
}

/// Legal codes of the "w + 1" 2-bit code used by TQ2_0, I2_S and Hugging Face.
pub(crate) const OFFSET_CODE_LEGAL: &str = "00 = -1, 01 = 0, 10 = +1";

/// The "w + 1" 2-bit code of a trit: -1 → 0, 0 → 1, +1 → 2 (TQ2_0, I2_S, hf).
#[inline]
fn offset_code(t: i8) -> u8 {
    (t + 1) as u8
}

/// Decodes a "w + 1" code; 3 is reserved. `offset`/`lo` locate the field for the error.
#[inline]
fn offset_trit(layout: Layout, code: u8, offset: usize, lo: u32) -> Result<i8, PackError> {
    match code {
        0 => Ok(-1),
        1 => Ok(0),
        2 => Ok(1),
        _ => Err(PackError::ReservedCode {
            layout,
            offset,
            lo,
            code,
            legal: OFFSET_CODE_LEGAL,
        }),
    }
}
