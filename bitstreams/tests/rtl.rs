//! The generated RTL (board wrapper, card shell around the card top) under Verilator:
//! lint-clean with -Wall.
//!
//! Skipped (with "skipped: …") when Verilator is missing, failed under CI=true.

use std::path::{Path, PathBuf};
use std::process::Command;
use tern_bitstreams::board::CardMemory;
use tern_bitstreams::shell::card_shell;
use tern_bitstreams::wrapper::{board_wrapper, BoardPins};
use tern_hdl::HdlOptions;
use tern_spec::ArrayConfig;

fn have_verilator(test: &str) -> bool {
    let ok = Command::new("verilator").arg("--version").output().is_ok();
    if !ok {
        if tern_bitstreams::tools::under_ci() {
            panic!("verilator is not installed (required under CI=true)");
        }
        println!("skipped: {test}: verilator is not installed");
    }
    ok
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_array(dir: &Path, cfg: &ArrayConfig) -> tern_hdl::emit::Manifest {
    let g = tern_hdl::emit::generate(cfg, HdlOptions::default()).unwrap();
    for (n, t) in &g.files {
        std::fs::write(dir.join(n), t).unwrap();
    }
    g.manifest
}

fn lint(dir: &Path, top: &str, files: &[String]) {
    let out = Command::new("verilator")
        .current_dir(dir)
        .args(["--lint-only", "-Wall", "--top-module", top])
        .args(files)
        .output()
        .expect("run verilator");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("%Warning"),
        "{top}:\n{text}"
    );
}

#[test]
fn wrapper_and_card_shell_are_lint_clean() {
    if !have_verilator("wrapper_and_card_shell_are_lint_clean") {
        return;
    }
    let dir = scratch("rtl_lint");
    let cfg = ArrayConfig::builtin("small").unwrap();
    let m = write_array(&dir, &cfg);
    let pins = BoardPins {
        clock_port: "clk_25mhz".into(),
        led_port: "led".into(),
        leds: 8,
    };
    let (v, _) = board_wrapper(&m, &pins);
    let board_top = format!("{}_board", m.top);
    std::fs::write(dir.join(format!("{board_top}.v")), v).unwrap();
    let mut files = m.files.clone();
    files.push(format!("{board_top}.v"));
    lint(&dir, &board_top, &files);
    // the shell with and without a card-memory base (the Zynq carve-out, the HBM at 0)
    for base in [0, 0x8_4000_0000] {
        let mem = CardMemory::ps_ddr(base, 1 << 30);
        let sh = card_shell(&m, &mem).unwrap();
        std::fs::write(dir.join(format!("{}.v", sh.module)), &sh.verilog).unwrap();
        let mut files = m.files.clone();
        files.push(sh.card_file.clone());
        files.push(format!("{}.v", sh.module));
        lint(&dir, &sh.module, &files);
    }
}

/// (input?, width, name) of each port of a generated module's ANSI header.
fn header_ports(v: &str) -> Vec<(bool, u32, String)> {
    v.lines()
        .map(str::trim)
        .filter_map(|l| {
            let (input, rest) = if let Some(r) = l.strip_prefix("input ") {
                (true, r)
            } else {
                (false, l.strip_prefix("output ")?)
            };
            let rest = rest.trim().strip_prefix("wire ")?.trim_end_matches(',');
            let (width, name) = match rest.strip_prefix('[') {
                Some(r) => {
                    let (hi, name) = r.split_once(":0] ")?;
                    (hi.parse::<u32>().ok()? + 1, name)
                }
                None => (1, rest),
            };
            Some((input, width, name.trim().to_string()))
        })
        .collect()
}

