//! Verilog emission: the rust-hdl core, a clean top-level wrapper and a JSON manifest.
//!
//! Files for a config named `NAME` (all deterministic, so they can be committed and diffed):
//! - `tern_NAME_core.v`: rust-hdl's `generate_verilog` of [`crate::core::Core`], with its
//!   `top` prefix renamed `tern_NAME_core` (module names are instance paths, `$`-separated);
//! - `tern_NAME.v`: the wrapper `tern_NAME`, ANSI ports with plain names and packed buses;
//! - `tern_NAME.json`: the manifest (ports, config, widths, latencies, stream layouts).

use crate::core::Core;
use crate::error::HdlError;
use crate::params::{HdlOptions, Params, CMD_BITS, OUT_WORD_BITS, TOKEN_FIELD_BITS};
use crate::vlog::{slice, Text};
use rust_hdl::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tern_spec::ArrayConfig;

/// Version of the manifest format.
pub const MANIFEST_FORMAT: &str = "tern-hdl-manifest/1";

/// One port of the wrapper.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    /// `input` or `output`.
    pub dir: &'static str,
    pub width: u32,
    /// `clock`, `reset`, `command`, `status`, `valid`, `ready`, `data`.
    pub role: &'static str,
    /// The stream a `valid`/`ready`/`data` port belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<&'static str>,
    pub doc: String,
}

/// Widths, all in bits.
#[derive(Debug, Clone, Serialize)]
pub struct Widths {
    pub act: u32,
    pub trit_code: u32,
    pub psum: u32,
    pub mant: u32,
    pub prod: u32,
    pub acc: u32,
    pub out_word: u32,
    pub tree_out: u32,
    pub tree_level_widths: Vec<Vec<u32>>,
    pub cmd_field: u32,
    pub token_field: u32,
    pub k_counter: u32,
    pub n_counter: u32,
    pub token_index: u32,
}

/// Latency and throughput figures, in clock cycles.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Beats per k-block (block.k / cols).
    pub beats_per_block: u32,
    /// Register stages in each lane's adder tree.
    pub tree_stages: u32,
    /// From the issue of a block's last beat to `out_valid` of that output vector.
    pub last_beat_to_out_valid: u32,
    /// Beats per token per N tile for a given K: `ceil(K / cols)` (M = 1) or
    /// `ceil(K / block.k) * beats_per_block` (M > 1, pad beats included).
    pub beats_formula: String,
    /// Cycles of one command without stalls.
    pub cycles_formula: String,
}

/// One stream's element layout.
#[derive(Debug, Clone, Serialize)]
pub struct StreamLayout {
    pub name: &'static str,
    pub data_port: &'static str,
    pub beat_bits: u32,
    pub layout: String,
    pub order: String,
}

/// The manifest written next to the Verilog.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub format: &'static str,
    pub generator: String,
    pub top: String,
    pub core: String,
    pub files: Vec<String>,
    pub config: ArrayConfig,
    pub config_hash: String,
    pub options: HdlOptions,
    pub widths: Widths,
    pub latency: Latency,
    pub ports: Vec<Port>,
    pub streams: Vec<StreamLayout>,
    pub modules: usize,
    pub lines: usize,
    /// The card top (docs/hdl-card.md), when the geometry is one it supports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<CardManifest>,
}

/// The card top in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct CardManifest {
    /// Module name of the card top.
    pub top: String,
    /// Its file (it instantiates the array wrapper, so it needs the array's files too).
    pub file: String,
    /// Verilog parameter with the card memory size (bytes) and its default.
    pub mem_bytes_param: &'static str,
    pub mem_bytes_default: u64,
    pub ports: Vec<Port>,
}

/// Everything `emit` writes, in memory.
#[derive(Debug, Clone)]
pub struct Generated {
    /// (file name, contents), in write order.
    pub files: Vec<(String, String)>,
    pub manifest: Manifest,
}

