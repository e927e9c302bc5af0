//! Models: hyper-parameters ([`config`]), weights ([`weights`]), loaders ([`gguf_load`],
//! [`hf_load`]) and the forward pass ([`bitnet`]).

pub mod attention;
pub mod bitnet;
pub mod config;
pub mod gguf_load;
pub mod hf_load;
pub mod weights;

use std::path::Path;

use thiserror::Error;

pub use config::{Activation, Family, ModelConfig, RopeStyle};
pub use weights::{LayerNorms, Linear, LinearKind, Weights};

use crate::gguf::GgufError;
use crate::safetensors::StError;
use crate::tokenizer::{Tokenizer, TokenizerError};

/// Mantissa width of the block scales tern loads (the default array config's, docs §4).
pub const MANT_BITS: u32 = 16;

/// Loading problems; every message names the file, the tensor or key, and the value.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    St(#[from] StError),
    #[error("{file}: tokenizer: {source}")]
    Tokenizer {
        file: String,
        source: TokenizerError,
    },
    #[error("{file}: tensor {tensor:?}: {problem}")]
    Tensor {
        file: String,
        tensor: String,
        problem: String,
    },
    #[error("{file}: {problem}")]
    Invalid { file: String, problem: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl LoadError {
    pub(crate) fn tensor(file: &str, tensor: &str, problem: impl ToString) -> Self {
        LoadError::Tensor {
            file: file.into(),
            tensor: tensor.into(),
            problem: problem.to_string(),
        }
    }
    pub(crate) fn invalid(file: &str, problem: impl ToString) -> Self {
        LoadError::Invalid {
            file: file.into(),
            problem: problem.to_string(),
        }
    }
}

/// The on-disk format a model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SourceFormat {
    Gguf,
    /// Hugging Face directory (config.json, model.safetensors, tokenizer.json).
    HfSafetensors,
}

/// A loaded model: configuration, weights and tokenizer.
#[derive(Debug)]
pub struct Model {
    pub config: ModelConfig,
    pub weights: Weights,
    pub tokenizer: Tokenizer,
    pub format: SourceFormat,
    /// How the ternary weights were stored (e.g. "TQ2_0", "hf packed uint8, bitlinear").
    pub weight_format: String,
    pub path: String,
}

/// Loads a GGUF file, or a Hugging Face / tern-STB safetensors directory (or its
/// `model.safetensors`, with config.json and tokenizer.json beside it).
pub fn load(path: &Path) -> Result<Model, LoadError> {
    let io = |source| LoadError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return hf_load::load_dir(path);
    }
    let mut magic = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(io)?;
        let n = f.read(&mut magic).map_err(io)?;
        if n == 4 && &magic == b"GGUF" {
            return gguf_load::load(path);
        }
    }
    if path.extension().is_some_and(|e| e == "safetensors") {
        let dir = path.parent().unwrap_or(Path::new("."));
        return hf_load::load_dir(dir);
    }
    Err(LoadError::invalid(
        &path.display().to_string(),
        "neither a GGUF file (magic \"GGUF\") nor a safetensors model directory",
    ))
}
