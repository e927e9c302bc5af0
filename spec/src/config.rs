//! `ArrayConfig`: the one hardware configuration read by the RTL generator, the simulators,
//! the card model, the driver and the runtime (TOML, see configs/ and docs/arithmetic.md §7).
//!
//! Every field has a legal range; [`ArrayConfig::validate`] checks all of them and every
//! cross-field rule, and each failure names the field, the value and the legal range.

use crate::widths;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Geometry of the add/sub array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayGeometry {
    /// Output lanes: outputs (rows of W, the N direction) computed in parallel.
    pub rows: u32,
    /// Inputs per lane per cycle (the K direction): trits each lane adds per cycle.
    pub cols: u32,
    /// Tokens that reuse one weight tile before the next is fetched (M > 1; 1 = GEMV only).
    pub token_tile: u32,
}

/// Shape of one Scaled Ternary Block: `n` output rows × `k` inputs share one scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockShape {
    pub n: u32,
    pub k: u32,
}

impl fmt::Display for BlockShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.n, self.k)
    }
}

/// Activation format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationFormat {
    /// Signed activation width in bits (4..=8).
    pub bits: u32,
}

/// Scale format: unsigned mantissa per block; exponent per block row, applied by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleFormat {
    /// Width of the unsigned block-scale mantissa (2..=24).
    pub mantissa_bits: u32,
}

/// Accumulator widths and the reduction length they are proven for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccumulatorFormat {
    /// Signed width of the per-block partial sum (PE accumulator).
    pub psum_bits: u32,
    /// Signed width of the output accumulator.
    pub acc_bits: u32,
    /// Largest K (inputs) a matrix may have on this array.
    pub max_k: u64,
    /// Largest N (outputs) a matrix may have on this array.
    pub max_n: u64,
}

/// Clock target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockTarget {
    /// Target clock of the array, MHz.
    pub target_mhz: f64,
}

/// The whole array configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayConfig {
    /// Short name, used in file and module names: `[a-z0-9_]`, 1..=32 characters.
    pub name: String,
    pub array: ArrayGeometry,
    pub block: BlockShape,
    pub activation: ActivationFormat,
    pub scale: ScaleFormat,
    pub accumulator: AccumulatorFormat,
    pub clock: ClockTarget,
}

/// A config problem: which file, which field, what value, what is legal.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: TOML: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: field `{field}` = {value} is out of range: {legal}")]
    Invalid {
        origin: String,
        field: &'static str,
        value: String,
        legal: String,
    },
}

impl ConfigError {
    /// The offending field, for invalid values.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Legal ranges, one place (also printed by `tern config show --ranges`).
pub mod limits {
    pub const ROWS: (u32, u32) = (1, 256);
    pub const COLS: (u32, u32) = (1, 256);
    pub const TOKEN_TILE: (u32, u32) = (1, 256);
    pub const BLOCK_N: (u32, u32) = (1, 65536);
    pub const BLOCK_K: (u32, u32) = (1, 65536);
    pub const ACT_BITS: (u32, u32) = (4, 8);
    pub const MANT_BITS: (u32, u32) = (2, 24);
    pub const PSUM_BITS_MAX: u32 = 32;
    pub const ACC_BITS_MAX: u32 = 64;
    pub const MAX_K: (u64, u64) = (1, 1 << 20);
    pub const MAX_N: (u64, u64) = (1, 1 << 20);
    pub const TARGET_MHZ: (f64, f64) = (1.0, 1000.0);
    pub const NAME_LEN: (usize, usize) = (1, 32);
}

/// The default config's TOML, embedded (configs/default.toml).
pub const DEFAULT_TOML: &str = include_str!("../../configs/default.toml");
/// The small config (configs/small.toml): the one CI synthesizes.
pub const SMALL_TOML: &str = include_str!("../../configs/small.toml");
/// The large config (configs/large.toml).
pub const LARGE_TOML: &str = include_str!("../../configs/large.toml");

/// The built-in configs by name.
pub const BUILTIN: [(&str, &str); 3] = [
    ("default", DEFAULT_TOML),
    ("small", SMALL_TOML),
    ("large", LARGE_TOML),
];

impl Default for ArrayConfig {
    fn default() -> Self {
        ArrayConfig::from_toml_str(DEFAULT_TOML, "configs/default.toml")
            .expect("the embedded default config is valid (tested)")
    }
}

impl ArrayConfig {
    /// Parses and validates TOML; `origin` names the source in errors (a path or "<builtin>").
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: ArrayConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Reads, parses and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// A built-in config by name (`default`, `small`, `large`).
    pub fn builtin(name: &str) -> Option<Self> {
        BUILTIN.iter().find(|(n, _)| *n == name).map(|(n, t)| {
            Self::from_toml_str(t, &format!("<builtin {n}>")).expect("builtin configs are valid")
        })
    }

