//! The card's register map (BAR0, 64 KiB), defined once as a table.
//!
//! The map is self-describing, as Corundum's is: it is a chain of register blocks, each
//! starting with a header word (`type << 16 | version`) and a pointer to the next block
//! (0 ends the chain), so the driver discovers what a bitstream contains instead of
//! assuming it. All registers are 32 bits, little-endian, at 4-byte-aligned offsets;
//! 64-bit quantities are `_LO`/`_HI` pairs (read `_LO` first: it latches `_HI`).
//!
//! The Rust constants below, the RTL's localparams ([`verilog_localparams`]) and the docs
//! page ([`markdown`], docs/card-registers.md) all come from [`REGS`]; tests check that the
//! table is consistent and that the committed docs page is current.

/// How software may access a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only.
    Ro,
    /// Read/write.
    Rw,
    /// Write 1 to clear (error bits).
    W1c,
    /// Write only; reads return 0 (self-clearing commands, doorbells).
    Wo,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Ro => "RO",
            Access::Rw => "RW",
            Access::W1c => "W1C",
            Access::Wo => "WO",
        }
    }
}

/// A bit field of a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub lsb: u32,
    pub width: u32,
    pub doc: &'static str,
}

/// One register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg {
    pub name: &'static str,
    /// Byte offset in BAR0.
    pub offset: u32,
    pub access: Access,
    /// Value after reset (for RO identity registers: "config", filled from the build).
    pub reset: u32,
    pub doc: &'static str,
    pub fields: &'static [Field],
}

/// Block type ids (high half of a block header).
pub mod block_type {
    pub const ID: u16 = 0x0001;
    pub const CONTROL: u16 = 0x0002;
    pub const RINGS: u16 = 0x0003;
    pub const PERF: u16 = 0x0004;
}

/// Size of BAR0 in bytes.
pub const BAR0_BYTES: u32 = 64 * 1024;
/// "tern" as a little-endian u32: bytes 't' 'e' 'r' 'n'.
pub const MAGIC: u32 = u32::from_le_bytes(*b"tern");
/// ABI version: the driver refuses a card whose major differs, or whose minor is newer than
/// it knows (with both versions in the error).
pub const ABI_MAJOR: u16 = 1;
pub const ABI_MINOR: u16 = 0;

macro_rules! offsets {
    ($($name:ident = $off:expr;)*) => {
        /// Register offsets (bytes in BAR0).
        pub mod off {
            $(pub const $name: u32 = $off;)*
        }
    };
}

offsets! {
    ID_HDR = 0x0000;
    ID_NEXT = 0x0004;
    MAGIC = 0x0008;
    ABI_VERSION = 0x000C;
    BUILD_HASH_LO = 0x0010;
    BUILD_HASH_HI = 0x0014;
    CAPS = 0x0018;
    ROWS = 0x001C;
    COLS = 0x0020;
    TOKEN_TILE = 0x0024;
    BLOCK_N = 0x0028;
    BLOCK_K = 0x002C;
    ACT_BITS = 0x0030;
    MANT_BITS = 0x0034;
    PSUM_BITS = 0x0038;
    ACC_BITS = 0x003C;
    MAX_K = 0x0040;
    MAX_N = 0x0044;
    CLOCK_KHZ = 0x0048;
    MEM_BYTES_LO = 0x004C;
    MEM_BYTES_HI = 0x0050;
    RING_LOG2_MAX = 0x0054;
    CTRL_HDR = 0x0100;
    CTRL_NEXT = 0x0104;
    CONTROL = 0x0108;
    STATUS = 0x010C;
    ERROR = 0x0110;
    ERROR_TAG = 0x0114;
    ERROR_INFO = 0x0118;
    HEARTBEAT = 0x011C;
    SCRATCH = 0x0120;
    RINGS_HDR = 0x0200;
    RINGS_NEXT = 0x0204;
    SQ_BASE_LO = 0x0208;
    SQ_BASE_HI = 0x020C;
    SQ_LOG2_SIZE = 0x0210;
    SQ_TAIL = 0x0214;
    SQ_HEAD = 0x0218;
    CQ_BASE_LO = 0x021C;
    CQ_BASE_HI = 0x0220;
    CQ_LOG2_SIZE = 0x0224;
    CQ_HEAD = 0x0228;
    CQ_TAIL = 0x022C;
    PERF_HDR = 0x0300;
    PERF_NEXT = 0x0304;
    PERF_CONTROL = 0x0308;
    CYCLES_LO = 0x0310;
    CYCLES_HI = 0x0314;
    BUSY_LO = 0x0318;
    BUSY_HI = 0x031C;
    STALL_MEM_LO = 0x0320;
    STALL_MEM_HI = 0x0324;
    STALL_OUT_LO = 0x0328;
    STALL_OUT_HI = 0x032C;
    IDLE_LO = 0x0330;
    IDLE_HI = 0x0334;
    BYTES_RD_LO = 0x0338;
    BYTES_RD_HI = 0x033C;
    BYTES_WR_LO = 0x0340;
    BYTES_WR_HI = 0x0344;
    MACS_LO = 0x0348;
    MACS_HI = 0x034C;
    CMDS_DONE = 0x0350;
}

