//! The card top (docs/card.md, docs/hdl-card.md): the array core behind a command engine,
//! an AXI4-Lite register file (BAR0) and two 512-bit AXI4-style memory masters.
//!
//! Unlike the core, the card top is not a rust-hdl block: it is Verilog text
//! (`card_top.v.in`) with the config's constants, the register map's localparams
//! ([`tern_spec::card::regs::verilog_localparams`]) and a generated CRC-32 matrix filled in.
//! It has no rust-hdl cycle model; its only model is the Verilated RTL driven by
//! `tern_sim::card::CardSim`, checked against `tern_spec::reference` and the driver's
//! software model.

use crate::emit::Port;
use crate::error::HdlError;
use crate::params::Params;
use std::fmt::Write;
use tern_spec::card::regs;
use tern_spec::ArrayConfig;

/// Width of one memory word (one AXI beat) in bits.
pub const WORD_BITS: u32 = 512;
/// Bytes of one memory word.
pub const WORD_BYTES: u64 = 64;
/// Default card memory size of the emitted top (Verilog parameter `MEM_BYTES`).
pub const DEFAULT_MEM_BYTES: u64 = 1 << 30;

/// Byte offsets of the weight region header fields (docs/card.md), and the field index
/// each one reports as `info` when a GEMM refuses it.
pub mod hdr {
    /// `"TWGT"` as a little-endian u32.
    pub const MAGIC_VALUE: u32 = u32::from_le_bytes(*b"TWGT");
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 4;
    pub const FLAGS: usize = 6;
    pub const K: usize = 8;
    pub const N: usize = 12;
    pub const ROWS: usize = 16;
    pub const COLS: usize = 18;
    pub const BLOCK_K: usize = 20;
    pub const MANT_BITS: usize = 22;
    pub const WEIGHT_BEATS: usize = 24;
    pub const WEIGHT_BYTES: usize = 28;
    pub const SCALE_OFFSET: usize = 36;
    pub const SCALE_BYTES: usize = 44;
    /// Field names in `info` order (BAD_FIELD of a GEMM header reports the index).
    pub const FIELDS: [&str; 13] = [
        "magic",
        "version",
        "flags",
        "K",
        "N",
        "rows",
        "cols",
        "block_k",
        "mant_bits",
        "weight beats",
        "weight bytes",
        "scale offset",
        "scale bytes",
    ];
}

/// Memory-layout figures of a config that the card top derives its gearboxes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardGeometry {
    /// Weight beat bits (2·rows·cols).
    pub wb: u32,
    /// Weight beats per 64-byte word (≥ 1).
    pub beats_per_word: u32,
    /// Words per weight beat (≥ 1).
    pub words_per_beat: u32,
    /// Bits of one scale vector in memory (rows·mant_bits padded to a power-of-two bytes).
    pub scale_vec_bits: u32,
    /// Scale vectors per word.
    pub scales_per_word: u32,
    /// Words per output vector (rows·8 bytes).
    pub out_words: u32,
    /// Activation buffer words (token_tile · ceil(max_k / 64)).
    pub act_buf_words: u64,
}

fn log2(x: u64) -> u32 {
    63 - x.max(1).leading_zeros()
}

impl CardGeometry {
    /// The geometry of `p`, or why the card top does not support it.
    pub fn new(p: &Params) -> Result<Self, HdlError> {
        let unsupported = |field: &'static str, value: u32, supported: &str| {
            Err(HdlError::UnsupportedWidth {
                field,
                value,
                supported: format!("{supported} (card top)"),
            })
        };
        if !p.rows.is_power_of_two() || p.rows < 8 || p.rows > 64 {
            return unsupported("array.rows", p.rows, "a power of two in 8..=64");
        }
        if !p.cols.is_power_of_two() || p.cols > 64 {
            return unsupported("array.cols", p.cols, "a power of two ≤ 64");
        }
        if !p.block_k.is_power_of_two() {
            return unsupported("block.k", p.block_k, "a power of two");
        }
        if p.token_tile > 64 {
            return unsupported("array.token_tile", p.token_tile, "≤ 64");
        }
        let wb = 2 * p.rows * p.cols;
        let (bpw, wpb) = if wb <= WORD_BITS {
            (WORD_BITS / wb, 1)
        } else {
            (1, wb / WORD_BITS)
        };
        let sb = p.rows * p.mant_bits;
        let svb = (sb.div_ceil(8).next_power_of_two() * 8).max(8);
        if svb > WORD_BITS {
            return unsupported(
                "scale.mantissa_bits",
                p.mant_bits,
                "rows·mant_bits ≤ 512 bits",
            );
        }
        Ok(Self {
            wb,
            beats_per_word: bpw,
            words_per_beat: wpb,
            scale_vec_bits: svb,
            scales_per_word: WORD_BITS / svb,
            out_words: p.rows * 64 / WORD_BITS,
            act_buf_words: p.token_tile as u64 * p.max_k.div_ceil(WORD_BYTES),
        })
    }
}

