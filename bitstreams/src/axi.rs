//! The AXI adapter `tern_NAME_axi`: the array top behind AXI4-Lite registers and AXI4-Stream
//! ports, the shape a Vivado block design (XDMA or Zynq DMA) connects to.
//!
//! It stands in for the card top (another part of tern) until that exists: the Vivado
//! generator ([`crate::vivado`]) reads only [`Adapter::streams`], [`Adapter::lite`] and the
//! clock/reset/interrupt names, so a card top that describes itself the same way slots in.
//!
//! Streams: every `valid`/`ready`/`data` group of the manifest becomes an AXI4-Stream port
//! named after the stream (`s_axis_weights`, `s_axis_activations`, `s_axis_scales` in,
//! `m_axis_outputs` out), `tdata` padded to whole bytes; the output stream carries `out_last`
//! as `tlast`. The other output fields (`out_n`, `out_token`) are not sent: the host knows
//! them from the order of the vectors (N tile by N tile, token by token; XDMA's C2H channel
//! has no `tuser`).
//! Registers ([`REGISTERS`]): identification, geometry, the command fields, a start bit,
//! sticky done/error bits (write 1 to clear), the cycle count of the last command, and an
//! interrupt enable. One clock (`aclk`) and an active-low reset (`aresetn`): clock-domain
//! crossing is done by the block design's IP.

use serde::Serialize;
use std::fmt::Write;
use tern_hdl::emit::{Manifest, Port};

/// Magic value of the ID register: ASCII "tern".
pub const ID_MAGIC: u32 = 0x7465_726E;
/// Version of this register map (major in bits 31:16).
pub const ADAPTER_VERSION: u32 = 0x0001_0000;
/// Address bits of the AXI4-Lite port (a 256-byte register block).
pub const LITE_ADDR_BITS: u32 = 8;

/// Access of a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Ro,
    Rw,
    /// Write-only strobe, reads 0.
    Wo,
    /// Read; write 1 to clear.
    W1c,
}

/// One 32-bit register.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Register {
    pub name: &'static str,
    pub offset: u32,
    pub access: Access,
    pub doc: &'static str,
}

/// The register map (byte offsets).
pub const REGISTERS: &[Register] = &[
    Register {
        name: "ID",
        offset: 0x00,
        access: Access::Ro,
        doc: "0x7465726E (\"tern\")",
    },
    Register {
        name: "VERSION",
        offset: 0x04,
        access: Access::Ro,
        doc: "register map version, major in bits 31:16",
    },
    Register {
        name: "GEOMETRY",
        offset: 0x08,
        access: Access::Ro,
        doc: "rows in bits 15:0, cols in bits 31:16",
    },
    Register {
        name: "CONFIG_HASH",
        offset: 0x0C,
        access: Access::Ro,
        doc: "low 32 bits of the config hash (manifest config_hash)",
    },
    Register {
        name: "CTRL",
        offset: 0x10,
        access: Access::Wo,
        doc: "bit 0: start the command in CMD_K/N/M (ignored by the array while busy)",
    },
    Register {
        name: "STATUS",
        offset: 0x14,
        access: Access::W1c,
        doc: "bit 0 busy (live); bit 1 done, bit 2 err: sticky, write 1 to clear",
    },
    Register {
        name: "CMD_K",
        offset: 0x18,
        access: Access::Rw,
        doc: "K of the next command",
    },
    Register {
        name: "CMD_N",
        offset: 0x1C,
        access: Access::Rw,
        doc: "N of the next command",
    },
    Register {
        name: "CMD_M",
        offset: 0x20,
        access: Access::Rw,
        doc: "M (tokens) of the next command",
    },
    Register {
        name: "CYCLES",
        offset: 0x24,
        access: Access::Ro,
        doc: "cycles from the edge that sampled the last start to the edge that raised its done (= tern_hdl::host::ideal_cycles when no stream stalls)",
    },
    Register {
        name: "IRQ_EN",
        offset: 0x28,
        access: Access::Rw,
        doc: "bit 0: raise irq while STATUS.done is set",
    },
    Register {
        name: "OUT_N",
        offset: 0x2C,
        access: Access::Ro,
        doc: "out_n of the last output vector taken (its first output row)",
    },
    Register {
        name: "OUT_TOKEN",
        offset: 0x30,
        access: Access::Ro,
        doc: "out_token of the last output vector taken",
    },
];

