//! The card shell `tern_NAME_shell`: the card top (`tern_NAME_card`, docs/hdl-card.md) with
//! the port names and the few AXI signals a Vivado block design needs.
//!
//! The card top's ports are an AXI4-Lite slave (`s_*`) and two AXI4 master subsets (`h_*` on
//! host memory, `c_*` on card memory) with a synchronous active-high reset. The shell, generated
//! from the card top's port description ([`tern_hdl::card::card_ports`], carried by the
//! manifest), gives them names Vivado infers interfaces from (`s_axi_lite_*`, `m_axi_host_*`,
//! `m_axi_card_*`), one clock `aclk` with the interfaces associated and an active-low reset
//! `aresetn`, and adds what the card top leaves out (docs/hdl-card.md, "AXI mapping"):
//! - AxSIZE = the data width, AxBURST = INCR, AxCACHE = 0011, AxPROT = 000 on both masters;
//! - a register slice on each master's AR channel (the card top may change `araddr` while
//!   `arvalid` waits for `arready`; the slice takes the request on the cycle it is offered);
//! - the board's card-memory base added to every card-port address, and the card top's
//!   `MEM_BYTES` set to the board's card memory size.
//!
//! The card top has no interrupt: the driver polls (docs/driver.md), so the shell has none
//! either and [`CardShell::irq`] is `None`.

use crate::board::CardMemory;
use crate::error::SynthError;
use serde::Serialize;
use std::fmt::Write;
use tern_hdl::emit::{Manifest, Port};

/// What an AXI master of the card top addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Space {
    /// Host memory (IOVAs), through the PCIe bridge or the PS.
    Host,
    /// Card memory (`0..MEM_BYTES`).
    Card,
}

/// One AXI interface of the shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AxiPort {
    /// Interface name (`s_axi_lite`, `m_axi_host`, `m_axi_card`).
    pub name: String,
    /// The card top's port prefix (`s_`, `h_`, `c_`).
    pub card_prefix: String,
    pub master: bool,
    /// AXI4-Lite (else AXI4).
    pub lite: bool,
    /// From the card top's `*_awaddr` width.
    pub addr_bits: u32,
    /// From the card top's `*_wdata` width.
    pub data_bits: u32,
    /// Masters: what they address.
    pub space: Option<Space>,
}

/// The shell: module name, interfaces, Verilog.
#[derive(Debug, Clone, Serialize)]
pub struct CardShell {
    pub module: String,
    /// The card top it instantiates, and that top's file.
    pub card_top: String,
    pub card_file: String,
    pub clock: String,
    pub reset_n: String,
    /// The card top has no interrupt (the driver polls).
    pub irq: Option<String>,
    pub lite: AxiPort,
    pub host: AxiPort,
    pub card: AxiPort,
    /// The card top's `MEM_BYTES`.
    pub mem_bytes: u64,
    /// AXI address of card address 0 on the card port.
    pub card_base: u64,
    #[serde(skip)]
    pub verilog: String,
}

impl CardShell {
    /// The three interfaces: registers, host port, card port.
    pub fn interfaces(&self) -> [&AxiPort; 3] {
        [&self.lite, &self.host, &self.card]
    }

    /// The shell port a card-top port is connected to (`s_awaddr` → `s_axi_lite_awaddr`), or
    /// `None` for the clock and reset.
    pub fn shell_port(&self, card_port: &str) -> Option<String> {
        self.interfaces().iter().find_map(|i| {
            card_port
                .strip_prefix(i.card_prefix.as_str())
                .map(|sig| format!("{}_{sig}", i.name))
        })
    }
}

/// Signals a master gets from the shell (not from the card top), with their widths.
const MASTER_TIES: [(&str, u32); 8] = [
    ("arsize", 3),
    ("arburst", 2),
    ("arcache", 4),
    ("arprot", 3),
    ("awsize", 3),
    ("awburst", 2),
    ("awcache", 4),
    ("awprot", 3),
];