/// What `emit` did.
#[derive(Debug, Clone)]
pub struct EmitReport {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub top: String,
    /// Verilog modules (core hierarchy + wrapper).
    pub modules: usize,
    /// Lines of Verilog.
    pub lines: usize,
    pub manifest: Manifest,
}

/// Writes the Verilog, the wrapper and the manifest of `cfg` into `out_dir` (created).
pub fn emit(cfg: &ArrayConfig, out_dir: &Path) -> Result<EmitReport, HdlError> {
    emit_with(cfg, HdlOptions::default(), out_dir)
}

/// [`emit`] with generator options.
pub fn emit_with(
    cfg: &ArrayConfig,
    options: HdlOptions,
    out_dir: &Path,
) -> Result<EmitReport, HdlError> {
    let g = generate(cfg, options)?;
    std::fs::create_dir_all(out_dir).map_err(|source| HdlError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for (name, text) in &g.files {
        let path = out_dir.join(name);
        std::fs::write(&path, text).map_err(|source| HdlError::Io {
            path: path.clone(),
            source,
        })?;
        files.push(path);
    }
    Ok(EmitReport {
        dir: out_dir.to_path_buf(),
        files,
        top: g.manifest.top.clone(),
        modules: g.manifest.modules,
        lines: g.manifest.lines,
        manifest: g.manifest,
    })
}

fn core_rtl<const A: usize, const MB: usize>(p: &Params) -> String {
    let mut core = Core::<A, MB>::new(p);
    core.connect_all();
    generate_verilog_unchecked(&core)
}

macro_rules! dispatch_mant {
    ($a:literal, $p:expr, [$($mb:literal),*]) => {
        match $p.mant_bits {
            $($mb => Ok(core_rtl::<$a, $mb>($p)),)*
            v => Err(HdlError::UnsupportedWidth {
                field: "scale.mantissa_bits",
                value: v,
                supported: "2..=24".into(),
            }),
        }
    };
}

macro_rules! dispatch {
    ($p:expr, [$($a:literal),*]) => {
        match $p.act_bits {
            $($a => dispatch_mant!($a, $p, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]),)*
            v => Err(HdlError::UnsupportedWidth {
                field: "activation.bits",
                value: v,
                supported: "4..=8".into(),
            }),
        }
    };
}

/// The rust-hdl Verilog of the core, with `top` renamed `core_name`.
pub fn core_verilog(p: &Params, core_name: &str) -> Result<String, HdlError> {
    let raw: String = dispatch!(p, [4, 5, 6, 7, 8])?;
    Ok(rename_top(&raw, core_name))
}

/// Renames the module `top` and every `top$…` module to `name…`.
fn rename_top(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let renamed = if let Some(rest) = trimmed.strip_prefix("module top$") {
            // every sub-module lives in this one file, named after the core
            format!(
                "{indent}/* verilator lint_off DECLFILENAME */ // rust-hdl writes the core's whole module hierarchy into this one file\n{indent}module {name}${rest}\n{indent}/* verilator lint_on DECLFILENAME */"
            )
        } else if let Some(rest) = trimmed.strip_prefix("module top") {
            format!("{indent}module {name}{rest}")
        } else if let Some(rest) = trimmed.strip_prefix("endmodule // top") {
            format!("{indent}endmodule // {name}{rest}")
        } else if let Some(rest) = trimmed.strip_prefix("top$") {
            // a sub-module instance: `top$path instance(`
            format!("{indent}{name}${rest}")
        } else {
            line.to_string()
        };
        out.push_str(renamed.trim_end());
        out.push('\n');
    }
    // collapse runs of blank lines
    let mut clean = String::with_capacity(out.len());
    let mut blank = 0;
    for l in out.lines() {
        if l.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        clean.push_str(l);
        clean.push('\n');
    }
    clean.trim_start().to_string()
}

fn port(
    name: &str,
    dir: &'static str,
    width: u32,
    role: &'static str,
    stream: Option<&'static str>,
    doc: impl Into<String>,
) -> Port {
    Port {
        name: name.to_string(),
        dir,
        width,
        role,
        stream,
        doc: doc.into(),
    }
}

