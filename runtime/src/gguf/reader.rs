//! GGUF reader: memory-maps the file, parses the header with every length and count checked
//! against the bytes actually present *before* anything is allocated, and hands out tensor
//! data as borrowed byte slices.

use std::collections::HashMap;
use std::path::Path;

use super::types::{GgmlType, Value, ValueType};
use super::{align_up, GgufError, DEFAULT_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH, MAX_DIMS};
use crate::bytes::Bytes;

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `ne[0]` is the contiguous dimension.
    pub ne: Vec<u64>,
    pub ty: GgmlType,
    /// Offset from the start of the data section (a multiple of the alignment).
    pub offset: u64,
    /// Exact byte size of the data.
    pub nbytes: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elems(&self) -> u64 {
        self.ne.iter().product()
    }

    /// The shape in PyTorch order (`ne` reversed), e.g. `[N, K]` for a weight.
    pub fn torch_shape(&self) -> Vec<u64> {
        self.ne.iter().rev().copied().collect()
    }
}

/// A parsed GGUF file.
#[derive(Debug)]
pub struct GgufFile {
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    meta_index: HashMap<String, usize>,
    tensor_index: HashMap<String, usize>,
    bytes: Bytes,
    /// Where it came from (for messages).
    pub source: String,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> u64 {
        (self.b.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.left() {
            return Err(GgufError::Truncated {
                offset: self.pos as u64,
                what: what(),
                need: n,
                have: self.left(),
            });
        }
        let s = &self.b[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.arr(what)?))
    }

    /// A count of elements each at least `min_elem` bytes, checked against the bytes left.
    fn count(&mut self, min_elem: u64, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        let offset = self.pos as u64;
        let count = self.u64(what)?;
        if count
            .checked_mul(min_elem)
            .is_none_or(|need| need > self.left())
        {
            return Err(GgufError::CountTooLarge {
                what: what(),
                offset,
                count,
                have: self.left(),
                min_elem,
            });
        }
        Ok(count)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.count(1, what)?;
        let offset = self.pos as u64;
        let s = self.take(len, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| GgufError::Utf8 {
            what: what(),
            offset,
        })
    }

    fn value(
        &mut self,
        ty: ValueType,
        depth: usize,
        what: &dyn Fn() -> String,
    ) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.arr::<1>(what)?[0]),
            ValueType::I8 => Value::I8(self.arr::<1>(what)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.arr(what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.arr(what)?)),
            ValueType::U32 => Value::U32(self.u32(what)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.arr(what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.arr(what)?)),
            ValueType::U64 => Value::U64(self.u64(what)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.arr(what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.arr(what)?)),
            ValueType::Bool => {
                let offset = self.pos as u64;
                match self.arr::<1>(what)?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    value => {
                        return Err(GgufError::Bool {
                            what: what(),
                            offset,
                            value,
                        })
                    }
                }
            }
            ValueType::Str => Value::Str(self.string(what)?),
            ValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::Depth { what: what() });
                }
                let elem = self.value_type(what)?;
                let count = self.count(elem.min_size(), what)?;
                let mut items = Vec::with_capacity(count as usize);
                for i in 0..count {
                    let w = || format!("{}[{i}]", what());
                    items.push(self.value(elem, depth + 1, &w)?);
                }
                Value::Array(elem, items)
            }
        })
    }

    fn value_type(&mut self, what: &dyn Fn() -> String) -> Result<ValueType, GgufError> {
        let offset = self.pos as u64;
        let ty = self.u32(what)?;
        ValueType::from_id(ty).ok_or_else(|| GgufError::ValueType {
            what: what(),
            offset,
            ty,
        })
    }
}

