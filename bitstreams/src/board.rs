//! Boards as data: `boards/<board>/board.toml` plus its constraint file (.lpf, .pcf, .xdc).
//!
//! Adding a board is adding a folder: the built-in boards are embedded at build time
//! (`build.rs`), and [`Boards::load_dir`] reads any other folder of board folders. Every board
//! is validated when loaded ([`Board::validate`]): the family matches the flow, the constraint
//! file has the family's format and places the clock and every LED the wrapper drives on the
//! pins `board.toml` names.

use crate::error::SynthError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/boards.rs"));

/// FPGA family: decides the yosys synthesis command, the place-and-route tool and the
/// constraint format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Lattice ECP5: `synth_ecp5`, nextpnr-ecp5, ecppack; `.lpf` constraints.
    Ecp5,
    /// Lattice iCE40: `synth_ice40`, nextpnr-ice40, icepack; `.pcf` constraints.
    Ice40,
    /// AMD/Xilinx 7 series and UltraScale+: `synth_xilinx` estimates, Vivado project; `.xdc`.
    Xilinx,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ecp5 => "ecp5",
            Family::Ice40 => "ice40",
            Family::Xilinx => "xilinx",
        }
    }

    /// The constraint file extension of the family.
    pub fn constraint_ext(self) -> &'static str {
        match self {
            Family::Ecp5 => "lpf",
            Family::Ice40 => "pcf",
            Family::Xilinx => "xdc",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a bitstream is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// yosys + nextpnr + the family's packer, run here.
    Open,
    /// A generated Vivado project the user runs; yosys `synth_xilinx` estimates here.
    Vivado,
}

/// The FPGA part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Device name (Lattice) or full Xilinx part (e.g. `xc7a100tcsg324-1`).
    pub device: String,
    pub package: String,
    /// Speed grade.
    pub speed: String,
    /// nextpnr device switch without dashes (`85k`, `45k`, `hx8k`, `up5k`); open flows only.
    #[serde(default)]
    pub nextpnr_device: Option<String>,
    /// `synth_xilinx -family` (`xc7`, `xcup`, …); Xilinx only.
    #[serde(default)]
    pub xilinx_family: Option<String>,
}

/// Where the fabric clock comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClockSource {
    /// A board oscillator on a package pin (`port`, `pin`).
    #[default]
    Pin,
    /// The Zynq processing system's PL clock.
    Ps,
    /// The PCIe block's user clock (XDMA `axi_aclk`).
    Pcie,
}

/// The board clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    #[serde(default)]
    pub source: ClockSource,
    /// Top-level port name (source = pin).
    #[serde(default)]
    pub port: Option<String>,
    /// Package pin (source = pin).
    #[serde(default)]
    pub pin: Option<String>,
    /// Frequency of the oscillator or of the source clock, MHz.
    pub mhz: f64,
}

/// Pins and constraints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Io {
    /// Constraint file in the board folder (.lpf, .pcf or .xdc by family).
    pub constraints: String,
    /// LED bus the board wrapper drives (`led` → ports `led[0]`…), when the board uses one.
    #[serde(default)]
    pub led_port: Option<String>,
    /// Number of LEDs the wrapper drives.
    #[serde(default)]
    pub leds: u32,
}

/// Memory the weights would stream from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Type and organisation, free text (`none` when the board has no memory for weights).
    pub kind: String,
    /// Capacity, GB (10^9 bytes).
    pub size_gb: f64,
    /// Peak bandwidth, GB/s (10^9 bytes/s); 0 = no memory to stream weights from.
    pub bandwidth_gbs: f64,
}

/// PCIe link of a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pcie {
    pub gen: u32,
    pub lanes: u32,
    /// Reference clock pins.
    pub refclk_p: String,
    pub refclk_n: String,
    /// PERST# pin and I/O standard.
    pub perst_pin: String,
    pub perst_standard: String,
    /// PCIe hard block location for the XDMA IP (`CONFIG.pcie_blk_locn`).
    pub block: String,
}