/// CAPS bits.
pub mod caps {
    /// GEMM with M > 1 (token_tile > 1).
    pub const GEMM: u32 = 1 << 0;
    /// LOAD_WEIGHTS checks a CRC-32.
    pub const WEIGHT_CRC: u32 = 1 << 1;
    /// Performance counters present.
    pub const PERF: u32 = 1 << 2;
}

/// CONTROL bits.
pub mod control {
    pub const ENABLE: u32 = 1 << 0;
    pub const SOFT_RESET: u32 = 1 << 1;
    pub const ABORT: u32 = 1 << 2;
}

/// STATUS bits.
pub mod status {
    pub const ENABLED: u32 = 1 << 0;
    pub const BUSY: u32 = 1 << 1;
    pub const HALTED: u32 = 1 << 2;
    pub const RESET_DONE: u32 = 1 << 3;
}

/// ERROR bits (write 1 to clear); the first error also sets ERROR_TAG and ERROR_INFO.
pub mod error {
    pub const BAD_OPCODE: u32 = 1 << 0;
    pub const BAD_FIELD: u32 = 1 << 1;
    pub const ADDR_RANGE: u32 = 1 << 2;
    pub const CRC_MISMATCH: u32 = 1 << 3;
    pub const DMA_ERROR: u32 = 1 << 4;
    pub const RING_ERROR: u32 = 1 << 5;
    pub const INTERNAL_TIMEOUT: u32 = 1 << 6;
}

const fn hdr(t: u16) -> u32 {
    (t as u32) << 16 | 1
}

const NONE: &[Field] = &[];