impl GgufFile {
    /// Opens and memory-maps `path`, then parses it.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let bytes = Bytes::map(path).map_err(|source| GgufError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(bytes, path.display().to_string())
    }

    /// Parses a GGUF image held in memory.
    pub fn from_vec(v: Vec<u8>) -> Result<Self, GgufError> {
        Self::parse(Bytes::Owned(v), "<memory>".into())
    }

    fn parse(bytes: Bytes, source: String) -> Result<Self, GgufError> {
        let b = bytes.as_slice();
        let mut c = Cursor { b, pos: 0 };
        let magic = c.u32(&|| "magic".into())?;
        if magic != MAGIC {
            return Err(GgufError::Magic { found: magic });
        }
        let version = c.u32(&|| "version".into())?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::Version(version));
        }
        // A tensor info is at least 8 (name) + 4 + 4 + 8 bytes; a kv at least 8 + 4 + 1.
        let n_tensors = c.u64(&|| "tensor count".into())?;
        let n_kv = c.count(13, &|| "metadata count".into())?;
        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut meta_index = HashMap::new();
        for i in 0..n_kv {
            let key = c.string(&|| format!("metadata key #{i}"))?;
            let what = || format!("metadata value of {key:?}");
            let ty = c.value_type(&what)?;
            let v = c.value(ty, 0, &what)?;
            if meta_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::DuplicateKey { key });
            }
            metadata.push((key, v));
        }
        let alignment = match meta_index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => match &metadata[i].1 {
                Value::U32(a) if *a > 0 && a.is_power_of_two() => *a as u64,
                v => {
                    return Err(GgufError::meta(
                        "general.alignment",
                        format!(
                            "value {} is not legal (legal: a u32 power of two ≥ 1)",
                            v.short()
                        ),
                    ))
                }
            },
        };
        if n_tensors.checked_mul(24).is_none_or(|n| n > c.left()) {
            return Err(GgufError::CountTooLarge {
                what: "tensor count".into(),
                offset: 8,
                count: n_tensors,
                have: c.left(),
                min_elem: 24,
            });
        }
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = HashMap::new();
        for i in 0..n_tensors {
            let name = c.string(&|| format!("tensor name #{i}"))?;
            let what = || format!("tensor info of {name:?}");
            let n_dims = c.u32(&what)?;
            if n_dims > MAX_DIMS {
                return Err(GgufError::tensor(
                    &name,
                    format!("n_dims = {n_dims} (legal: 0..={MAX_DIMS})"),
                ));
            }
            let mut ne = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                ne.push(c.u64(&what)?);
            }
            let id = c.u32(&what)?;
            let ty = GgmlType::from_id(id).ok_or_else(|| GgufError::UnknownType {
                name: name.clone(),
                id,
                known: GgmlType::known(),
            })?;
            let offset = c.u64(&what)?;
            let nbytes = ty
                .nbytes(&ne)
                .map_err(|p| GgufError::tensor(&name, format!("{ty} shape ne = {ne:?}: {p}")))?;
            if offset % alignment != 0 {
                return Err(GgufError::tensor(
                    &name,
                    format!("data offset {offset} is not a multiple of the alignment {alignment}"),
                ));
            }
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(GgufError::DuplicateTensor { name });
            }
            tensors.push(TensorInfo {
                name,
                ne,
                ty,
                offset,
                nbytes,
            });
        }
        let data_offset = align_up(c.pos as u64, alignment).unwrap_or(u64::MAX);
        let data_len = (b.len() as u64).saturating_sub(data_offset);
        for t in &tensors {
            let end = t.offset.checked_add(t.nbytes);
            if end.is_none_or(|e| e > data_len) {
                return Err(GgufError::tensor(
                    &t.name,
                    format!(
                        "data [{}, +{}) runs past the end of the file (data section has {data_len} bytes from offset {data_offset}; the file is truncated)",
                        t.offset, t.nbytes
                    ),
                ));
            }
        }
        Ok(Self {
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
            meta_index,
            tensor_index,
            bytes,
            source,
        })
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A tensor's info.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// A tensor's raw bytes (exactly `nbytes`; bounds were checked when parsing).
    pub fn data(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.data_offset + t.offset) as usize;
        &self.bytes.as_slice()[start..start + t.nbytes as usize]
    }

    /// Total file size.
    pub fn file_len(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    /// A required metadata key.
    pub fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key)
            .ok_or_else(|| GgufError::meta(key, "missing (required)"))
    }

    /// A required non-negative integer key that fits `max`.
    pub fn get_uint(&self, key: &str, max: u64) -> Result<Option<u64>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Ok(Some(n)),
                _ => Err(GgufError::meta(
                    key,
                    format!(
                        "value {} is not legal (legal: an integer 0..={max})",
                        v.short()
                    ),
                )),
            },
        }
    }

    /// A float key.
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(GgufError::meta(
                    key,
                    format!("value {} is not a finite number", v.short()),
                )),
            },
        }
    }

    /// A string key.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(v) => Err(GgufError::meta(
                key,
                format!(
                    "value {} is a {:?}, expected a string",
                    v.short(),
                    v.value_type()
                ),
            )),
        }
    }
}
