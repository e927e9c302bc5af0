//! [`DriverError`]: everything the driver can fail with. Every error that involves the card
//! carries a [`CardState`] snapshot (STATUS/ERROR decoded, ERROR_TAG/INFO, heartbeat, ring
//! pointers), so a failure report says what the card was doing.

use crate::transport::TransportError;
use serde::Serialize;
use std::fmt;
use std::time::Duration;
use tern_spec::card::cmd::{Opcode, Status};
use tern_spec::card::image::ImageError;
use tern_spec::card::regs;
use tern_spec::config::ConfigError;
use thiserror::Error;

/// The name of an opcode byte as the docs spell it.
pub fn opcode_name(op: u8) -> &'static str {
    match Opcode::from_u8(op) {
        Some(Opcode::Nop) => "NOP",
        Some(Opcode::DmaToCard) => "DMA_TO_CARD",
        Some(Opcode::DmaToHost) => "DMA_TO_HOST",
        Some(Opcode::LoadWeights) => "LOAD_WEIGHTS",
        Some(Opcode::Gemm) => "GEMM",
        Some(Opcode::Fence) => "FENCE",
        None => "UNKNOWN_OPCODE",
    }
}

/// The name of a completion status byte.
pub fn status_name(status: u8) -> &'static str {
    match Status::from_u8(status) {
        Some(Status::Ok) => "OK",
        Some(Status::BadOpcode) => "BAD_OPCODE",
        Some(Status::BadField) => "BAD_FIELD",
        Some(Status::AddrRange) => "ADDR_RANGE",
        Some(Status::CrcMismatch) => "CRC_MISMATCH",
        Some(Status::DmaError) => "DMA_ERROR",
        Some(Status::Aborted) => "ABORTED",
        Some(Status::InternalTimeout) => "INTERNAL_TIMEOUT",
        None => "UNKNOWN_STATUS",
    }
}

/// Names of the set bits of a register, from the register table.
pub fn decode_bits(reg: &str, value: u32) -> Vec<&'static str> {
    regs::by_name(reg)
        .map(|r| {
            r.fields
                .iter()
                .filter(|f| f.width == 1 && (value >> f.lsb) & 1 == 1)
                .map(|f| f.name)
                .collect()
        })
        .unwrap_or_default()
}

/// A snapshot of the card's control registers, taken when something went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CardState {
    pub status: u32,
    pub error: u32,
    pub error_tag: u32,
    pub error_info: u32,
    pub heartbeat: u32,
    pub sq_head: u32,
    pub sq_tail: u32,
    pub cq_head: u32,
    pub cq_tail: u32,
    /// Set when the registers could not be read (the snapshot is then incomplete).
    pub unreadable: Option<String>,
}

impl fmt::Display for CardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = &self.unreadable {
            return write!(f, "card state unreadable: {why}");
        }
        write!(
            f,
            "STATUS={:#x} [{}] ERROR={:#x} [{}] ERROR_TAG={} ERROR_INFO={:#x} HEARTBEAT={} SQ_HEAD={} SQ_TAIL={} CQ_HEAD={} CQ_TAIL={}",
            self.status,
            decode_bits("STATUS", self.status).join("|"),
            self.error,
            decode_bits("ERROR", self.error).join("|"),
            self.error_tag,
            self.error_info,
            self.heartbeat,
            self.sq_head,
            self.sq_tail,
            self.cq_head,
            self.cq_tail
        )
    }
}

/// Everything the driver can fail with.
#[derive(Debug, Error)]
pub enum DriverError {
    #[error("card ABI {card_major}.{card_minor} is not supported by this driver (ABI {driver_major}.{driver_minor}): {reason}")]
    AbiMismatch {
        card_major: u16,
        card_minor: u16,
        driver_major: u16,
        driver_minor: u16,
        reason: &'static str,
    },
    #[error("not a tern card: MAGIC = {magic:#010x}, expected {expected:#010x} (\"tern\")")]
    NotATernCard { magic: u32, expected: u32 },
    #[error("card geometry unsupported: {reason}")]
    GeometryUnsupported { reason: String },
    #[error("register block chain: {reason}")]
    RegisterBlocks { reason: String },
    #[error("command {opcode} (tag {tag}) failed: {status} (info {info:#x}); {state}")]
    CommandFailed {
        tag: u16,
        opcode: &'static str,
        status: &'static str,
        status_code: u8,
        info: u32,
        state: CardState,
    },
    #[error("timed out after {waited:?} waiting for {what}{}: the card is alive (heartbeat running) but did not finish; {state}", tag.map(|t| format!(" (tag {t})")).unwrap_or_default())]
    Timeout {
        what: String,
        tag: Option<u16>,
        waited: Duration,
        state: CardState,
    },
    #[error("card hung: heartbeat stopped at {heartbeat} for {stalled:?} while waiting for {what}{}; {state}", tag.map(|t| format!(" (tag {t})")).unwrap_or_default())]
    CardHung {
        what: String,
        tag: Option<u16>,
        heartbeat: u32,
        stalled: Duration,
        state: CardState,
    },
    #[error("completion lost: the card consumed command {opcode} (tag {tag}) but never wrote its completion; {state}")]
    CompletionLost {
        tag: u16,
        opcode: &'static str,
        state: CardState,
    },
    #[error("card halted without a completion to explain it (ERROR names the cause); {state}")]
    Halted { state: CardState },
    #[error("refused before submission: {reason}")]
    Refused { reason: String },
    #[error(
        "card memory exhausted: {need} bytes requested, largest free extent {largest} of {total}"
    )]
    OutOfCardMemory { need: u64, largest: u64, total: u64 },
    #[error("back end `{backend}` is unavailable: {reason}")]
    BackendUnavailable { backend: String, reason: String },
    #[error("bad back-end spec `{spec}`: {reason}")]
    BadSpec { spec: String, reason: String },
    #[error("image: {0}")]
    Image(#[from] ImageError),
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
}

impl DriverError {
    /// The completion status of a failed command, if this is one.
    pub fn status(&self) -> Option<Status> {
        match self {
            DriverError::CommandFailed { status_code, .. } => Status::from_u8(*status_code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bits_decode_from_the_tables() {
        assert_eq!(opcode_name(3), "LOAD_WEIGHTS");
        assert_eq!(opcode_name(77), "UNKNOWN_OPCODE");
        assert_eq!(status_name(5), "DMA_ERROR");
        assert_eq!(
            decode_bits("STATUS", regs::status::BUSY | regs::status::HALTED),
            vec!["BUSY", "HALTED"]
        );
        let s = CardState {
            error: regs::error::CRC_MISMATCH,
            heartbeat: 42,
            ..Default::default()
        };
        let text = s.to_string();
        assert!(
            text.contains("[CRC_MISMATCH]") && text.contains("HEARTBEAT=42"),
            "{text}"
        );
        let e = DriverError::Timeout {
            what: "GEMM".into(),
            tag: Some(9),
            waited: Duration::from_millis(5),
            state: s,
        };
        assert!(
            e.to_string()
                .contains("timed out after 5ms waiting for GEMM (tag 9)"),
            "{e}"
        );
    }
}