/// The whole map, in offset order.
pub const REGS: &[Reg] = &[
    Reg {
        name: "ID_HDR",
        offset: off::ID_HDR,
        access: Access::Ro,
        reset: hdr(block_type::ID),
        doc: "block header: type 0x0001 (ID), version 1",
        fields: NONE,
    },
    Reg {
        name: "ID_NEXT",
        offset: off::ID_NEXT,
        access: Access::Ro,
        reset: off::CTRL_HDR,
        doc: "offset of the next block",
        fields: NONE,
    },
    Reg {
        name: "MAGIC",
        offset: off::MAGIC,
        access: Access::Ro,
        reset: MAGIC,
        doc: "\"tern\" (0x6e726574)",
        fields: NONE,
    },
    Reg {
        name: "ABI_VERSION",
        offset: off::ABI_VERSION,
        access: Access::Ro,
        reset: (ABI_MAJOR as u32) << 16 | ABI_MINOR as u32,
        doc: "register/command ABI",
        fields: &[
            Field {
                name: "MINOR",
                lsb: 0,
                width: 16,
                doc: "compatible additions",
            },
            Field {
                name: "MAJOR",
                lsb: 16,
                width: 16,
                doc: "incompatible changes",
            },
        ],
    },
    Reg {
        name: "BUILD_HASH_LO",
        offset: off::BUILD_HASH_LO,
        access: Access::Ro,
        reset: 0,
        doc: "low half of the build hash (config hash of the RTL's ArrayConfig)",
        fields: NONE,
    },
    Reg {
        name: "BUILD_HASH_HI",
        offset: off::BUILD_HASH_HI,
        access: Access::Ro,
        reset: 0,
        doc: "high half of the build hash",
        fields: NONE,
    },
    Reg {
        name: "CAPS",
        offset: off::CAPS,
        access: Access::Ro,
        reset: 0,
        doc: "capabilities",
        fields: &[
            Field {
                name: "GEMM",
                lsb: 0,
                width: 1,
                doc: "M > 1 supported",
            },
            Field {
                name: "WEIGHT_CRC",
                lsb: 1,
                width: 1,
                doc: "LOAD_WEIGHTS checks CRC-32",
            },
            Field {
                name: "PERF",
                lsb: 2,
                width: 1,
                doc: "performance counters present",
            },
        ],
    },
    Reg {
        name: "ROWS",
        offset: off::ROWS,
        access: Access::Ro,
        reset: 0,
        doc: "array.rows",
        fields: NONE,
    },
    Reg {
        name: "COLS",
        offset: off::COLS,
        access: Access::Ro,
        reset: 0,
        doc: "array.cols",
        fields: NONE,
    },
    Reg {
        name: "TOKEN_TILE",
        offset: off::TOKEN_TILE,
        access: Access::Ro,
        reset: 0,
        doc: "array.token_tile",
        fields: NONE,
    },
    Reg {
        name: "BLOCK_N",
        offset: off::BLOCK_N,
        access: Access::Ro,
        reset: 0,
        doc: "block.n",
        fields: NONE,
    },
    Reg {
        name: "BLOCK_K",
        offset: off::BLOCK_K,
        access: Access::Ro,
        reset: 0,
        doc: "block.k",
        fields: NONE,
    },
    Reg {
        name: "ACT_BITS",
        offset: off::ACT_BITS,
        access: Access::Ro,
        reset: 0,
        doc: "activation.bits",
        fields: NONE,
    },
    Reg {
        name: "MANT_BITS",
        offset: off::MANT_BITS,
        access: Access::Ro,
        reset: 0,
        doc: "scale.mantissa_bits",
        fields: NONE,
    },
    Reg {
        name: "PSUM_BITS",
        offset: off::PSUM_BITS,
        access: Access::Ro,
        reset: 0,
        doc: "accumulator.psum_bits",
        fields: NONE,
    },
    Reg {
        name: "ACC_BITS",
        offset: off::ACC_BITS,
        access: Access::Ro,
        reset: 0,
        doc: "accumulator.acc_bits",
        fields: NONE,
    },
    Reg {
        name: "MAX_K",
        offset: off::MAX_K,
        access: Access::Ro,
        reset: 0,
        doc: "accumulator.max_k",
        fields: NONE,
    },
    Reg {
        name: "MAX_N",
        offset: off::MAX_N,
        access: Access::Ro,
        reset: 0,
        doc: "accumulator.max_n",
        fields: NONE,
    },
    Reg {
        name: "CLOCK_KHZ",
        offset: off::CLOCK_KHZ,
        access: Access::Ro,
        reset: 0,
        doc: "array clock, kHz",
        fields: NONE,
    },
    Reg {
        name: "MEM_BYTES_LO",
        offset: off::MEM_BYTES_LO,
        access: Access::Ro,
        reset: 0,
        doc: "card memory size, bytes (low)",
        fields: NONE,
    },
    Reg {
        name: "MEM_BYTES_HI",
        offset: off::MEM_BYTES_HI,
        access: Access::Ro,
        reset: 0,
        doc: "card memory size, bytes (high)",
        fields: NONE,
    },
    Reg {
        name: "RING_LOG2_MAX",
        offset: off::RING_LOG2_MAX,
        access: Access::Ro,
        reset: 12,
        doc: "largest log2 ring size",
        fields: NONE,
    },
    Reg {
        name: "CTRL_HDR",
        offset: off::CTRL_HDR,
        access: Access::Ro,
        reset: hdr(block_type::CONTROL),
        doc: "block header: CONTROL",
        fields: NONE,
    },
    Reg {
        name: "CTRL_NEXT",
        offset: off::CTRL_NEXT,
        access: Access::Ro,
        reset: off::RINGS_HDR,
        doc: "offset of the next block",
        fields: NONE,
    },
    Reg {
        name: "CONTROL",
        offset: off::CONTROL,
        access: Access::Rw,
        reset: 0,
        doc: "control",
        fields: &[
            Field {
                name: "ENABLE",
                lsb: 0,
                width: 1,
                doc: "process the submission ring",
            },
            Field {
                name: "SOFT_RESET",
                lsb: 1,
                width: 1,
                doc: "write 1: reset the engine and rings (self-clearing)",
            },
            Field {
                name: "ABORT",
                lsb: 2,
                width: 1,
                doc: "write 1: abort the running command (self-clearing)",
            },
        ],
    },
    Reg {
        name: "STATUS",
        offset: off::STATUS,
        access: Access::Ro,
        reset: status::RESET_DONE,
        doc: "status",
        fields: &[
            Field {
                name: "ENABLED",
                lsb: 0,
                width: 1,
                doc: "CONTROL.ENABLE took effect",
            },
            Field {
                name: "BUSY",
                lsb: 1,
                width: 1,
                doc: "a command is executing",
            },
            Field {
                name: "HALTED",
                lsb: 2,
                width: 1,
                doc: "an error stopped the queue; clear ERROR to resume",
            },
            Field {
                name: "RESET_DONE",
                lsb: 3,
                width: 1,
                doc: "reset finished",
            },
        ],
    },
    Reg {
        name: "ERROR",
        offset: off::ERROR,
        access: Access::W1c,
        reset: 0,
        doc: "sticky error bits",
        fields: &[
            Field {
                name: "BAD_OPCODE",
                lsb: 0,
                width: 1,
                doc: "unknown opcode",
            },
            Field {
                name: "BAD_FIELD",
                lsb: 1,
                width: 1,
                doc: "a command field out of range",
            },
            Field {
                name: "ADDR_RANGE",
                lsb: 2,
                width: 1,
                doc: "card or host address outside a mapped region",
            },
            Field {
                name: "CRC_MISMATCH",
                lsb: 3,
                width: 1,
                doc: "LOAD_WEIGHTS CRC differs",
            },
            Field {
                name: "DMA_ERROR",
                lsb: 4,
                width: 1,
                doc: "the DMA engine reported an error",
            },
            Field {
                name: "RING_ERROR",
                lsb: 5,
                width: 1,
                doc: "doorbell beyond the ring size",
            },
            Field {
                name: "INTERNAL_TIMEOUT",
                lsb: 6,
                width: 1,
                doc: "a memory or array handshake timed out",
            },
        ],
    },
    Reg {
        name: "ERROR_TAG",
        offset: off::ERROR_TAG,
        access: Access::Ro,
        reset: 0,
        doc: "tag of the command that raised the first error",
        fields: NONE,
    },
    Reg {
        name: "ERROR_INFO",
        offset: off::ERROR_INFO,
        access: Access::Ro,
        reset: 0,
        doc: "detail of the first error (field index or low address bits)",
        fields: NONE,
    },
    Reg {
        name: "HEARTBEAT",
        offset: off::HEARTBEAT,
        access: Access::Ro,
        reset: 0,
        doc: "increments every 1024 clock cycles",
        fields: NONE,
    },
    Reg {
        name: "SCRATCH",
        offset: off::SCRATCH,
        access: Access::Rw,
        reset: 0,
        doc: "scratch register for link tests",
        fields: NONE,
    },
    Reg {
        name: "RINGS_HDR",
        offset: off::RINGS_HDR,
        access: Access::Ro,
        reset: hdr(block_type::RINGS),
        doc: "block header: RINGS",
        fields: NONE,
    },
    Reg {
        name: "RINGS_NEXT",
        offset: off::RINGS_NEXT,
        access: Access::Ro,
        reset: off::PERF_HDR,
        doc: "offset of the next block",
        fields: NONE,
    },
    Reg {
        name: "SQ_BASE_LO",
        offset: off::SQ_BASE_LO,
        access: Access::Rw,
        reset: 0,
        doc: "submission ring device address (low), 64-byte aligned",
        fields: NONE,
    },
    Reg {
        name: "SQ_BASE_HI",
        offset: off::SQ_BASE_HI,
        access: Access::Rw,
        reset: 0,
        doc: "submission ring device address (high)",
        fields: NONE,
    },
    Reg {
        name: "SQ_LOG2_SIZE",
        offset: off::SQ_LOG2_SIZE,
        access: Access::Rw,
        reset: 0,
        doc: "log2 entries of the submission ring (≤ RING_LOG2_MAX)",
        fields: NONE,
    },
    Reg {
        name: "SQ_TAIL",
        offset: off::SQ_TAIL,
        access: Access::Rw,
        reset: 0,
        doc: "doorbell: index after the last submitted command",
        fields: NONE,
    },
    Reg {
        name: "SQ_HEAD",
        offset: off::SQ_HEAD,
        access: Access::Ro,
        reset: 0,
        doc: "index of the next command the card reads",
        fields: NONE,
    },
    Reg {
        name: "CQ_BASE_LO",
        offset: off::CQ_BASE_LO,
        access: Access::Rw,
        reset: 0,
        doc: "completion ring device address (low), 16-byte aligned",
        fields: NONE,
    },
    Reg {
        name: "CQ_BASE_HI",
        offset: off::CQ_BASE_HI,
        access: Access::Rw,
        reset: 0,
        doc: "completion ring device address (high)",
        fields: NONE,
    },
    Reg {
        name: "CQ_LOG2_SIZE",
        offset: off::CQ_LOG2_SIZE,
        access: Access::Rw,
        reset: 0,
        doc: "log2 entries of the completion ring",
        fields: NONE,
    },
    Reg {
        name: "CQ_HEAD",
        offset: off::CQ_HEAD,
        access: Access::Rw,
        reset: 0,
        doc: "doorbell: index after the last completion the host consumed",
        fields: NONE,
    },
    Reg {
        name: "CQ_TAIL",
        offset: off::CQ_TAIL,
        access: Access::Ro,
        reset: 0,
        doc: "index of the next completion the card writes",
        fields: NONE,
    },
    Reg {
        name: "PERF_HDR",
        offset: off::PERF_HDR,
        access: Access::Ro,
        reset: hdr(block_type::PERF),
        doc: "block header: PERF",
        fields: NONE,
    },
    Reg {
        name: "PERF_NEXT",
        offset: off::PERF_NEXT,
        access: Access::Ro,
        reset: 0,
        doc: "0: last block",
        fields: NONE,
    },
    Reg {
        name: "PERF_CONTROL",
        offset: off::PERF_CONTROL,
        access: Access::Wo,
        reset: 0,
        doc: "write 1 to bit 0: clear all counters",
        fields: NONE,
    },
    Reg {
        name: "CYCLES_LO",
        offset: off::CYCLES_LO,
        access: Access::Ro,
        reset: 0,
        doc: "clock cycles since clear",
        fields: NONE,
    },
    Reg {
        name: "CYCLES_HI",
        offset: off::CYCLES_HI,
        access: Access::Ro,
        reset: 0,
        doc: "",
        fields: NONE,
    },
    Reg {
        name: "BUSY_LO",
        offset: off::BUSY_LO,
        access: Access::Ro,
        reset: 0,
        doc: "cycles the array issued a beat",
        fields: NONE,
    },
    Reg {
        name: "BUSY_HI",
        offset: off::BUSY_HI,
        access: Access::Ro,
        reset: 0,
        doc: "",
        fields: NONE,
    },
    Reg {
        name: "STALL_MEM_LO",
        offset: off::STALL_MEM_LO,
        access: Access::Ro,
        reset: 0,
        doc: "cycles a command waited for memory",
        fields: NONE,
    },
    Reg {
        name: "STALL_MEM_HI",
        offset: off::STALL_MEM_HI,
        access: Access::Ro,
        reset: 0,
        doc: "",
        fields: NONE,
    },
    Reg {
        name: "STALL_OUT_LO",
        offset: off::STALL_OUT_LO,
        access: Access::Ro,
        reset: 0,
        doc: "cycles a command waited for the output path",
        fields: NONE,
    },
    Reg {
        name: "STALL_OUT_HI",
        offset: off::STALL_OUT_HI,
        access: Access::Ro,
        reset: 0,
        doc: "",
        fields: NONE,
    },
    Reg {
        name: "IDLE_LO",
        offset: off::IDLE_LO,
        access: Access::Ro,
        reset: 0,
        doc: "cycles with no command",
        fields: NONE,
    },
    Reg {
        name: "IDLE_HI",
        offset: off::IDLE_HI,
        access: Access::Ro,
        reset: 0,
        doc: "",
        fields: NONE,
    },
    Reg {
        name: "BYTES_RD_LO",
        offset: off::BYTES_RD_LO,
        access: Access::Ro,
        reset: 0,
        doc: "bytes read from card memory",
        fields: NONE,
    },
    Reg {
        name: "BYTES_RD_HI",
        offset: off::BYTES_RD_HI,
        access: Access::Ro,
        reset: 0,
        doc: "",
        fields: NONE,
    },
    Reg {
        name: "BYTES_WR_LO",
        offset: off::BYTES_WR_LO,
        access: Access::Ro,
        reset: 0,
        doc: "bytes written to card memory",
        fields: NONE,
    },
    Reg {
        name: "BYTES_WR_HI",
        offset: off::BYTES_WR_HI,
        access: Access::Ro,
        reset: 0,
        doc: "",
        fields: NONE,
    },
    Reg {
        name: "MACS_LO",
        offset: off::MACS_LO,
        access: Access::Ro,
        reset: 0,
        doc: "useful multiply-accumulates (M·N·K summed over GEMMs)",
        fields: NONE,
    },
    Reg {
        name: "MACS_HI",
        offset: off::MACS_HI,
        access: Access::Ro,
        reset: 0,
        doc: "",
        fields: NONE,
    },
    Reg {
        name: "CMDS_DONE",
        offset: off::CMDS_DONE,
        access: Access::Ro,
        reset: 0,
        doc: "commands completed (wraps)",
        fields: NONE,
    },
];