/// The wrapper's ports.
pub fn wrapper_ports(p: &Params) -> Vec<Port> {
    let (r, c, a, mb) = (p.rows, p.cols, p.act_bits, p.mant_bits);
    let cb = CMD_BITS;
    vec![
        port("clk", "input", 1, "clock", None, "clock (rising edge)"),
        port("rst", "input", 1, "reset", None, "synchronous reset, active high"),
        port("start", "input", 1, "command", None, "start a command when busy = 0 (cmd_* sampled)"),
        port("cmd_k", "input", cb, "command", None, format!("K: inputs per output, 1..={}", p.max_k)),
        port("cmd_n", "input", cb, "command", None, format!("N: outputs, 1..={}", p.max_n)),
        port("cmd_m", "input", cb, "command", None, format!("M: tokens, 1..={}", p.token_tile)),
        port("busy", "output", 1, "status", None, "a command is running"),
        port("done", "output", 1, "status", None, "one-cycle pulse: last output accepted, or command refused"),
        port("err", "output", 1, "status", None, "the last start was refused (a cmd field out of range); valid with done"),
        port("w_valid", "input", 1, "valid", Some("weights"), "weight beat valid"),
        port("w_ready", "output", 1, "ready", Some("weights"), "weight beat accepted when w_valid & w_ready"),
        port("w_data", "input", 2 * r * c, "data", Some("weights"), "rows x cols trit codes (00 = 0, 01 = +1, 11 = -1, 10 reserved = 0); lane r, column c at bits [2*(r*cols + c) +: 2]"),
        port("act_valid", "input", 1, "valid", Some("activations"), "activation beat valid"),
        port("act_ready", "output", 1, "ready", Some("activations"), "activation beat accepted when act_valid & act_ready"),
        port("act_data", "input", c * a, "data", Some("activations"), format!("cols activation codes, {a}-bit two's complement; column c at bits [{a}*c +: {a}]")),
        port("scale_valid", "input", 1, "valid", Some("scales"), "scale vector valid"),
        port("scale_ready", "output", 1, "ready", Some("scales"), "scale vector accepted when scale_valid & scale_ready"),
        port("scale_data", "input", r * mb, "data", Some("scales"), format!("rows unsigned {mb}-bit block-scale mantissas, lane r at bits [{mb}*r +: {mb}]")),
        port("out_valid", "output", 1, "valid", Some("outputs"), "output vector valid"),
        port("out_ready", "input", 1, "ready", Some("outputs"), "output vector accepted when out_valid & out_ready"),
        port("out_data", "output", r * OUT_WORD_BITS, "data", Some("outputs"), format!("rows accumulators (acc_bits = {}) sign-extended to 64 bits; lane r (output n = out_n + r) at bits [64*r +: 64]", p.acc_bits)),
        port("out_token", "output", TOKEN_FIELD_BITS, "data", Some("outputs"), "token index of the vector (0..M-1)"),
        port("out_n", "output", cb, "data", Some("outputs"), "output index of lane 0 (a multiple of rows)"),
        port("out_last", "output", 1, "data", Some("outputs"), "last vector of the command"),
    ]
}

