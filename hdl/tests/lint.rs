//! `verilator --lint-only -Wall` on the emitted Verilog: zero warnings for the built-in
//! configs and for odd shapes (token_tile = 1, non-power-of-two cols, a product wider than
//! the accumulator, 4-bit activations, tree registered every second level).

mod common;

use common::*;
use std::process::Command;
use tern_hdl::emit::{emit, emit_with};
use tern_hdl::HdlOptions;
use tern_spec::ArrayConfig;

fn lint(cfg: &ArrayConfig, options: HdlOptions, tag: &str) {
    let dir = scratch(tag);
    let rep = emit_with(cfg, options, &dir).unwrap();
    let files = rtl_files(&rep, options.ecp5_dsp);
    let out = Command::new("verilator")
        .current_dir(&dir)
        .args(["--lint-only", "-Wall", "--top-module", &rep.top])
        .args(files.iter())
        .output()
        .expect("run verilator");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !text.contains("%Warning"),
        "{tag}:\n{text}"
    );
}

#[test]
fn builtin_configs_lint_clean() {
    if !have_tool("verilator", "builtin_configs_lint_clean") {
        return;
    }
    for (name, _) in tern_spec::config::BUILTIN {
        let cfg = ArrayConfig::builtin(name).unwrap();
        lint(&cfg, HdlOptions::default(), &format!("lint_{name}"));
    }
    // the ECP5 variant: MULT18X18D instances, every pin connected
    let cfg = ArrayConfig::builtin("small").unwrap();
    let dsp = HdlOptions {
        ecp5_dsp: true,
        ..HdlOptions::default()
    };
    lint(&cfg, dsp, "lint_small_ecp5");
    // the Xilinx variant: no read-ahead, no lane copies
    let xilinx = HdlOptions::default().for_xilinx();
    lint(&cfg, xilinx, "lint_small_xilinx");
    lint(&config("one", 2, 4, 1, 2, 4), xilinx, "lint_t1_xilinx");
}

#[test]
fn odd_shapes_lint_clean() {
    if !have_tool("verilator", "odd_shapes_lint_clean") {
        return;
    }
    let mut gemv = config("gemv", 4, 8, 1, 64, 64);
    gemv.scale.mantissa_bits = 8;
    gemv.accumulator.acc_bits = 32;
    lint(&gemv, HdlOptions::default(), "lint_gemv");
    let odd = config("odd", 3, 5, 5, 16, 20);
    lint(
        &odd,
        HdlOptions {
            tree_reg_every: 2,
            ..HdlOptions::default()
        },
        "lint_odd",
    );
    let mut wide = config("wide", 2, 4, 2, 8, 8);
    wide.accumulator.psum_bits = 32;
    lint(&wide, HdlOptions::default(), "lint_wide");
    let mut a4 = config("a4", 2, 2, 1, 4, 4);
    a4.activation.bits = 4;
    a4.scale.mantissa_bits = 2;
    a4.accumulator.psum_bits = tern_spec::widths::required_psum_bits(4, 4);
    a4.accumulator.acc_bits = 24;
    a4.validate("a4").unwrap();
    lint(&a4, HdlOptions::default(), "lint_a4");
    let _ = emit;
}
