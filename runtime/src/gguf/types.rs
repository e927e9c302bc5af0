//! GGUF metadata value types and ggml tensor types.

use std::fmt;

/// Metadata value type ids (gguf-py `GGUFValueType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    Str = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    pub fn from_id(id: u32) -> Option<Self> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => Str,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Bytes of one value on disk, at least (strings: the u64 length; arrays: type + count).
    pub fn min_size(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | Str => 8,
            Array => 12,
        }
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    /// Elements all of `elem` type (for nested arrays, each element is a `Value::Array`).
    Array(ValueType, Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::Str(_) => ValueType::Str,
            Value::Array(..) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer type as u64, if non-negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any numeric type as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64).or(match *self {
                Value::I8(v) => Some(v as f64),
                Value::I16(v) => Some(v as f64),
                Value::I32(v) => Some(v as f64),
                Value::I64(v) => Some(v as f64),
                _ => None,
            }),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A short human rendering (arrays abbreviated).
    pub fn short(&self) -> String {
        match self {
            Value::Str(s) if s.len() > 60 => {
                format!("{:?}…", &s[..s.floor_char_boundary_compat(60)])
            }
            Value::Str(s) => format!("{s:?}"),
            Value::Array(t, items) => {
                let head: Vec<String> = items.iter().take(4).map(|v| v.short()).collect();
                let more = if items.len() > 4 { ", …" } else { "" };
                format!("[{t:?}; {}] [{}{more}]", items.len(), head.join(", "))
            }
            Value::U8(v) => v.to_string(),
            Value::I8(v) => v.to_string(),
            Value::U16(v) => v.to_string(),
            Value::I16(v) => v.to_string(),
            Value::U32(v) => v.to_string(),
            Value::I32(v) => v.to_string(),
            Value::F32(v) => v.to_string(),
            Value::Bool(v) => v.to_string(),
            Value::U64(v) => v.to_string(),
            Value::I64(v) => v.to_string(),
            Value::F64(v) => v.to_string(),
        }
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for String {
    fn floor_char_boundary_compat(&self, i: usize) -> usize {
        let mut i = i.min(self.len());
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

/// ggml tensor types tern knows the size of. Reading data is supported for F32, F16, BF16,
/// I8, TQ1_0, TQ2_0 and I2_S; the others are listed (and sized) so `inspect` can show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    I8,
    I16,
    I32,
    I64,
    F64,
    BF16,
    Tq1_0,
    Tq2_0,
    /// microsoft/BitNet's fork: id 36, n/4 code bytes + f32 scale + 28 bytes.
    I2S,
}

impl GgmlType {
    const ALL: [GgmlType; 23] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2K,
        GgmlType::Q3K,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
        GgmlType::Q8K,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::BF16,
        GgmlType::Tq1_0,
        GgmlType::Tq2_0,
        GgmlType::I2S,
    ];

    /// (id, name, elements per block, bytes per block). I2_S is special-cased in
    /// [`GgmlType::nbytes`].
    fn row(self) -> (u32, &'static str, u64, u64) {
        use GgmlType::*;
        match self {
            F32 => (0, "F32", 1, 4),
            F16 => (1, "F16", 1, 2),
            Q4_0 => (2, "Q4_0", 32, 18),
            Q4_1 => (3, "Q4_1", 32, 20),
            Q5_0 => (6, "Q5_0", 32, 22),
            Q5_1 => (7, "Q5_1", 32, 24),
            Q8_0 => (8, "Q8_0", 32, 34),
            Q8_1 => (9, "Q8_1", 32, 40),
            Q2K => (10, "Q2_K", 256, 84),
            Q3K => (11, "Q3_K", 256, 110),
            Q4K => (12, "Q4_K", 256, 144),
            Q5K => (13, "Q5_K", 256, 176),
            Q6K => (14, "Q6_K", 256, 210),
            Q8K => (15, "Q8_K", 256, 292),
            I8 => (24, "I8", 1, 1),
            I16 => (25, "I16", 1, 2),
            I32 => (26, "I32", 1, 4),
            I64 => (27, "I64", 1, 8),
            F64 => (28, "F64", 1, 8),
            BF16 => (30, "BF16", 1, 2),
            Tq1_0 => (34, "TQ1_0", 256, 54),
            Tq2_0 => (35, "TQ2_0", 256, 66),
            I2S => (36, "I2_S", 128, 32),
        }
    }

    pub fn id(self) -> u32 {
        self.row().0
    }

    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// Elements per block along ne[0].
    pub fn block_size(self) -> u64 {
        self.row().2
    }

    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Every known type, as "NAME=id, …".
    pub fn known() -> String {
        Self::ALL
            .iter()
            .map(|t| format!("{}={}", t.name(), t.id()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Bytes of a tensor with `ne`, or why not (ne[0] not a multiple of the block, overflow).
    pub fn nbytes(self, ne: &[u64]) -> Result<u64, String> {
        let (_, name, bs, ts) = self.row();
        let ne0 = ne.first().copied().unwrap_or(1);
        let n = ne
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("element count of shape {ne:?} overflows u64"))?;
        if ne0 % bs != 0 {
            return Err(format!(
                "ne[0] = {ne0} is not a multiple of {name}'s block size {bs}"
            ));
        }
        let bytes = if self == GgmlType::I2S {
            Some(n / 4 + 32)
        } else {
            (n / bs).checked_mul(ts)
        };
        bytes.ok_or_else(|| format!("byte size of shape {ne:?} overflows u64"))
    }

    /// Whether tern can decode this type's data.
    pub fn readable(self) -> bool {
        use GgmlType::*;
        matches!(self, F32 | F16 | BF16 | I8 | Tq1_0 | Tq2_0 | I2S)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
