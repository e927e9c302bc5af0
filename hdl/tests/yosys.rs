//! yosys synthesizes the small config's top (generic cells, flattened).

mod common;

use common::*;
use std::process::Command;
use tern_hdl::emit::emit;
use tern_spec::ArrayConfig;

#[test]
fn small_config_synthesizes() {
    if !have_tool("yosys", "small_config_synthesizes") {
        return;
    }
    let cfg = ArrayConfig::builtin("small").unwrap();
    let dir = scratch("yosys_small");
    let rep = emit(&cfg, &dir).unwrap();
    let script = format!(
        "read_verilog {}; synth -flatten -top {}; check -assert; stat",
        rep.manifest.files.join(" "),
        rep.top
    );
    let out = Command::new("yosys")
        .current_dir(&dir)
        .args(["-q", "-l", "synth.log", "-p", &script])
        .output()
        .expect("run yosys");
    let log = std::fs::read_to_string(dir.join("synth.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "yosys failed:\n{}\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cells = log
        .lines()
        .rev()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Number of cells:")
                .map(|v| v.trim().parse::<u64>().unwrap())
        })
        .expect("cell count in the log");
    println!("tern_small: {cells} generic cells");
    // 64 PEs, 8 lanes with trees, multipliers, accumulators: tens of thousands of gates.
    assert!((5_000..200_000).contains(&cells), "{cells} cells");
    assert!(
        !log.contains("Warning: multiple conflicting drivers"),
        "{log}"
    );
}