/// The CRC-32 (IEEE, reflected) register after one 64-byte word, as GF(2) masks:
/// `next[i] = parity(c & cmask[i]) ^ parity(d & dmask[i])` with `dmask[i]` 512 bits as
/// eight little-endian u64.
pub fn crc_matrices() -> ([u32; 32], [[u64; 8]; 32]) {
    fn step(mut c: u32, d: &[u8; 64]) -> u32 {
        for &b in d {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0xedb8_8320
                } else {
                    c >> 1
                };
            }
        }
        c
    }
    let mut cm = [0u32; 32];
    let mut dm = [[0u64; 8]; 32];
    for j in 0..32 {
        let out = step(1 << j, &[0; 64]);
        for (i, m) in cm.iter_mut().enumerate() {
            if (out >> i) & 1 == 1 {
                *m |= 1 << j;
            }
        }
    }
    for j in 0..512 {
        let mut d = [0u8; 64];
        d[j / 8] = 1 << (j % 8);
        let out = step(0, &d);
        for (i, m) in dm.iter_mut().enumerate() {
            if (out >> i) & 1 == 1 {
                m[j / 64] |= 1 << (j % 64);
            }
        }
    }
    (cm, dm)
}

/// Software model of the generated CRC: the IEEE CRC-32 of `data` (whole 64-byte words),
/// computed word by word with [`crc_matrices`].
pub fn crc_by_words(data: &[u8]) -> u32 {
    let (cm, dm) = crc_matrices();
    let mut c = 0xffff_ffffu32;
    for w in data.chunks(64) {
        let mut d = [0u64; 8];
        for (i, b) in w.iter().enumerate() {
            d[i / 8] |= (*b as u64) << (8 * (i % 8));
        }
        let mut n = 0u32;
        for i in 0..32 {
            let mut par = (c & cm[i]).count_ones();
            for k in 0..8 {
                par += (d[k] & dm[i][k]).count_ones();
            }
            n |= (par & 1) << i;
        }
        c = n;
    }
    !c
}

fn crc_verilog() -> String {
    let (cm, dm) = crc_matrices();
    let mut s = String::new();
    for i in 0..32 {
        let mut hex = String::new();
        for k in (0..8).rev() {
            let _ = write!(hex, "{:016x}", dm[i][k]);
        }
        let _ = writeln!(
            s,
            "      crc_word[{i}] = (^(c & 32'h{:08x})) ^ (^(d & 512'h{hex}));",
            cm[i]
        );
    }
    s.trim_end().to_string()
}

fn p(name: &str, dir: &'static str, width: u32, role: &'static str, doc: &str) -> Port {
    Port {
        name: name.to_string(),
        dir,
        width,
        role,
        stream: None,
        doc: doc.to_string(),
    }
}

