//! The LED board wrapper: a top with one clock pin and a few LEDs that keeps the whole array.
//!
//! The array's ports are a thousand bits wide and more (the 16×16 array: about 1,000 input
//! and 1,080 output bits); no package has that many pins, and synthesis removes logic whose outputs
//! reach no pin. The wrapper `tern_NAME_board` therefore
//! - resets everything for 16 cycles after configuration (a power-on counter, no reset pin);
//! - runs a 32-bit Galois LFSR (toggle mask 0xB4BCD35C) and shifts its bits into a chain
//!   of flip-flops (segments of 64, each fed by its own LFSR bit or pair of bits), one per
//!   data input bit (weights, activations, scales and any other data
//!   input the manifest lists): every array input is a distinct, time-varying register, so
//!   no two lanes or PEs can be merged and nothing is constant;
//! - draws the command fields from the chain: seven commands in eight are legal (K in
//!   1..=2^⌊log2 max_k⌋, N likewise, M in 1..=token_tile), the eighth takes all 32 bits raw
//!   (mostly refused by the array), so no bit of the command path is constant and none of
//!   the controller's range checks can be optimised away; a command starts whenever the
//!   array is idle; `valid`/`ready` handshakes drop pseudo-randomly (a quarter of the cycles);
//! - drives every array input from a flip-flop (the chain, or a register holding the command
//!   fields, start, handshakes and reset), so the wrapper adds no logic in front of the
//!   array's input paths;
//! - XOR-folds every output bit (all lanes' accumulators, indices, flags) into a 64-bit
//!   rotating signature register (a MISR), and drives each LED with the registered XOR of a
//!   share of the signature.
//!
//! Cost: one flip-flop per data input bit (the chain), about one LUT4 per three output bits
//! (the fold), 64 + 32 + a few flip-flops. `tern synth` measures it separately (the array
//! black-boxed), and the bare array alone, so figures say what they include.
//!
//! The ports are taken from the hdl manifest, so a port added to the array is driven and
//! observed without changes here.

use crate::board::Board;
use crate::error::SynthError;
use std::fmt::Write;
use tern_hdl::emit::{Manifest, Port};

/// The LFSR toggle mask (32-bit maximal-length Galois LFSR, bit 31 set so a non-zero state
/// never becomes zero).
pub const LFSR_MASK: u32 = 0xB4BC_D35C;
/// Shortest segment length of the stimulus chain (longer only beyond 528 segments).
pub const SEGMENT: u32 = 64;

/// Distinct segment sources: 32 LFSR bits and 496 pairs of them.
const SOURCES: u32 = 32 + 32 * 31 / 2;

/// The bit shifted into chain segment `k` (< 528): LFSR bit k for the first 32 segments, then
/// the XOR of a distinct pair of LFSR bits.
fn segment_source(k: u32) -> String {
    if k < 32 {
        return format!("lfsr[{k}]");
    }
    let mut n = k - 32;
    for a in 0..32u32 {
        for b in a + 1..32 {
            if n == 0 {
                return format!("(lfsr[{a}] ^ lfsr[{b}])");
            }
            n -= 1;
        }
    }
    unreachable!("segment_source: k = {k} ≥ {SOURCES}")
}

/// Width of the output signature register.
pub const SIGNATURE_BITS: u32 = 64;

/// The wrapper's module name for an array top `tern_NAME`.
pub fn board_top_name(array_top: &str) -> String {
    format!("{array_top}_board")
}

/// What the wrapper needs from the board: its clock port and LED bus.
#[derive(Debug, Clone)]
pub struct BoardPins {
    pub clock_port: String,
    pub led_port: String,
    pub leds: u32,
}

impl BoardPins {
    pub fn of(board: &Board) -> Result<BoardPins, SynthError> {
        let s = &board.spec;
        match (&s.clock.port, &s.io.led_port) {
            (Some(c), Some(l)) if s.io.leds > 0 => Ok(BoardPins {
                clock_port: c.clone(),
                led_port: l.clone(),
                leds: s.io.leds,
            }),
            _ => Err(SynthError::Board {
                board: s.name.clone(),
                message: "the LED board wrapper needs clock.port, io.led_port and io.leds".into(),
            }),
        }
    }
}