fn range(w: u32) -> String {
    if w == 1 {
        String::new()
    } else {
        format!("[{}:0] ", w - 1)
    }
}

fn unsupported(m: &Manifest, why: String) -> SynthError {
    SynthError::Unsupported(format!(
        "card shell for config \"{}\": {why}",
        m.config.name
    ))
}

/// Builds the shell of the manifest's card top for a board's card memory. Fails when the
/// config has no card top (its geometry is one the card top does not support) or the card
/// top's ports are not the groups this shell knows.
pub fn card_shell(m: &Manifest, mem: &CardMemory) -> Result<CardShell, SynthError> {
    let card = m.card.as_ref().ok_or_else(|| {
        unsupported(
            m,
            "the card top does not support this geometry (docs/hdl-card.md), so there is no card top to put on a host board".into(),
        )
    })?;
    let ports = &card.ports;
    let find = |name: &str| ports.iter().find(|p| p.name == name);
    let width = |name: &str| {
        find(name)
            .map(|p| p.width)
            .ok_or_else(|| unsupported(m, format!("the card top has no port `{name}`")))
    };
    let intf = |name: &str, prefix: &str, lite: bool, space: Option<Space>| {
        Ok::<_, SynthError>(AxiPort {
            name: name.to_string(),
            card_prefix: prefix.to_string(),
            master: space.is_some(),
            lite,
            addr_bits: width(&format!("{prefix}awaddr"))?,
            data_bits: width(&format!("{prefix}wdata"))?,
            space,
        })
    };
    let clock = ports
        .iter()
        .find(|p| p.role == "clock")
        .ok_or_else(|| unsupported(m, "the card top has no clock port".into()))?;
    let reset = ports
        .iter()
        .find(|p| p.role == "reset")
        .ok_or_else(|| unsupported(m, "the card top has no reset port".into()))?;
    let mut shell = CardShell {
        module: format!("{}_shell", m.top),
        card_top: card.top.clone(),
        card_file: card.file.clone(),
        clock: "aclk".into(),
        reset_n: "aresetn".into(),
        irq: None,
        lite: intf("s_axi_lite", "s_", true, None)?,
        host: intf("m_axi_host", "h_", false, Some(Space::Host))?,
        card: intf("m_axi_card", "c_", false, Some(Space::Card))?,
        mem_bytes: mem.bytes,
        card_base: mem.base,
        verilog: String::new(),
    };
    // every card-top port is the clock, the reset or in one of the three groups, with the
    // role the group expects
    for p in ports {
        if p.name == clock.name || p.name == reset.name {
            continue;
        }
        let group = shell
            .interfaces()
            .into_iter()
            .find(|i| p.name.starts_with(&i.card_prefix))
            .ok_or_else(|| unsupported(m, format!("card top port `{}` is in no group", p.name)))?;
        let want = if group.lite { "axi-lite" } else { "axi" };
        if p.role != want {
            return Err(unsupported(
                m,
                format!(
                    "card top port `{}` has role `{}`, expected `{want}`",
                    p.name, p.role
                ),
            ));
        }
    }
    if shell.card_base.checked_add(shell.mem_bytes).is_none() {
        return Err(unsupported(m, "card memory base + bytes overflows".into()));
    }
    shell.verilog = verilog(&shell, ports, &clock.name, &reset.name);
    Ok(shell)
}

