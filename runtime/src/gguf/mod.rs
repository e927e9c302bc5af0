//! GGUF v3: tern's own reader ([`reader`]) and streaming writer ([`writer`]).
//!
//! Layout (llama.cpp `docs/gguf.md`, gguf-py `gguf/constants.py`, gguf 0.19.0), all
//! little-endian:
//!
//! ```text
//! u32 magic "GGUF" | u32 version = 3 | u64 tensor_count | u64 kv_count
//! kv_count × { string key | u32 value_type | value }
//! tensor_count × { string name | u32 n_dims (≤ 4) | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//! padding to `general.alignment` (default 32) | tensor data (each offset aligned)
//! string = u64 byte length + UTF-8 bytes;  array = u32 elem_type + u64 count + elements
//! ```
//!
//! `ne[0]` is the contiguous dimension: a PyTorch weight `[N out, K in]` has `ne = [K, N]`.

pub mod reader;
pub mod types;
pub mod writer;

pub use reader::{GgufFile, TensorInfo};
pub use types::{GgmlType, Value, ValueType};
pub use writer::{GgufBuilder, GgufStreamWriter};

use thiserror::Error;

/// "GGUF" as a little-endian u32.
pub const MAGIC: u32 = 0x4655_4747;
/// The version tern writes (and the only one it reads besides 2, which has the same layout).
pub const VERSION: u32 = 3;
/// Alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest number of dimensions of a tensor (ggml GGML_MAX_DIMS).
pub const MAX_DIMS: u32 = 4;
/// Deepest nesting of arrays tern accepts (arrays of arrays of …).
pub const MAX_ARRAY_DEPTH: usize = 4;

/// Everything that can go wrong reading or writing GGUF. Every message names the file part
/// (byte offset, key or tensor), the bad value and what would have been legal.
#[derive(Debug, Error)]
pub enum GgufError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not a GGUF file: magic {found:#010x} at offset 0 (legal: 0x46554747 \"GGUF\")")]
    Magic { found: u32 },
    #[error("GGUF version {0} is not supported (legal: 2 or 3)")]
    Version(u32),
    #[error("truncated at byte offset {offset}: reading {what} needs {need} bytes, {have} left")]
    Truncated {
        offset: u64,
        what: String,
        need: u64,
        have: u64,
    },
    #[error("{what} at byte offset {offset}: count {count} cannot fit in the {have} bytes left (each element needs ≥ {min_elem} bytes)")]
    CountTooLarge {
        what: String,
        offset: u64,
        count: u64,
        have: u64,
        min_elem: u64,
    },
    #[error("{what} at byte offset {offset} is not valid UTF-8")]
    Utf8 { what: String, offset: u64 },
    #[error("{what} at byte offset {offset}: unknown value type {ty} (legal: 0..=12)")]
    ValueType { what: String, offset: u64, ty: u32 },
    #[error("{what} at byte offset {offset}: bool byte {value} (legal: 0 or 1)")]
    Bool {
        what: String,
        offset: u64,
        value: u8,
    },
    #[error("{what}: arrays nested deeper than {MAX_ARRAY_DEPTH}")]
    Depth { what: String },
    #[error("metadata key {key:?} appears twice")]
    DuplicateKey { key: String },
    #[error("metadata key {key:?}: {problem}")]
    Meta { key: String, problem: String },
    #[error("tensor {name:?} appears twice")]
    DuplicateTensor { name: String },
    #[error("tensor {name:?}: unknown ggml type id {id} (tern knows: {known})")]
    UnknownType {
        name: String,
        id: u32,
        known: String,
    },
    #[error("tensor {name:?}: {problem}")]
    Tensor { name: String, problem: String },
    #[error("writer: {0}")]
    Writer(String),
}

impl GgufError {
    pub(crate) fn tensor(name: &str, problem: impl Into<String>) -> Self {
        GgufError::Tensor {
            name: name.to_string(),
            problem: problem.into(),
        }
    }
    pub(crate) fn meta(key: &str, problem: impl Into<String>) -> Self {
        GgufError::Meta {
            key: key.to_string(),
            problem: problem.into(),
        }
    }
}

/// Rounds `x` up to a multiple of `align` (a power of two), `None` on overflow.
pub fn align_up(x: u64, align: u64) -> Option<u64> {
    x.checked_add(align - 1).map(|v| v & !(align - 1))
}

#[cfg(test)]
mod tests;
