//! safetensors: memory-mapped reading (header validated by the `safetensors` crate) and a
//! streaming writer (header first, then each tensor's bytes in order).
//!
//! Format: `u64 n` (little-endian) | `n` bytes of JSON header
//! `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [start, end]}, …,
//! "__metadata__": {"k": "v"}}` | data (offsets relative to the end of the header).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use ::safetensors::tensor::{Dtype as StDtype, SafeTensors};
use thiserror::Error;

use crate::bytes::Bytes;
use crate::decode::Dtype;

/// Reading or writing problems.
#[derive(Debug, Error)]
pub enum StError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a valid safetensors file: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{path}: tensor {name:?} is missing")]
    Missing { path: String, name: String },
    #[error("{path}: tensor {name:?} has dtype {dtype}, tern reads {legal}")]
    Dtype {
        path: String,
        name: String,
        dtype: String,
        legal: String,
    },
    #[error("writer: {0}")]
    Writer(String),
}

/// One tensor entry.
#[derive(Debug, Clone, PartialEq)]
pub struct StTensor {
    pub name: String,
    /// The dtype as spelled in the header ("F32", "BF16", "U8", …).
    pub dtype: String,
    pub shape: Vec<usize>,
    /// Byte range within the data section.
    pub start: usize,
    pub end: usize,
}

impl StTensor {
    /// The dtype tern can decode, if any.
    pub fn decode_dtype(&self) -> Option<Dtype> {
        Some(match self.dtype.as_str() {
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I8" => Dtype::I8,
            "U8" => Dtype::U8,
            _ => return None,
        })
    }

    pub fn elems(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A parsed safetensors file.
#[derive(Debug)]
pub struct StFile {
    pub path: String,
    /// Tensors sorted by name.
    pub tensors: Vec<StTensor>,
    pub metadata: BTreeMap<String, String>,
    index: HashMap<String, usize>,
    data_start: usize,
    bytes: Bytes,
}

impl StFile {
    /// Memory-maps and validates `path`.
    pub fn open(path: &Path) -> Result<Self, StError> {
        let p = path.display().to_string();
        let bytes = Bytes::map(path).map_err(|source| StError::Io {
            path: p.clone(),
            source,
        })?;
        Self::parse(bytes, p)
    }

    /// Parses an in-memory image.
    pub fn from_vec(v: Vec<u8>) -> Result<Self, StError> {
        Self::parse(Bytes::Owned(v), "<memory>".into())
    }

    fn parse(bytes: Bytes, path: String) -> Result<Self, StError> {
        let (n, meta) =
            SafeTensors::read_metadata(bytes.as_slice()).map_err(|e| StError::Invalid {
                path: path.clone(),
                reason: format!("{e:?}"),
            })?;
        let mut tensors: Vec<StTensor> = meta
            .tensors()
            .into_iter()
            .map(|(name, info)| StTensor {
                name,
                dtype: dtype_name(info.dtype),
                shape: info.shape.clone(),
                start: info.data_offsets.0,
                end: info.data_offsets.1,
            })
            .collect();
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let metadata = meta
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Self {
            path,
            tensors,
            metadata,
            index,
            data_start: 8 + n,
            bytes,
        })
    }

    pub fn get(&self, name: &str) -> Option<&StTensor> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// A required tensor.
    pub fn require(&self, name: &str) -> Result<&StTensor, StError> {
        self.get(name).ok_or_else(|| StError::Missing {
            path: self.path.clone(),
            name: name.into(),
        })
    }

    /// A tensor's bytes (validated against the file size when parsing).
    pub fn data(&self, t: &StTensor) -> &[u8] {
        &self.bytes.as_slice()[self.data_start + t.start..self.data_start + t.end]
    }

    pub fn file_len(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }
}

fn dtype_name(d: StDtype) -> String {
    format!("{d:?}")
}

/// Streaming writer: declare every tensor, then write their bytes in order.
pub struct StWriter<W: Write> {
    w: W,
    pending: Vec<(String, usize)>,
    next: usize,
}

/// Declarations for [`StWriter`].
#[derive(Debug, Default, Clone)]
pub struct StBuilder {
    tensors: Vec<(String, String, Vec<usize>)>,
    metadata: BTreeMap<String, String>,
}

impl StBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a tensor of `dtype` ("F32", "BF16", "U8", "I8", …) and `shape`.
    pub fn tensor(&mut self, name: &str, dtype: &str, shape: &[usize]) -> &mut Self {
        self.tensors
            .push((name.to_string(), dtype.to_string(), shape.to_vec()));
        self
    }

