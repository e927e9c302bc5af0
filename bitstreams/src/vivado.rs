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
//!   picked from the installed catalogue, and the adapter as a module reference), external
//!   ports, interface and net connections, addresses;
//! - `build.tcl`: sources `create_project.tcl`, runs synthesis and implementation to a
//!   bitstream, writes utilization and timing reports;
//! - the board's `.xdc` and a generated `timing.xdc` (the array clock at `clock.target_mhz`
//!   when the board clock comes from a pin).
//!
//! Block designs are built from the adapter's description ([`crate::axi::Adapter`]): one XDMA
//! H2C channel per input stream and one C2H channel per output stream (PCIe cards), or one
//! AXI DMA engine per stream on the PS's HP port (Zynq UltraScale+), with width converters
//! where the stream's beat differs from the DMA width and clock converters into the array's
//! clock. A card top that describes its streams and register port the same way replaces the
//! adapter without changing this code.

use crate::axi::{self, Adapter};
use crate::board::{Board, ClockSource, Host};
use crate::error::{write_file, SynthError};
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
    /// endpoint in two connections; every external port connected; for each module cell,
    /// every interface and clock/reset of `adapter` connected exactly once.
    pub fn check(&self, adapter: &Adapter) -> Result<(), String> {
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
        for c in &self.cells {
            if let CellKind::Module(m) = &c.kind {
                if *m != adapter.module {
                    return Err(format!(
                        "module cell `{}` is `{m}`, expected `{}`",
                        c.name, adapter.module
                    ));
                }
                let mut needed: Vec<String> =
                    adapter.streams.iter().map(|s| s.port.clone()).collect();
                needed.push(adapter.lite.clone());
                needed.push(adapter.clock.clone());
                needed.push(adapter.reset_n.clone());
                needed.push(adapter.irq.clone());
                for pin in needed {
                    let e = format!("{}/{pin}", c.name);
                    if seen.get(e.as_str()) != Some(&1) {
                        return Err(format!("adapter pin `{e}` is not connected"));
                    }
                }
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
        let _ = writeln!(w, "\nassign_bd_address");
        let _ = writeln!(w, "validate_bd_design");
        let _ = writeln!(w, "save_bd_design");
        t
    }
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

/// The PCIe card design: XDMA (streams on H2C/C2H, registers on its AXI-Lite master) and
/// the adapter in the array's clock domain.
pub fn xdma_design(board: &Board, a: &Adapter, target_mhz: f64) -> Result<BlockDesign, SynthError> {
    let pcie = board.spec.pcie.as_ref().ok_or_else(|| SynthError::Board {
        board: board.name().to_string(),
        message: "host xdma needs [pcie]".into(),
    })?;
    let h2c: Vec<_> = a.streams.iter().filter(|s| s.slave).collect();
    let c2h: Vec<_> = a.streams.iter().filter(|s| !s.slave).collect();
    if h2c.len() > 4 || c2h.len() > 4 {
        return Err(SynthError::Unsupported(format!(
            "XDMA has 4 H2C and 4 C2H channels; the adapter has {} input and {} output streams",
            h2c.len(),
            c2h.len()
        )));
    }
    let axi_bits = xdma_axi_bits(pcie.gen, pcie.lanes);
    let axi_bytes = axi_bits / 8;
    let mut d = BlockDesign {
        name: "tern_bd".into(),
        ..Default::default()
    };
    d.ip(
        "xdma_0",
        "xdma",
        &[
            ("functional_mode", "DMA".into()),
            ("mode_selection", "Advanced".into()),
            ("pcie_blk_locn", pcie.block.clone()),
            ("pl_link_cap_max_link_width", format!("X{}", pcie.lanes)),
            ("pl_link_cap_max_link_speed", link_speed(pcie.gen).into()),
            ("ref_clk_freq", "100_MHz".into()),
            ("axi_data_width", format!("{axi_bits}_bit")),
            ("axisten_freq", "250".into()),
            ("xdma_axi_intf_mm", "AXI_Stream".into()),
            ("xdma_rnum_chnl", h2c.len().to_string()),
            ("xdma_wnum_chnl", c2h.len().to_string()),
            ("axilite_master_en", "true".into()),
            ("axilite_master_scale", "Kilobytes".into()),
            ("axilite_master_size", "64".into()),
            ("xdma_num_usr_irq", "1".into()),
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
        "clk_array",
        "clk_wiz",
        &[
            ("PRIM_IN_FREQ", mhz(250.0)),
            ("PRIM_SOURCE", "No_buffer".into()),
            ("CLKOUT1_REQUESTED_OUT_FREQ", mhz(target_mhz)),
            ("USE_RESET", "false".into()),
            ("USE_LOCKED", "true".into()),
        ],
    );
    d.ip(
        "rst_array",
        "proc_sys_reset",
        &[("C_EXT_RESET_HIGH", "0".into())],
    );
    d.ip(
        "smc_lite",
        "smartconnect",
        &[
            ("NUM_SI", "1".into()),
            ("NUM_MI", "1".into()),
            ("NUM_CLKS", "2".into()),
        ],
    );
    d.cell("tern_0", CellKind::Module(a.module.clone()), vec![]);
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
    // clocks and resets: host side (xdma axi_aclk) and array side (clk_array)
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let mut host_clk = strs(&["xdma_0/axi_aclk", "clk_array/clk_in1", "smc_lite/aclk"]);
    let mut host_rst = strs(&[
        "xdma_0/axi_aresetn",
        "rst_array/ext_reset_in",
        "smc_lite/aresetn",
    ]);
    let mut arr_clk = strs(&[
        "clk_array/clk_out1",
        "rst_array/slowest_sync_clk",
        "smc_lite/aclk1",
        "tern_0/aclk",
    ]);
    let mut arr_rst = strs(&["rst_array/peripheral_aresetn", "tern_0/aresetn"]);
    d.net(&["clk_array/locked", "rst_array/dcm_locked"]);
    d.intf("xdma_0/M_AXI_LITE", "smc_lite/S00_AXI");
    d.intf("smc_lite/M00_AXI", format!("tern_0/{}", a.lite));
    d.net(&["tern_0/irq", "xdma_0/usr_irq_req"]);
    let dwidth = |d: &mut BlockDesign,
                  stream: &str,
                  from: u32,
                  to: u32,
                  clk: &mut Vec<String>,
                  rst: &mut Vec<String>| {
        let dw = format!("dw_{stream}");
        d.ip(
            &dw,
            "axis_dwidth_converter",
            &[
                ("S_TDATA_NUM_BYTES", from.to_string()),
                ("M_TDATA_NUM_BYTES", to.to_string()),
            ],
        );
        clk.push(format!("{dw}/aclk"));
        rst.push(format!("{dw}/aresetn"));
        dw
    };
    for (i, s) in h2c.iter().enumerate() {
        // host clock: XDMA → (width converter) → clock converter → array clock: adapter
        let mut src = format!("xdma_0/M_AXIS_H2C_{i}");
        if s.bytes != axi_bytes {
            let dw = dwidth(
                &mut d,
                &s.stream,
                axi_bytes,
                s.bytes,
                &mut host_clk,
                &mut host_rst,
            );
            d.intf(src, format!("{dw}/S_AXIS"));
            src = format!("{dw}/M_AXIS");
        }
        let cc = format!("cc_{}", s.stream);
        d.ip(
            &cc,
            "axis_clock_converter",
            &[("TDATA_NUM_BYTES", s.bytes.to_string())],
        );
        d.intf(src, format!("{cc}/S_AXIS"));
        d.intf(format!("{cc}/M_AXIS"), format!("tern_0/{}", s.port));
        host_clk.push(format!("{cc}/s_axis_aclk"));
        host_rst.push(format!("{cc}/s_axis_aresetn"));
        arr_clk.push(format!("{cc}/m_axis_aclk"));
        arr_rst.push(format!("{cc}/m_axis_aresetn"));
    }
    for (i, s) in c2h.iter().enumerate() {
        // array clock: adapter → clock converter → host clock: (width converter) → XDMA
        let cc = format!("cc_{}", s.stream);
        d.ip(
            &cc,
            "axis_clock_converter",
            &[("TDATA_NUM_BYTES", s.bytes.to_string())],
        );
        d.intf(format!("tern_0/{}", s.port), format!("{cc}/S_AXIS"));
        arr_clk.push(format!("{cc}/s_axis_aclk"));
        arr_rst.push(format!("{cc}/s_axis_aresetn"));
        host_clk.push(format!("{cc}/m_axis_aclk"));
        host_rst.push(format!("{cc}/m_axis_aresetn"));
        let mut src = format!("{cc}/M_AXIS");
        if s.bytes != axi_bytes {
            let dw = dwidth(
                &mut d,
                &s.stream,
                s.bytes,
                axi_bytes,
                &mut host_clk,
                &mut host_rst,
            );
            d.intf(src, format!("{dw}/S_AXIS"));
            src = format!("{dw}/M_AXIS");
        }
        d.intf(src, format!("xdma_0/S_AXIS_C2H_{i}"));
    }
    d.nets.push(host_clk);
    d.nets.push(host_rst);
    d.nets.push(arr_clk);
    d.nets.push(arr_rst);
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

/// Width of the AXI DMA streams on the Zynq design (bytes): the PS HP ports are 128 bits.
pub const ZYNQ_DMA_BYTES: u32 = 16;

/// The Zynq UltraScale+ design: the PS's HPM0 port drives the registers and the DMA engines'
/// control ports; one AXI DMA per stream reads (MM2S) or writes (S2MM) DDR through HP0; the
/// whole design runs on pl_clk0 at the config's target clock.
pub fn zynq_design(board: &Board, a: &Adapter, target_mhz: f64) -> BlockDesign {
    let mut d = BlockDesign {
        name: "tern_bd".into(),
        ..Default::default()
    };
    let n = a.streams.len();
    d.ip(
        "ps",
        "zynq_ultra_ps_e",
        &[
            ("PSU__USE__M_AXI_GP0", "1".into()),
            ("PSU__USE__M_AXI_GP1", "0".into()),
            ("PSU__USE__M_AXI_GP2", "0".into()),
            ("PSU__USE__S_AXI_GP2", "1".into()),
            ("PSU__FPGA_PL0_ENABLE", "1".into()),
            (
                "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ",
                format!("{}", target_mhz.round() as u64),
            ),
            ("PSU__USE__IRQ0", "1".into()),
        ],
    );
    d.automation.push(
        "apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset \"1\"} [get_bd_cells ps]"
            .to_string(),
    );
    d.ip("rst_pl", "proc_sys_reset", &[]);
    d.ip(
        "smc_ctrl",
        "smartconnect",
        &[("NUM_SI", "1".into()), ("NUM_MI", (1 + n).to_string())],
    );
    d.ip(
        "smc_mem",
        "smartconnect",
        &[("NUM_SI", n.to_string()), ("NUM_MI", "1".into())],
    );
    d.ip(
        "irq_concat",
        "xlconcat",
        &[("NUM_PORTS", (1 + n).to_string())],
    );
    d.cell("tern_0", CellKind::Module(a.module.clone()), vec![]);
    let mut clk: Vec<String> = [
        "ps/pl_clk0",
        "ps/maxihpm0_fpd_aclk",
        "ps/saxihp0_fpd_aclk",
        "rst_pl/slowest_sync_clk",
        "smc_ctrl/aclk",
        "smc_mem/aclk",
        "tern_0/aclk",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rst: Vec<String> = [
        "rst_pl/peripheral_aresetn",
        "smc_ctrl/aresetn",
        "smc_mem/aresetn",
        "tern_0/aresetn",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    d.net(&["ps/pl_resetn0", "rst_pl/ext_reset_in"]);
    d.intf("ps/M_AXI_HPM0_FPD", "smc_ctrl/S00_AXI");
    d.intf("smc_ctrl/M00_AXI", format!("tern_0/{}", a.lite));
    d.intf("smc_mem/M00_AXI", "ps/S_AXI_HP0_FPD");
    d.net(&["tern_0/irq", "irq_concat/In0"]);
    d.net(&["irq_concat/dout", "ps/pl_ps_irq0"]);
    let bits = (ZYNQ_DMA_BYTES * 8).to_string();
    for (i, s) in a.streams.iter().enumerate() {
        let dma = format!("dma_{}", s.stream);
        let (mm2s, s2mm) = if s.slave { ("1", "0") } else { ("0", "1") };
        d.ip(
            &dma,
            "axi_dma",
            &[
                ("c_include_sg", "0".into()),
                ("c_sg_length_width", "26".into()),
                ("c_include_mm2s", mm2s.into()),
                ("c_include_s2mm", s2mm.into()),
                ("c_m_axi_mm2s_data_width", bits.clone()),
                ("c_m_axis_mm2s_tdata_width", bits.clone()),
                ("c_m_axi_s2mm_data_width", bits.clone()),
                ("c_s_axis_s2mm_tdata_width", bits.clone()),
                ("c_mm2s_burst_size", "64".into()),
                ("c_s2mm_burst_size", "64".into()),
            ],
        );
        d.intf(
            format!("smc_ctrl/M{:02}_AXI", i + 1),
            format!("{dma}/S_AXI_LITE"),
        );
        let (mm, irq) = if s.slave {
            ("M_AXI_MM2S", "mm2s_introut")
        } else {
            ("M_AXI_S2MM", "s2mm_introut")
        };
        d.intf(format!("{dma}/{mm}"), format!("smc_mem/S{i:02}_AXI"));
        d.net(&[&format!("{dma}/{irq}"), &format!("irq_concat/In{}", i + 1)]);
        clk.push(format!("{dma}/s_axi_lite_aclk"));
        clk.push(format!(
            "{dma}/m_axi_{}_aclk",
            if s.slave { "mm2s" } else { "s2mm" }
        ));
        rst.push(format!("{dma}/axi_resetn"));
        let needs_dw = s.bytes != ZYNQ_DMA_BYTES;
        let dw = format!("dw_{}", s.stream);
        if needs_dw {
            let (sb, mb) = if s.slave {
                (ZYNQ_DMA_BYTES, s.bytes)
            } else {
                (s.bytes, ZYNQ_DMA_BYTES)
            };
            d.ip(
                &dw,
                "axis_dwidth_converter",
                &[
                    ("S_TDATA_NUM_BYTES", sb.to_string()),
                    ("M_TDATA_NUM_BYTES", mb.to_string()),
                ],
            );
            clk.push(format!("{dw}/aclk"));
            rst.push(format!("{dw}/aresetn"));
        }
        let tern = format!("tern_0/{}", s.port);
        match (s.slave, needs_dw) {
            (true, true) => {
                d.intf(format!("{dma}/M_AXIS_MM2S"), format!("{dw}/S_AXIS"));
                d.intf(format!("{dw}/M_AXIS"), tern);
            }
            (true, false) => d.intf(format!("{dma}/M_AXIS_MM2S"), tern),
            (false, true) => {
                d.intf(tern, format!("{dw}/S_AXIS"));
                d.intf(format!("{dw}/M_AXIS"), format!("{dma}/S_AXIS_S2MM"));
            }
            (false, false) => d.intf(tern, format!("{dma}/S_AXIS_S2MM")),
        }
    }
    d.nets.push(clk);
    d.nets.push(rst);
    tie_low(board, &mut d);
    d
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
    /// Adapter streams and widths (host boards), for the docs and the driver.
    pub streams: Vec<axi::AxisStream>,
}

/// The texts of a project, in memory: (relative path, contents).
#[derive(Debug, Clone)]
pub struct ProjectTexts {
    pub files: Vec<(String, String)>,
    pub top: String,
    pub design: Option<BlockDesign>,
    pub adapter: Option<Adapter>,
}

const HEADER: &str = "# Generated by tern-bitstreams (tern synth); do not edit.\n# NOT TESTED ON A REAL VIVADO: the generator is checked structurally only (docs/synthesis.md).\n";

/// Builds the project texts. `rtl_top` is the synthesized top (board wrapper or adapter) and
/// `sources` the RTL file names under `rtl/`.
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
    let (design, adapter) = match host {
        Host::None => (None, None),
        Host::Xdma => {
            let a = axi::adapter(m);
            (Some(xdma_design(board, &a, cfg.clock.target_mhz)?), Some(a))
        }
        Host::ZynqMpsoc => {
            let a = axi::adapter(m);
            (Some(zynq_design(board, &a, cfg.clock.target_mhz)), Some(a))
        }
    };
    if let (Some(d), Some(a)) = (&design, &adapter) {
        d.check(a)
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
        adapter,
    })
}

/// Writes the project into `<out>/vivado/` (the RTL is in `<out>/rtl/`).
pub fn write_project(
    board: &Board,
    g: &Generated,
    rtl_top: &str,
    out: &Path,
) -> Result<ProjectFiles, SynthError> {
    let mut sources: Vec<String> = g.manifest.files.clone();
    sources.push(format!("{rtl_top}.v"));
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
        streams: t.adapter.map(|a| a.streams).unwrap_or_default(),
    })
}
