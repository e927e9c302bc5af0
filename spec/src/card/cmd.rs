//! Commands and completions: the fixed-size little-endian records the host puts in the
//! submission ring and the card writes to the completion ring (NVMe-style, phase bit).
//!
//! Command (64 bytes):
//!
//! | bytes | field | meaning |
//! |---|---|---|
//! | 0 | opcode | [`Opcode`] |
//! | 1 | flags | bit 0: fence (wait for every earlier command first) |
//! | 2..4 | tag | host-chosen id, echoed in the completion |
//! | 4..8 | reserved | 0 |
//! | 8..16 | a0 | DMA/LOAD: host device address; GEMM: weight region (card address) |
//! | 16..24 | a1 | DMA/LOAD: card address; GEMM: activations (card address, M×K i8, row stride K) |
//! | 24..32 | a2 | GEMM: outputs (card address, M×N i64) |
//! | 32..36 | len / m | DMA/LOAD: bytes; GEMM: M |
//! | 36..40 | crc / k | LOAD: CRC-32 (IEEE) of the bytes; GEMM: K |
//! | 40..44 | n | GEMM: N |
//! | 44..64 | reserved | 0 |
//!
//! Completion (16 bytes): tag (u16), status (u8, [`Status`]), flags (u8, bit 0 = phase),
//! info (u32: error detail), cycles (u64: clock cycles the command took).

use thiserror::Error;

/// Size of one command record.
pub const CMD_BYTES: usize = 64;
/// Size of one completion record.
pub const CPL_BYTES: usize = 16;

/// Command opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    Nop = 0,
    /// Copy host → card memory.
    DmaToCard = 1,
    /// Copy card → host memory.
    DmaToHost = 2,
    /// Copy host → card and check a CRC-32 of the bytes.
    LoadWeights = 3,
    /// Run a GEMM/GEMV on a resident weight region.
    Gemm = 4,
    /// Complete only after every earlier command completed.
    Fence = 5,
}

impl Opcode {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Opcode::Nop,
            1 => Opcode::DmaToCard,
            2 => Opcode::DmaToHost,
            3 => Opcode::LoadWeights,
            4 => Opcode::Gemm,
            5 => Opcode::Fence,
            _ => return None,
        })
    }
}

/// Completion status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Ok = 0,
    BadOpcode = 1,
    BadField = 2,
    AddrRange = 3,
    CrcMismatch = 4,
    DmaError = 5,
    Aborted = 6,
    InternalTimeout = 7,
}

impl Status {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Status::Ok,
            1 => Status::BadOpcode,
            2 => Status::BadField,
            3 => Status::AddrRange,
            4 => Status::CrcMismatch,
            5 => Status::DmaError,
            6 => Status::Aborted,
            7 => Status::InternalTimeout,
            _ => return None,
        })
    }
}

/// A decoded command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    pub opcode: Opcode,
    pub fence: bool,
    pub tag: u16,
    pub a0: u64,
    pub a1: u64,
    pub a2: u64,
    pub w0: u32,
    pub w1: u32,
    pub w2: u32,
}

/// Decoding problems (the card reports them as BAD_OPCODE / BAD_FIELD).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CmdError {
    #[error("command tag {tag}: opcode {opcode} is unknown (legal: 0..=5)")]
    BadOpcode { tag: u16, opcode: u8 },
    #[error("command tag {tag}: reserved byte {byte} = {value:#04x} is not 0")]
    Reserved { tag: u16, byte: usize, value: u8 },
    #[error("command tag {tag}: flags = {flags:#04x} has undefined bits (legal: bit 0)")]
    BadFlags { tag: u16, flags: u8 },
}

fn u16_at(b: &[u8; CMD_BYTES], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(x)
}

impl Command {
    /// A command with every operand zero.
    pub fn new(opcode: Opcode, tag: u16) -> Self {
        Self {
            opcode,
            fence: false,
            tag,
            a0: 0,
            a1: 0,
            a2: 0,
            w0: 0,
            w1: 0,
            w2: 0,
        }
    }

    /// GEMM of M tokens on the weight region at `weights`.
    pub fn gemm(tag: u16, weights: u64, acts: u64, out: u64, m: u32, k: u32, n: u32) -> Self {
        Self {
            a0: weights,
            a1: acts,
            a2: out,
            w0: m,
            w1: k,
            w2: n,
            ..Self::new(Opcode::Gemm, tag)
        }
    }