/// One AXI4-Stream port of the adapter.
#[derive(Debug, Clone, Serialize)]
pub struct AxisStream {
    /// Stream name from the manifest (`weights`, `activations`, `scales`, `outputs`).
    pub stream: String,
    /// Interface name (`s_axis_weights`, `m_axis_outputs`).
    pub port: String,
    /// true: host → array.
    pub slave: bool,
    /// `tdata` width in bytes.
    pub bytes: u32,
    /// Payload bits used in `tdata`.
    pub bits: u32,
    pub tlast: bool,
}

/// The adapter: module name, Verilog, interfaces.
#[derive(Debug, Clone, Serialize)]
pub struct Adapter {
    pub module: String,
    pub clock: String,
    pub reset_n: String,
    pub irq: String,
    /// AXI4-Lite slave interface name.
    pub lite: String,
    pub streams: Vec<AxisStream>,
    #[serde(skip)]
    pub verilog: String,
}

fn range(w: u32) -> String {
    if w == 1 {
        String::new()
    } else {
        format!("[{}:0] ", w - 1)
    }
}

struct Group<'a> {
    name: &'static str,
    valid: &'a Port,
    ready: &'a Port,
    data: Vec<&'a Port>,
}

fn groups(m: &Manifest) -> Vec<Group<'_>> {
    let mut names: Vec<&'static str> = Vec::new();
    for p in &m.ports {
        if let Some(s) = p.stream {
            if !names.contains(&s) {
                names.push(s);
            }
        }
    }
    names
        .into_iter()
        .filter_map(|s| {
            let of = |role: &str| {
                m.ports
                    .iter()
                    .find(|p| p.stream == Some(s) && p.role == role)
            };
            Some(Group {
                name: s,
                valid: of("valid")?,
                ready: of("ready")?,
                data: m
                    .ports
                    .iter()
                    .filter(|p| p.stream == Some(s) && p.role == "data")
                    .collect(),
            })
        })
        .collect()
}