    /// Adds a `__metadata__` entry.
    pub fn meta(&mut self, k: &str, v: &str) -> &mut Self {
        self.metadata.insert(k.to_string(), v.to_string());
        self
    }

    /// Writes the header and returns the writer for the data.
    pub fn begin<W: Write>(&self, mut w: W) -> Result<StWriter<W>, StError> {
        let mut header = serde_json::Map::new();
        if !self.metadata.is_empty() {
            header.insert("__metadata__".into(), serde_json::json!(self.metadata));
        }
        let mut offset = 0usize;
        let mut pending = Vec::new();
        for (name, dtype, shape) in &self.tensors {
            let size = match dtype.as_str() {
                "F64" | "I64" | "U64" => 8,
                "F32" | "I32" | "U32" => 4,
                "F16" | "BF16" | "I16" | "U16" => 2,
                "U8" | "I8" | "BOOL" => 1,
                d => {
                    return Err(StError::Writer(format!(
                        "tensor {name:?}: dtype {d} unsupported"
                    )))
                }
            };
            let n = shape.iter().product::<usize>() * size;
            if header
                .insert(
                    name.clone(),
                    serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}),
                )
                .is_some()
            {
                return Err(StError::Writer(format!("tensor {name:?} declared twice")));
            }
            pending.push((name.clone(), n));
            offset += n;
        }
        let mut h = serde_json::to_vec(&header).map_err(|e| StError::Writer(e.to_string()))?;
        while h.len() % 8 != 0 {
            h.push(b' ');
        }
        let io = |source| StError::Io {
            path: "<safetensors output>".into(),
            source,
        };
        w.write_all(&(h.len() as u64).to_le_bytes()).map_err(io)?;
        w.write_all(&h).map_err(io)?;
        Ok(StWriter {
            w,
            pending,
            next: 0,
        })
    }
}

impl<W: Write> StWriter<W> {
    /// Writes the next tensor's bytes (name and length must match the declaration).
    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<(), StError> {
        match self.pending.get(self.next) {
            Some((n, len)) if n == name && *len == data.len() => {}
            other => {
                return Err(StError::Writer(format!(
                    "tensor {name:?} with {} bytes written, expected {other:?}",
                    data.len()
                )))
            }
        }
        self.w.write_all(data).map_err(|source| StError::Io {
            path: "<safetensors output>".into(),
            source,
        })?;
        self.next += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<W, StError> {
        if self.next != self.pending.len() {
            return Err(StError::Writer(format!(
                "finished with tensor {:?} not written",
                self.pending[self.next].0
            )));
        }
        self.w.flush().map_err(|source| StError::Io {
            path: "<safetensors output>".into(),
            source,
        })?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut b = StBuilder::new();
        b.tensor("w", "U8", &[2, 3])
            .tensor("s", "F32", &[1])
            .meta("format", "pt");
        let mut w = b.begin(Vec::new()).unwrap();
        w.write_tensor("w", &[1, 2, 3, 4, 5, 6]).unwrap();
        w.write_tensor("s", &2.5f32.to_le_bytes()).unwrap();
        let bytes = w.finish().unwrap();
        let f = StFile::from_vec(bytes.clone()).unwrap();
        assert_eq!(f.data(f.get("w").unwrap()), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(f.get("s").unwrap().dtype, "F32");
        assert_eq!(f.metadata["format"], "pt");
        // Truncated, or an absurd header length: clear errors.
        let e = StFile::from_vec(bytes[..bytes.len() - 1].to_vec()).unwrap_err();
        assert!(e.to_string().contains("not a valid safetensors"), "{e}");
        let mut bad = bytes.clone();
        bad[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(StFile::from_vec(bad).is_err());
        assert!(StFile::from_vec(vec![1, 2]).is_err());
    }
}