/// Inventory of the wrapper, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WrapperShape {
    /// Flip-flops of the stimulus chain (data input bits of the array).
    pub chain_bits: u32,
    /// Output bits folded into the signature.
    pub observed_bits: u32,
}

fn range(w: u32) -> String {
    if w == 1 {
        String::new()
    } else {
        format!("[{}:0] ", w - 1)
    }
}

/// Bits needed to count to `v` (at least 1).
fn bits_for(v: u64) -> u32 {
    (64 - v.leading_zeros()).max(1)
}

/// `32'd1 + {zeros, chain[lo +: w]}` in a `width`-bit field; the constant 1 when `w` = 0.
fn random_plus_one(width: u32, lo: u32, w: u32) -> String {
    if w == 0 {
        return format!("{width}'d1");
    }
    let sl = if w == 1 {
        format!("chain[{lo}]")
    } else {
        format!("chain[{}:{lo}]", lo + w - 1)
    };
    if width > w {
        format!("{width}'d1 + {{{}'d0, {sl}}}", width - w)
    } else {
        format!("{width}'d1 + {sl}")
    }
}

/// The wrapper's Verilog (module `tern_NAME_board`) and its shape.
pub fn board_wrapper(m: &Manifest, pins: &BoardPins) -> (String, WrapperShape) {
    let top = board_top_name(&m.top);
    let cfg = &m.config;
    let inputs: Vec<&Port> = m.ports.iter().filter(|p| p.dir == "input").collect();
    let outputs: Vec<&Port> = m.ports.iter().filter(|p| p.dir == "output").collect();
    let has_busy = outputs.iter().any(|p| p.name == "busy");
    // data-like inputs fed from the chain
    let chained: Vec<&Port> = inputs
        .iter()
        .copied()
        .filter(|p| !matches!(p.role, "clock" | "reset" | "valid" | "ready") && p.name != "start")
        .collect();
    let chain_bits: u32 = chained.iter().map(|p| p.width).sum();
    // the pieces of each output that carry information: an output word of `out_word` bits
    // holding an `acc`-bit accumulator sign-extended is observed through its `acc` low bits
    // (the copies of the sign bit are wires; folding them would only add XORs)
    let (acc, word) = (m.widths.acc, m.widths.out_word);
    let sign_extended =
        |p: &Port| p.role == "data" && word > acc && p.width.is_multiple_of(word) && p.width > 1;
    let pieces: Vec<String> = outputs
        .iter()
        .rev()
        .flat_map(|p| {
            if sign_extended(p) {
                (0..p.width / word)
                    .rev()
                    .map(|i| format!("a_{}[{}:{}]", p.name, i * word + acc - 1, i * word))
                    .collect::<Vec<_>>()
            } else {
                vec![format!("a_{}", p.name)]
            }
        })
        .collect();
    let observed_bits: u32 = outputs
        .iter()
        .map(|p| {
            if sign_extended(p) {
                p.width / word * acc
            } else {
                p.width
            }
        })
        .sum();
    let clk = &pins.clock_port;
    let mut v = String::new();
    let w = &mut v;
    let _ = writeln!(
        w,
        "// {top}: board wrapper of {} for a board with one clock pin and {} LED(s).",
        m.top, pins.leds
    );
    let _ = writeln!(
        w,
        "// Generated by tern-bitstreams; do not edit. LFSR-fed stimulus chain ({chain_bits} flip-flops),"
    );
    let _ = writeln!(
        w,
        "// random legal commands, every output folded into a {SIGNATURE_BITS}-bit signature shown on the LEDs."
    );
    let _ = writeln!(w, "`default_nettype none");
    let _ = writeln!(w, "module {top} (");
    let _ = writeln!(w, "    input  wire {clk},");
    let _ = writeln!(w, "    output wire {}{}", range(pins.leds), pins.led_port);
    let _ = writeln!(w, ");");
    // power-on reset
    let _ = writeln!(w, "    // power-on reset: 16 cycles after configuration");
    let _ = writeln!(w, "    reg [4:0] por = 5'd0;");
    let _ = writeln!(w, "    reg rst = 1'b1;");
    let _ = writeln!(
        w,
        "    always @(posedge {clk}) begin if (!por[4]) por <= por + 5'd1; rst <= ~por[4]; end"
    );
    // LFSR
    let _ = writeln!(
        w,
        "    // stimulus: 32-bit Galois LFSR, toggle mask 32'h{LFSR_MASK:08X}"
    );
    let _ = writeln!(w, "    reg [31:0] lfsr = 32'h1;");
    let _ = writeln!(
        w,
        "    always @(posedge {clk}) lfsr <= {{1'b0, lfsr[31:1]}} ^ (lfsr[0] ? 32'h{LFSR_MASK:08X} : 32'h0);"
    );
    if chain_bits > 0 {
        // segments of at most SEGMENT bits, each shifting in its own LFSR bit (or XOR of two),
        // so no two flip-flops share a driver and no dependency chain is long (yosys sorts
        // cells recursively; a 3,000-deep shift register exhausts YoWASP's stack)
        let _ = writeln!(w, "    reg {}chain = {chain_bits}'d0;", range(chain_bits));
        let seg = SEGMENT.max(chain_bits.div_ceil(SOURCES));
        let segments = chain_bits.div_ceil(seg);
        for k in 0..segments {
            let lo = k * seg;
            let hi = (lo + seg).min(chain_bits) - 1;
            let src = segment_source(k);
            if hi == lo {
                let _ = writeln!(w, "    always @(posedge {clk}) chain[{lo}] <= {src};");
            } else {
                let _ = writeln!(
                    w,
                    "    always @(posedge {clk}) chain[{hi}:{lo}] <= {{chain[{}:{lo}], {src}}};",
                    hi - 1
                );
            }
        }
    }
    // array port wires (the sign-extension copies of the output words are not observed)
    for p in &m.ports {
        if p.dir == "output" && sign_extended(p) {
            let _ = writeln!(w, "    /* verilator lint_off UNUSED */");
            let _ = writeln!(w, "    wire {}a_{};", range(p.width), p.name);
            let _ = writeln!(w, "    /* verilator lint_on UNUSED */");
        } else {
            let _ = writeln!(w, "    wire {}a_{};", range(p.width), p.name);
        }
    }
    // drive the inputs
    let mut at = 0u32;
    let mut hs = 0u32; // handshakes: lfsr[b+1] | lfsr[b], high 3/4 of the cycles
    let k_bits = bits_for(cfg.accumulator.max_k).saturating_sub(1);
    let n_bits = bits_for(cfg.accumulator.max_n).saturating_sub(1);
    let tt = cfg.array.token_tile as u64;
    let _ = writeln!(
        w,
        "    wire raw_cmd = lfsr[31] & lfsr[30] & lfsr[29]; // 1 command in 8: raw bits"
    );
    for p in &inputs {
        let name = &p.name;
        let rhs = match (p.role, name.as_str()) {
            ("clock", _) => clk.to_string(),
            ("reset", _) => "rst".to_string(),
            (_, "start") => {
                if has_busy {
                    "lfsr[0] & ~a_busy".to_string()
                } else {
                    "lfsr[0]".to_string()
                }
            }
            ("valid" | "ready", _) => {
                let b = (hs * 2 + 3) % 30;
                hs += 1;
                format!("lfsr[{}] | lfsr[{b}]", b + 1)
            }
            _ => {
                let lo = at;
                at += p.width;
                let raw = if p.width == 1 {
                    format!("chain[{lo}]")
                } else {
                    format!("chain[{}:{lo}]", lo + p.width - 1)
                };
                let legal = match name.as_str() {
                    "cmd_k" => Some(random_plus_one(p.width, lo, k_bits.min(p.width))),
                    "cmd_n" => Some(random_plus_one(p.width, lo, n_bits.min(p.width))),
                    "cmd_m" => Some(if tt <= 1 {
                        format!("{}'d1", p.width)
                    } else {
                        let mb = bits_for(tt - 1).min(p.width);
                        let sl = if mb == 1 {
                            format!("chain[{lo}]")
                        } else {
                            format!("chain[{}:{lo}]", lo + mb - 1)
                        };
                        let wide = if p.width > mb {
                            format!("{{{}'d0, {sl}}}", p.width - mb)
                        } else {
                            sl
                        };
                        format!(
                            "({wide} < {}'d{tt}) ? ({}'d1 + {wide}) : {}'d1",
                            p.width, p.width, p.width
                        )
                    }),
                    _ => None,
                };
                match legal {
                    Some(l) => format!("raw_cmd ? {raw} : ({l})"),
                    None => raw,
                }
            }
        };
        // every generated input is a register, so the wrapper adds no logic to the array's
        // input paths (the chain and the reset are registers already)
        let is_reg = matches!(p.role, "clock" | "reset") || rhs.starts_with("chain[");
        if is_reg {
            let _ = writeln!(w, "    assign a_{name} = {rhs};");
        } else {
            let _ = writeln!(w, "    reg {}r_{name} = {}'d0;", range(p.width), p.width);
            let _ = writeln!(w, "    always @(posedge {clk}) r_{name} <= {rhs};");
            let _ = writeln!(w, "    assign a_{name} = r_{name};");
        }
    }
    // the array
    let _ = writeln!(w, "    {} u_array (", m.top);
    for (i, p) in m.ports.iter().enumerate() {
        let comma = if i + 1 == m.ports.len() { "" } else { "," };
        let _ = writeln!(w, "        .{n}(a_{n}){comma}", n = p.name);
    }
    let _ = writeln!(w, "    );");
    // signature
    let _ = writeln!(
        w,
        "    // every output bit, folded into a {SIGNATURE_BITS}-bit rotating signature"
    );
    let _ = writeln!(
        w,
        "    wire [{}:0] obs = {{{}}};",
        observed_bits - 1,
        pieces.join(", ")
    );
    let _ = writeln!(w, "    wire [{}:0] fold;", SIGNATURE_BITS - 1);
    for i in 0..SIGNATURE_BITS {
        let terms: Vec<String> = (i..observed_bits)
            .step_by(SIGNATURE_BITS as usize)
            .map(|j| format!("obs[{j}]"))
            .collect();
        let rhs = if terms.is_empty() {
            "1'b0".to_string()
        } else {
            terms.join(" ^ ")
        };
        let _ = writeln!(w, "    assign fold[{i}] = {rhs};");
    }
    let sb = SIGNATURE_BITS;
    let _ = writeln!(w, "    reg [{}:0] sig = {sb}'d0;", sb - 1);
    let _ = writeln!(
        w,
        "    always @(posedge {clk}) sig <= rst ? {sb}'d0 : ({{sig[{}:0], sig[{}]}} ^ fold);",
        sb - 2,
        sb - 1
    );
    // LEDs
    let leds = pins.leds;
    let _ = writeln!(w, "    reg {}led_r = {leds}'d0;", range(leds));
    let _ = writeln!(w, "    always @(posedge {clk}) begin");
    for j in 0..leds {
        let terms: Vec<String> = (j..sb)
            .step_by(leds as usize)
            .map(|i| format!("sig[{i}]"))
            .collect();
        let lhs = if leds == 1 {
            "led_r".to_string()
        } else {
            format!("led_r[{j}]")
        };
        let _ = writeln!(w, "        {lhs} <= {};", terms.join(" ^ "));
    }
    let _ = writeln!(w, "    end");
    let _ = writeln!(w, "    assign {} = led_r;", pins.led_port);
    let _ = writeln!(w, "endmodule");
    let _ = writeln!(w, "`default_nettype wire");
    (
        v,
        WrapperShape {
            chain_bits,
            observed_bits,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_hdl::HdlOptions;
    use tern_spec::ArrayConfig;

    fn manifest(name: &str) -> Manifest {
        let cfg = ArrayConfig::builtin(name).unwrap();
        tern_hdl::emit::generate(&cfg, HdlOptions::default())
            .unwrap()
            .manifest
    }

    #[test]
    fn wrapper_drives_every_port_and_observes_every_output() {
        let m = manifest("small");
        let pins = BoardPins {
            clock_port: "clk_25mhz".into(),
            led_port: "led".into(),
            leds: 8,
        };
        let (v, shape) = board_wrapper(&m, &pins);
        assert!(v.contains("module tern_small_board ("));
        assert!(v.contains("input  wire clk_25mhz,"));
        assert!(v.contains("output wire [7:0] led"));
        for p in &m.ports {
            assert!(
                v.contains(&format!(".{n}(a_{n})", n = p.name)),
                "{}",
                p.name
            );
            if p.dir == "input" {
                assert!(v.contains(&format!("assign a_{} = ", p.name)), "{}", p.name);
            }
        }
        // chain = 3 command fields + weights + activations + scales of the 8×8 array
        assert_eq!(shape.chain_bits, 3 * 32 + 128 + 64 + 128);
        // out_data: 8 lanes × 40 accumulator bits (of 64), then the other outputs whole
        let outs: u32 = m
            .ports
            .iter()
            .filter(|p| p.dir == "output")
            .map(|p| {
                if p.name == "out_data" {
                    8 * 40
                } else {
                    p.width
                }
            })
            .sum();
        assert!(
            v.contains("a_out_data[359:320]"),
            "lane 5's accumulator bits"
        );
        assert_eq!(shape.observed_bits, outs);
        // every observed bit appears exactly once in the fold
        for j in 0..outs {
            let needle = format!("obs[{j}]");
            let n = v
                .lines()
                .filter(|l| l.contains("assign fold["))
                .map(|l| l.split([' ', ';']).filter(|t| *t == needle).count())
                .sum::<usize>();
            assert_eq!(n, 1, "{needle}");
        }
        // legal command fields: K ≤ 32768 = max_k, N ≤ 262144 = max_n, M ≤ token_tile = 8;
        // one command in eight takes the raw bits
        for want in [
            "r_cmd_k <= raw_cmd ? chain[31:0] : (32'd1 + {17'd0, chain[14:0]});",
            "r_cmd_n <= raw_cmd ? chain[63:32] : (32'd1 + {14'd0, chain[49:32]});",
            "r_cmd_m <= raw_cmd ? chain[95:64] : (({29'd0, chain[66:64]} < 32'd8) ? (32'd1 + {29'd0, chain[66:64]}) : 32'd1);",
        ] {
            assert!(v.contains(want), "{want}\n{v}");
        }
    }

    #[test]
    fn chain_segments_have_distinct_sources() {
        let all: std::collections::BTreeSet<String> = (0..SOURCES).map(segment_source).collect();
        assert_eq!(all.len() as u32, SOURCES);
        // the 32×32 array: 3,232 chain bits in 51 segments of 64, no dependency chain longer
        let m = manifest("large");
        let pins = BoardPins {
            clock_port: "clk".into(),
            led_port: "led".into(),
            leds: 4,
        };
        let (v, shape) = board_wrapper(&m, &pins);
        assert_eq!(shape.chain_bits, 96 + 2048 + 256 + 512);
        let segs = v.lines().filter(|l| l.contains("] <= {chain[")).count() as u32;
        assert_eq!(segs, shape.chain_bits.div_ceil(SEGMENT));
        assert!(v.contains("always @(posedge clk) chain[63:0] <= {chain[62:0], lfsr[0]};"));
        assert!(v.contains("chain[2111:2048] <= {chain[2110:2048], (lfsr[0] ^ lfsr[1])};"));
    }

    #[test]
    fn one_led_and_small_limits() {
        let mut cfg = ArrayConfig::builtin("small").unwrap();
        cfg.accumulator.max_k = 64;
        cfg.accumulator.max_n = 1;
        cfg.array.token_tile = 1;
        let m = tern_hdl::emit::generate(&cfg, HdlOptions::default())
            .unwrap()
            .manifest;
        let pins = BoardPins {
            clock_port: "clk".into(),
            led_port: "led".into(),
            leds: 1,
        };
        let (v, _) = board_wrapper(&m, &pins);
        assert!(v.contains("output wire led"));
        for want in [
            "r_cmd_k <= raw_cmd ? chain[31:0] : (32'd1 + {26'd0, chain[5:0]});",
            "r_cmd_n <= raw_cmd ? chain[63:32] : (32'd1);",
            "r_cmd_m <= raw_cmd ? chain[95:64] : (32'd1);",
        ] {
            assert!(v.contains(want), "{want}\n{v}");
        }
        assert!(v.contains("led_r <= sig[0] ^ sig[1] ^"));
    }
}
