//! The card top (hdl/src/card.rs): emitted for the built-in configs, `verilator --lint-only
//! -Wall` clean together with the array it instantiates, and readable by yosys up to
//! `synth -run begin:fine` (coarse-grain synthesis: memories inferred, FSMs extracted).

mod common;

use common::*;
use std::process::Command;
use tern_hdl::emit::emit;
use tern_spec::ArrayConfig;

fn card_files(name: &str, tag: &str) -> (std::path::PathBuf, String, Vec<String>) {
    let cfg = ArrayConfig::builtin(name).unwrap();
    let dir = scratch(tag);
    let rep = emit(&cfg, &dir).unwrap();
    let card = rep
        .manifest
        .card
        .clone()
        .expect("built-in configs have a card top");
    let mut files = rep.manifest.files.clone();
    files.push(card.file.clone());
    (dir, card.top, files)
}

#[test]
fn card_top_lints_clean() {
    if !have_tool("verilator", "card_top_lints_clean") {
        return;
    }
    for (name, _) in tern_spec::config::BUILTIN {
        let (dir, top, files) = card_files(name, &format!("card_lint_{name}"));
        let out = Command::new("verilator")
            .current_dir(&dir)
            .args(["--lint-only", "-Wall", "--top-module", &top])
            .args(&files)
            .output()
            .expect("run verilator");
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !text.contains("%Warning"),
            "{name}:\n{text}"
        );
    }
}

#[test]
fn card_top_synthesizes_coarse() {
    if !have_tool("yosys", "card_top_synthesizes_coarse") {
        return;
    }
    let (dir, top, files) = card_files("small", "card_yosys_small");
    let script = format!(
        "read_verilog {}; synth -top {top} -run begin:fine; check -assert; stat",
        files.join(" ")
    );
    let out = Command::new("yosys")
        .current_dir(&dir)
        .args(["-q", "-l", "synth.log", "-p", &script])
        .output()
        .expect("run yosys");
    let log = std::fs::read_to_string(dir.join("synth.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "yosys failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        &log[log.len().saturating_sub(4000)..]
    );
    assert!(
        !log.contains("multiple conflicting drivers"),
        "{}",
        &log[log.len().saturating_sub(4000)..]
    );
}

#[test]
fn odd_geometries_have_no_card_top() {
    let cfg = config("odd", 3, 5, 5, 16, 20);
    let g = tern_hdl::emit::generate(&cfg, tern_hdl::HdlOptions::default()).unwrap();
    assert!(g.manifest.card.is_none());
    assert!(!g.files.iter().any(|(n, _)| n.ends_with("_card.v")));
}
