//! GGUF v3 writer, streaming: the header (metadata and tensor infos, with offsets computed
//! from the declared shapes and types) is written first, then each tensor's bytes in the
//! declared order, so a multi-gigabyte model never has to be held in memory.

use std::io::Write;

use super::types::{GgmlType, Value, ValueType};
use super::{align_up, GgufError, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS, VERSION};

/// Collects metadata and tensor declarations.
#[derive(Debug, Clone, Default)]
pub struct GgufBuilder {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType)>,
    alignment: Option<u64>,
}

/// Writes tensor data after the header; see [`GgufBuilder::begin`].
pub struct GgufStreamWriter<W: Write> {
    w: W,
    /// (name, nbytes) in order.
    pending: Vec<(String, u64)>,
    next: usize,
    alignment: u64,
    written: u64,
}

impl GgufBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata entry (a key given twice is an error at [`GgufBuilder::begin`]).
    pub fn meta(&mut self, key: &str, v: Value) -> &mut Self {
        if key == "general.alignment" {
            if let Value::U32(a) = v {
                self.alignment = Some(a as u64);
            }
        }
        self.metadata.push((key.to_string(), v));
        self
    }

    /// Takes the metadata out (in insertion order).
    pub fn take_metadata(&mut self) -> Vec<(String, Value)> {
        std::mem::take(&mut self.metadata)
    }

    /// The metadata added so far.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// Sets `general.alignment` (a power of two).
    pub fn alignment(&mut self, a: u32) -> &mut Self {
        self.meta("general.alignment", Value::U32(a))
    }

    /// Declares a tensor: `ne` in ggml order (`[K, N]` for a `[N, K]` weight).
    pub fn tensor(&mut self, name: &str, ne: &[u64], ty: GgmlType) -> &mut Self {
        self.tensors.push((name.to_string(), ne.to_vec(), ty));
        self
    }

    /// Writes the header to `w` and returns the writer that takes the tensor data.
    pub fn begin<W: Write>(&self, mut w: W) -> Result<GgufStreamWriter<W>, GgufError> {
        let alignment = self.alignment.unwrap_or(DEFAULT_ALIGNMENT);
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(GgufError::Writer(format!(
                "general.alignment = {alignment} is not a power of two"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for (k, v) in &self.metadata {
            if !seen.insert(k) {
                return Err(GgufError::DuplicateKey { key: k.clone() });
            }
            check_value(k, v, 0)?;
        }
        let mut h = Vec::new();
        h.extend(MAGIC.to_le_bytes());
        h.extend(VERSION.to_le_bytes());
        h.extend((self.tensors.len() as u64).to_le_bytes());
        h.extend((self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut h, k);
            h.extend((v.value_type() as u32).to_le_bytes());
            put_value(&mut h, v);
        }
        let mut offset = 0u64;
        let mut pending = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (name, ne, ty) in &self.tensors {
            if !names.insert(name) {
                return Err(GgufError::DuplicateTensor { name: name.clone() });
            }
            if ne.len() as u32 > MAX_DIMS {
                return Err(GgufError::tensor(
                    name,
                    format!("{} dims (legal: ≤ 4)", ne.len()),
                ));
            }
            let nbytes = ty.nbytes(ne).map_err(|p| GgufError::tensor(name, p))?;
            put_str(&mut h, name);
            h.extend((ne.len() as u32).to_le_bytes());
            for d in ne {
                h.extend(d.to_le_bytes());
            }
            h.extend(ty.id().to_le_bytes());
            h.extend(offset.to_le_bytes());
            pending.push((name.clone(), nbytes));
            offset = align_up(offset + nbytes, alignment)
                .ok_or_else(|| GgufError::Writer("file size overflows u64".into()))?;
        }
        let padded = align_up(h.len() as u64, alignment).unwrap_or(h.len() as u64) as usize;
        h.resize(padded, 0);
        w.write_all(&h).map_err(io)?;
        Ok(GgufStreamWriter {
            w,
            pending,
            next: 0,
            alignment,
            written: h.len() as u64,
        })
    }
}

fn io(e: std::io::Error) -> GgufError {
    GgufError::Io {
        path: "<gguf output>".into(),
        source: e,
    }
}

impl<W: Write> GgufStreamWriter<W> {
    /// Name and byte size of the tensor expected next, if any.
    pub fn expected(&self) -> Option<(&str, u64)> {
        self.pending.get(self.next).map(|(n, b)| (n.as_str(), *b))
    }

    /// Writes the next tensor's bytes; `name` and the length must match the declaration.
    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<(), GgufError> {
        let Some((want, nbytes)) = self.pending.get(self.next) else {
            return Err(GgufError::Writer(format!(
                "tensor {name:?} written, but all {} declared tensors are done",
                self.pending.len()
            )));
        };
        if want != name || *nbytes != data.len() as u64 {
            return Err(GgufError::Writer(format!(
                "tensor {name:?} with {} bytes written, expected {want:?} with {nbytes} bytes",
                data.len()
            )));
        }
        self.w.write_all(data).map_err(io)?;
        let end = self.written + data.len() as u64;
        let padded = align_up(end, self.alignment).unwrap_or(end);
        self.w
            .write_all(&vec![0u8; (padded - end) as usize])
            .map_err(io)?;
        self.written = padded;
        self.next += 1;
        Ok(())
    }

    /// Checks that every declared tensor was written and returns the sink.
    pub fn finish(mut self) -> Result<W, GgufError> {
        if let Some((n, _)) = self.expected() {
            return Err(GgufError::Writer(format!(
                "finished with tensor {n:?} (and {} more) not written",
                self.pending.len() - self.next - 1
            )));
        }
        self.w.flush().map_err(io)?;
        Ok(self.w)
    }
}

fn check_value(key: &str, v: &Value, depth: usize) -> Result<(), GgufError> {
    if let Value::Array(t, items) = v {
        if depth >= super::MAX_ARRAY_DEPTH {
            return Err(GgufError::Depth { what: key.into() });
        }
        for (i, it) in items.iter().enumerate() {
            if it.value_type() != *t {
                return Err(GgufError::meta(
                    key,
                    format!(
                        "array of {t:?} has element {i} of type {:?}",
                        it.value_type()
                    ),
                ));
            }
            check_value(key, it, depth + 1)?;
        }
    }
    Ok(())
}

fn put_str(h: &mut Vec<u8>, s: &str) {
    h.extend((s.len() as u64).to_le_bytes());
    h.extend(s.as_bytes());
}

fn put_value(h: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => h.push(*x),
        Value::I8(x) => h.push(*x as u8),
        Value::U16(x) => h.extend(x.to_le_bytes()),
        Value::I16(x) => h.extend(x.to_le_bytes()),
        Value::U32(x) => h.extend(x.to_le_bytes()),
        Value::I32(x) => h.extend(x.to_le_bytes()),
        Value::F32(x) => h.extend(x.to_le_bytes()),
        Value::Bool(x) => h.push(*x as u8),
        Value::Str(s) => put_str(h, s),
        Value::U64(x) => h.extend(x.to_le_bytes()),
        Value::I64(x) => h.extend(x.to_le_bytes()),
        Value::F64(x) => h.extend(x.to_le_bytes()),
        Value::Array(t, items) => {
            h.extend((*t as u32).to_le_bytes());
            h.extend((items.len() as u64).to_le_bytes());
            for it in items {
                put_value(h, it);
            }
        }
    }
}

/// Convenience: an array of strings.
pub fn str_array<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(
        ValueType::Str,
        items
            .iter()
            .map(|s| Value::Str(s.as_ref().to_string()))
            .collect(),
    )
}

/// Convenience: an array of i32.
pub fn i32_array(items: &[i32]) -> Value {
    Value::Array(
        ValueType::I32,
        items.iter().map(|&v| Value::I32(v)).collect(),
    )
}