/// A register by name.
pub fn by_name(name: &str) -> Option<&'static Reg> {
    REGS.iter().find(|r| r.name == name)
}

/// A register by offset.
pub fn by_offset(offset: u32) -> Option<&'static Reg> {
    REGS.iter().find(|r| r.offset == offset)
}

/// Verilog `localparam`s of every offset, field and constant (included by the card RTL).
pub fn verilog_localparams() -> String {
    let mut s = String::from("// Generated from tern_spec::card::regs::REGS. Do not edit.\n");
    s.push_str(&format!(
        "localparam [31:0] TERN_MAGIC = 32'h{MAGIC:08x};\n"
    ));
    s.push_str(&format!(
        "localparam [31:0] TERN_ABI_VERSION = 32'h{:08x};\n",
        (ABI_MAJOR as u32) << 16 | ABI_MINOR as u32
    ));
    for r in REGS {
        s.push_str(&format!(
            "localparam [15:0] REG_{} = 16'h{:04x};\n",
            r.name, r.offset
        ));
        for f in r.fields {
            s.push_str(&format!(
                "localparam integer REG_{}_{}_LSB = {};\n",
                r.name, f.name, f.lsb
            ));
        }
    }
    s
}

/// The docs page (docs/card-registers.md).
pub fn markdown() -> String {
    let mut s = String::from(
        "# Card registers\n\n<!-- Generated from tern_spec::card::regs::REGS by `cargo test -p tern-spec` \
         (TERN_BLESS=1 rewrites it). Do not edit. -->\n\n\
         BAR0 is 64 KiB of 32-bit little-endian registers, organised as a chain of \
         self-describing blocks: each starts with a header (`type << 16 | version`) and the \
         offset of the next block (0 ends the chain). 64-bit counters are `_LO`/`_HI` pairs.\n\n\
         | offset | name | access | reset | description |\n|---|---|---|---|---|\n",
    );
    for r in REGS {
        s.push_str(&format!(
            "| 0x{:04x} | {} | {} | 0x{:08x} | {} |\n",
            r.offset,
            r.name,
            r.access.name(),
            r.reset,
            r.doc
        ));
        for f in r.fields {
            let bits = if f.width == 1 {
                format!("[{}]", f.lsb)
            } else {
                format!("[{}:{}]", f.lsb + f.width - 1, f.lsb)
            };
            s.push_str(&format!("| | `{}` {} | | | {} |\n", f.name, bits, f.doc));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut prev = None;
        for r in REGS {
            assert_eq!(r.offset % 4, 0, "{} aligned", r.name);
            assert!(r.offset < BAR0_BYTES, "{} inside BAR0", r.name);
            if let Some(p) = prev {
                assert!(r.offset > p, "{} in increasing offset order", r.name);
            }
            prev = Some(r.offset);
            let mut used = 0u64;
            for f in r.fields {
                assert!(
                    f.width >= 1 && f.lsb + f.width <= 32,
                    "{}.{}",
                    r.name,
                    f.name
                );
                let mask = ((1u64 << f.width) - 1) << f.lsb;
                assert_eq!(used & mask, 0, "{}.{} overlaps", r.name, f.name);
                used |= mask;
            }
        }
        let names: std::collections::HashSet<_> = REGS.iter().map(|r| r.name).collect();
        assert_eq!(names.len(), REGS.len(), "unique names");
    }

    #[test]
    fn block_chain_walks_to_the_end() {
        let mut at = 0u32;
        let mut seen = vec![];
        loop {
            let hdr = by_offset(at).expect("block header").reset;
            seen.push((hdr >> 16) as u16);
            let next = by_offset(at + 4).expect("next pointer").reset;
            if next == 0 {
                break;
            }
            assert!(next > at, "chain moves forward");
            at = next;
        }
        assert_eq!(
            seen,
            vec![
                block_type::ID,
                block_type::CONTROL,
                block_type::RINGS,
                block_type::PERF
            ]
        );
    }

    #[test]
    fn field_constants_agree_with_the_table() {
        let bit = |reg: &str, field: &str| {
            let f = by_name(reg)
                .unwrap()
                .fields
                .iter()
                .find(|f| f.name == field)
                .unwrap();
            1u32 << f.lsb
        };
        assert_eq!(bit("CONTROL", "ENABLE"), control::ENABLE);
        assert_eq!(bit("CONTROL", "SOFT_RESET"), control::SOFT_RESET);
        assert_eq!(bit("CONTROL", "ABORT"), control::ABORT);
        assert_eq!(bit("STATUS", "BUSY"), status::BUSY);
        assert_eq!(bit("STATUS", "HALTED"), status::HALTED);
        assert_eq!(bit("STATUS", "RESET_DONE"), status::RESET_DONE);
        assert_eq!(bit("ERROR", "CRC_MISMATCH"), error::CRC_MISMATCH);
        assert_eq!(bit("ERROR", "INTERNAL_TIMEOUT"), error::INTERNAL_TIMEOUT);
        assert_eq!(bit("ERROR", "DMA_ERROR"), error::DMA_ERROR);
        assert_eq!(bit("CAPS", "WEIGHT_CRC"), caps::WEIGHT_CRC);
        assert_eq!(MAGIC.to_le_bytes(), *b"tern");
        assert!(verilog_localparams().contains("localparam [15:0] REG_SQ_TAIL = 16'h0214;"));
    }

    #[test]
    fn docs_page_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/card-registers.md");
        let want = markdown();
        if std::env::var("TERN_BLESS").is_ok() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run TERN_BLESS=1 cargo test -p tern-spec",
            path.display()
        );
    }
}