/// The clean wrapper `tern_NAME`.
pub fn wrapper_verilog(p: &Params, top: &str, core: &str) -> String {
    let ports = wrapper_ports(p);
    let mut t = Text::default();
    t.comment(format!(
        "{top}: tern ternary lane array \"{}\" ({}x{} lanes x cols, token_tile {}, blocks {}x{}).",
        p.name, p.rows, p.cols, p.token_tile, p.block_n, p.block_k
    ));
    t.comment("Generated by tern-hdl from the config; do not edit. Ports and stream layouts: the .json manifest.");
    t.line("`default_nettype none");
    t.open(format!("module {top} ("));
    for (i, pt) in ports.iter().enumerate() {
        let range = if pt.width == 1 {
            String::new()
        } else {
            format!("[{}:0] ", pt.width - 1)
        };
        let comma = if i + 1 == ports.len() { "" } else { "," };
        t.line(format!("{:<6} wire {range}{}{comma}", pt.dir, pt.name));
    }
    t.close(");");
    t.indent_more();
    t.open(format!("{core} core ("));
    let mut conns: Vec<String> = vec![
        ".clock(clk)".into(),
        ".rst(rst)".into(),
        ".start(start)".into(),
        ".cmd_k(cmd_k)".into(),
        ".cmd_n(cmd_n)".into(),
        ".cmd_m(cmd_m)".into(),
        ".busy(busy)".into(),
        ".done(done)".into(),
        ".err(err)".into(),
        ".w_valid(w_valid)".into(),
        ".w_ready(w_ready)".into(),
        ".act_valid(act_valid)".into(),
        ".act_ready(act_ready)".into(),
        ".scale_valid(scale_valid)".into(),
        ".scale_ready(scale_ready)".into(),
        ".out_valid(out_valid)".into(),
        ".out_ready(out_ready)".into(),
        ".out_token(out_token)".into(),
        ".out_n(out_n)".into(),
        ".out_last(out_last)".into(),
    ];
    for i in 0..p.rows * p.cols {
        conns.push(format!(".w${i}({})", slice("w_data", 2 * i, 2)));
    }
    for c in 0..p.cols {
        conns.push(format!(
            ".act${c}({})",
            slice("act_data", c * p.act_bits, p.act_bits)
        ));
    }
    for r in 0..p.rows {
        conns.push(format!(
            ".scale${r}({})",
            slice("scale_data", r * p.mant_bits, p.mant_bits)
        ));
    }
    for r in 0..p.rows {
        conns.push(format!(
            ".out${r}({})",
            slice("out_data", r * OUT_WORD_BITS, OUT_WORD_BITS)
        ));
    }
    let n = conns.len();
    for (i, c) in conns.into_iter().enumerate() {
        t.line(if i + 1 == n { c } else { format!("{c},") });
    }
    t.close(");");
    t.close("endmodule");
    t.line("`default_nettype wire");
    t.finish()
}

fn streams(p: &Params) -> Vec<StreamLayout> {
    let order_w = if p.ring {
        "per N tile, per k-block, once (token 0 only; later tokens replay it): ceil(K_rem/cols) beats for the block, K padded with zero trits to a multiple of cols; lanes past N carry zero trits"
    } else {
        "per N tile, per k-block: ceil(K_rem/cols) beats; K padded with zero trits to a multiple of cols; lanes past N carry zero trits"
    };
    vec![
        StreamLayout {
            name: "weights",
            data_port: "w_data",
            beat_bits: 2 * p.rows * p.cols,
            layout: "lane r, column c at bits [2*(r*cols + c) +: 2]; column c of beat j of block kb is k = kb*block.k + j*cols + c".into(),
            order: order_w.into(),
        },
        StreamLayout {
            name: "activations",
            data_port: "act_data",
            beat_bits: p.cols * p.act_bits,
            layout: format!("column c at bits [{a}*c +: {a}]", a = p.act_bits),
            order: "per N tile, per k-block, per token t < M, per beat: the same ceil(K_rem/cols) beats as the weights (pad values past K are ignored: their trits are zero)".into(),
        },
        StreamLayout {
            name: "scales",
            data_port: "scale_data",
            beat_bits: p.rows * p.mant_bits,
            layout: format!("lane r at bits [{m}*r +: {m}]: the mantissa of block (n_base + r) / block.n, kb (the host expands per-tensor and row-group scales per lane)", m = p.mant_bits),
            order: "per N tile, per k-block: one vector".into(),
        },
        StreamLayout {
            name: "outputs",
            data_port: "out_data",
            beat_bits: p.rows * OUT_WORD_BITS,
            layout: "lane r at bits [64*r +: 64], output n = out_n + r (lanes with n >= N carry 0 when the host padded zero trits)".into(),
            order: "per N tile, per token t < M: one vector".into(),
        },
    ]
}