/// Builds the adapter for a manifest.
pub fn adapter(m: &Manifest) -> Adapter {
    let module = format!("{}_axi", m.top);
    let gs = groups(m);
    let mut streams = Vec::new();
    let mut v = String::new();
    let w = &mut v;
    let _ = writeln!(
        w,
        "// {module}: {} behind AXI4-Lite registers and AXI4-Stream ports (tern-bitstreams).",
        m.top
    );
    let _ = writeln!(
        w,
        "// Generated; do not edit. Register map: docs/synthesis.md. One clock; the block design crosses domains."
    );
    let _ = writeln!(w, "`default_nettype none");
    let _ = writeln!(w, "module {module} (");
    let busif: Vec<String> = std::iter::once("s_axi_lite".to_string())
        .chain(gs.iter().map(|g| {
            let slave = g.valid.dir == "input";
            format!("{}_{}", if slave { "s_axis" } else { "m_axis" }, g.name)
        }))
        .collect();
    let _ = writeln!(
        w,
        "    (* X_INTERFACE_PARAMETER = \"ASSOCIATED_BUSIF {}, ASSOCIATED_RESET aresetn\" *)",
        busif.join(":")
    );
    let _ = writeln!(w, "    input  wire aclk,");
    let _ = writeln!(w, "    input  wire aresetn,");
    let _ = writeln!(
        w,
        "    (* X_INTERFACE_INFO = \"xilinx.com:signal:interrupt:1.0 irq INTERRUPT\" *)"
    );
    let _ = writeln!(w, "    output wire irq,");
    let ab = LITE_ADDR_BITS;
    for (d, wd, n) in [
        ("input ", ab, "awaddr"),
        ("input ", 1, "awvalid"),
        ("output", 1, "awready"),
        ("input ", 32, "wdata"),
        ("input ", 4, "wstrb"),
        ("input ", 1, "wvalid"),
        ("output", 1, "wready"),
        ("output", 2, "bresp"),
        ("output", 1, "bvalid"),
        ("input ", 1, "bready"),
        ("input ", ab, "araddr"),
        ("input ", 1, "arvalid"),
        ("output", 1, "arready"),
        ("output", 32, "rdata"),
        ("output", 2, "rresp"),
        ("output", 1, "rvalid"),
        ("input ", 1, "rready"),
    ] {
        let _ = writeln!(w, "    {d} wire {}s_axi_lite_{n},", range(wd));
    }
    let mut port_lines: Vec<String> = Vec::new();
    for g in &gs {
        let slave = g.valid.dir == "input";
        let prefix = format!("{}_{}", if slave { "s_axis" } else { "m_axis" }, g.name);
        // tdata: the data ports that are not out_last / indices
        let (payload, side): (Vec<&Port>, Vec<&Port>) = if slave {
            (g.data.clone(), vec![])
        } else {
            // the widest data port is the payload; the rest goes to tuser / tlast
            let widest = g.data.iter().map(|p| p.width).max().unwrap_or(0);
            g.data.iter().partition(|p| p.width == widest)
        };
        let bits: u32 = payload.iter().map(|p| p.width).sum();
        let bytes = bits.div_ceil(8).max(1);
        let last = side
            .iter()
            .find(|p| p.width == 1 && p.name.ends_with("last"));
        let (din, dout) = if slave {
            ("input ", "output")
        } else {
            ("output", "input ")
        };
        port_lines.push(format!(
            "    {din} wire [{}:0] {prefix}_tdata",
            bytes * 8 - 1
        ));
        port_lines.push(format!("    {din} wire {prefix}_tvalid"));
        port_lines.push(format!("    {dout} wire {prefix}_tready"));
        if last.is_some() {
            port_lines.push(format!("    {din} wire {prefix}_tlast"));
        }
        streams.push(AxisStream {
            stream: g.name.to_string(),
            port: prefix,
            slave,
            bytes,
            bits,
            tlast: last.is_some(),
        });
    }
    let n = port_lines.len();
    for (i, l) in port_lines.into_iter().enumerate() {
        let _ = writeln!(w, "{l}{}", if i + 1 == n { "" } else { "," });
    }
    let _ = writeln!(w, ");");
    // array wires
    for p in &m.ports {
        let _ = writeln!(w, "    wire {}a_{};", range(p.width), p.name);
    }
    let _ = writeln!(w, "    wire rst = ~aresetn;");
    // registers
    let _ = writeln!(
        w,
        "    reg [31:0] cmd_k, cmd_n, cmd_m, cycles, cycle_count;"
    );
    let _ = writeln!(w, "    reg done_r, err_r, irq_en, start_r, running;");
    let _ = writeln!(w, "    reg bvalid_r, rvalid_r;");
    let _ = writeln!(w, "    reg [31:0] rdata_r;");
    let _ = writeln!(
        w,
        "    wire wr = s_axi_lite_awvalid & s_axi_lite_wvalid & ~bvalid_r;"
    );
    let _ = writeln!(w, "    wire rd = s_axi_lite_arvalid & ~rvalid_r;");
    let _ = writeln!(w, "    wire [31:0] wmask = {{{{8{{s_axi_lite_wstrb[3]}}}}, {{8{{s_axi_lite_wstrb[2]}}}}, {{8{{s_axi_lite_wstrb[1]}}}}, {{8{{s_axi_lite_wstrb[0]}}}}}};");
    let _ = writeln!(w, "    wire [31:0] wd = s_axi_lite_wdata & wmask;");
    let _ = writeln!(
        w,
        "    wire [{}:0] wa = {{s_axi_lite_awaddr[{}:2], 2'b00}};",
        ab - 1,
        ab - 1
    );
    let _ = writeln!(
        w,
        "    wire [{}:0] ra = {{s_axi_lite_araddr[{}:2], 2'b00}};",
        ab - 1,
        ab - 1
    );
    // output-side fields (out_n, out_token): latched at each output beat, readable as
    // registers OUT_N / OUT_TOKEN (so they stay in the design and help debugging)
    let mut latched: Vec<(String, u32, String, String)> = Vec::new(); // (port, width, valid, ready)
    for g in gs.iter().filter(|g| g.valid.dir == "output") {
        let widest = g.data.iter().map(|p| p.width).max().unwrap_or(0);
        for p in g.data.iter().filter(|p| p.width != widest) {
            if !(p.width == 1 && p.name.ends_with("last")) {
                latched.push((
                    p.name.clone(),
                    p.width,
                    g.valid.name.clone(),
                    g.ready.name.clone(),
                ));
            }
        }
    }
    for (name, width, valid, ready) in &latched {
        let _ = writeln!(w, "    reg {}last_{name};", range(*width));
        let _ = writeln!(
            w,
            "    always @(posedge aclk) if (rst) last_{name} <= {width}'d0; else if (a_{valid} & a_{ready}) last_{name} <= a_{name};"
        );
    }
    let reg = |name: &str| {
        REGISTERS
            .iter()
            .find(|r| r.name == name)
            .expect("register in the table")
            .offset
    };
    let hash = u64::from_str_radix(&m.config_hash, 16).unwrap_or(0) as u32;
    let _ = writeln!(w, "    always @(posedge aclk) begin");
    let _ = writeln!(w, "        start_r <= 1'b0;");
    let _ = writeln!(w, "        if (rst) begin");
    let _ = writeln!(
        w,
        "            cmd_k <= 32'd0; cmd_n <= 32'd0; cmd_m <= 32'd1; irq_en <= 1'b0;"
    );
    let _ = writeln!(
        w,
        "            done_r <= 1'b0; err_r <= 1'b0; bvalid_r <= 1'b0;"
    );
    let _ = writeln!(
        w,
        "            running <= 1'b0; cycles <= 32'd0; cycle_count <= 32'd0;"
    );
    let _ = writeln!(w, "        end else begin");
    let _ = writeln!(w, "            if (wr) begin");
    let _ = writeln!(w, "                bvalid_r <= 1'b1;");
    let _ = writeln!(w, "                case (wa)");
    for (name, target) in [("CMD_K", "cmd_k"), ("CMD_N", "cmd_n"), ("CMD_M", "cmd_m")] {
        let _ = writeln!(
            w,
            "                    {ab}'h{:02X}: {target} <= ({target} & ~wmask) | wd;",
            reg(name)
        );
    }
    let _ = writeln!(
        w,
        "                    {ab}'h{:02X}: irq_en <= s_axi_lite_wstrb[0] ? s_axi_lite_wdata[0] : irq_en;",
        reg("IRQ_EN")
    );
    let _ = writeln!(
        w,
        "                    {ab}'h{:02X}: start_r <= s_axi_lite_wstrb[0] & s_axi_lite_wdata[0];",
        reg("CTRL")
    );
    let _ = writeln!(w, "                    default: ;");
    let _ = writeln!(w, "                endcase");
    let _ = writeln!(w, "            end else if (s_axi_lite_bready) begin");
    let _ = writeln!(w, "                bvalid_r <= 1'b0;");
    let _ = writeln!(w, "            end");
    let _ = writeln!(
        w,
        "            // sticky status; a write of 1 clears (the array's pulse wins)"
    );
    let _ = writeln!(
        w,
        "            if (a_done) done_r <= 1'b1; else if (wr && wa == {ab}'h{:02X} && wd[1]) done_r <= 1'b0;",
        reg("STATUS")
    );
    let _ = writeln!(
        w,
        "            if (a_done & a_err) err_r <= 1'b1; else if (wr && wa == {ab}'h{:02X} && wd[2]) err_r <= 1'b0;",
        reg("STATUS")
    );
    let _ = writeln!(w, "            // cycles from an accepted start to done");
    let _ = writeln!(
        w,
        "            if (start_r & ~a_busy) begin running <= 1'b1; cycle_count <= 32'd1; end"
    );
    let _ = writeln!(w, "            else if (running) begin");
    let _ = writeln!(w, "                cycle_count <= cycle_count + 32'd1;");
    let _ = writeln!(
        w,
        "                if (a_done) begin running <= 1'b0; cycles <= cycle_count; end"
    );
    let _ = writeln!(w, "            end");
    let _ = writeln!(w, "        end");
    let _ = writeln!(w, "    end");
    // reads
    let _ = writeln!(w, "    always @(posedge aclk) begin");
    let _ = writeln!(w, "        if (rst) begin");
    let _ = writeln!(w, "            rvalid_r <= 1'b0; rdata_r <= 32'd0;");
    let _ = writeln!(w, "        end else if (rd) begin");
    let _ = writeln!(w, "            rvalid_r <= 1'b1;");
    let _ = writeln!(w, "            case (ra)");
    let geometry = (m.config.array.cols << 16) | (m.config.array.rows & 0xFFFF);
    for (name, val) in [
        ("ID", format!("32'h{ID_MAGIC:08X}")),
        ("VERSION", format!("32'h{ADAPTER_VERSION:08X}")),
        ("GEOMETRY", format!("32'h{geometry:08X}")),
        ("CONFIG_HASH", format!("32'h{hash:08X}")),
        ("STATUS", "{29'd0, err_r, done_r, a_busy}".to_string()),
        ("CMD_K", "cmd_k".to_string()),
        ("CMD_N", "cmd_n".to_string()),
        ("CMD_M", "cmd_m".to_string()),
        ("CYCLES", "cycles".to_string()),
        ("IRQ_EN", "{31'd0, irq_en}".to_string()),
    ]
    .into_iter()
    .chain(latched.iter().filter_map(|(name, width, _, _)| {
        let r = name.to_uppercase();
        let reg_name = REGISTERS.iter().find(|x| x.name == r)?.name;
        let v = match width.cmp(&32) {
            std::cmp::Ordering::Less => format!("{{{}'d0, last_{name}}}", 32 - width),
            std::cmp::Ordering::Equal => format!("last_{name}"),
            std::cmp::Ordering::Greater => format!("last_{name}[31:0]"),
        };
        Some((reg_name, v))
    })) {
        let _ = writeln!(
            w,
            "                {ab}'h{:02X}: rdata_r <= {val};",
            reg(name)
        );
    }
    let _ = writeln!(w, "                default: rdata_r <= 32'd0;");
    let _ = writeln!(w, "            endcase");
    let _ = writeln!(w, "        end else if (s_axi_lite_rready) begin");
    let _ = writeln!(w, "            rvalid_r <= 1'b0;");
    let _ = writeln!(w, "        end");
    let _ = writeln!(w, "    end");
    let _ = writeln!(w, "    assign s_axi_lite_awready = wr;");
    let _ = writeln!(w, "    assign s_axi_lite_wready = wr;");
    let _ = writeln!(w, "    assign s_axi_lite_bvalid = bvalid_r;");
    let _ = writeln!(w, "    assign s_axi_lite_bresp = 2'b00;");
    let _ = writeln!(w, "    assign s_axi_lite_arready = rd;");
    let _ = writeln!(w, "    assign s_axi_lite_rvalid = rvalid_r;");
    let _ = writeln!(w, "    assign s_axi_lite_rdata = rdata_r;");
    let _ = writeln!(w, "    assign s_axi_lite_rresp = 2'b00;");
    let _ = writeln!(w, "    assign irq = irq_en & done_r;");
    // the array's command and control inputs
    let _ = writeln!(w, "    assign a_start = start_r;");
    let mut unused: Vec<String> = vec![
        "s_axi_lite_awaddr[1:0]".to_string(),
        "s_axi_lite_araddr[1:0]".to_string(),
    ];
    for c in ["cmd_k", "cmd_n", "cmd_m"] {
        if let Some(p) = m.ports.iter().find(|p| p.name == c) {
            let rhs = match p.width.cmp(&32) {
                std::cmp::Ordering::Equal => c.to_string(),
                std::cmp::Ordering::Greater => format!("{{{}'d0, {c}}}", p.width - 32),
                std::cmp::Ordering::Less => {
                    unused.push(format!("{c}[31:{}]", p.width));
                    format!("{c}[{}:0]", p.width - 1)
                }
            };
            let _ = writeln!(w, "    assign a_{c} = {rhs};");
        }
    }
    for p in m.ports.iter().filter(|p| p.dir == "input") {
        match p.role {
            "clock" => {
                let _ = writeln!(w, "    assign a_{} = aclk;", p.name);
            }
            "reset" => {
                let _ = writeln!(w, "    assign a_{} = rst;", p.name);
            }
            _ => {}
        }
    }
    // streams
    for (g, s) in gs.iter().zip(&streams) {
        let pre = &s.port;
        if s.slave {
            let _ = writeln!(w, "    assign a_{} = {pre}_tvalid;", g.valid.name);
            let _ = writeln!(w, "    assign {pre}_tready = a_{};", g.ready.name);
            let mut at = 0;
            for d in &g.data {
                let sl = if d.width == 1 {
                    format!("{pre}_tdata[{at}]")
                } else {
                    format!("{pre}_tdata[{}:{at}]", at + d.width - 1)
                };
                let _ = writeln!(w, "    assign a_{} = {sl};", d.name);
                at += d.width;
            }
            if s.bytes * 8 > s.bits {
                unused.push(format!("{pre}_tdata[{}:{}]", s.bytes * 8 - 1, s.bits));
            }
        } else {
            let _ = writeln!(w, "    assign {pre}_tvalid = a_{};", g.valid.name);
            let _ = writeln!(w, "    assign a_{} = {pre}_tready;", g.ready.name);
            let widest = g.data.iter().map(|p| p.width).max().unwrap_or(0);
            let payload: Vec<&&Port> = g.data.iter().filter(|p| p.width == widest).collect();
            let pad = s.bytes * 8 - s.bits;
            let mut parts: Vec<String> = payload
                .iter()
                .rev()
                .map(|p| format!("a_{}", p.name))
                .collect();
            if pad > 0 {
                parts.insert(0, format!("{pad}'d0"));
            }
            let _ = writeln!(w, "    assign {pre}_tdata = {{{}}};", parts.join(", "));
            let side: Vec<&&Port> = g.data.iter().filter(|p| p.width != widest).collect();
            let last = side
                .iter()
                .find(|p| p.width == 1 && p.name.ends_with("last"));
            if let Some(l) = last {
                let _ = writeln!(w, "    assign {pre}_tlast = a_{};", l.name);
            }
        }
    }
    // status outputs of the array not read above
    for p in m
        .ports
        .iter()
        .filter(|p| p.dir == "output" && p.stream.is_none())
    {
        if !matches!(p.name.as_str(), "busy" | "done" | "err") {
            unused.push(format!("a_{}", p.name));
        }
    }
    if !unused.is_empty() {
        let _ = writeln!(w, "    /* verilator lint_off UNUSED */");
        let _ = writeln!(w, "    wire unused = ^{{{}}};", unused.join(", "));
        let _ = writeln!(w, "    /* verilator lint_on UNUSED */");
    }
    let _ = writeln!(w, "    {} u_array (", m.top);
    for (i, p) in m.ports.iter().enumerate() {
        let comma = if i + 1 == m.ports.len() { "" } else { "," };
        let _ = writeln!(w, "        .{n}(a_{n}){comma}", n = p.name);
    }
    let _ = writeln!(w, "    );");
    let _ = writeln!(w, "endmodule");
    let _ = writeln!(w, "`default_nettype wire");
    Adapter {
        module,
        clock: "aclk".into(),
        reset_n: "aresetn".into(),
        irq: "irq".into(),
        lite: "s_axi_lite".into(),
        streams,
        verilog: v,
    }
}
