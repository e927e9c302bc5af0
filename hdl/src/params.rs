//! Everything the generator derives from an [`ArrayConfig`]: sizes, exact widths, the adder
//! tree plan, counter widths and latencies. All Verilog text and all cycle models read these.

use crate::error::HdlError;
use crate::tree::TreePlan;
use serde::Serialize;
use tern_spec::widths;
use tern_spec::ArrayConfig;

/// Width of one output word on the output stream: every lane's accumulator, sign-extended.
pub const OUT_WORD_BITS: u32 = 64;
/// Width of the command fields `cmd_k`, `cmd_n`, `cmd_m`.
pub const CMD_BITS: u32 = 32;
/// Width of the `out_token` field.
pub const TOKEN_FIELD_BITS: u32 = 16;
/// Activation widths with a const-generic instance (`Lane<A, MB>`, `Core<A, MB>`).
pub const ACT_BITS_SUPPORTED: (u32, u32) = (4, 8);
/// Mantissa widths with a const-generic instance (`Scaler<MB>`, `Lane<A, MB>`, `Core<A, MB>`).
pub const MANT_BITS_SUPPORTED: (u32, u32) = (2, 24);
/// Largest psum width the scaler's psum port takes (runtime width, see `scaler.rs`).
pub const PSUM_BITS_MAX: u32 = 32;
/// Largest accumulator width (the output word is 64 bits).
pub const ACC_BITS_MAX: u32 = 64;

/// Generator options that are not part of the array contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HdlOptions {
    /// Register the adder tree after every `tree_reg_every`-th level (1 = every level).
    pub tree_reg_every: u32,
    /// Keep the per-lane registered copies of the lane-wide controls apart (`(* keep *)`).
    /// Place-and-route tools that do not replicate a high-fanout register (nextpnr) need
    /// them: one copy per lane fans out only inside its lane. Without the attribute,
    /// synthesis merges the copies into one register, which costs no logic, and a tool that
    /// replicates registers by fanout itself (Vivado's `opt_design`/`phys_opt_design`) makes
    /// the copies it needs. Simulation is the same either way.
    pub lane_copies: bool,
    /// Instantiate the Lattice ECP5 `MULT18X18D` for the scaler's multiply, with its input
    /// and output registers holding the capture and product registers (`scaler.rs`). yosys
    /// maps a `*` onto the DSP without its registers, so the path from the capture registers
    /// through the multiplier to the product register then crosses the fabric twice (about
    /// 9 ns on an LFE5U-85F-6). Only for widths that fit one DSP (psum ≤ 18 bits,
    /// mantissa ≤ 17 bits); otherwise the portable `*` is emitted. The ECP5 flow sets it.
    pub ecp5_dsp: bool,
    /// Read the scaler's accumulator word one stage ahead (`scaler.rs`): the accumulate stage
    /// is then registers → adder → write port, with a forwarding multiplexer in front of the
    /// adder for one-beat blocks back to back. Fabric adders (ECP5, iCE40) need it to close
    /// timing; on Xilinx the adder goes into the DSP48's post-adder and the LUT RAM reads
    /// straight into it, so the read-ahead only adds the multiplexer (40 LUTs a lane) and
    /// the Xilinx flow turns it off. Outputs and cycle counts are the same either way.
    pub acc_read_ahead: bool,
}

impl Default for HdlOptions {
    fn default() -> Self {
        HdlOptions {
            tree_reg_every: 1,
            lane_copies: true,
            ecp5_dsp: false,
            acc_read_ahead: true,
        }
    }
}

impl HdlOptions {
    /// These options as the Xilinx flow emits them: the per-lane control copies merged
    /// (Vivado replicates high-fanout registers itself; kept apart they would cost logic in
    /// every lane) and no accumulator read-ahead (the adder is the DSP48's post-adder, fed by
    /// the LUT RAM directly, so the read-ahead's forwarding would only add LUTs).
    pub fn for_xilinx(self) -> Self {
        HdlOptions {
            lane_copies: false,
            acc_read_ahead: false,
            ..self
        }
    }
}