/// Generates all files in memory.
pub fn generate(cfg: &ArrayConfig, options: HdlOptions) -> Result<Generated, HdlError> {
    let p = Params::new(cfg, options)?;
    let top = format!("tern_{}", p.name);
    let core = format!("{top}_core");
    let mut core_v = String::new();
    core_v.push_str(&format!(
        "// {core}: the rust-hdl core of tern array \"{}\" (instantiated by {top}).\n// Generated by tern-hdl; do not edit. Module names are rust-hdl instance paths.\n\n",
        p.name
    ));
    core_v.push_str(&core_verilog(&p, &core)?);
    let wrap_v = wrapper_verilog(&p, &top, &core);
    let modules = count_modules(&core_v) + count_modules(&wrap_v);
    let lines = core_v.lines().count() + wrap_v.lines().count();
    let core_file = format!("{core}.v");
    let top_file = format!("{top}.v");
    let lat = p.tree_lat();
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        generator: format!("tern-hdl {}", env!("CARGO_PKG_VERSION")),
        top: top.clone(),
        core: core.clone(),
        files: vec![top_file.clone(), core_file.clone()],
        config: cfg.clone(),
        config_hash: cfg.hash_hex(),
        options,
        widths: Widths {
            act: p.act_bits,
            trit_code: 2,
            psum: p.psum_bits,
            mant: p.mant_bits,
            prod: p.prod_bits,
            acc: p.acc_bits,
            out_word: OUT_WORD_BITS,
            tree_out: p.tree.out_width(),
            tree_level_widths: p
                .tree
                .levels
                .iter()
                .map(|l| l.nodes.iter().map(|n| n.width).collect())
                .collect(),
            cmd_field: CMD_BITS,
            token_field: TOKEN_FIELD_BITS,
            k_counter: p.k_bits,
            n_counter: p.n_bits,
            token_index: p.tok_bits,
        },
        latency: Latency {
            beats_per_block: p.bpb,
            tree_stages: lat,
            last_beat_to_out_valid: p.issue_to_out(),
            beats_formula: format!(
                "M = 1: ceil(K/{c}); M > 1: ceil(K/{bk})*{bpb}",
                c = p.cols,
                bk = p.block_k,
                bpb = p.bpb
            ),
            cycles_formula: format!(
                "ceil(N/{r}) * M * beats + bubbles + {} (pipeline drain), no stalls; bubbles: one per output vector whose block's last beat directly follows the previous vector's (M = 1: ceil(N/{r}) - 1 when K <= {c}; M > 1 with one beat per block: ceil(N/{r}) * (M - 1), plus ceil(N/{r}) - 1 when K <= {bk}), else 0",
                p.issue_to_out() + 1,
                r = p.rows,
                c = p.cols,
                bk = p.block_k
            ),
        },
        ports: wrapper_ports(&p),
        streams: streams(&p),
        modules,
        lines,
        card: None,
    };
    let mut manifest = manifest;
    let mut files = vec![(top_file, wrap_v), (core_file, core_v)];
    if crate::card::CardGeometry::new(&p).is_ok() {
        let card_top = format!("{top}_card");
        let card_file = format!("{card_top}.v");
        let text = crate::card::card_verilog(&p, cfg, &card_top, &top)?;
        manifest.card = Some(CardManifest {
            top: card_top,
            file: card_file.clone(),
            mem_bytes_param: "MEM_BYTES",
            mem_bytes_default: crate::card::DEFAULT_MEM_BYTES,
            ports: crate::card::card_ports(),
        });
        files.push((card_file, text));
    }
    let json = serde_json::to_string_pretty(&manifest)? + "\n";
    files.push((format!("{top}.json"), json));
    Ok(Generated { files, manifest })
}

fn count_modules(text: &str) -> usize {
    text.lines()
        .filter(|l| l.trim_start().starts_with("module "))
        .count()
}
