//! Vivado project generation: golden files and structural checks (no Vivado here).
//!
//! `TERN_BLESS=1 cargo test -p tern-bitstreams --test vivado` rewrites the golden files.

use std::collections::BTreeSet;
use std::path::PathBuf;
use tern_bitstreams::board::{parse_constraints, Boards, Family, Flow, Host};
use tern_bitstreams::vivado::{board_shell, project_texts, Port};
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
            _ => (format!("{}_shell", g.manifest.top), vec![]),
        };
        let mut sources = g.manifest.files.clone();
        if b.host() != Host::None {
            // the card top, then its shell
            sources.push(g.manifest.card.as_ref().unwrap().file.clone());
        }
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
                let sh = t.shell.as_ref().unwrap();
                assert_eq!(sh.module, rtl_top);
                d.check(sh).unwrap();
                // every cell is created once
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
                // every interface of the shell is wired once in the script, and every window
                // is assigned and checked
                for i in sh.interfaces() {
                    assert_eq!(
                        create.matches(&format!("tern_0/{}]", i.name)).count(),
                        // the connection, plus its window's assign_bd_address (the address
                        // space of a master, the segments of the slave)
                        2,
                        "{}: {}",
                        b.name(),
                        i.name
                    );
                }
                for w in &d.windows {
                    assert!(create.contains(&format!(
                        "tern_expect_window {} {:#x} {:#x}",
                        w.space, w.offset, w.range
                    )));
                }
                // the shell's widths are the card top's (tern_hdl::card::card_ports)
                let ports = tern_hdl::card::card_ports();
                let width = |n: &str| ports.iter().find(|p| p.name == n).unwrap().width;
                for i in sh.interfaces() {
                    assert_eq!(i.addr_bits, width(&format!("{}awaddr", i.card_prefix)));
                    assert_eq!(i.data_bits, width(&format!("{}wdata", i.card_prefix)));
                }
                assert_eq!(Some(sh.mem_bytes), b.card_memory().map(|m| m.bytes));
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

/// The block design follows the card top and the board: the register window is what the
/// card top's address bits decode, the card port's window is the board's card memory, and the
/// checks refuse a design with a shell interface left out or wired twice, or a window off.
#[test]
fn block_designs_follow_the_card_top_and_refuse_mistakes() {
    let boards = Boards::builtin().unwrap();
    let cfg = ArrayConfig::builtin("default").unwrap();
    let g = tern_hdl::emit::generate(&cfg, HdlOptions::default()).unwrap();
    for name in ["alveo-u55c", "kv260"] {
        let b = boards.get(name).unwrap();
        let sh = board_shell(b, &g).unwrap().unwrap();
        let t = project_texts(b, &g, &sh.module, &[]).unwrap();
        let d = t.design.unwrap();
        d.check(&sh).unwrap();
        let regs = d
            .windows
            .iter()
            .find(|w| w.slave == "tern_0/s_axi_lite")
            .unwrap();
        assert_eq!(regs.range, 1 << 16, "{name}");
        let card = d
            .windows
            .iter()
            .find(|w| w.space == "tern_0/m_axi_card")
            .unwrap();
        assert_eq!(card.range, b.card_memory().unwrap().bytes, "{name}");
        assert!(sh.verilog.contains(&format!(
            "#(.MEM_BYTES(64'h{:016x}))",
            b.card_memory().unwrap().bytes
        )));

        // the card port left unconnected
        let mut bad = d.clone();
        bad.intf_nets.retain(|(a, _)| a != "tern_0/m_axi_card");
        assert!(bad.check(&sh).unwrap_err().contains("m_axi_card"), "{name}");
        // the host port wired twice
        let mut bad = d.clone();
        bad.intf_nets
            .push(("tern_0/m_axi_host".into(), "smc_regs/S00_AXI".into()));
        assert!(
            bad.check(&sh)
                .unwrap_err()
                .contains("more than one connection"),
            "{name}"
        );
        // the register window too small for the card top's 16 address bits
        let mut bad = d.clone();
        for w in &mut bad.windows {
            if w.slave == "tern_0/s_axi_lite" {
                w.range = 4096;
            }
        }
        assert!(
            bad.check(&sh).unwrap_err().contains("register block"),
            "{name}"
        );
        // the card window not the card memory
        let mut bad = d.clone();
        for w in &mut bad.windows {
            if w.space == "tern_0/m_axi_card" {
                w.range /= 2;
            }
        }
        assert!(bad.check(&sh).unwrap_err().contains("card port"), "{name}");
        // a second module cell
        let mut bad = d.clone();
        let mut extra = bad
            .cells
            .iter()
            .find(|c| c.name == "tern_0")
            .unwrap()
            .clone();
        extra.name = "tern_1".into();
        bad.cells.push(extra);
        assert!(
            bad.check(&sh).unwrap_err().contains("module cells"),
            "{name}"
        );
    }
}

/// A config the card top does not support cannot go on a host board: the error says why.
#[test]
fn host_boards_need_a_card_top() {
    let boards = Boards::builtin().unwrap();
    let cfg = ArrayConfig::builtin("small").unwrap();
    let mut g = tern_hdl::emit::generate(&cfg, HdlOptions::default()).unwrap();
    g.manifest.card = None;
    let b = boards.get("alveo-u55c").unwrap();
    let e = project_texts(b, &g, "x", &[]).unwrap_err().to_string();
    assert!(e.contains("card top does not support"), "{e}");
}
