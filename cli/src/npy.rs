//! Minimal NumPy `.npy` (format 1.0) reading and writing for the two arrays tern exchanges
//! on the command line: 2-D `int8` trit matrices and 1-D `float32` scale vectors.

use anyhow::{bail, Context, Result};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// True if the path ends in `.npy`.
pub fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Writes a C-order array with the given dtype descriptor and shape.
pub fn write(path: &Path, descr: &str, shape: &[usize], data: &[u8]) -> Result<()> {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    // magic(6) + version(2) + len(2) + header + '\n' is a multiple of 64
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(path, out).with_context(|| format!("{}: cannot write", path.display()))
}

/// A parsed `.npy`: dtype descriptor, shape and the raw data bytes.
pub struct Npy {
    pub descr: String,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads a `.npy` file (format 1.0 or 2.0, C order).
pub fn read(path: &Path) -> Result<Npy> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse(&bytes).with_context(|| format!("{}: not a readable .npy file", path.display()))
}

fn parse(bytes: &[u8]) -> Result<Npy> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        bail!("missing the \\x93NUMPY magic");
    }
    let (hlen, hstart): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => bail!("format version {v} is not supported (1, 2, 3 are)"),
    };
    let header = bytes
        .get(hstart..hstart.saturating_add(hlen))
        .ok_or_else(|| anyhow::anyhow!("header length {hlen} runs past the end of the file"))?;
    let header = std::str::from_utf8(header).context("header is not UTF-8")?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| anyhow::anyhow!("header has no '{key}'"))?;
        let rest = &header[at + key.len() + 2..];
        let colon = rest
            .find(':')
            .ok_or_else(|| anyhow::anyhow!("header field '{key}' has no value"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr_v = field("descr")?;
    let descr = descr_v
        .strip_prefix('\'')
        .and_then(|s| s.split('\'').next())
        .ok_or_else(|| anyhow::anyhow!("field 'descr' = {descr_v:.20} is not a string"))?
        .to_string();
    if field("fortran_order")?.starts_with("True") {
        bail!("field 'fortran_order' = True: only C-order arrays are supported");
    }
    let shape_v = field("shape")?;
    let inner = shape_v
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| anyhow::anyhow!("field 'shape' = {shape_v:.30} is not a tuple"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("field 'shape' has a bad dimension {s:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let data = bytes[hstart + hlen..].to_vec();
    Ok(Npy { descr, shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = std::env::temp_dir().join(format!("tern-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        write(&p, "|i1", &[2, 3], &[1, 0, 255, 1, 1, 0]).unwrap();
        let raw = std::fs::read(&p).unwrap();
        assert_eq!((raw.len() - 6) % 64, 0, "data starts 64-aligned");
        let n = read(&p).unwrap();
        assert_eq!(n.descr, "|i1");
        assert_eq!(n.shape, vec![2, 3]);
        assert_eq!(n.data, vec![1, 0, 255, 1, 1, 0]);
        write(&p, "<f4", &[1], &1.5f32.to_le_bytes()).unwrap();
        assert_eq!(read(&p).unwrap().shape, vec![1]);
        std::fs::write(&p, b"\x93NUMPY\x01\x00\xff\xff{").unwrap();
        assert!(read(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