/// The card top's ports, in declaration order.
pub fn card_ports() -> Vec<Port> {
    let mut v = vec![
        p("clk", "input", 1, "clock", "clock (rising edge)"),
        p("rst", "input", 1, "reset", "synchronous reset, active high"),
    ];
    let lite: [(&str, &'static str, u32); 17] = [
        ("s_awvalid", "input", 1),
        ("s_awready", "output", 1),
        ("s_awaddr", "input", 16),
        ("s_wvalid", "input", 1),
        ("s_wready", "output", 1),
        ("s_wdata", "input", 32),
        ("s_wstrb", "input", 4),
        ("s_bvalid", "output", 1),
        ("s_bready", "input", 1),
        ("s_bresp", "output", 2),
        ("s_arvalid", "input", 1),
        ("s_arready", "output", 1),
        ("s_araddr", "input", 16),
        ("s_rvalid", "output", 1),
        ("s_rready", "input", 1),
        ("s_rdata", "output", 32),
        ("s_rresp", "output", 2),
    ];
    for (n, d, w) in lite {
        v.push(p(n, d, w, "axi-lite", "BAR0 register slave"));
    }
    for (pre, what) in [("h", "host memory (IOVAs)"), ("c", "card memory")] {
        let m: [(&str, &'static str, u32); 21] = [
            ("arvalid", "output", 1),
            ("arready", "input", 1),
            ("araddr", "output", 64),
            ("arlen", "output", 8),
            ("rvalid", "input", 1),
            ("rready", "output", 1),
            ("rdata", "input", 512),
            ("rresp", "input", 2),
            ("rlast", "input", 1),
            ("awvalid", "output", 1),
            ("awready", "input", 1),
            ("awaddr", "output", 64),
            ("awlen", "output", 8),
            ("wvalid", "output", 1),
            ("wready", "input", 1),
            ("wdata", "output", 512),
            ("wstrb", "output", 64),
            ("wlast", "output", 1),
            ("bvalid", "input", 1),
            ("bready", "output", 1),
            ("bresp", "input", 2),
        ];
        for (n, d, w) in m {
            v.push(p(
                &format!("{pre}_{n}"),
                d,
                w,
                "axi",
                &format!("master on {what}"),
            ));
        }
    }
    v
}

/// The Verilog of the card top `top` (module `top` and `top_fifo`) around the array
/// wrapper `core_top`.
pub fn card_verilog(
    p: &Params,
    cfg: &ArrayConfig,
    top: &str,
    core_top: &str,
) -> Result<String, HdlError> {
    let g = CardGeometry::new(p)?;
    let hash = u64::from_str_radix(&cfg.hash_hex(), 16).unwrap_or(0);
    let mut s =
        String::from("  /* verilator lint_off UNUSEDPARAM */ // the whole register table\n");
    for line in regs::verilog_localparams().lines() {
        let _ = writeln!(s, "  {line}");
    }
    for r in regs::REGS {
        let _ = writeln!(
            s,
            "  localparam [31:0] RST_{} = 32'h{:08x};",
            r.name, r.reset
        );
    }
    s.push_str("  /* verilator lint_on UNUSEDPARAM */\n");
    let u32p = |s: &mut String, n: &str, v: u64| {
        let _ = writeln!(s, "  localparam [31:0] {n} = 32'd{v};");
    };
    u32p(&mut s, "ROWS", p.rows as u64);
    u32p(&mut s, "COLS", p.cols as u64);
    u32p(&mut s, "TOKEN_TILE", p.token_tile as u64);
    u32p(&mut s, "BLOCK_N", p.block_n as u64);
    u32p(&mut s, "BLOCK_K", p.block_k as u64);
    u32p(&mut s, "ACT_BITS", p.act_bits as u64);
    u32p(&mut s, "MANT_BITS", p.mant_bits as u64);
    u32p(&mut s, "PSUM_BITS", p.psum_bits as u64);
    u32p(&mut s, "ACC_BITS", p.acc_bits as u64);
    u32p(&mut s, "MAX_K", p.max_k);
    u32p(&mut s, "MAX_N", p.max_n);
    u32p(
        &mut s,
        "CLOCK_KHZ",
        (cfg.clock.target_mhz * 1000.0).round() as u64,
    );
    u32p(&mut s, "HDR_MAGIC_VALUE", hdr::MAGIC_VALUE as u64);
    let _ = writeln!(s, "  localparam [63:0] BUILD_HASH = 64'h{hash:016x};");
    let ints: [(&str, u64); 13] = [
        ("LOG2_ROWS", log2(p.rows as u64) as u64),
        ("LOG2_COLS", log2(p.cols as u64) as u64),
        ("LOG2_BK", log2(p.block_k as u64) as u64),
        ("WB", g.wb as u64),
        ("WPB", g.words_per_beat as u64),
        ("LOG2_WPB", log2(g.words_per_beat as u64) as u64),
        ("LOG2_BPW", log2(g.beats_per_word as u64) as u64),
        ("LOG2_SPW", log2(g.scales_per_word as u64) as u64),
        ("SBP", g.scale_vec_bits as u64),
        ("ABUF_WORDS", g.act_buf_words),
        (
            "ABUF_AB",
            log2(g.act_buf_words.next_power_of_two()).max(1) as u64,
        ),
        ("LOG2_BPW_W", log2(g.beats_per_word as u64).max(1) as u64),
        ("LOG2_WPB_W", log2(g.words_per_beat as u64).max(1) as u64),
    ];
    for (n, v) in ints {
        let _ = writeln!(s, "  localparam integer {n} = {v};");
    }
    let lsw = log2(g.scales_per_word as u64).max(1);
    let _ = writeln!(s, "  localparam integer LOG2_SPW_W = {lsw};");
    let w = log2(g.beats_per_word as u64).max(1);
    let _ = writeln!(
        s,
        "  localparam [{}:0] BPW_LAST = {w}'d{};",
        w - 1,
        g.beats_per_word - 1
    );
    let w2 = log2(g.words_per_beat as u64).max(1);
    let _ = writeln!(
        s,
        "  localparam [{}:0] WPB_LAST = {w2}'d{};",
        w2 - 1,
        g.words_per_beat - 1
    );
    let _ = writeln!(
        s,
        "  localparam [{}:0] SPW_LAST = {lsw}'d{};",
        lsw - 1,
        g.scales_per_word - 1
    );
    let _ = writeln!(
        s,
        "  localparam [63:0] BPW_M1 = 64'd{};",
        g.beats_per_word - 1
    );
    let _ = writeln!(
        s,
        "  localparam [63:0] SPW_M1 = 64'd{};",
        g.scales_per_word - 1
    );
    let _ = writeln!(s, "  localparam [7:0] OWORDS = 8'd{};", g.out_words);
    let text = include_str!("card_top.v.in")
        .replace("@PARAMS@", s.trim_end())
        .replace("@CRC@", &crc_verilog())
        .replace("@TOP@", top)
        .replace("@CORE@", core_top)
        .replace("@NAME@", &p.name)
        .replace("@HDR_MAGIC@", &hdr::MAGIC.to_string())
        .replace("@HDR_VERSION@", &hdr::VERSION.to_string())
        .replace("@HDR_FLAGS@", &hdr::FLAGS.to_string())
        .replace("@HDR_K@", &hdr::K.to_string())
        .replace("@HDR_N@", &hdr::N.to_string())
        .replace("@HDR_ROWS@", &hdr::ROWS.to_string())
        .replace("@HDR_COLS@", &hdr::COLS.to_string())
        .replace("@HDR_BLOCK_K@", &hdr::BLOCK_K.to_string())
        .replace("@HDR_MANT_BITS@", &hdr::MANT_BITS.to_string())
        .replace("@HDR_WEIGHT_BEATS@", &hdr::WEIGHT_BEATS.to_string())
        .replace("@HDR_WEIGHT_BYTES@", &hdr::WEIGHT_BYTES.to_string())
        .replace("@HDR_SCALE_OFFSET@", &hdr::SCALE_OFFSET.to_string())
        .replace("@HDR_SCALE_BYTES@", &hdr::SCALE_BYTES.to_string());
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HdlOptions;

    #[test]
    fn word_crc_matches_crc32_reference() {
        // bitwise reference CRC-32 (IEEE), independent of the matrices
        fn reference(data: &[u8]) -> u32 {
            let mut c = 0xffff_ffffu32;
            for &b in data {
                c ^= b as u32;
                for _ in 0..8 {
                    c = if c & 1 == 1 {
                        (c >> 1) ^ 0xedb8_8320
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        let data: Vec<u8> = (0..256u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(crc_by_words(&data), reference(&data));
        // the check value of CRC-32/ISO-HDLC on "123456789" padded to a word is not the
        // standard one, so also check a known value: 64 zero bytes
        assert_eq!(crc_by_words(&[0u8; 64]), 0x758d_6336);
    }

    #[test]
    fn geometry_of_builtin_configs() {
        let g = |n: &str| {
            let cfg = ArrayConfig::builtin(n).unwrap();
            CardGeometry::new(&Params::new(&cfg, HdlOptions::default()).unwrap()).unwrap()
        };
        assert_eq!(
            (g("small").beats_per_word, g("small").words_per_beat),
            (4, 1)
        );
        assert_eq!(
            (g("default").beats_per_word, g("default").out_words),
            (1, 2)
        );
        assert_eq!(g("large").words_per_beat, 4);
        assert_eq!(g("default").scales_per_word, 2);
    }

    #[test]
    fn odd_geometry_is_refused_with_the_field() {
        let mut cfg = ArrayConfig::builtin("small").unwrap();
        cfg.array.rows = 3;
        let p = Params::new(&cfg, HdlOptions::default()).unwrap();
        let e = CardGeometry::new(&p).unwrap_err();
        assert_eq!(e.field(), Some("array.rows"));
    }
}
