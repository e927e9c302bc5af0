//! Vivado projects for the Xilinx boards, generated from data.
//!
//! Nothing here has run on a real Vivado (none is available to the project): the scripts are
//! checked structurally ([`BlockDesign::check`], tests against golden files) and say so in
//! their header.
//!
//! `write_project` writes, into `<out>/vivado/`:
//! - `create_project.tcl`: creates the project for the board's part (and board part when its
//!   board files are installed), adds the RTL and the constraints, and for a host board builds
//!   the block design from a [`BlockDesign`] value: cells (Xilinx IP by name, the version
//!   picked from the installed catalogue, and the card shell as a module reference), external
//!   ports, interface and net connections, address windows (set, then checked by the script);
//! - `build.tcl`: sources `create_project.tcl`, runs synthesis and implementation to a
//!   bitstream, writes utilization and timing reports;
//! - the board's `.xdc` and a generated `timing.xdc` (the array clock at `clock.target_mhz`
//!   when the board clock comes from a pin).
//!
//! Host boards carry the card top (docs/card.md) in its shell ([`crate::shell::CardShell`]):
//! its AXI4-Lite register block, its host port (AXI4 master on host memory) and its card port
//! (AXI4 master on card memory). The PCIe design ([`xdma_design`]) puts XDMA in AXI bridge
//! mode in front of the registers and the host port and the HBM behind the card port; the Zynq
//! design ([`zynq_design`]) puts the PS's HPM0 in front of the registers and its HP0/HP1
//! ports behind the two memory ports. Both are built from the shell's description (interface
//! names, address and data widths from the card top's port list, `tern_hdl::card::card_ports`)
//! and the board data (`[pcie]`, `[vivado.card_memory]`).

use crate::board::{Board, ClockSource, Host, MemoryIp};
use crate::error::{write_file, SynthError};
use crate::shell::{self, AxiPort, CardShell};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use tern_hdl::emit::Generated;

/// A block design cell.
#[derive(Debug, Clone, PartialEq)]
pub enum CellKind {
    /// A Xilinx catalogue IP by its name (`xdma`, `axi_dma`, …); the script picks the newest
    /// installed version.
    Ip(String),
    /// An RTL module of the project (`create_bd_cell -type module -reference`).
    Module(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub name: String,
    pub kind: CellKind,
    /// `CONFIG.*` properties, in order.
    pub config: Vec<(String, String)>,
}

/// An external (board) port of the block design.
#[derive(Debug, Clone, PartialEq)]
pub enum Port {
    /// A plain port: name, input?, width, type (`clk`, `rst`, `data`), active-low reset.
    Plain {
        name: String,
        input: bool,
        width: u32,
        ty: &'static str,
        active_low: bool,
    },
    /// An interface port: name, slave?, interface VLNV, `CONFIG.*` properties.
    Intf {
        name: String,
        slave: bool,
        vlnv: String,
        config: Vec<(String, String)>,
    },
}

impl Port {
    pub fn name(&self) -> &str {
        match self {
            Port::Plain { name, .. } | Port::Intf { name, .. } => name,
        }
    }

    /// The top-level HDL port names this port becomes in the generated wrapper.
    pub fn hdl_names(&self) -> Vec<String> {
        match self {
            Port::Plain { name, .. } => vec![name.clone()],
            Port::Intf { name, vlnv, .. } if vlnv.contains("diff_clock_rtl") => {
                vec![format!("{name}_clk_p"), format!("{name}_clk_n")]
            }
            // GT lanes are placed by the IP, not by the XDC
            Port::Intf { .. } => vec![],
        }
    }
}

/// A block design, as data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockDesign {
    pub name: String,
    pub cells: Vec<Cell>,
    pub ports: Vec<Port>,
    /// Interface connections: endpoints are `cell/pin` or an external interface port name.
    pub intf_nets: Vec<(String, String)>,
    /// Net connections: each net lists its endpoints (`cell/pin` or an external port name).
    pub nets: Vec<Vec<String>>,
    /// Raw TCL run after the cells are created (board automation), guarded by the script.
    pub automation: Vec<String>,
    /// Address windows tern sets and checks; Vivado assigns the rest.
    pub windows: Vec<Window>,
}

/// An address window: what a master address space (`cell/space`) sees of a slave interface
/// (`cell/pin`).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub space: String,
    pub slave: String,
    pub offset: u64,
    pub range: u64,
    /// true: one segment set to `offset`/`range`; false: the slave's own segments at their
    /// fixed addresses (memory controllers), which must cover `offset..offset + range` (the
    /// script checks it after assignment).
    pub fixed: bool,
}