    /// Encodes to the 64-byte record.
    pub fn encode(&self) -> [u8; CMD_BYTES] {
        let mut b = [0u8; CMD_BYTES];
        b[0] = self.opcode as u8;
        b[1] = self.fence as u8;
        b[2..4].copy_from_slice(&self.tag.to_le_bytes());
        b[8..16].copy_from_slice(&self.a0.to_le_bytes());
        b[16..24].copy_from_slice(&self.a1.to_le_bytes());
        b[24..32].copy_from_slice(&self.a2.to_le_bytes());
        b[32..36].copy_from_slice(&self.w0.to_le_bytes());
        b[36..40].copy_from_slice(&self.w1.to_le_bytes());
        b[40..44].copy_from_slice(&self.w2.to_le_bytes());
        b
    }

    /// Decodes a 64-byte record, refusing unknown opcodes, flags and non-zero reserved bytes.
    pub fn decode(b: &[u8; CMD_BYTES]) -> Result<Self, CmdError> {
        let tag = u16_at(b, 2);
        let opcode = Opcode::from_u8(b[0]).ok_or(CmdError::BadOpcode { tag, opcode: b[0] })?;
        if b[1] & !1 != 0 {
            return Err(CmdError::BadFlags { tag, flags: b[1] });
        }
        for byte in (4..8).chain(44..64) {
            if b[byte] != 0 {
                return Err(CmdError::Reserved {
                    tag,
                    byte,
                    value: b[byte],
                });
            }
        }
        Ok(Self {
            opcode,
            fence: b[1] & 1 == 1,
            tag,
            a0: u64_at(b, 8),
            a1: u64_at(b, 16),
            a2: u64_at(b, 24),
            w0: u32_at(b, 32),
            w1: u32_at(b, 36),
            w2: u32_at(b, 40),
        })
    }
}

/// A completion record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    pub tag: u16,
    /// Raw status byte (see [`Status::from_u8`]).
    pub status: u8,
    pub phase: bool,
    pub info: u32,
    pub cycles: u64,
}

impl Completion {
    pub fn encode(&self) -> [u8; CPL_BYTES] {
        let mut b = [0u8; CPL_BYTES];
        b[0..2].copy_from_slice(&self.tag.to_le_bytes());
        b[2] = self.status;
        b[3] = self.phase as u8;
        b[4..8].copy_from_slice(&self.info.to_le_bytes());
        b[8..16].copy_from_slice(&self.cycles.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; CPL_BYTES]) -> Self {
        Self {
            tag: u16::from_le_bytes([b[0], b[1]]),
            status: b[2],
            phase: b[3] & 1 == 1,
            info: u32_at(b, 4),
            cycles: u64_at(b, 8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_lay_out_as_documented() {
        let mut c = Command::gemm(0xbeef, 0x1000, 0x2000, 0x3000, 4, 2560, 6912);
        c.fence = true;
        let b = c.encode();
        assert_eq!(b[0], 4);
        assert_eq!(b[1], 1);
        assert_eq!(&b[2..4], &[0xef, 0xbe]);
        assert_eq!(u64_at(&b, 8), 0x1000);
        assert_eq!(u32_at(&b, 36), 2560);
        assert_eq!(Command::decode(&b).unwrap(), c);
    }

    #[test]
    fn malformed_commands_are_refused_with_their_tag() {
        let mut b = Command::new(Opcode::Nop, 7).encode();
        b[0] = 9;
        assert_eq!(
            Command::decode(&b),
            Err(CmdError::BadOpcode { tag: 7, opcode: 9 })
        );
        let mut b = Command::new(Opcode::Fence, 7).encode();
        b[50] = 1;
        assert_eq!(
            Command::decode(&b),
            Err(CmdError::Reserved {
                tag: 7,
                byte: 50,
                value: 1
            })
        );
        let mut b = Command::new(Opcode::Fence, 7).encode();
        b[1] = 2;
        assert!(Command::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("flags = 0x02"));
    }

    #[test]
    fn completions_round_trip() {
        let c = Completion {
            tag: 3,
            status: Status::CrcMismatch as u8,
            phase: true,
            info: 9,
            cycles: 1 << 40,
        };
        let d = Completion::decode(&c.encode());
        assert_eq!(d, c);
        assert_eq!(Status::from_u8(d.status), Some(Status::CrcMismatch));
        assert_eq!(Status::from_u8(200), None);
    }
}
