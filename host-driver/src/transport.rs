//! The [`Transport`] trait: what a back end gives the driver. Register access on BAR0, DMA
//! buffers the card can reach by device address (IOVA), a bounded wait, reset, liveness.

use std::time::Instant;
use thiserror::Error;

/// A DMA buffer: host memory mapped for the card at `iova` (64-byte aligned), `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmaBuf {
    /// Back-end handle.
    pub id: u64,
    /// Device address the card uses on its host port.
    pub iova: u64,
    /// Length in bytes.
    pub len: usize,
}

/// What a transport can fail with.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("{backend}: register offset {offset:#06x} is outside BAR0 or not 4-byte aligned")]
    BadOffset { backend: String, offset: u32 },
    #[error("{backend}: DMA buffer {id} access at {offset}+{len} is outside its {size} bytes")]
    BufRange {
        backend: String,
        id: u64,
        offset: usize,
        len: usize,
        size: usize,
    },
    #[error("{backend}: unknown DMA buffer {id}")]
    UnknownBuf { backend: String, id: u64 },
    #[error("{backend}: cannot allocate a {len}-byte DMA buffer: {reason}")]
    Alloc {
        backend: String,
        len: usize,
        reason: String,
    },
    #[error("{backend}: the peer died: {reason}")]
    PeerDied { backend: String, reason: String },
    #[error("{backend}: {what}: {source}")]
    Io {
        backend: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{backend}: {msg}")]
    Other { backend: String, msg: String },
}

/// A way to reach a card.
pub trait Transport: Send {
    /// Human-readable name of the back end and device, e.g. `model` or `vfio:0000:01:00.0`.
    fn describe(&self) -> String;
    /// Reads a 32-bit register at a byte offset in BAR0.
    fn read32(&mut self, offset: u32) -> Result<u32, TransportError>;
    /// Writes a 32-bit register at a byte offset in BAR0.
    fn write32(&mut self, offset: u32, value: u32) -> Result<(), TransportError>;
    /// Allocates host memory of `len` bytes and maps it for the card.
    fn alloc(&mut self, len: usize) -> Result<DmaBuf, TransportError>;
    /// Unmaps and frees a buffer.
    fn free(&mut self, buf: &DmaBuf) -> Result<(), TransportError>;
    /// Writes bytes into a buffer and makes them visible to the card (sync for device).
    fn write_buf(&mut self, buf: &DmaBuf, offset: usize, data: &[u8])
        -> Result<(), TransportError>;
    /// Makes the card's writes visible (sync for CPU) and reads bytes from a buffer.
    fn read_buf(
        &mut self,
        buf: &DmaBuf,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), TransportError>;
    /// Lets the card make progress until something may have changed for the host (a
    /// completion written, an interrupt) or until `until`, whichever is first. Returns
    /// promptly; the caller re-checks its condition and its own deadline.
    fn wait(&mut self, until: Instant) -> Result<(), TransportError>;
    /// Resets the card (function-level reset or the back end's equivalent).
    fn reset(&mut self) -> Result<(), TransportError>;
    /// Checks that the peer is still there (`PeerDied` if not).
    fn alive(&mut self) -> Result<(), TransportError>;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn read32(&mut self, offset: u32) -> Result<u32, TransportError> {
        (**self).read32(offset)
    }
    fn write32(&mut self, offset: u32, value: u32) -> Result<(), TransportError> {
        (**self).write32(offset, value)
    }
    fn alloc(&mut self, len: usize) -> Result<DmaBuf, TransportError> {
        (**self).alloc(len)
    }
    fn free(&mut self, buf: &DmaBuf) -> Result<(), TransportError> {
        (**self).free(buf)
    }
    fn write_buf(
        &mut self,
        buf: &DmaBuf,
        offset: usize,
        data: &[u8],
    ) -> Result<(), TransportError> {
        (**self).write_buf(buf, offset, data)
    }
    fn read_buf(
        &mut self,
        buf: &DmaBuf,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), TransportError> {
        (**self).read_buf(buf, offset, out)
    }
    fn wait(&mut self, until: Instant) -> Result<(), TransportError> {
        (**self).wait(until)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        (**self).reset()
    }
    fn alive(&mut self) -> Result<(), TransportError> {
        (**self).alive()
    }
}