/// Capacity of the part, for utilization figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub lut: u64,
    /// What `lut` counts (`LUT4`, `LUT6`, `LC (LUT4 + FF)`).
    pub lut_kind: String,
    pub ff: u64,
    pub dsp: u64,
    /// Block RAMs of `bram_kbits` each.
    pub bram: u64,
    pub bram_kbits: u32,
    pub io: u64,
}

/// Extra tool arguments for a board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SynthArgs {
    /// Appended to the yosys `synth_*` command.
    #[serde(default)]
    pub yosys_args: Vec<String>,
    /// Appended to the nextpnr command line.
    #[serde(default)]
    pub nextpnr_args: Vec<String>,
}

/// What hosts the array in a Vivado design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Host {
    /// No host: the LED board wrapper, as in the open flows.
    None,
    /// A PCIe card: XDMA as an AXI bridge (BAR0 → the card top's registers, the card top's
    /// host port → host memory) and the card memory controller.
    Xdma,
    /// A Zynq UltraScale+ MPSoC: the PS reaches the card top's registers on HPM0 and the card
    /// top's memory ports reach PS DDR on HP0/HP1.
    ZynqMpsoc,
}

impl Host {
    pub fn as_str(self) -> &'static str {
        match self {
            Host::None => "none",
            Host::Xdma => "xdma",
            Host::ZynqMpsoc => "zynq-mpsoc",
        }
    }
}

/// The memory behind the card top's card port in a Vivado design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryIp {
    /// The HBM IP (`hbm`, Virtex UltraScale+ HBM devices), reached through one of its AXI
    /// ports with the global address switch on.
    Hbm,
    /// The Zynq UltraScale+ PS's DDR controller, through an HP port.
    PsDdr,
}

impl MemoryIp {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryIp::Hbm => "hbm",
            MemoryIp::PsDdr => "ps-ddr",
        }
    }
}

/// `[vivado.card_memory]`: where card memory (the card top's card port, addresses
/// `0..bytes`) lives in a Vivado design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardMemory {
    pub ip: MemoryIp,
    /// AXI address of card address 0 (the card shell adds it to every card-port address): 0
    /// for a memory of its own, a reserved carve-out when the memory is shared (PS DDR).
    #[serde(default)]
    pub base: u64,
    /// Bytes of card memory: the card top's `MEM_BYTES`.
    pub bytes: u64,
    /// HBM: stacks used (1 or 2; each has its own reference and APB clock).
    #[serde(default)]
    pub stacks: Option<u32>,
    /// HBM: the AXI port the card port reaches (`SAXI_00`); the others are disabled.
    #[serde(default)]
    pub port: Option<String>,
    /// Extra `CONFIG.*` of the memory IP (HBM density, stacks, address switch …).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl CardMemory {
    /// A carve-out of a processing system's DDR: `bytes` from AXI address `base`.
    pub fn ps_ddr(base: u64, bytes: u64) -> Self {
        CardMemory {
            ip: MemoryIp::PsDdr,
            base,
            bytes,
            stacks: None,
            port: None,
            config: BTreeMap::new(),
        }
    }
}

/// Vivado settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VivadoBoard {
    pub host: Host,
    /// Vivado board part, set on the project when its board files are installed.
    #[serde(default)]
    pub board_part: Option<String>,
    /// Output ports the board needs held low.
    #[serde(default)]
    pub tie_low: Vec<String>,
    /// Card memory (host boards).
    #[serde(default)]
    pub card_memory: Option<CardMemory>,
}

/// `board.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardSpec {
    /// Must equal the folder name.
    pub name: String,
    pub description: String,
    pub vendor: String,
    pub family: Family,
    pub flow: Flow,
    pub part: Part,
    pub clock: Clock,
    pub io: Io,
    pub memory: Memory,
    #[serde(default)]
    pub pcie: Option<Pcie>,
    pub resources: Capacity,
    #[serde(default)]
    pub synth: SynthArgs,
    #[serde(default)]
    pub vivado: Option<VivadoBoard>,
}

/// A board: its `board.toml` and every other file of its folder.
#[derive(Debug, Clone)]
pub struct Board {
    pub spec: BoardSpec,
    /// File name → contents (constraint files and anything else in the folder).
    pub files: BTreeMap<String, String>,
    /// Where it came from: a folder, or `<builtin>`.
    pub origin: String,
}