/// The shell's card-port AR register slice and address base, around a stand-in card top that
/// changes `c_araddr`/`c_arlen` every cycle and drops `c_arvalid` at times: the requests the
/// stand-in saw accepted leave the shell in order, plus the base, each held stable while
/// `arready` is low (a pseudo-random pattern); the AxSIZE/AxBURST ties are 64-byte INCR.
#[test]
fn card_shell_slices_ar_and_adds_the_base() {
    if !have_verilator("card_shell_slices_ar_and_adds_the_base") {
        return;
    }
    let dir = scratch("rtl_shell_sim");
    let cfg = ArrayConfig::builtin("small").unwrap();
    let g = tern_hdl::emit::generate(&cfg, HdlOptions::default()).unwrap();
    let base: u64 = 0x8_4000_0000;
    let mem = CardMemory::ps_ddr(base, 1 << 30);
    let sh = card_shell(&g.manifest, &mem).unwrap();
    std::fs::write(dir.join("shell.v"), &sh.verilog).unwrap();
    // the stand-in card top: same module name and ports
    let ports = tern_hdl::card::card_ports();
    let mut stub = format!(
        "module {} #(parameter [63:0] MEM_BYTES = 64'd0) (\n",
        sh.card_top
    );
    let decls: Vec<String> = ports
        .iter()
        .map(|p| {
            let r = if p.width > 1 {
                format!("[{}:0] ", p.width - 1)
            } else {
                String::new()
            };
            format!("  {} wire {r}{}", p.dir, p.name)
        })
        .collect();
    stub.push_str(&decls.join(",\n"));
    stub.push_str("\n);\n  reg [31:0] cyc = 0;\n  always @(posedge clk) cyc <= cyc + 1;\n");
    for p in ports.iter().filter(|p| p.dir == "output") {
        let v = match p.name.as_str() {
            "c_arvalid" => "cyc[0] | cyc[2]".to_string(),
            "c_araddr" => "{26'd0, cyc, 6'd0}".to_string(),
            "c_arlen" => "cyc[7:0]".to_string(),
            "c_awaddr" => "64'h1000".to_string(),
            _ => format!("{}'d0", p.width),
        };
        stub.push_str(&format!("  assign {} = {v};\n", p.name));
    }
    stub.push_str(
        "  reg [63:0] acc_addr [0:1023];\n  reg [7:0] acc_len [0:1023];\n  integer nacc = 0;\n\
         always @(posedge clk) if (!rst && c_arvalid && c_arready) begin\n\
         acc_addr[nacc] <= c_araddr; acc_len[nacc] <= c_arlen; nacc <= nacc + 1;\n  end\nendmodule\n",
    );
    std::fs::write(dir.join("card_stub.v"), stub).unwrap();
    // the testbench
    let mut tb = String::from(
        "module tb;\n  reg aclk = 0;\n  reg aresetn = 0;\n  always #5 aclk = ~aclk;\n\
         reg [15:0] lfsr = 16'hACE1;\n\
         always @(posedge aclk) lfsr <= {lfsr[14:0], lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]};\n",
    );
    let mut conns = Vec::new();
    for (input, width, name) in header_ports(&sh.verilog) {
        conns.push(format!(".{name}({name})"));
        if name == "aclk" || name == "aresetn" {
            continue;
        }
        let r = if width > 1 {
            format!("[{}:0] ", width - 1)
        } else {
            String::new()
        };
        let drive = match (input, name.as_str()) {
            (true, "m_axi_card_arready") => " = lfsr[0] & lfsr[3]".to_string(),
            (true, _) => format!(" = {width}'d0"),
            (false, _) => String::new(),
        };
        tb.push_str(&format!("  wire {r}{name}{drive};\n"));
    }
    tb.push_str(&format!("  {} dut ({});\n", sh.module, conns.join(", ")));
    tb.push_str(&format!(
        "  reg [63:0] out_addr [0:1023];\n  reg [7:0] out_len [0:1023];\n  integer nout = 0, errors = 0, i;\n\
         reg was_stall = 0;\n  reg [63:0] held_addr;\n  reg [7:0] held_len;\n\
         always @(posedge aclk) if (aresetn) begin\n\
           if (was_stall && (!m_axi_card_arvalid || m_axi_card_araddr != held_addr || m_axi_card_arlen != held_len)) begin\n\
             errors = errors + 1; $display(\"changed while stalled at %0t\", $time);\n\
           end\n\
           if (m_axi_card_arvalid && m_axi_card_arready) begin\n\
             out_addr[nout] <= m_axi_card_araddr; out_len[nout] <= m_axi_card_arlen; nout <= nout + 1;\n\
           end\n\
           was_stall <= m_axi_card_arvalid && !m_axi_card_arready;\n\
           held_addr <= m_axi_card_araddr; held_len <= m_axi_card_arlen;\n\
         end\n\
         initial begin\n\
           repeat (4) @(posedge aclk);\n  aresetn = 1;\n  repeat (400) @(posedge aclk);\n  #1;\n\
           if (nout < 50) begin errors = errors + 1; $display(\"only %0d requests\", nout); end\n\
           for (i = 0; i < nout; i = i + 1) begin\n\
             if (out_addr[i] != dut.u_card.acc_addr[i] + 64'h{base:x} || out_len[i] != dut.u_card.acc_len[i]) begin\n\
               errors = errors + 1; $display(\"request %0d: %h/%0d, the card offered %h/%0d\", i, out_addr[i], out_len[i], dut.u_card.acc_addr[i], dut.u_card.acc_len[i]);\n\
             end\n\
           end\n\
           if (dut.u_card.nacc < nout || dut.u_card.nacc > nout + 1) begin errors = errors + 1; $display(\"accepted %0d, issued %0d\", dut.u_card.nacc, nout); end\n\
           if (m_axi_card_arsize != 3'd6 || m_axi_card_arburst != 2'b01 || m_axi_host_awsize != 3'd6) begin errors = errors + 1; $display(\"ties\"); end\n\
           if (m_axi_card_awaddr != 64'h1000 + 64'h{base:x}) begin errors = errors + 1; $display(\"awaddr %h\", m_axi_card_awaddr); end\n\
           if (errors == 0) $display(\"PASS %0d requests\", nout); else $display(\"FAIL %0d\", errors);\n\
           $finish;\n\
         end\nendmodule\n"
    ));
    std::fs::write(dir.join("tb.sv"), tb).unwrap();
    let out = Command::new("verilator")
        .current_dir(&dir)
        .args([
            "--binary",
            "--timing",
            "-Wno-fatal",
            "-Wno-lint",
            "-Wno-style",
            "--top-module",
            "tb",
            "-j",
            "2",
            "-o",
            "tb",
            "card_stub.v",
            "shell.v",
            "tb.sv",
        ])
        .output()
        .expect("run verilator");
    assert!(
        out.status.success(),
        "verilator --binary failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(dir.join("obj_dir/tb"))
        .current_dir(&dir)
        .output()
        .expect("run the testbench");
    let text =
        String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success() && text.contains("PASS"), "{text}");
}