    /// A built-in name, or else a path to a TOML file.
    pub fn builtin_or_load(name_or_path: &str) -> Result<Self, ConfigError> {
        match Self::builtin(name_or_path) {
            Some(c) => Ok(c),
            None => Self::load(Path::new(name_or_path)),
        }
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("ArrayConfig serializes")
    }

    /// Checks every field and every cross-field rule.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |field: &'static str, value: String, legal: String| ConfigError::Invalid {
            origin: origin.to_string(),
            field,
            value,
            legal,
        };
        let range_u32 = |field: &'static str, v: u32, (lo, hi): (u32, u32)| {
            if v < lo || v > hi {
                Err(bad(
                    field,
                    v.to_string(),
                    format!("legal range {lo}..={hi}"),
                ))
            } else {
                Ok(())
            }
        };
        use limits::*;
        let name_ok = self.name.len() >= NAME_LEN.0
            && self.name.len() <= NAME_LEN.1
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && self
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase());
        if !name_ok {
            return Err(bad(
                "name",
                format!("{:?}", self.name),
                "1..=32 characters of [a-z0-9_], starting with a letter".into(),
            ));
        }
        range_u32("array.rows", self.array.rows, ROWS)?;
        range_u32("array.cols", self.array.cols, COLS)?;
        range_u32("array.token_tile", self.array.token_tile, TOKEN_TILE)?;
        range_u32("block.n", self.block.n, BLOCK_N)?;
        range_u32("block.k", self.block.k, BLOCK_K)?;
        if !self.block.k.is_multiple_of(self.array.cols) {
            return Err(bad(
                "block.k",
                self.block.k.to_string(),
                format!(
                    "a multiple of array.cols = {} (a block must end on a cycle boundary)",
                    self.array.cols
                ),
            ));
        }
        range_u32("activation.bits", self.activation.bits, ACT_BITS)?;
        range_u32("scale.mantissa_bits", self.scale.mantissa_bits, MANT_BITS)?;
        let acc = &self.accumulator;
        if acc.max_k < MAX_K.0 || acc.max_k > MAX_K.1 {
            return Err(bad(
                "accumulator.max_k",
                acc.max_k.to_string(),
                format!("legal range {}..={}", MAX_K.0, MAX_K.1),
            ));
        }
        if acc.max_n < MAX_N.0 || acc.max_n > MAX_N.1 {
            return Err(bad(
                "accumulator.max_n",
                acc.max_n.to_string(),
                format!("legal range {}..={}", MAX_N.0, MAX_N.1),
            ));
        }
        let need_psum = widths::required_psum_bits(self.block.k as u64, self.activation.bits);
        range_u32("accumulator.psum_bits", acc.psum_bits, (need_psum, PSUM_BITS_MAX)).map_err(
            |_| {
                bad(
                    "accumulator.psum_bits",
                    acc.psum_bits.to_string(),
                    format!(
                        "legal range {need_psum}..={PSUM_BITS_MAX} (block.k = {} × 2^(activation.bits-1) = {} needs {need_psum} signed bits)",
                        self.block.k,
                        widths::max_abs_psum(self.block.k as u64, self.activation.bits)
                    ),
                )
            },
        )?;
        let need_acc =
            widths::required_acc_bits(acc.max_k, self.activation.bits, self.scale.mantissa_bits);
        if acc.acc_bits < need_acc || acc.acc_bits > ACC_BITS_MAX {
            return Err(bad(
                "accumulator.acc_bits",
                acc.acc_bits.to_string(),
                format!(
                    "legal range {need_acc}..={ACC_BITS_MAX} (max_k = {} × 2^(activation.bits-1) × (2^mantissa_bits - 1) needs {need_acc} signed bits)",
                    acc.max_k
                ),
            ));
        }
        let mhz = self.clock.target_mhz;
        if !(mhz.is_finite() && mhz >= TARGET_MHZ.0 && mhz <= TARGET_MHZ.1) {
            return Err(bad(
                "clock.target_mhz",
                mhz.to_string(),
                format!("legal range {}..={} MHz", TARGET_MHZ.0, TARGET_MHZ.1),
            ));
        }
        Ok(())
    }

    /// Trits consumed per cycle by the whole array (rows × cols).
    pub fn macs_per_cycle(&self) -> u64 {
        self.array.rows as u64 * self.array.cols as u64
    }

    /// Largest activation code, 2^(bits-1) - 1.
    pub fn act_max(&self) -> i32 {
        (1 << (self.activation.bits - 1)) - 1
    }

    /// Smallest activation code, -2^(bits-1).
    pub fn act_min(&self) -> i32 {
        -(1 << (self.activation.bits - 1))
    }

    /// Largest scale mantissa, 2^mantissa_bits - 1.
    pub fn mant_max(&self) -> u32 {
        ((1u64 << self.scale.mantissa_bits) - 1) as u32
    }

    /// A short stable hash of the config (FNV-1a over its canonical TOML), used to name
    /// generated artefacts and caches.
    pub fn hash_hex(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.to_toml().bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid() {
        for (name, text) in BUILTIN {
            let c = ArrayConfig::from_toml_str(text, name).unwrap();
            assert_eq!(c.name, c.name.to_lowercase());
            // round trip through TOML
            let again = ArrayConfig::from_toml_str(&c.to_toml(), "again").unwrap();
            assert_eq!(c, again);
        }
        assert_eq!(ArrayConfig::default().array.rows, 16);
    }

    /// Table-driven: each invalid field is rejected with its own message.
    #[test]
    fn each_invalid_field_has_its_message() {
        type Edit = fn(&mut ArrayConfig);
        let cases: &[(&str, Edit, &str, &str)] = &[
            (
                "name",
                |c| c.name = "Bad Name".into(),
                "\"Bad Name\"",
                "[a-z0-9_]",
            ),
            ("name", |c| c.name = String::new(), "\"\"", "1..=32"),
            ("array.rows", |c| c.array.rows = 0, "= 0", "1..=256"),
            ("array.rows", |c| c.array.rows = 257, "= 257", "1..=256"),
            ("array.cols", |c| c.array.cols = 0, "= 0", "1..=256"),
            ("array.cols", |c| c.array.cols = 1000, "= 1000", "1..=256"),
            (
                "array.token_tile",
                |c| c.array.token_tile = 0,
                "= 0",
                "1..=256",
            ),
            ("block.n", |c| c.block.n = 0, "= 0", "1..=65536"),
            ("block.k", |c| c.block.k = 0, "= 0", "1..=65536"),
            ("block.k", |c| c.block.k = 70000, "= 70000", "1..=65536"),
            (
                "block.k",
                |c| c.block.k = 24,
                "= 24",
                "multiple of array.cols = 16",
            ),
            ("activation.bits", |c| c.activation.bits = 3, "= 3", "4..=8"),
            ("activation.bits", |c| c.activation.bits = 9, "= 9", "4..=8"),
            (
                "scale.mantissa_bits",
                |c| c.scale.mantissa_bits = 1,
                "= 1",
                "2..=24",
            ),
            (
                "scale.mantissa_bits",
                |c| c.scale.mantissa_bits = 25,
                "= 25",
                "2..=24",
            ),
            (
                "accumulator.psum_bits",
                |c| c.accumulator.psum_bits = 14,
                "= 14",
                "15..=32",
            ),
            (
                "accumulator.psum_bits",
                |c| c.accumulator.psum_bits = 33,
                "= 33",
                "15..=32",
            ),
            (
                "accumulator.acc_bits",
                |c| c.accumulator.acc_bits = 38,
                "= 38",
                "39..=64",
            ),
            (
                "accumulator.acc_bits",
                |c| c.accumulator.acc_bits = 65,
                "= 65",
                "39..=64",
            ),
            (
                "accumulator.max_k",
                |c| c.accumulator.max_k = 0,
                "= 0",
                "1..=1048576",
            ),
            (
                "accumulator.max_k",
                |c| c.accumulator.max_k = 1 << 21,
                "= 2097152",
                "1..=1048576",
            ),
            (
                "accumulator.max_n",
                |c| c.accumulator.max_n = 0,
                "= 0",
                "1..=1048576",
            ),
            (
                "clock.target_mhz",
                |c| c.clock.target_mhz = 0.5,
                "= 0.5",
                "1..=1000 MHz",
            ),
            (
                "clock.target_mhz",
                |c| c.clock.target_mhz = f64::NAN,
                "= NaN",
                "1..=1000 MHz",
            ),
        ];
        for (field, edit, value, legal) in cases {
            let mut c = ArrayConfig::default();
            // keep the widths legal for the edits that are not about widths
            edit(&mut c);
            let e = c.validate("test.toml").unwrap_err();
            assert_eq!(e.field(), Some(*field), "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with("test.toml: field `"), "{msg}");
            assert!(msg.contains(value), "{msg} should contain {value}");
            assert!(msg.contains(legal), "{msg} should contain {legal}");
        }
    }

    #[test]
    fn parse_errors_name_the_origin() {
        let e = ArrayConfig::from_toml_str("name = 3", "x.toml").unwrap_err();
        assert!(e.to_string().starts_with("x.toml: TOML:"), "{e}");
        let mut t = DEFAULT_TOML.to_string();
        t.push_str("\nbogus = 1\n");
        let e = ArrayConfig::from_toml_str(&t, "y.toml").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = ArrayConfig::load(Path::new("/nonexistent/cfg.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cfg.toml"), "{e}");
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = ArrayConfig::default();
        let mut b = a.clone();
        assert_eq!(a.hash_hex(), b.hash_hex());
        b.array.rows = 8;
        assert_ne!(a.hash_hex(), b.hash_hex());
    }
}