/// How the synthesized top meets the board's pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WrapperKind {
    /// LFSR-fed stimulus and an XOR signature on a few LEDs ([`crate::wrapper`]).
    LedSignature,
    /// The card top in its block-design shell ([`crate::shell`]) for a host block design.
    CardShell,
}

impl Board {
    /// Parses and validates one board from its files (`board.toml` among them).
    pub fn from_files(
        folder: &str,
        files: BTreeMap<String, String>,
        origin: &str,
    ) -> Result<Board, SynthError> {
        let err = |message: String| SynthError::Board {
            board: folder.to_string(),
            message,
        };
        let text = files
            .get("board.toml")
            .ok_or_else(|| err(format!("{origin}: no board.toml in the folder")))?;
        let spec: BoardSpec = toml::from_str(text)
            .map_err(|e| err(format!("{origin}/board.toml: {}", e.to_string().trim_end())))?;
        let b = Board {
            spec,
            files,
            origin: origin.to_string(),
        };
        if b.spec.name != folder {
            return Err(err(format!(
                "board.toml name `{}` differs from the folder name",
                b.spec.name
            )));
        }
        b.validate()?;
        Ok(b)
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn family(&self) -> Family {
        self.spec.family
    }

    pub fn flow(&self) -> Flow {
        self.spec.flow
    }

    /// The host of a Vivado design (`none` for open-flow boards).
    pub fn host(&self) -> Host {
        self.spec.vivado.as_ref().map_or(Host::None, |v| v.host)
    }

    /// Which wrapper the board's top uses.
    pub fn wrapper_kind(&self) -> WrapperKind {
        match self.host() {
            Host::None => WrapperKind::LedSignature,
            Host::Xdma | Host::ZynqMpsoc => WrapperKind::CardShell,
        }
    }

    /// Card memory of a host board (`[vivado.card_memory]`).
    pub fn card_memory(&self) -> Option<&CardMemory> {
        self.spec
            .vivado
            .as_ref()
            .and_then(|v| v.card_memory.as_ref())
    }

    /// The constraint file's contents.
    pub fn constraints(&self) -> &str {
        self.files
            .get(&self.spec.io.constraints)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The LED port names the wrapper drives (`led[0]`, …).
    pub fn led_ports(&self) -> Vec<String> {
        match &self.spec.io.led_port {
            Some(p) => (0..self.spec.io.leds)
                .map(|i| format!("{p}[{i}]"))
                .collect(),
            None => vec![],
        }
    }

    /// Checks the board's data: family and flow agree, the fields each flow needs are present,
    /// numbers are positive, and the constraint file places the clock and the LEDs.
    pub fn validate(&self) -> Result<(), SynthError> {
        let s = &self.spec;
        let err = |message: String| SynthError::Board {
            board: s.name.clone(),
            message,
        };
        let name_ok = !s.name.is_empty()
            && s.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(err(format!(
                "name {:?}: use [a-z0-9-] (it names folders and output files)",
                s.name
            )));
        }
        match (s.family, s.flow) {
            (Family::Ecp5 | Family::Ice40, Flow::Open) | (Family::Xilinx, Flow::Vivado) => {}
            (f, fl) => {
                return Err(err(format!(
                    "family {f} with flow {fl:?}: ecp5 and ice40 use the open flow, xilinx the vivado flow"
                )))
            }
        }
        if s.flow == Flow::Open && s.part.nextpnr_device.is_none() {
            return Err(err("open flow needs part.nextpnr_device".into()));
        }
        if s.family == Family::Xilinx && s.part.xilinx_family.is_none() {
            return Err(err("xilinx family needs part.xilinx_family".into()));
        }
        if s.flow == Flow::Vivado && s.vivado.is_none() {
            return Err(err("vivado flow needs a [vivado] table (host)".into()));
        }
        if s.flow == Flow::Open && s.vivado.is_some() {
            return Err(err("[vivado] applies to the vivado flow only".into()));
        }
        if self.host() == Host::Xdma && s.pcie.is_none() {
            return Err(err("host xdma needs a [pcie] table".into()));
        }
        if !(s.clock.mhz.is_finite() && s.clock.mhz > 0.0) {
            return Err(err(format!("clock.mhz = {} must be > 0", s.clock.mhz)));
        }
        let needs_pin_clock = self.wrapper_kind() == WrapperKind::LedSignature;
        if needs_pin_clock && s.clock.source != ClockSource::Pin {
            return Err(err(
                "the LED board wrapper needs clock.source = \"pin\" (an oscillator pin)".into(),
            ));
        }
        if s.clock.source == ClockSource::Pin && (s.clock.port.is_none() || s.clock.pin.is_none()) {
            return Err(err(
                "clock.source = \"pin\" needs clock.port and clock.pin".into()
            ));
        }
        if needs_pin_clock && (s.io.led_port.is_none() || s.io.leds == 0) {
            return Err(err(
                "the LED board wrapper needs io.led_port and io.leds ≥ 1".into(),
            ));
        }
        if s.io.leds > 64 {
            return Err(err(format!("io.leds = {} must be ≤ 64", s.io.leds)));
        }
        let non_negative = |x: f64| x.is_finite() && x >= 0.0;
        if !(non_negative(s.memory.bandwidth_gbs) && non_negative(s.memory.size_gb)) {
            return Err(err(
                "memory.size_gb and memory.bandwidth_gbs must be ≥ 0".into()
            ));
        }
        let c = &s.resources;
        if c.lut == 0 || c.ff == 0 || c.io == 0 {
            return Err(err("resources.lut, .ff and .io must be > 0".into()));
        }
        // the constraint file
        let ext = s.family.constraint_ext();
        if !s.io.constraints.ends_with(&format!(".{ext}")) {
            return Err(err(format!(
                "io.constraints = {:?}: a {} board needs a .{ext} file",
                s.io.constraints, s.family
            )));
        }
        if !self.files.contains_key(&s.io.constraints) {
            return Err(err(format!(
                "io.constraints = {:?} is not in the board folder",
                s.io.constraints
            )));
        }
        let pins = parse_constraints(s.family, self.constraints());
        if s.clock.source == ClockSource::Pin {
            let (port, pin) = (
                s.clock.port.as_deref().unwrap_or_default(),
                s.clock.pin.as_deref().unwrap_or_default(),
            );
            match pins.get(port) {
                Some(p) if p == pin => {}
                Some(p) => {
                    return Err(err(format!(
                        "{}: clock port `{port}` is on pin {p}, board.toml says {pin}",
                        s.io.constraints
                    )))
                }
                None => {
                    return Err(err(format!(
                        "{}: no pin for the clock port `{port}`",
                        s.io.constraints
                    )))
                }
            }
        }
        for led in self.led_ports() {
            if !pins.contains_key(&led) {
                return Err(err(format!(
                    "{}: no pin for `{led}` (io.leds = {})",
                    s.io.constraints, s.io.leds
                )));
            }
        }
        if let Some(p) = &s.pcie {
            for (port, pin) in [
                ("pcie_refclk_clk_p", &p.refclk_p),
                ("pcie_refclk_clk_n", &p.refclk_n),
                ("pcie_perstn", &p.perst_pin),
            ] {
                if pins.get(port) != Some(pin) {
                    return Err(err(format!(
                        "{}: port `{port}` must be on pin {pin} (board.toml [pcie])",
                        s.io.constraints
                    )));
                }
            }
        }
        if let Some(v) = &s.vivado {
            let want = match v.host {
                Host::None => None,
                Host::Xdma => Some(MemoryIp::Hbm),
                Host::ZynqMpsoc => Some(MemoryIp::PsDdr),
            };
            match (&v.card_memory, want) {
                (None, None) => {}
                (Some(_), None) => {
                    return Err(err(
                        "[vivado.card_memory] applies to host boards only".into()
                    ))
                }
                (None, Some(ip)) => {
                    return Err(err(format!(
                        "host {} needs [vivado.card_memory] (ip = \"{}\")",
                        v.host.as_str(),
                        ip.as_str()
                    )))
                }
                (Some(m), Some(ip)) => {
                    if m.ip != ip {
                        return Err(err(format!(
                            "host {} generates card memory on ip = \"{}\", not \"{}\" (DDR4 controllers are not generated yet)",
                            v.host.as_str(),
                            ip.as_str(),
                            m.ip.as_str()
                        )));
                    }
                    if m.bytes == 0 || !m.bytes.is_multiple_of(4096) || !m.base.is_multiple_of(4096)
                    {
                        return Err(err(format!(
                            "[vivado.card_memory] bytes = {} and base = {:#x} must be multiples of 4096, bytes > 0",
                            m.bytes, m.base
                        )));
                    }
                    if m.ip == MemoryIp::Hbm {
                        if !matches!(m.stacks, Some(1 | 2)) {
                            return Err(err(
                                "[vivado.card_memory] ip = \"hbm\" needs stacks = 1 or 2".into(),
                            ));
                        }
                        let ok = m.port.as_deref().is_some_and(|p| {
                            p.strip_prefix("SAXI_").is_some_and(|n| {
                                n.len() == 2
                                    && n.parse::<u32>()
                                        .is_ok_and(|i| i < 16 * m.stacks.unwrap_or(1))
                            })
                        });
                        if !ok {
                            return Err(err(format!(
                                "[vivado.card_memory] port = {:?}: an HBM AXI port SAXI_00..SAXI_{:02} is needed",
                                m.port,
                                16 * m.stacks.unwrap_or(1) - 1
                            )));
                        }
                    }
                }
            }
            for port in &v.tie_low {
                if !pins.contains_key(port) {
                    return Err(err(format!(
                        "{}: no pin for the tie_low port `{port}`",
                        s.io.constraints
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Port → package pin, from a constraint file: `LOCATE COMP "p" SITE "X";` (.lpf),
/// `set_io [-flags] p X` (.pcf), `PACKAGE_PIN X … [get_ports {p}]` (.xdc). Comments are
/// ignored.
pub fn parse_constraints(family: Family, text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match family {
            Family::Ecp5 => {
                let Some(rest) = line.strip_prefix("LOCATE COMP") else {
                    continue;
                };
                let q: Vec<&str> = rest.split('"').collect();
                // ` "port" SITE "pin";` → ["", port, " SITE ", pin, ";"]
                if q.len() >= 4 && q[2].trim() == "SITE" {
                    map.insert(q[1].to_string(), q[3].to_string());
                }
            }
            Family::Ice40 => {
                let mut words = line.split_whitespace();
                if words.next() != Some("set_io") {
                    continue;
                }
                let args: Vec<&str> = words.filter(|w| !w.starts_with('-')).collect();
                if args.len() >= 2 {
                    map.insert(args[0].to_string(), args[1].to_string());
                }
            }
            Family::Xilinx => {
                let Some(at) = line.find("PACKAGE_PIN") else {
                    continue;
                };
                let pin = line[at + "PACKAGE_PIN".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('}');
                let Some(gp) = line.find("get_ports") else {
                    continue;
                };
                let rest = line[gp + "get_ports".len()..].trim();
                let port = if let Some(braced) = rest.strip_prefix('{') {
                    braced.split('}').next().unwrap_or("").trim().to_string()
                } else {
                    // `led[3]]`: drop the `]` that closes `[get_ports …`
                    let mut t = rest.split_whitespace().next().unwrap_or("").to_string();
                    while t.matches(']').count() > t.matches('[').count() {
                        t.pop();
                    }
                    t
                };
                if !pin.is_empty() && !port.is_empty() {
                    map.insert(port, pin.to_string());
                }
            }
        }
    }
    map
}

/// A set of boards.
#[derive(Debug, Clone)]
pub struct Boards {
    pub boards: Vec<Board>,
}

impl Boards {
    /// The built-in boards (embedded from `bitstreams/boards/` at build time).
    pub fn builtin() -> Result<Boards, SynthError> {
        let mut boards = Vec::new();
        for (folder, files) in EMBEDDED_BOARDS {
            let files = files
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect();
            boards.push(Board::from_files(
                folder,
                files,
                &format!("<builtin>/{folder}"),
            )?);
        }
        Ok(Boards { boards })
    }

    /// Every board folder under `dir` (a folder holding `<board>/board.toml` folders).
    pub fn load_dir(dir: &Path) -> Result<Boards, SynthError> {
        let rd = std::fs::read_dir(dir).map_err(|e| SynthError::io(dir, e))?;
        let mut folders: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("board.toml").is_file())
            .collect();
        folders.sort();
        let mut boards = Vec::new();
        for f in folders {
            boards.push(Self::load_folder(&f)?);
        }
        Ok(Boards { boards })
    }

    /// One board folder.
    pub fn load_folder(folder: &Path) -> Result<Board, SynthError> {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut files = BTreeMap::new();
        let rd = std::fs::read_dir(folder).map_err(|e| SynthError::io(folder, e))?;
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            if p.is_file() {
                let text = std::fs::read_to_string(&p).map_err(|e| SynthError::io(&p, e))?;
                files.insert(e.file_name().to_string_lossy().to_string(), text);
            }
        }
        Board::from_files(&name, files, &folder.display().to_string())
    }

    /// The built-in boards, then those of `extra` (a folder of board folders), which replace
    /// built-in boards of the same name.
    pub fn with_extra(extra: Option<&Path>) -> Result<Boards, SynthError> {
        let mut all = Self::builtin()?;
        if let Some(dir) = extra {
            for b in Self::load_dir(dir)?.boards {
                all.boards.retain(|x| x.name() != b.name());
                all.boards.push(b);
            }
            all.boards.sort_by(|a, b| a.name().cmp(b.name()));
        }
        Ok(all)
    }

    pub fn names(&self) -> Vec<&str> {
        self.boards.iter().map(|b| b.name()).collect()
    }

    /// A board by name, or an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&Board, SynthError> {
        self.boards
            .iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| SynthError::UnknownBoard {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_boards_load_and_validate() {
        let b = Boards::builtin().unwrap();
        for name in [
            "ecp5-85f",
            "ecp5-45f",
            "ice40-hx8k",
            "ice40-up5k",
            "arty-a7-100t",
            "kv260",
            "alveo-u55c",
        ] {
            let board = b.get(name).unwrap();
            assert_eq!(board.name(), name);
        }
        assert_eq!(b.get("ecp5-85f").unwrap().family(), Family::Ecp5);
        assert_eq!(b.get("alveo-u55c").unwrap().host(), Host::Xdma);
        assert_eq!(
            b.get("ice40-hx8k").unwrap().led_ports().len(),
            8,
            "HX8K breakout drives 8 LEDs"
        );
        let e = b.get("nope").unwrap_err().to_string();
        assert!(e.contains("ecp5-85f") && e.contains("nope"), "{e}");
    }

    #[test]
    fn constraint_parsers() {
        let lpf = "LOCATE COMP \"clk_25mhz\" SITE \"G2\";\n# LOCATE COMP \"x\" SITE \"Z9\";\nIOBUF PORT \"clk_25mhz\" IO_TYPE=LVCMOS33;\n";
        let m = parse_constraints(Family::Ecp5, lpf);
        assert_eq!(m.len(), 1);
        assert_eq!(m["clk_25mhz"], "G2");
        let pcf = "set_io -nowarn led[0] 11\nset_io clk J3 # comment\n";
        let m = parse_constraints(Family::Ice40, pcf);
        assert_eq!(m["led[0]"], "11");
        assert_eq!(m["clk"], "J3");
        let xdc = "set_property -dict {PACKAGE_PIN E3 IOSTANDARD LVCMOS33} [get_ports {clk}]\nset_property PACKAGE_PIN AR15 [get_ports {pcie_refclk_clk_p}]\nset_property PACKAGE_PIN T10 [get_ports led[3]]\n";
        let m = parse_constraints(Family::Xilinx, xdc);
        assert_eq!(m["clk"], "E3");
        assert_eq!(m["pcie_refclk_clk_p"], "AR15");
        assert_eq!(m["led[3]"], "T10");
    }

    fn files_of(name: &str) -> BTreeMap<String, String> {
        EMBEDDED_BOARDS
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    /// Each kind of bad board data is refused with a message naming the problem.
    #[test]
    fn invalid_boards_are_refused() {
        type Edit = fn(&mut BTreeMap<String, String>);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "ecp5-85f",
                |f| {
                    let t = f["board.toml"].replace("pin = \"G2\"", "pin = \"H2\"");
                    f.insert("board.toml".into(), t);
                },
                "board.toml says H2",
            ),
            (
                "ecp5-85f",
                |f| {
                    let t = f["ulx3s.lpf"].replace("LOCATE COMP \"led[7]\"", "# gone");
                    f.insert("ulx3s.lpf".into(), t);
                },
                "no pin for `led[7]`",
            ),
            (
                "ice40-hx8k",
                |f| {
                    let t = f["board.toml"].replace("flow = \"open\"", "flow = \"vivado\"");
                    f.insert("board.toml".into(), t);
                },
                "ecp5 and ice40 use the open flow",
            ),
            (
                "ice40-hx8k",
                |f| {
                    f.remove("hx8k-breakout.pcf");
                },
                "is not in the board folder",
            ),
            (
                "ice40-hx8k",
                |f| {
                    let t = f["board.toml"].replace("name = \"ice40-hx8k\"", "name = \"other\"");
                    f.insert("board.toml".into(), t);
                },
                "differs from the folder name",
            ),
            (
                "alveo-u55c",
                |f| {
                    let t = f["alveo-u55c.xdc"].replace("AR15", "AR16");
                    f.insert("alveo-u55c.xdc".into(), t);
                },
                "pcie_refclk_clk_p",
            ),
            (
                "arty-a7-100t",
                |f| {
                    let t = f["board.toml"].replace("bandwidth_gbs = 1.33", "bandwidth_gbs = -1.0");
                    f.insert("board.toml".into(), t);
                },
                "must be ≥ 0",
            ),
            (
                "arty-a7-100t",
                |f| {
                    let t = f["board.toml"].replace("[vivado]", "bogus = 1\n[vivado]");
                    f.insert("board.toml".into(), t);
                },
                "bogus",
            ),
            (
                "alveo-u55c",
                |f| {
                    let t = f["board.toml"].replace("ip = \"hbm\"", "ip = \"ps-ddr\"");
                    f.insert("board.toml".into(), t);
                },
                "generates card memory on ip = \"hbm\"",
            ),
            (
                "alveo-u55c",
                |f| {
                    let t = f["board.toml"].replace("port = \"SAXI_00\"", "port = \"SAXI_32\"");
                    f.insert("board.toml".into(), t);
                },
                "SAXI_00..SAXI_31",
            ),
            (
                "kv260",
                |f| {
                    let t = f["board.toml"].replace("bytes = 1073741824", "bytes = 1000");
                    f.insert("board.toml".into(), t);
                },
                "multiples of 4096",
            ),
            (
                "kv260",
                |f| {
                    let t = &f["board.toml"];
                    let cut = t.rfind("[vivado.card_memory]").unwrap();
                    let t = t[..cut].to_string();
                    f.insert("board.toml".into(), t);
                },
                "host zynq-mpsoc needs [vivado.card_memory]",
            ),
        ];
        for (board, edit, want) in cases {
            let mut files = files_of(board);
            edit(&mut files);
            let e = Board::from_files(board, files, "test")
                .expect_err(want)
                .to_string();
            assert!(e.contains(want), "{board}: `{e}` should contain `{want}`");
        }
    }

    #[test]
    fn a_folder_is_a_board() {
        let dir = std::env::temp_dir().join(format!("tern-boards-{}", std::process::id()));
        let folder = dir.join("my-hx8k");
        std::fs::create_dir_all(&folder).unwrap();
        for (n, t) in files_of("ice40-hx8k") {
            let t = t.replace("name = \"ice40-hx8k\"", "name = \"my-hx8k\"");
            std::fs::write(folder.join(n), t).unwrap();
        }
        let all = Boards::with_extra(Some(&dir)).unwrap();
        assert!(all.get("my-hx8k").is_ok());
        assert!(all.get("ecp5-85f").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
