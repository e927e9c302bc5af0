//! Vivado project generation: golden files and structural checks (no Vivado here).
//!
//! `TERN_BLESS=1 cargo test -p tern-bitstreams --test vivado` rewrites the golden files.

use std::collections::BTreeSet;
use std::path::PathBuf;
use tern_bitstreams::board::{parse_constraints, Boards, Family, Flow, Host};
use tern_bitstreams::vivado::{project_texts, Port};
use tern_bitstreams::wrapper::{board_top_name, board_wrapper, BoardPins};
use tern_hdl::HdlOptions;
use tern_spec::ArrayConfig;

fn golden_dir(board: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{board}-small"))
}

/// `{`/`}` and `[`/`]` balance in every line group of a TCL script (a cheap syntax check).
fn balanced(tcl: &str) -> Result<(), String> {
    let (mut brace, mut bracket) = (0i64, 0i64);
    for (i, line) in tcl.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let mut esc = false;
        for ch in line.chars() {
            if esc {
                esc = false;
                continue;
            }
            match ch {
                '\\' => esc = true,
                '{' => brace += 1,
                '}' => brace -= 1,
                '[' => bracket += 1,
                ']' => bracket -= 1,
                _ => {}
            }
            if brace < 0 || bracket < 0 {
                return Err(format!("line {}: closes more than it opens: {line}", i + 1));
            }
        }
    }
    if brace != 0 || bracket != 0 {
        return Err(format!("unbalanced: braces {brace}, brackets {bracket}"));
    }
    Ok(())
}

#[test]
fn vivado_projects_match_golden_and_are_consistent() {
    let boards = Boards::builtin().unwrap();
    let cfg = ArrayConfig::builtin("small").unwrap();
    let g = tern_hdl::emit::generate(&cfg, HdlOptions::default()).unwrap();
    let bless = std::env::var("TERN_BLESS").is_ok();
    let mut checked = 0;
    for b in boards.boards.iter().filter(|b| b.flow() == Flow::Vivado) {
        assert_eq!(b.family(), Family::Xilinx);
        let (rtl_top, top_ports): (String, Vec<String>) = match b.host() {
            Host::None => {
                let pins = BoardPins::of(b).unwrap();
                let (v, _) = board_wrapper(&g.manifest, &pins);
                assert!(v.contains(&format!("module {}", board_top_name(&g.manifest.top))));
                let mut ports = vec![pins.clock_port.clone()];
                ports.extend((0..pins.leds).map(|i| format!("{}[{i}]", pins.led_port)));
                (board_top_name(&g.manifest.top), ports)
            }
            _ => (format!("{}_axi", g.manifest.top), vec![]),
        };
        let mut sources = g.manifest.files.clone();
        sources.push(format!("{rtl_top}.v"));
        let t = project_texts(b, &g, &rtl_top, &sources).unwrap();
        let text = |name: &str| {
            t.files
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| panic!("{}: no {name}", b.name()))
        };
        let create = text("create_project.tcl");
        let build = text("build.tcl");
        balanced(&create).unwrap_or_else(|e| panic!("{}: create_project.tcl: {e}", b.name()));
        balanced(&build).unwrap_or_else(|e| panic!("{}: build.tcl: {e}", b.name()));
        assert!(create.contains("NOT TESTED ON A REAL VIVADO"));
        assert!(create.contains(&format!("-part {}", b.spec.part.device)));
        for s in &sources {
            assert!(create.contains(s), "{}: {s} not added", b.name());
        }
        assert!(create.contains(&format!("set_property top {} [current_fileset]", t.top)));
        assert!(build.contains("source [file join $tern_dir create_project.tcl]"));
        assert!(build.contains("launch_runs impl_1 -to_step write_bitstream"));

        // top-level ports of the implementation top, and the XDC's ports
        let xdc = text(&b.spec.io.constraints);
        let timing = text("timing.xdc");
        let xdc_ports: BTreeSet<String> = parse_constraints(Family::Xilinx, &xdc)
            .into_keys()
            .collect();
        let top: BTreeSet<String> = match &t.design {
            Some(d) => {
                let a = t.adapter.as_ref().unwrap();
                d.check(a).unwrap();
                // every cell is created once, every adapter stream is wired
                for c in &d.cells {
                    assert_eq!(
                        create.matches(&format!(" {}\n", c.name)).count()
                            + create.matches(&format!(" {}\r\n", c.name)).count(),
                        1,
                        "{}: cell {}",
                        b.name(),
                        c.name
                    );
                }
                for s in &a.streams {
                    assert!(
                        create.contains(&format!("tern_0/{}]", s.port)),
                        "{}",
                        s.port
                    );
                    assert!(s.bytes * 8 >= s.bits && s.bytes * 8 < s.bits + 8);
                }
                d.ports.iter().flat_map(Port::hdl_names).collect()
            }
            None => {
                assert!(
                    timing.contains("create_clock -period 6.667 -name array_clk"),
                    "{timing}"
                );
                top_ports.into_iter().collect()
            }
        };
        // every pin the XDC places is a top port, and every top port that needs a pin has one
        for p in &xdc_ports {
            assert!(
                top.contains(p),
                "{}: XDC places `{p}`, which the top does not have",
                b.name()
            );
        }
        for p in &top {
            assert!(
                xdc_ports.contains(p),
                "{}: top port `{p}` has no pin",
                b.name()
            );
        }

        // golden files
        let dir = golden_dir(b.name());
        for (name, body) in &t.files {
            let path = dir.join(name);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, body).unwrap();
            } else {
                let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                    panic!("{} missing: run with TERN_BLESS=1", path.display())
                });
                assert!(
                    want == *body,
                    "{} differs from the generator's output (TERN_BLESS=1 to accept)",
                    path.display()
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 3, "arty-a7-100t, kv260, alveo-u55c");
}

#[test]
fn xdma_widths_follow_the_link() {
    use tern_bitstreams::vivado::xdma_axi_bits;
    assert_eq!(xdma_axi_bits(3, 16), 512);
    assert_eq!(xdma_axi_bits(3, 8), 256);
    assert_eq!(xdma_axi_bits(4, 8), 512);
    assert_eq!(xdma_axi_bits(2, 1), 64);
}

/// The large config's 2048-bit weight beat needs an up-sizer from XDMA's 512 bits; the
/// default's 512-bit beat needs none.
#[test]
fn converters_appear_only_where_widths_differ() {
    let boards = Boards::builtin().unwrap();
    let b = boards.get("alveo-u55c").unwrap();
    for (name, want_dw_w) in [("default", false), ("large", true)] {
        let cfg = ArrayConfig::builtin(name).unwrap();
        let g = tern_hdl::emit::generate(&cfg, HdlOptions::default()).unwrap();
        let top = format!("{}_axi", g.manifest.top);
        let t = project_texts(b, &g, &top, &[]).unwrap();
        let d = t.design.unwrap();
        let has = d.cells.iter().any(|c| c.name == "dw_weights");
        assert_eq!(has, want_dw_w, "{name}");
        let a = t.adapter.unwrap();
        let w = a.streams.iter().find(|s| s.stream == "weights").unwrap();
        assert_eq!(w.bits, 2 * cfg.array.rows * cfg.array.cols);
    }
}