/// The derived parameters of one array.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub name: String,
    /// Lanes (outputs in parallel).
    pub rows: u32,
    /// Trits per lane per beat.
    pub cols: u32,
    /// Tokens per weight tile.
    pub token_tile: u32,
    pub block_n: u32,
    pub block_k: u32,
    /// Beats per block: block.k / cols.
    pub bpb: u32,
    /// Activation width (signed).
    pub act_bits: u32,
    /// Block partial-sum width (signed).
    pub psum_bits: u32,
    /// Scale mantissa width (unsigned).
    pub mant_bits: u32,
    /// Scaler product width psum_bits + mant_bits (signed; holds every psum × mantissa).
    pub prod_bits: u32,
    /// Output accumulator width (signed).
    pub acc_bits: u32,
    pub max_k: u64,
    pub max_n: u64,
    /// Weight replay ring present (token_tile > 1).
    pub ring: bool,
    /// Token index width (0 when token_tile = 1).
    pub tok_bits: u32,
    /// Width of the K position counters.
    pub k_bits: u32,
    /// Width of the N position counters.
    pub n_bits: u32,
    /// Width of the beat-in-block counter.
    pub j_bits: u32,
    pub options: HdlOptions,
    pub tree: TreePlan,
}

impl Params {
    /// Validates the config and derives every parameter.
    pub fn new(cfg: &ArrayConfig, options: HdlOptions) -> Result<Self, HdlError> {
        cfg.validate("<hdl>")?;
        check_range("activation.bits", cfg.activation.bits, ACT_BITS_SUPPORTED)?;
        check_range(
            "scale.mantissa_bits",
            cfg.scale.mantissa_bits,
            MANT_BITS_SUPPORTED,
        )?;
        check_range(
            "accumulator.psum_bits",
            cfg.accumulator.psum_bits,
            (1, PSUM_BITS_MAX),
        )?;
        check_range(
            "accumulator.acc_bits",
            cfg.accumulator.acc_bits,
            (1, ACC_BITS_MAX),
        )?;
        if !(1..=8).contains(&options.tree_reg_every) {
            return Err(HdlError::Option {
                option: "tree_reg_every",
                value: options.tree_reg_every,
                legal: "1..=8",
            });
        }
        let (rows, cols, tt) = (cfg.array.rows, cfg.array.cols, cfg.array.token_tile);
        let bk = cfg.block.k;
        let a = cfg.activation.bits;
        let p = cfg.accumulator.psum_bits;
        let mb = cfg.scale.mantissa_bits;
        let tree = TreePlan::new(cols, a, options.tree_reg_every);
        Ok(Params {
            name: cfg.name.clone(),
            rows,
            cols,
            token_tile: tt,
            block_n: cfg.block.n,
            block_k: bk,
            bpb: bk / cols,
            act_bits: a,
            psum_bits: p,
            mant_bits: mb,
            prod_bits: p + mb,
            acc_bits: cfg.accumulator.acc_bits,
            max_k: cfg.accumulator.max_k,
            max_n: cfg.accumulator.max_n,
            ring: tt > 1,
            tok_bits: if tt > 1 {
                widths::counter_bits(tt as u64 - 1)
            } else {
                0
            },
            k_bits: widths::counter_bits(cfg.accumulator.max_k + bk as u64),
            n_bits: widths::counter_bits(cfg.accumulator.max_n + rows as u64),
            j_bits: widths::counter_bits((bk / cols) as u64 - 1),
            options,
            tree,
        })
    }

    /// Register stages in the adder tree.
    pub fn tree_lat(&self) -> u32 {
        self.tree.latency()
    }

    /// Cycles from the issue of a block's last beat to `out_valid` for that token
    /// (input register, ring write, ring read / lead registers, tree registers, psum and
    /// scaler capture, the multiplier's operand registers, multiplier, product register,
    /// output register).
    pub fn issue_to_out(&self) -> u32 {
        self.tree_lat() + 8
    }

    /// Index width of the lanes' weight ring memory: `j_bits` when the ring holds more than one
    /// beat (token_tile > 1 and block.k > cols), else 0 (a single register).
    pub fn ring_addr_bits(&self) -> u32 {
        if self.ring && self.bpb > 1 {
            self.j_bits
        } else {
            0
        }
    }

    /// Column pairs of a lane: (leader, follower).
    pub fn pairs(&self) -> Vec<(usize, Option<usize>)> {
        self.tree.pairs()
    }
}

fn check_range(field: &'static str, value: u32, (lo, hi): (u32, u32)) -> Result<(), HdlError> {
    if value < lo || value > hi {
        return Err(HdlError::UnsupportedWidth {
            field,
            value,
            supported: format!("{lo}..={hi}"),
        });
    }
    Ok(())
}
