//! `tern hdl emit`: the array's Verilog, clean wrapper and JSON manifest for any valid config.

use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use tern_spec::ArrayConfig;

#[derive(Subcommand, Debug)]
pub enum HdlCmd {
    /// Write the Verilog (core + ANSI wrapper) and the port/parameter manifest.
    Emit {
        /// A built-in config name (default, small, large) or a TOML file.
        #[arg(long, default_value = "default")]
        config: String,
        /// Output directory (created).
        #[arg(long)]
        out: PathBuf,
        /// Register the adder tree every this many levels (1 = every level).
        #[arg(long, default_value_t = 1)]
        tree_reg_every: u32,
        /// Let synthesis merge the per-lane copies of the lane-wide controls (for tools that
        /// replicate high-fanout registers themselves, e.g. Vivado); by default they are kept
        /// apart for nextpnr.
        #[arg(long)]
        no_lane_copies: bool,
        /// Instantiate the Lattice ECP5 MULT18X18D (with its input and output registers) for
        /// each lane's scale multiply, instead of a portable `*` (what `tern synth` does for
        /// ECP5 boards). Simulating the result needs a MULT18X18D model.
        #[arg(long)]
        ecp5_dsp: bool,
        /// Read-modify-write the scaler's accumulator in one stage instead of reading it a
        /// stage ahead (what `tern synth` does for Xilinx boards, where the adder is the
        /// DSP48's post-adder); same outputs and cycle counts.
        #[arg(long)]
        no_acc_read_ahead: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: HdlCmd) -> Result<()> {
    match cmd {
        HdlCmd::Emit {
            config,
            out,
            tree_reg_every,
            no_lane_copies,
            ecp5_dsp,
            no_acc_read_ahead,
            json,
        } => {
            let cfg = ArrayConfig::builtin_or_load(&config)?;
            let opts = tern_hdl::HdlOptions {
                tree_reg_every,
                lane_copies: !no_lane_copies,
                ecp5_dsp,
                acc_read_ahead: !no_acc_read_ahead,
            };
            let r = tern_hdl::emit::emit_with(&cfg, opts, &out)
                .with_context(|| format!("emitting config {} into {}", cfg.name, out.display()))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "config": cfg.name, "top": r.top, "dir": r.dir,
                        "files": r.files, "modules": r.modules, "lines": r.lines,
                        "manifest": r.manifest,
                    }))?
                );
            } else {
                println!(
                    "config {}: top {} — {} modules, {} lines of Verilog",
                    cfg.name, r.top, r.modules, r.lines
                );
                for f in &r.files {
                    println!("  {}", f.display());
                }
            }
            Ok(())
        }
    }
}
