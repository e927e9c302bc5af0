//! `tern model inspect`: architecture, shapes, tensor types and sizes of a model file or
//! directory, without loading the weights.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::gguf::{GgufFile, Value};
use crate::model::{LoadError, ModelConfig};
use crate::safetensors::StFile;

/// One tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorSummary {
    pub name: String,
    /// PyTorch order (`[N, K]` for a weight).
    pub shape: Vec<u64>,
    pub dtype: String,
    pub bytes: u64,
}

/// A model file's summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub path: String,
    pub format: String,
    pub file_bytes: u64,
    pub config: Option<ModelConfig>,
    /// Why `config` is missing, if it is.
    pub config_error: Option<String>,
    /// Metadata (GGUF keys, or safetensors `__metadata__`), arrays abbreviated.
    pub metadata: BTreeMap<String, String>,
    /// dtype → (tensor count, bytes).
    pub by_type: BTreeMap<String, (usize, u64)>,
    pub tensors: Vec<TensorSummary>,
}

/// Inspects a GGUF file or a safetensors model directory / file.
pub fn inspect(path: &Path) -> Result<Summary, LoadError> {
    let is_gguf = path.is_file() && starts_with_gguf(path);
    if is_gguf {
        let f = GgufFile::open(path)?;
        let tensors: Vec<TensorSummary> = f
            .tensors
            .iter()
            .map(|t| TensorSummary {
                name: t.name.clone(),
                shape: t.torch_shape(),
                dtype: t.ty.name().into(),
                bytes: t.nbytes,
            })
            .collect();
        let vocab_rows = f
            .tensor("token_embd.weight")
            .and_then(|t| t.ne.get(1).copied())
            .unwrap_or(0) as usize;
        let (config, config_error) = match ModelConfig::from_gguf(&f, vocab_rows) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e)),
        };
        let metadata = f
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), short(v)))
            .collect();
        return Ok(finish(
            path,
            "gguf",
            f.file_len(),
            config,
            config_error,
            metadata,
            tensors,
        ));
    }
    let (dir, st_path) = if path.is_dir() {
        (path.to_path_buf(), path.join("model.safetensors"))
    } else {
        (
            path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            path.to_path_buf(),
        )
    };
    let st = StFile::open(&st_path)?;
    let tensors = st
        .tensors
        .iter()
        .map(|t| TensorSummary {
            name: t.name.clone(),
            shape: t.shape.iter().map(|&d| d as u64).collect(),
            dtype: t.dtype.clone(),
            bytes: (t.end - t.start) as u64,
        })
        .collect();
    let (config, config_error) = match std::fs::read_to_string(dir.join("config.json")) {
        Err(e) => (None, Some(format!("config.json: {e}"))),
        Ok(text) => match serde_json::from_str(&text)
            .map_err(|e| e.to_string())
            .and_then(|j| ModelConfig::from_hf(&j))
        {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e)),
        },
    };
    Ok(finish(
        path,
        "safetensors",
        st.file_len(),
        config,
        config_error,
        st.metadata.clone(),
        tensors,
    ))
}

fn short(v: &Value) -> String {
    v.short()
}

fn finish(
    path: &Path,
    format: &str,
    file_bytes: u64,
    config: Option<ModelConfig>,
    config_error: Option<String>,
    metadata: BTreeMap<String, String>,
    tensors: Vec<TensorSummary>,
) -> Summary {
    let mut by_type: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for t in &tensors {
        let e = by_type.entry(t.dtype.clone()).or_default();
        e.0 += 1;
        e.1 += t.bytes;
    }
    Summary {
        path: path.display().to_string(),
        format: format.into(),
        file_bytes,
        config,
        config_error,
        metadata,
        by_type,
        tensors,
    }
}

fn starts_with_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut m = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut m))
        .is_ok()
        && &m == b"GGUF"
}