fn cfg(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl BlockDesign {
    fn cell(&mut self, name: &str, kind: CellKind, config: Vec<(String, String)>) {
        self.cells.push(Cell {
            name: name.to_string(),
            kind,
            config,
        });
    }

    fn ip(&mut self, name: &str, ip: &str, config: &[(&str, String)]) {
        self.cell(name, CellKind::Ip(ip.to_string()), cfg(config));
    }

    fn intf(&mut self, a: impl Into<String>, b: impl Into<String>) {
        self.intf_nets.push((a.into(), b.into()));
    }

    fn net(&mut self, ends: &[&str]) {
        self.nets.push(ends.iter().map(|s| s.to_string()).collect());
    }

    /// Structural checks: unique names; every endpoint names an existing cell or port; no
    /// endpoint in two connections; every external port connected; exactly one module cell,
    /// the shell, with every interface, the clock and the reset (and the interrupt, if it has
    /// one) connected exactly once; address windows: the register block mapped once with the
    /// range its address width decodes, the host port given a window from 0, the card port a
    /// window of exactly the card memory (`card_base`, `mem_bytes`); every window between a
    /// connected master interface of an existing cell and a connected slave interface.
    pub fn check(&self, shell: &CardShell) -> Result<(), String> {
        let mut cells = BTreeSet::new();
        for c in &self.cells {
            if !cells.insert(c.name.as_str()) {
                return Err(format!("cell `{}` defined twice", c.name));
            }
        }
        let mut ports = BTreeSet::new();
        for p in &self.ports {
            if !ports.insert(p.name()) || cells.contains(p.name()) {
                return Err(format!("port `{}` defined twice", p.name()));
            }
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let ends = self
            .intf_nets
            .iter()
            .flat_map(|(a, b)| [a.as_str(), b.as_str()])
            .chain(self.nets.iter().flatten().map(String::as_str));
        for e in ends {
            match e.split_once('/') {
                Some((c, pin)) => {
                    if !cells.contains(c) {
                        return Err(format!("`{e}`: no cell `{c}`"));
                    }
                    if pin.is_empty() {
                        return Err(format!("`{e}`: empty pin name"));
                    }
                }
                None => {
                    if !ports.contains(e) {
                        return Err(format!("`{e}`: no external port of that name"));
                    }
                }
            }
            *seen.entry(e).or_default() += 1;
        }
        // an output pin may drive several sinks in one net; no endpoint may be in two nets
        if let Some((e, _)) = seen.iter().find(|(_, n)| **n > 1) {
            return Err(format!("`{e}` is in more than one connection"));
        }
        for p in &self.ports {
            if !seen.contains_key(p.name()) {
                return Err(format!("external port `{}` is not connected", p.name()));
            }
        }
        for n in &self.nets {
            if n.len() < 2 {
                return Err(format!("net {n:?} has fewer than two endpoints"));
            }
        }
        let modules: Vec<&Cell> = self
            .cells
            .iter()
            .filter(|c| matches!(c.kind, CellKind::Module(_)))
            .collect();
        let [cell] = modules.as_slice() else {
            return Err(format!(
                "{} module cells, expected one (the shell)",
                modules.len()
            ));
        };
        if cell.kind != CellKind::Module(shell.module.clone()) {
            return Err(format!(
                "module cell `{}` is {:?}, expected `{}`",
                cell.name, cell.kind, shell.module
            ));
        }
        let mut needed: Vec<&str> = shell.interfaces().iter().map(|i| i.name.as_str()).collect();
        needed.extend([shell.clock.as_str(), shell.reset_n.as_str()]);
        needed.extend(shell.irq.as_deref());
        for pin in needed {
            let e = format!("{}/{pin}", cell.name);
            if seen.get(e.as_str()) != Some(&1) {
                return Err(format!("shell pin `{e}` is not connected exactly once"));
            }
        }
        // address windows
        let intf_ends: BTreeSet<&str> = self
            .intf_nets
            .iter()
            .flat_map(|(a, b)| [a.as_str(), b.as_str()])
            .collect();
        for w in &self.windows {
            let space_cell = w.space.split_once('/').map(|(c, _)| c);
            if !space_cell.is_some_and(|c| cells.contains(c)) {
                return Err(format!(
                    "window {w:?}: no cell for address space `{}`",
                    w.space
                ));
            }
            if !intf_ends.contains(w.slave.as_str()) {
                return Err(format!(
                    "window {w:?}: slave `{}` is not connected",
                    w.slave
                ));
            }
            if w.range == 0 || w.offset.checked_add(w.range).is_none() {
                return Err(format!("window {w:?}: empty or past 2^64"));
            }
            if w.fixed && (!w.range.is_power_of_two() || !w.offset.is_multiple_of(w.range)) {
                return Err(format!(
                    "window {w:?}: a fixed window is a power of two, aligned"
                ));
            }
        }
        let pin = |i: &AxiPort| format!("{}/{}", cell.name, i.name);
        let lite: Vec<&Window> = self
            .windows
            .iter()
            .filter(|w| w.slave == pin(&shell.lite))
            .collect();
        let want = 1u64 << shell.lite.addr_bits;
        match lite.as_slice() {
            [w] if w.fixed && w.range == want => {}
            _ => {
                return Err(format!(
                    "the register block `{}` needs one fixed window of {want} bytes (its {} address bits), has {lite:?}",
                    pin(&shell.lite),
                    shell.lite.addr_bits
                ))
            }
        }
        let of_space = |i: &AxiPort| -> Vec<&Window> {
            self.windows.iter().filter(|w| w.space == pin(i)).collect()
        };
        match of_space(&shell.host).as_slice() {
            [w] if w.offset == 0 => {}
            other => {
                return Err(format!(
                    "the host port `{}` needs one window from address 0, has {other:?}",
                    pin(&shell.host)
                ))
            }
        }
        match of_space(&shell.card).as_slice() {
            [w] if w.offset == shell.card_base && w.range == shell.mem_bytes => {}
            other => {
                return Err(format!(
                    "the card port `{}` needs one window of the card memory ({:#x} bytes at {:#x}), has {other:?}",
                    pin(&shell.card),
                    shell.mem_bytes,
                    shell.card_base
                ))
            }
        }
        for i in shell.interfaces() {
            if !intf_ends.contains(pin(i).as_str()) {
                return Err(format!("shell interface `{}` is not connected", pin(i)));
            }
        }
        Ok(())
    }

    /// The TCL that builds this design (inside an open project).
    pub fn tcl(&self) -> String {
        let mut t = String::new();
        let w = &mut t;
        let _ = writeln!(w, "create_bd_design {}", self.name);
        let _ = writeln!(w, "current_bd_design {}", self.name);
        let _ = writeln!(w, "\n# cells");
        for c in &self.cells {
            match &c.kind {
                CellKind::Ip(ip) => {
                    let _ = writeln!(w, "create_bd_cell -type ip -vlnv [tern_ip {ip}] {}", c.name);
                }
                CellKind::Module(m) => {
                    let _ = writeln!(w, "create_bd_cell -type module -reference {m} {}", c.name);
                }
            }
            if !c.config.is_empty() {
                let _ = writeln!(w, "set_property -dict [list \\");
                for (k, v) in &c.config {
                    let _ = writeln!(w, "    CONFIG.{k} {{{v}}} \\");
                }
                let _ = writeln!(w, "] [get_bd_cells {}]", c.name);
            }
        }
        if !self.automation.is_empty() {
            let _ = writeln!(w, "\n# board automation (needs the board files)");
            let _ = writeln!(w, "if {{$tern_board_part_ok}} {{");
            for a in &self.automation {
                let _ = writeln!(w, "    {a}");
            }
            let _ = writeln!(w, "}}");
        }
        let _ = writeln!(w, "\n# external ports");
        for p in &self.ports {
            match p {
                Port::Plain {
                    name,
                    input,
                    width,
                    ty,
                    active_low,
                } => {
                    let dir = if *input { "I" } else { "O" };
                    let range = if *width > 1 {
                        format!(" -from {} -to 0", width - 1)
                    } else {
                        String::new()
                    };
                    let ty = if *ty == "data" {
                        String::new()
                    } else {
                        format!(" -type {ty}")
                    };
                    let _ = writeln!(w, "create_bd_port -dir {dir}{range}{ty} {name}");
                    if *active_low {
                        let _ = writeln!(
                            w,
                            "set_property CONFIG.POLARITY ACTIVE_LOW [get_bd_ports {name}]"
                        );
                    }
                }
                Port::Intf {
                    name,
                    slave,
                    vlnv,
                    config,
                } => {
                    let mode = if *slave { "Slave" } else { "Master" };
                    let _ = writeln!(w, "create_bd_intf_port -mode {mode} -vlnv {vlnv} {name}");
                    for (k, v) in config {
                        let _ = writeln!(
                            w,
                            "set_property CONFIG.{k} {{{v}}} [get_bd_intf_ports {name}]"
                        );
                    }
                }
            }
        }
        let ep_intf = |e: &str| {
            if e.contains('/') {
                format!("[get_bd_intf_pins {e}]")
            } else {
                format!("[get_bd_intf_ports {e}]")
            }
        };
        let ep = |e: &str| {
            if e.contains('/') {
                format!("[get_bd_pins {e}]")
            } else {
                format!("[get_bd_ports {e}]")
            }
        };
        let _ = writeln!(w, "\n# interface connections");
        for (a, b) in &self.intf_nets {
            let _ = writeln!(w, "connect_bd_intf_net {} {}", ep_intf(a), ep_intf(b));
        }
        let _ = writeln!(w, "\n# nets");
        for n in &self.nets {
            let ends: Vec<String> = n.iter().map(|e| ep(e)).collect();
            let _ = writeln!(w, "connect_bd_net {}", ends.join(" "));
        }
        let _ = writeln!(
            w,
            "\n# addresses: the windows tern checks, then the rest by Vivado"
        );
        if !self.windows.is_empty() {
            let _ = writeln!(w, "proc tern_expect_window {{space lo size}} {{");
            let _ = writeln!(w, "    set spans {{}}");
            let _ = writeln!(
                w,
                "    foreach s [get_bd_addr_segs -of_objects [get_bd_addr_spaces $space]] {{"
            );
            let _ = writeln!(w, "        lappend spans [list [expr {{[get_property OFFSET $s]}}] [expr {{[get_property RANGE $s]}}]]");
            let _ = writeln!(w, "    }}");
            let _ = writeln!(w, "    set cur [expr {{$lo}}]");
            let _ = writeln!(w, "    foreach sp [lsort -integer -index 0 $spans] {{");
            let _ = writeln!(w, "        lassign $sp o r");
            let _ = writeln!(
                w,
                "        if {{$o <= $cur && $o + $r > $cur}} {{ set cur [expr {{$o + $r}}] }}"
            );
            let _ = writeln!(w, "    }}");
            let _ = writeln!(w, "    if {{$cur < $lo + $size}} {{ error \"tern: address space $space maps [format 0x%x $lo] + [format 0x%x $size] only up to [format 0x%x $cur]\" }}");
            let _ = writeln!(w, "}}");
        }
        for win in &self.windows {
            let segs = format!(
                "[get_bd_addr_segs -of_objects [get_bd_intf_pins {}]]",
                win.slave
            );
            let space = format!("[get_bd_addr_spaces {}]", win.space);
            if win.fixed {
                let _ = writeln!(
                    w,
                    "assign_bd_address -offset {:#018x} -range {} -target_address_space {space} {segs}",
                    win.offset,
                    size_str(win.range)
                );
            } else {
                let _ = writeln!(w, "assign_bd_address -target_address_space {space} {segs}");
            }
        }
        let _ = writeln!(w, "assign_bd_address");
        for win in &self.windows {
            let _ = writeln!(
                w,
                "tern_expect_window {} {:#x} {:#x}",
                win.space, win.offset, win.range
            );
        }
        let _ = writeln!(w, "validate_bd_design");
        let _ = writeln!(w, "save_bd_design");
        t
    }
}

/// A range as Vivado writes it: `64K`, `16G`, `256T`.
pub fn size_str(bytes: u64) -> String {
    for (shift, unit) in [
        (60, "E"),
        (50, "P"),
        (40, "T"),
        (30, "G"),
        (20, "M"),
        (10, "K"),
    ] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// XDMA AXI data width (bits) for a PCIe link: 32 bits per lane per 8 GT/s class at 250 MHz,
/// at most 512.
pub fn xdma_axi_bits(gen: u32, lanes: u32) -> u32 {
    let per_lane = match gen {
        1 => 8,
        2 => 16,
        3 => 32,
        _ => 64,
    };
    (per_lane * lanes).clamp(64, 512)
}

fn link_speed(gen: u32) -> &'static str {
    match gen {
        1 => "2.5_GT/s",
        2 => "5.0_GT/s",
        3 => "8.0_GT/s",
        _ => "16.0_GT/s",
    }
}

fn mhz(x: f64) -> String {
    format!("{x:.3}")
}

/// Host IOVAs the card's host port reaches through the PCIe bridge: AXI addresses
/// `0..2^HOST_WINDOW_BITS`, passed to PCIe unchanged (the VFIO driver hands out IOVAs in
/// 1 GiB..1 TiB + 1 GiB).
pub const HOST_WINDOW_BITS: u32 = 48;

/// Where the PS's HPM0 (FPD) port maps the card top's registers on the Zynq design.
pub const ZYNQ_REGS_BASE: u64 = 0xA000_0000;

/// On the Zynq design the host port reaches PS DDR through HP0; its window checked from 0 is
/// DDR_LOW (2 GiB; physical addresses, no SMMU).
pub const ZYNQ_HOST_WINDOW: u64 = 0x8000_0000;

/// The reference clock the clocking wizard makes for the HBM (and its APB ports), MHz.
pub const HBM_REF_MHZ: f64 = 100.0;

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn board_err(board: &Board, message: &str) -> SynthError {
    SynthError::Board {
        board: board.name().to_string(),
        message: message.into(),
    }
}

/// The PCIe card design (docs/synthesis.md): XDMA as an AXI bridge — BAR0 on its AXI master
/// (`M_AXI_B`) to the card top's registers, the card top's host port to its AXI slave
/// (`S_AXI_B`, AXI addresses passed to PCIe unchanged) —, the card port to the HBM, the card
/// top in its own clock (`clk_wiz` from XDMA's `axi_aclk` at the config's target), SmartConnects
/// crossing clocks and converting widths and protocols.
pub fn xdma_design(
    board: &Board,
    shell: &CardShell,
    target_mhz: f64,
) -> Result<BlockDesign, SynthError> {
    let pcie = board
        .spec
        .pcie
        .as_ref()
        .ok_or_else(|| board_err(board, "host xdma needs [pcie]"))?;
    let mem = board
        .card_memory()
        .filter(|m| m.ip == MemoryIp::Hbm)
        .ok_or_else(|| board_err(board, "host xdma needs [vivado.card_memory] ip = \"hbm\""))?;
    let stacks = mem.stacks.unwrap_or(1);
    let port = mem.port.clone().unwrap_or_else(|| "SAXI_00".into());
    let port_no = port.trim_start_matches("SAXI_").to_string();
    let axi_bits = xdma_axi_bits(pcie.gen, pcie.lanes);
    let regs = 1u64 << shell.lite.addr_bits;
    let mut d = BlockDesign {
        name: "tern_bd".into(),
        ..Default::default()
    };
    d.ip(
        "xdma_0",
        "xdma",
        &[
            ("functional_mode", "AXI_Bridge".into()),
            ("mode_selection", "Advanced".into()),
            ("pcie_blk_locn", pcie.block.clone()),
            ("pl_link_cap_max_link_width", format!("X{}", pcie.lanes)),
            ("pl_link_cap_max_link_speed", link_speed(pcie.gen).into()),
            ("ref_clk_freq", "100_MHz".into()),
            ("axi_addr_width", "64".into()),
            ("axi_data_width", format!("{axi_bits}_bit")),
            ("axisten_freq", "250".into()),
            ("en_axi_master_if", "true".into()),
            ("en_axi_slave_if", "true".into()),
            // BAR0: the register block, at AXI address 0 of M_AXI_B
            ("pf0_bar0_scale", "Kilobytes".into()),
            ("pf0_bar0_size", (regs / 1024).to_string()),
            ("pciebar2axibar_0", format!("{:#018x}", 0)),
            // one AXI BAR: S_AXI_B addresses go to PCIe unchanged (host IOVAs)
            ("axibar_num", "1".into()),
            ("axibar2pciebar_0", format!("{:#018x}", 0)),
            ("pf0_base_class_menu", "Processing_accelerators".into()),
            ("pf0_sub_class_interface_menu", "Unknown".into()),
        ],
    );
    d.ip(
        "refclk_buf",
        "util_ds_buf",
        &[("C_BUF_TYPE", "IBUFDSGTE".into())],
    );
    d.ip(
        "clk_card",
        "clk_wiz",
        &[
            ("PRIM_IN_FREQ", mhz(250.0)),
            ("PRIM_SOURCE", "No_buffer".into()),
            ("CLKOUT1_REQUESTED_OUT_FREQ", mhz(target_mhz)),
            ("CLKOUT2_USED", "true".into()),
            ("CLKOUT2_REQUESTED_OUT_FREQ", mhz(HBM_REF_MHZ)),
            ("USE_RESET", "false".into()),
            ("USE_LOCKED", "true".into()),
        ],
    );
    d.ip(
        "rst_card",
        "proc_sys_reset",
        &[("C_EXT_RESET_HIGH", "0".into())],
    );
    d.ip(
        "rst_ref",
        "proc_sys_reset",
        &[("C_EXT_RESET_HIGH", "0".into())],
    );
    let smc2 = [
        ("NUM_SI", "1".to_string()),
        ("NUM_MI", "1".into()),
        ("NUM_CLKS", "2".into()),
    ];
    d.ip("smc_regs", "smartconnect", &smc2);
    d.ip("smc_host", "smartconnect", &smc2);
    d.ip(
        "smc_mem",
        "smartconnect",
        &[("NUM_SI", "1".into()), ("NUM_MI", "1".into())],
    );
    let mut hbm_cfg: Vec<(String, String)> = mem
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let axi_mhz = format!("{}", target_mhz.round() as u64);
    hbm_cfg.push(("USER_AXI_CLK_FREQ".into(), axi_mhz.clone()));
    hbm_cfg.push(("USER_AXI_INPUT_CLK_FREQ".into(), axi_mhz));
    for s in 0..stacks {
        let r = format!("{}", HBM_REF_MHZ.round() as u64);
        hbm_cfg.push((format!("USER_HBM_REF_CLK_{s}"), r.clone()));
        hbm_cfg.push((format!("USER_APB_PCLK_{s}"), r));
    }
    for i in 0..16 * stacks {
        let p = format!("{i:02}");
        if p != port_no {
            hbm_cfg.push((format!("USER_SAXI_{p}"), "false".into()));
        }
    }
    d.cell("hbm_0", CellKind::Ip("hbm".into()), hbm_cfg);
    d.cell("tern_0", CellKind::Module(shell.module.clone()), vec![]);
    d.ports.push(Port::Intf {
        name: "pcie_refclk".into(),
        slave: true,
        vlnv: "xilinx.com:interface:diff_clock_rtl:1.0".into(),
        config: vec![("FREQ_HZ".into(), "100000000".into())],
    });
    d.ports.push(Port::Intf {
        name: "pcie_mgt".into(),
        slave: false,
        vlnv: "xilinx.com:interface:pcie_7x_mgt_rtl:1.0".into(),
        config: vec![],
    });
    d.ports.push(Port::Plain {
        name: "pcie_perstn".into(),
        input: true,
        width: 1,
        ty: "rst",
        active_low: true,
    });
    d.intf("pcie_refclk", "refclk_buf/CLK_IN_D");
    d.intf("xdma_0/pcie_mgt", "pcie_mgt");
    d.net(&["refclk_buf/IBUF_DS_ODIV2", "xdma_0/sys_clk"]);
    d.net(&["refclk_buf/IBUF_OUT", "xdma_0/sys_clk_gt"]);
    d.net(&["pcie_perstn", "xdma_0/sys_rst_n"]);
    // registers: BAR0 → M_AXI_B (PCIe clock) → SmartConnect → card clock, AXI4-Lite
    d.intf("xdma_0/M_AXI_B", "smc_regs/S00_AXI");
    d.intf("smc_regs/M00_AXI", format!("tern_0/{}", shell.lite.name));
    // host port: card clock → SmartConnect → S_AXI_B (PCIe clock)
    d.intf(format!("tern_0/{}", shell.host.name), "smc_host/S00_AXI");
    d.intf("smc_host/M00_AXI", "xdma_0/S_AXI_B");
    // card port: card clock, which also clocks the HBM port (512 → 256 bits, AXI4 → AXI3)
    d.intf(format!("tern_0/{}", shell.card.name), "smc_mem/S00_AXI");
    d.intf("smc_mem/M00_AXI", format!("hbm_0/{port}"));
    // clocks and resets: PCIe side (axi_aclk), card side (clk_out1), HBM reference (clk_out2)
    d.nets.push(strs(&[
        "xdma_0/axi_aclk",
        "clk_card/clk_in1",
        "smc_regs/aclk",
        "smc_host/aclk1",
    ]));
    d.nets.push(strs(&[
        "xdma_0/axi_aresetn",
        "rst_card/ext_reset_in",
        "rst_ref/ext_reset_in",
        "smc_regs/aresetn",
    ]));
    d.net(&[
        "clk_card/locked",
        "rst_card/dcm_locked",
        "rst_ref/dcm_locked",
    ]);
    let card_clk = format!("hbm_0/AXI_{port_no}_ACLK");
    d.nets.push(strs(&[
        "clk_card/clk_out1",
        "rst_card/slowest_sync_clk",
        "smc_regs/aclk1",
        "smc_host/aclk",
        "smc_mem/aclk",
        &format!("tern_0/{}", shell.clock),
        &card_clk,
    ]));
    d.nets.push(strs(&[
        "rst_card/peripheral_aresetn",
        &format!("tern_0/{}", shell.reset_n),
        &format!("hbm_0/AXI_{port_no}_ARESET_N"),
    ]));
    d.net(&[
        "rst_card/interconnect_aresetn",
        "smc_host/aresetn",
        "smc_mem/aresetn",
    ]);
    let mut ref_clk = strs(&["clk_card/clk_out2", "rst_ref/slowest_sync_clk"]);
    let mut ref_rst = strs(&["rst_ref/peripheral_aresetn"]);
    for s in 0..stacks {
        ref_clk.push(format!("hbm_0/HBM_REF_CLK_{s}"));
        ref_clk.push(format!("hbm_0/APB_{s}_PCLK"));
        ref_rst.push(format!("hbm_0/APB_{s}_PRESET_N"));
    }
    d.nets.push(ref_clk);
    d.nets.push(ref_rst);
    d.windows = vec![
        Window {
            space: "xdma_0/M_AXI_B".into(),
            slave: format!("tern_0/{}", shell.lite.name),
            offset: 0,
            range: regs,
            fixed: true,
        },
        Window {
            space: format!("tern_0/{}", shell.host.name),
            slave: "xdma_0/S_AXI_B".into(),
            offset: 0,
            range: 1 << HOST_WINDOW_BITS,
            fixed: true,
        },
        Window {
            space: format!("tern_0/{}", shell.card.name),
            slave: format!("hbm_0/{port}"),
            offset: shell.card_base,
            range: shell.mem_bytes,
            fixed: false,
        },
    ];
    tie_low(board, &mut d);
    Ok(d)
}

fn tie_low(board: &Board, d: &mut BlockDesign) {
    let ties = board
        .spec
        .vivado
        .as_ref()
        .map(|v| v.tie_low.clone())
        .unwrap_or_default();
    if ties.is_empty() {
        return;
    }
    d.ip(
        "const_low",
        "xlconstant",
        &[("CONST_VAL", "0".into()), ("CONST_WIDTH", "1".into())],
    );
    let mut net = vec!["const_low/dout".to_string()];
    for t in ties {
        d.ports.push(Port::Plain {
            name: t.clone(),
            input: false,
            width: 1,
            ty: "data",
            active_low: false,
        });
        net.push(t);
    }
    d.nets.push(net);
}

/// The Zynq UltraScale+ design: the PS's HPM0 (FPD) port reaches the card top's registers, the
/// host port reaches PS DDR through HP0 and the card port the board's carve-out of it through
/// HP1, each through a SmartConnect (128-bit PS ports, AXI4-Lite registers); the whole design
/// runs on pl_clk0 at the config's target clock.
pub fn zynq_design(
    board: &Board,
    shell: &CardShell,
    target_mhz: f64,
) -> Result<BlockDesign, SynthError> {
    board
        .card_memory()
        .filter(|m| m.ip == MemoryIp::PsDdr)
        .ok_or_else(|| {
            board_err(
                board,
                "host zynq-mpsoc needs [vivado.card_memory] ip = \"ps-ddr\"",
            )
        })?;
    let mut d = BlockDesign {
        name: "tern_bd".into(),
        ..Default::default()
    };
    d.ip(
        "ps",
        "zynq_ultra_ps_e",
        &[
            // M_AXI_HPM0_FPD on, HPM1_FPD and HPM0_LPD off
            ("PSU__USE__M_AXI_GP0", "1".into()),
            ("PSU__USE__M_AXI_GP1", "0".into()),
            ("PSU__USE__M_AXI_GP2", "0".into()),
            // S_AXI_HP0_FPD (host port) and S_AXI_HP1_FPD (card port)
            ("PSU__USE__S_AXI_GP2", "1".into()),
            ("PSU__USE__S_AXI_GP3", "1".into()),
            ("PSU__FPGA_PL0_ENABLE", "1".into()),
            (
                "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ",
                format!("{}", target_mhz.round() as u64),
            ),
        ],
    );
    d.automation.push(
        "apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset \"1\"} [get_bd_cells ps]"
            .to_string(),
    );
    d.ip("rst_pl", "proc_sys_reset", &[]);
    for smc in ["smc_regs", "smc_host", "smc_card"] {
        d.ip(
            smc,
            "smartconnect",
            &[("NUM_SI", "1".into()), ("NUM_MI", "1".into())],
        );
    }
    d.cell("tern_0", CellKind::Module(shell.module.clone()), vec![]);
    d.net(&["ps/pl_resetn0", "rst_pl/ext_reset_in"]);
    d.intf("ps/M_AXI_HPM0_FPD", "smc_regs/S00_AXI");
    d.intf("smc_regs/M00_AXI", format!("tern_0/{}", shell.lite.name));
    d.intf(format!("tern_0/{}", shell.host.name), "smc_host/S00_AXI");
    d.intf("smc_host/M00_AXI", "ps/S_AXI_HP0_FPD");
    d.intf(format!("tern_0/{}", shell.card.name), "smc_card/S00_AXI");
    d.intf("smc_card/M00_AXI", "ps/S_AXI_HP1_FPD");
    d.nets.push(strs(&[
        "ps/pl_clk0",
        "ps/maxihpm0_fpd_aclk",
        "ps/saxihp0_fpd_aclk",
        "ps/saxihp1_fpd_aclk",
        "rst_pl/slowest_sync_clk",
        "smc_regs/aclk",
        "smc_host/aclk",
        "smc_card/aclk",
        &format!("tern_0/{}", shell.clock),
    ]));
    d.net(&[
        "rst_pl/peripheral_aresetn",
        &format!("tern_0/{}", shell.reset_n),
    ]);
    d.net(&[
        "rst_pl/interconnect_aresetn",
        "smc_regs/aresetn",
        "smc_host/aresetn",
        "smc_card/aresetn",
    ]);
    d.windows = vec![
        Window {
            space: "ps/Data".into(),
            slave: format!("tern_0/{}", shell.lite.name),
            offset: ZYNQ_REGS_BASE,
            range: 1 << shell.lite.addr_bits,
            fixed: true,
        },
        Window {
            space: format!("tern_0/{}", shell.host.name),
            slave: "ps/S_AXI_HP0_FPD".into(),
            offset: 0,
            range: ZYNQ_HOST_WINDOW,
            fixed: false,
        },
        Window {
            space: format!("tern_0/{}", shell.card.name),
            slave: "ps/S_AXI_HP1_FPD".into(),
            offset: shell.card_base,
            range: shell.mem_bytes,
            fixed: false,
        },
    ];
    tie_low(board, &mut d);
    Ok(d)
}

/// Files of a generated project.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectFiles {
    pub dir: PathBuf,
    pub create_tcl: PathBuf,
    pub build_tcl: PathBuf,
    pub constraints: Vec<PathBuf>,
    pub sources: Vec<PathBuf>,
    /// Top of the implementation (the block design wrapper or the board wrapper).
    pub top: String,
    pub host: Host,
    /// The card shell (host boards): its interfaces, widths and card memory.
    pub shell: Option<CardShell>,
}

/// The texts of a project, in memory: (relative path, contents).
#[derive(Debug, Clone)]
pub struct ProjectTexts {
    pub files: Vec<(String, String)>,
    pub top: String,
    pub design: Option<BlockDesign>,
    pub shell: Option<CardShell>,
}

const HEADER: &str = "# Generated by tern-bitstreams (tern synth); do not edit.\n# NOT TESTED ON A REAL VIVADO: the generator is checked structurally only (docs/synthesis.md).\n";

/// The card shell of a host board (`None` for a board without a host).
pub fn board_shell(board: &Board, g: &Generated) -> Result<Option<CardShell>, SynthError> {
    match (board.host(), board.card_memory()) {
        (Host::None, _) => Ok(None),
        (_, Some(mem)) => shell::card_shell(&g.manifest, mem).map(Some),
        (h, None) => Err(SynthError::Board {
            board: board.name().to_string(),
            message: format!("host {} needs [vivado.card_memory]", h.as_str()),
        }),
    }
}

/// Builds the project texts. `rtl_top` is the synthesized top (board wrapper or card shell)
/// and `sources` the RTL file names under `rtl/`.
pub fn project_texts(
    board: &Board,
    g: &Generated,
    rtl_top: &str,
    sources: &[String],
) -> Result<ProjectTexts, SynthError> {
    let m = &g.manifest;
    let cfg = &m.config;
    let proj = format!("{}_{}", m.top, board.name().replace('-', "_"));
    let host = board.host();
    let shell = board_shell(board, g)?;
    let design = match (host, &shell) {
        (Host::Xdma, Some(sh)) => Some(xdma_design(board, sh, cfg.clock.target_mhz)?),
        (Host::ZynqMpsoc, Some(sh)) => Some(zynq_design(board, sh, cfg.clock.target_mhz)?),
        _ => None,
    };
    if let (Some(d), Some(sh)) = (&design, &shell) {
        d.check(sh)
            .map_err(|e| SynthError::Unsupported(format!("block design: {e}")))?;
    }
    let xdc_name = board.spec.io.constraints.clone();
    let mut timing = String::from(HEADER);
    if board.spec.clock.source == ClockSource::Pin {
        let port = board.spec.clock.port.clone().unwrap_or_default();
        let _ = writeln!(
            timing,
            "# the array clock at the config's clock.target_mhz = {} (the board oscillator is {} MHz: timing is checked against the target)",
            cfg.clock.target_mhz, board.spec.clock.mhz
        );
        let _ = writeln!(
            timing,
            "create_clock -period {:.3} -name array_clk [get_ports {{{port}}}]",
            1000.0 / cfg.clock.target_mhz
        );
    } else {
        let _ = writeln!(
            timing,
            "# the array clock comes from {} IP, which constrains it (target {} MHz)",
            match board.spec.clock.source {
                ClockSource::Ps => "the PS (pl_clk0)",
                _ => "the clocking wizard after XDMA's axi_aclk",
            },
            cfg.clock.target_mhz
        );
    }
    let top = if design.is_some() {
        "tern_bd_wrapper".to_string()
    } else {
        rtl_top.to_string()
    };
    let mut c = String::from(HEADER);
    let _ = writeln!(
        c,
        "# Creates the Vivado project `{proj}` for board {} ({}), config \"{}\" ({}x{}).",
        board.name(),
        board.spec.part.device,
        cfg.name,
        cfg.array.rows,
        cfg.array.cols
    );
    let _ = writeln!(c, "# Usage: vivado -mode batch -source create_project.tcl   (or build.tcl to go to a bitstream)");
    let _ = writeln!(
        c,
        "set tern_dir [file dirname [file normalize [info script]]]"
    );
    let _ = writeln!(c, "set tern_proj {proj}");
    let _ = writeln!(
        c,
        "create_project $tern_proj [file join $tern_dir $tern_proj] -part {} -force",
        board.spec.part.device
    );
    let bp = board
        .spec
        .vivado
        .as_ref()
        .and_then(|v| v.board_part.clone());
    match &bp {
        Some(bp) => {
            let _ = writeln!(c, "set tern_board_part {{{bp}}}");
            let _ = writeln!(c, "set tern_board_part_ok [expr {{[llength [get_board_parts -quiet $tern_board_part]] > 0}}]");
            let _ = writeln!(c, "if {{$tern_board_part_ok}} {{");
            let _ = writeln!(
                c,
                "    set_property board_part $tern_board_part [current_project]"
            );
            let _ = writeln!(c, "}} else {{");
            let _ = writeln!(c, "    puts \"tern: board files for $tern_board_part are not installed; using the bare part\"");
            let _ = writeln!(c, "}}");
        }
        None => {
            let _ = writeln!(c, "set tern_board_part_ok 0");
        }
    }
    let _ = writeln!(c, "\n# the newest installed version of a catalogue IP");
    let _ = writeln!(c, "proc tern_ip {{name}} {{");
    let _ = writeln!(
        c,
        "    set defs [lsort -dictionary [get_ipdefs -all -filter \"NAME == $name\"]]"
    );
    let _ = writeln!(c, "    if {{[llength $defs] == 0}} {{ error \"tern: IP $name is not in this Vivado's catalogue\" }}");
    let _ = writeln!(c, "    return [lindex $defs end]");
    let _ = writeln!(c, "}}");
    let _ = writeln!(c, "\n# sources and constraints");
    let src_list: Vec<String> = sources
        .iter()
        .map(|s| format!("[file join $tern_dir .. rtl {s}]"))
        .collect();
    let _ = writeln!(c, "add_files -norecurse [list {}]", src_list.join(" "));
    let _ = writeln!(
        c,
        "add_files -fileset constrs_1 -norecurse [list [file join $tern_dir {xdc_name}] [file join $tern_dir timing.xdc]]"
    );
    let _ = writeln!(c, "update_compile_order -fileset sources_1");
    if let Some(d) = &design {
        let _ = writeln!(c, "\n# block design `{}`", d.name);
        c.push_str(&d.tcl());
        let _ = writeln!(
            c,
            "set tern_wrapper [make_wrapper -files [get_files {}.bd] -top]",
            d.name
        );
        let _ = writeln!(c, "add_files -norecurse $tern_wrapper");
    }
    let _ = writeln!(c, "set_property top {top} [current_fileset]");
    let _ = writeln!(c, "update_compile_order -fileset sources_1");
    let _ = writeln!(c, "puts \"tern: project $tern_proj created\"");

    let mut b = String::from(HEADER);
    let _ = writeln!(b, "# Builds the bitstream of `{proj}` and writes utilization and timing reports next to this script.");
    let _ = writeln!(b, "# Usage: vivado -mode batch -source build.tcl");
    let _ = writeln!(
        b,
        "set tern_dir [file dirname [file normalize [info script]]]"
    );
    let _ = writeln!(b, "source [file join $tern_dir create_project.tcl]");
    let _ = writeln!(b, "launch_runs synth_1 -jobs 4");
    let _ = writeln!(b, "wait_on_run synth_1");
    let _ = writeln!(b, "if {{[get_property PROGRESS [get_runs synth_1]] != \"100%\"}} {{ error \"tern: synthesis failed\" }}");
    let _ = writeln!(b, "launch_runs impl_1 -to_step write_bitstream -jobs 4");
    let _ = writeln!(b, "wait_on_run impl_1");
    let _ = writeln!(b, "if {{[get_property PROGRESS [get_runs impl_1]] != \"100%\"}} {{ error \"tern: implementation failed\" }}");
    let _ = writeln!(b, "open_run impl_1");
    let _ = writeln!(
        b,
        "report_utilization -file [file join $tern_dir utilization.rpt]"
    );
    let _ = writeln!(
        b,
        "report_utilization -hierarchical -file [file join $tern_dir utilization_hier.rpt]"
    );
    let _ = writeln!(
        b,
        "report_timing_summary -file [file join $tern_dir timing.rpt]"
    );
    let _ = writeln!(
        b,
        "puts \"tern: bitstream in [get_property DIRECTORY [get_runs impl_1]]\""
    );

    let files = vec![
        ("create_project.tcl".to_string(), c),
        ("build.tcl".to_string(), b),
        (xdc_name, board.constraints().to_string()),
        ("timing.xdc".to_string(), timing),
    ];
    Ok(ProjectTexts {
        files,
        top,
        design,
        shell,
    })
}

/// Writes the project into `<out>/vivado/` (the RTL is in `<out>/rtl/`): the array's files
/// and `extra` (the wrapper, or the card top and its shell).
pub fn write_project(
    board: &Board,
    g: &Generated,
    rtl_top: &str,
    extra: &[String],
    out: &Path,
) -> Result<ProjectFiles, SynthError> {
    let mut sources: Vec<String> = g.manifest.files.clone();
    sources.extend(extra.iter().cloned());
    let t = project_texts(board, g, rtl_top, &sources)?;
    let dir = out.join("vivado");
    let mut constraints = Vec::new();
    for (name, text) in &t.files {
        let p = dir.join(name);
        write_file(&p, text)?;
        if name.ends_with(".xdc") {
            constraints.push(p);
        }
    }
    Ok(ProjectFiles {
        create_tcl: dir.join("create_project.tcl"),
        build_tcl: dir.join("build.tcl"),
        dir,
        constraints,
        sources: sources.iter().map(|s| out.join("rtl").join(s)).collect(),
        top: t.top,
        host: board.host(),
        shell: t.shell,
    })
}