fn verilog(s: &CardShell, ports: &[Port], clk: &str, rst: &str) -> String {
    let mut v = String::new();
    let w = &mut v;
    let _ = writeln!(
        w,
        "// {}: the card top {} with block-design port names (tern-bitstreams, docs/synthesis.md).",
        s.module, s.card_top
    );
    let _ = writeln!(
        w,
        "// Generated; do not edit. Card memory: {} bytes at AXI address {:#x} of the card port.",
        s.mem_bytes, s.card_base
    );
    let _ = writeln!(w, "`default_nettype none");
    let _ = writeln!(w, "module {} (", s.module);
    let busif: Vec<&str> = s.interfaces().iter().map(|i| i.name.as_str()).collect();
    let _ = writeln!(
        w,
        "    (* X_INTERFACE_PARAMETER = \"ASSOCIATED_BUSIF {}, ASSOCIATED_RESET {}\" *)",
        busif.join(":"),
        s.reset_n
    );
    let mut lines = vec![
        format!("    input  wire {}", s.clock),
        format!("    input  wire {}", s.reset_n),
    ];
    for p in ports {
        let Some(name) = s.shell_port(&p.name) else {
            continue;
        };
        let dir = if p.dir == "input" { "input " } else { "output" };
        lines.push(format!("    {dir} wire {}{name}", range(p.width)));
    }
    for i in [&s.host, &s.card] {
        for (sig, width) in MASTER_TIES {
            lines.push(format!("    output wire {}{}_{sig}", range(width), i.name));
        }
    }
    let n = lines.len();
    for (k, l) in lines.into_iter().enumerate() {
        let _ = writeln!(w, "{l}{}", if k + 1 == n { "" } else { "," });
    }
    let _ = writeln!(w, ");");
    let _ = writeln!(
        w,
        "    // the card top's reset is synchronous, active high; {} comes from a proc_sys_reset",
        s.reset_n
    );
    let _ = writeln!(w, "    wire rst = ~{};", s.reset_n);
    for i in [&s.host, &s.card] {
        let (n, c) = (&i.name, &i.card_prefix);
        let bytes = i.data_bits / 8;
        let size = 31 - bytes.max(1).leading_zeros();
        let _ = writeln!(w, "    // {n}: {}-byte INCR bursts", bytes);
        for (sig, value) in [
            ("arsize", format!("3'd{size}")),
            ("arburst", "2'b01".into()),
            ("arcache", "4'b0011".into()),
            ("arprot", "3'b000".into()),
            ("awsize", format!("3'd{size}")),
            ("awburst", "2'b01".into()),
            ("awcache", "4'b0011".into()),
            ("awprot", "3'b000".into()),
        ] {
            let _ = writeln!(w, "    assign {n}_{sig} = {value};");
        }
        let base = if i.space == Some(Space::Card) {
            s.card_base
        } else {
            0
        };
        let ab = i.addr_bits;
        let add = |sig: &str| {
            if base == 0 {
                format!("{c}{sig}")
            } else {
                format!("{c}{sig} + {ab}'h{base:x}")
            }
        };
        let lb = ports
            .iter()
            .find(|p| p.name == format!("{c}arlen"))
            .map_or(8, |p| p.width);
        let _ = writeln!(
            w,
            "    // AR register slice: takes the request on the cycle the card top offers it"
        );
        let _ = writeln!(w, "    wire {c}arready_i;");
        let _ = writeln!(w, "    reg {n}_ar_full;");
        let _ = writeln!(w, "    reg {}{n}_ar_addr;", range(ab));
        let _ = writeln!(w, "    reg {}{n}_ar_len;", range(lb));
        let _ = writeln!(w, "    wire [{}:0] {c}araddr_i;", ab - 1);
        let _ = writeln!(w, "    wire [{}:0] {c}arlen_i;", lb - 1);
        let _ = writeln!(w, "    wire {c}arvalid_i;");
        let _ = writeln!(w, "    assign {c}arready_i = ~{n}_ar_full | {n}_arready;");
        let _ = writeln!(w, "    always @(posedge {}) begin", s.clock);
        let _ = writeln!(w, "        if (rst) begin");
        let _ = writeln!(w, "            {n}_ar_full <= 1'b0;");
        let _ = writeln!(w, "        end else if ({c}arready_i) begin");
        let _ = writeln!(w, "            {n}_ar_full <= {c}arvalid_i;");
        let _ = writeln!(
            w,
            "            if ({c}arvalid_i) begin {n}_ar_addr <= {}; {n}_ar_len <= {c}arlen_i; end",
            add("araddr_i")
        );
        let _ = writeln!(w, "        end");
        let _ = writeln!(w, "    end");
        let _ = writeln!(w, "    assign {n}_arvalid = {n}_ar_full;");
        let _ = writeln!(w, "    assign {n}_araddr = {n}_ar_addr;");
        let _ = writeln!(w, "    assign {n}_arlen = {n}_ar_len;");
        if base != 0 {
            let _ = writeln!(w, "    wire [{}:0] {c}awaddr_i;", ab - 1);
            let _ = writeln!(w, "    assign {n}_awaddr = {};", add("awaddr_i"));
        }
    }
    let _ = writeln!(
        w,
        "    {} #(.MEM_BYTES(64'h{:016x})) u_card (",
        s.card_top, s.mem_bytes
    );
    let n = ports.len();
    for (k, p) in ports.iter().enumerate() {
        let c = if k + 1 == n { "" } else { "," };
        let name = &p.name;
        let rhs = if *name == clk {
            s.clock.clone()
        } else if *name == rst {
            "rst".to_string()
        } else {
            let intf = s
                .interfaces()
                .into_iter()
                .find(|i| name.starts_with(&i.card_prefix))
                .expect("checked by card_shell");
            let sig = &name[intf.card_prefix.len()..];
            let sliced = intf.master && matches!(sig, "arvalid" | "arready" | "araddr" | "arlen");
            let based = intf.space == Some(Space::Card) && s.card_base != 0 && sig == "awaddr";
            if sliced || based {
                format!("{name}_i")
            } else {
                format!("{}_{sig}", intf.name)
            }
        };
        let _ = writeln!(w, "        .{name}({rhs}){c}");
    }
    let _ = writeln!(w, "    );");
    let _ = writeln!(w, "endmodule");
    let _ = writeln!(w, "`default_nettype wire");
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_hdl::HdlOptions;
    use tern_spec::ArrayConfig;

    fn mem(base: u64) -> CardMemory {
        CardMemory::ps_ddr(base, 1 << 30)
    }

    #[test]
    fn every_card_port_has_one_shell_port_of_its_width() {
        let cfg = ArrayConfig::builtin("small").unwrap();
        let g = tern_hdl::emit::generate(&cfg, HdlOptions::default()).unwrap();
        let s = card_shell(&g.manifest, &mem(0x8_4000_0000)).unwrap();
        let ports = tern_hdl::card::card_ports();
        for p in &ports {
            match s.shell_port(&p.name) {
                Some(sp) => {
                    let dir = if p.dir == "input" { "input " } else { "output" };
                    let decl = format!("    {dir} wire {}{sp}", range(p.width));
                    assert_eq!(
                        s.verilog
                            .lines()
                            .filter(|l| l.trim_end_matches(',') == decl)
                            .count(),
                        1,
                        "{decl}"
                    );
                }
                None => assert!(p.role == "clock" || p.role == "reset", "{}", p.name),
            }
            // connected once in the instance
            assert_eq!(
                s.verilog.matches(&format!("        .{}(", p.name)).count(),
                1,
                "{}",
                p.name
            );
        }
        assert_eq!(s.lite.addr_bits, 16);
        assert_eq!((s.card.data_bits, s.host.data_bits), (512, 512));
        assert!(s.verilog.contains("assign m_axi_card_arsize = 3'd6;"));
        assert!(s.verilog.contains("c_awaddr_i + 64'h840000000"));
        assert!(s.verilog.contains("#(.MEM_BYTES(64'h0000000040000000))"));
        // no base: the card port's addresses pass through
        let s0 = card_shell(&g.manifest, &mem(0)).unwrap();
        assert!(s0.verilog.contains(".c_awaddr(m_axi_card_awaddr)"));
    }

    #[test]
    fn a_config_without_card_top_is_refused() {
        let cfg = ArrayConfig::builtin("small").unwrap();
        let mut g = tern_hdl::emit::generate(&cfg, HdlOptions::default()).unwrap();
        g.manifest.card = None;
        let e = card_shell(&g.manifest, &mem(0)).unwrap_err().to_string();
        assert!(e.contains("does not support this geometry"), "{e}");
    }
}
