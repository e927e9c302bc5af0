//! Read-only file bytes: memory-mapped from disk, or owned (tests, in-memory images).

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

/// File contents.
#[derive(Debug)]
pub enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    /// Memory-maps `path` read-only (an empty file becomes an empty owned buffer).
    pub fn map(path: &Path) -> std::io::Result<Bytes> {
        let f = File::open(path)?;
        if f.metadata()?.len() == 0 {
            return Ok(Bytes::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only; tern does not modify model files while they are open,
        // and every access is bounds-checked against the length seen at map time.
        let m = unsafe { Mmap::map(&f)? };
        Ok(Bytes::Mapped(m))
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}
