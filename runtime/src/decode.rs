//! Decoding tensor bytes (GGUF or safetensors) into f32 values or ternary matrices.

use half::{bf16, f16};
use tern_spec::pack::{self, Layout, Scales, Shape};
use thiserror::Error;

/// Element encodings tern decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
    BF16,
    I8,
    U8,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I8 | Dtype::U8 => 1,
        }
    }
}

/// Problems decoding one tensor (the caller adds the file and tensor name).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DecodeError {
    #[error("{got} bytes, expected {expected} for {what}")]
    Length {
        what: String,
        got: usize,
        expected: usize,
    },
    #[error("element {index} = {value} is not finite")]
    NotFinite { index: usize, value: f32 },
    #[error("not ternary: element [{row}, {col}] = {value}, but the tensor's other non-zero values are ±{scale} (a ternary weight stored as floats must be 0 or ±one scale)")]
    NotTernary {
        row: usize,
        col: usize,
        value: f32,
        scale: f32,
    },
    #[error("{0}")]
    Pack(#[from] pack::PackError),
}

/// Decodes `n` little-endian floats of `dtype` into f32 (exact widening).
pub fn to_f32(dtype: Dtype, bytes: &[u8], n: usize) -> Result<Vec<f32>, DecodeError> {
    let expected = n
        .checked_mul(dtype.size())
        .ok_or_else(|| DecodeError::Length {
            what: format!("{n} elements of {dtype:?} (overflow)"),
            got: bytes.len(),
            expected: usize::MAX,
        })?;
    if bytes.len() != expected {
        return Err(DecodeError::Length {
            what: format!("{n} elements of {dtype:?}"),
            got: bytes.len(),
            expected,
        });
    }
    let v: Vec<f32> = match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::I8 => bytes.iter().map(|&b| b as i8 as f32).collect(),
        Dtype::U8 => bytes.iter().map(|&b| b as f32).collect(),
    };
    if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(DecodeError::NotFinite { index, value });
    }
    Ok(v)
}

/// A ternary matrix as decoded from a file: trits `[N, K]` row-major and its scales.
#[derive(Debug, Clone, PartialEq)]
pub struct Ternary {
    pub shape: Shape,
    pub trits: Vec<i8>,
    pub scales: TernaryScales,
}

/// The scales that came with a ternary tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TernaryScales {
    /// One scale for the whole tensor.
    PerTensor(f32),
    /// `values[r * (K / group) + g]`, one per `group` inputs of each row (TQ1_0/TQ2_0).
    PerRowGroup { group: usize, values: Vec<f32> },
    /// None stored with the codes (I8 trits, HF packed, tern2): kept beside them.
    None,
}

/// Unpacks a packed layout with tern_spec::pack.
pub fn unpack_layout(layout: Layout, shape: Shape, bytes: &[u8]) -> Result<Ternary, DecodeError> {
    let u = pack::unpack(layout, shape, bytes)?;
    let scales = match u.scales {
        None => TernaryScales::None,
        Some(Scales::PerTensor(s)) => TernaryScales::PerTensor(s),
        Some(Scales::PerRowGroup { group, values }) => TernaryScales::PerRowGroup { group, values },
    };
    Ok(Ternary {
        shape,
        trits: u.trits,
        scales,
    })
}

/// Recovers trits and the per-tensor scale from float values `[N, K]` that are 0 or ±s
/// (llama.cpp's BitNet converter writes ternary weights this way as F32/F16/BF16).
/// An all-zero tensor gets scale 0.
pub fn ternary_from_floats(shape: Shape, v: &[f32]) -> Result<Ternary, DecodeError> {
    let scale = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let mut trits = Vec::with_capacity(v.len());
    for (i, &x) in v.iter().enumerate() {
        let t = if x == 0.0 {
            0
        } else if x == scale {
            1
        } else if x == -scale {
            -1
        } else {
            return Err(DecodeError::NotTernary {
                row: i / shape.cols.max(1),
                col: i % shape.cols.max(1),
                value: x,
                scale,
            });
        };
        trits.push(t);
    }
    Ok(Ternary {
        shape,
        trits,
        scales: TernaryScales::PerTensor(scale),
    })
}

/// One trit per byte (`int8`), checked to be -1, 0 or +1.
pub fn ternary_from_i8(shape: Shape, bytes: &[u8]) -> Result<Ternary, DecodeError> {
    unpack_layout(Layout::I8, shape, bytes)
}
