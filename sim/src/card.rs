//! `CardSim`: the card top (`tern_NAME_card`, docs/hdl-card.md) under Verilator, driven
//! cycle by cycle with a host memory (DMA buffers at IOVAs) and a card memory (sparse pages)
//! behind its two AXI master ports, and AXI4-Lite register transactions on BAR0.
//!
//! Memory model of each port (an AXI slave, in Rust): up to [`QUEUE_DEPTH`] outstanding
//! read and write bursts; a read burst's first beat is available `latency` cycles after its
//! address was accepted; beats move at `words_per_cycle` (a token bucket per direction,
//! ≤ 1 word per cycle: one 512-bit beat per clock); write responses come
//! [`WRITE_RESP_LATENCY`] cycles after the last beat (posted writes). An access outside the
//! memory (host: no mapped buffer; card: past `mem_bytes`) answers SLVERR.

use crate::verilator::{BuildSpec, BuiltModel, Direction, Model, PortSpec, SimError, Toolchain};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use tern_hdl::HdlOptions;
use tern_spec::card::regs::off;
use tern_spec::ArrayConfig;
use thiserror::Error;

/// Outstanding bursts a memory model accepts per direction.
pub const QUEUE_DEPTH: usize = 16;
/// Cycles from the last write beat to the write response.
pub const WRITE_RESP_LATENCY: u64 = 4;
/// First IOVA handed out for host buffers.
pub const IOVA_BASE: u64 = 0x1_0000_0000;
const PAGE: u64 = 4096;
const SLVERR: u64 = 2;

/// What can go wrong in the card simulation.
#[derive(Debug, Error)]
pub enum CardSimError {
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("the RTL generator: {0}")]
    Hdl(#[from] tern_hdl::HdlError),
    #[error("config `{0}` has no card top (its geometry is not supported by the card RTL)")]
    NoCard(String),
    #[error("register offset {0:#06x} is outside BAR0 or not 4-byte aligned")]
    BadOffset(u32),
    #[error("unknown host buffer {0}")]
    UnknownBuf(u64),
    #[error("host buffer {id}: access at {offset}+{len} is outside its {size} bytes")]
    BufRange {
        id: u64,
        offset: usize,
        len: usize,
        size: usize,
    },
    #[error("card memory access at {addr:#x}+{len} is outside its {size} bytes")]
    CardRange { addr: u64, len: usize, size: u64 },
    #[error("cannot allocate a {0}-byte host buffer (0 bytes or the IOVA space is exhausted)")]
    Alloc(usize),
    #[error("register {what} at {offset:#06x} did not complete within {cycles} cycles")]
    RegTimeout {
        what: &'static str,
        offset: u32,
        cycles: u64,
    },
    #[error("AXI protocol violation on the {port} port at cycle {cycle}: {what}")]
    Protocol {
        port: &'static str,
        cycle: u64,
        what: String,
    },
    #[error("bad memory model parameter: {0}")]
    BadParam(String),
}

/// Latency and bandwidth of one memory port.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemTiming {
    /// Cycles from an accepted read address to its first data beat.
    pub latency: u64,
    /// Words (64 bytes) per cycle, in (0, 1].
    pub words_per_cycle: f64,
}

impl Default for MemTiming {
    fn default() -> Self {
        Self {
            latency: 40,
            words_per_cycle: 1.0,
        }
    }
}

/// How to build and run a [`CardSim`].
#[derive(Debug, Clone, PartialEq)]
pub struct CardSimOptions {
    /// Card memory size in bytes (the RTL's `MEM_BYTES` parameter).
    pub mem_bytes: u64,
    pub card_mem: MemTiming,
    pub host_mem: MemTiming,
    /// Build with VCD support.
    pub trace: bool,
}

impl Default for CardSimOptions {
    fn default() -> Self {
        Self {
            mem_bytes: 1 << 30,
            card_mem: MemTiming::default(),
            host_mem: MemTiming {
                latency: 100,
                words_per_cycle: 1.0,
            },
            trace: false,
        }
    }
}

/// A host buffer handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostBuf {
    pub id: u64,
    pub iova: u64,
    pub len: usize,
}

struct Region {
    id: u64,
    len: usize,
    data: Vec<u8>,
}

/// Host memory: buffers mapped at IOVAs (page-granular, like an IOMMU).
#[derive(Default)]
struct HostMem {
    regions: BTreeMap<u64, Region>,
    by_id: HashMap<u64, u64>,
    next_iova: u64,
    next_id: u64,
}

impl HostMem {
    fn word(&mut self, addr: u64) -> Option<&mut [u8]> {
        let (&base, r) = self.regions.range_mut(..=addr).next_back()?;
        let off = (addr - base) as usize;
        if off + 64 <= r.data.len() {
            Some(&mut r.data[off..off + 64])
        } else {
            None
        }
    }
}

/// Card memory: sparse 4 KiB pages, zero until written.
struct CardMem {
    size: u64,
    pages: HashMap<u64, Box<[u8]>>,
}

impl CardMem {
    fn read_word(&self, addr: u64, out: &mut [u8; 64]) -> bool {
        if addr.checked_add(64).is_none_or(|e| e > self.size) {
            return false;
        }
        match self.pages.get(&(addr / PAGE)) {
            Some(p) => {
                let o = (addr % PAGE) as usize;
                out.copy_from_slice(&p[o..o + 64]);
            }
            None => out.fill(0),
        }
        true
    }
    fn page_mut(&mut self, addr: u64) -> &mut [u8] {
        self.pages
            .entry(addr / PAGE)
            .or_insert_with(|| vec![0u8; PAGE as usize].into_boxed_slice())
    }
}

#[derive(Debug, Clone, Copy)]
struct Burst {
    addr: u64,
    beats: u64,
    done: u64,
    ready_at: u64,
    err: bool,
}

/// The AXI slave side of one port.
struct PortModel {
    t: MemTiming,
    rd_credit: f64,
    wr_credit: f64,
    ar: VecDeque<Burst>,
    aw: VecDeque<Burst>,
    b: VecDeque<(u64, u64)>,
    /// Last word presented on rdata (addr, beat) to skip redundant sets.
    shown: Option<(u64, u64)>,
}

impl PortModel {
    fn new(t: MemTiming) -> Self {
        Self {
            t,
            rd_credit: 0.0,
            wr_credit: 0.0,
            ar: VecDeque::new(),
            aw: VecDeque::new(),
            b: VecDeque::new(),
            shown: None,
        }
    }
    fn busy(&self) -> bool {
        !self.ar.is_empty() || !self.aw.is_empty() || !self.b.is_empty()
    }
}

/// Port indices of one master.
#[derive(Clone, Copy)]
struct MPorts {
    arvalid: usize,
    arready: usize,
    araddr: usize,
    arlen: usize,
    rvalid: usize,
    rready: usize,
    rdata: usize,
    rresp: usize,
    rlast: usize,
    awvalid: usize,
    awready: usize,
    awaddr: usize,
    awlen: usize,
    wvalid: usize,
    wready: usize,
    wdata: usize,
    wstrb: usize,
    wlast: usize,
    bvalid: usize,
    bready: usize,
    bresp: usize,
}

impl MPorts {
    fn new(m: &Model, pre: &str) -> Result<Self, SimError> {
        let p = |n: &str| m.port(&format!("{pre}_{n}"));
        Ok(Self {
            arvalid: p("arvalid")?,
            arready: p("arready")?,
            araddr: p("araddr")?,
            arlen: p("arlen")?,
            rvalid: p("rvalid")?,
            rready: p("rready")?,
            rdata: p("rdata")?,
            rresp: p("rresp")?,
            rlast: p("rlast")?,
            awvalid: p("awvalid")?,
            awready: p("awready")?,
            awaddr: p("awaddr")?,
            awlen: p("awlen")?,
            wvalid: p("wvalid")?,
            wready: p("wready")?,
            wdata: p("wdata")?,
            wstrb: p("wstrb")?,
            wlast: p("wlast")?,
            bvalid: p("bvalid")?,
            bready: p("bready")?,
            bresp: p("bresp")?,
        })
    }
}

struct LitePorts {
    clk: usize,
    rst: usize,
    awvalid: usize,
    awready: usize,
    awaddr: usize,
    wvalid: usize,
    wdata: usize,
    wstrb: usize,
    bvalid: usize,
    bready: usize,
    arvalid: usize,
    arready: usize,
    araddr: usize,
    rvalid: usize,
    rready: usize,
    rdata: usize,
}

/// Builds (or finds in the cache) the Verilated card top of `cfg`.
pub fn build(cfg: &ArrayConfig, opts: &CardSimOptions) -> Result<BuiltModel, CardSimError> {
    // one build at a time in this process: parallel tests wanting the same model wait for
    // the first build and then find it in the cache instead of verilating it again
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let tc = Toolchain::find()?;
    let g = tern_hdl::emit::generate(cfg, HdlOptions::default())?;
    let card = g
        .manifest
        .card
        .clone()
        .ok_or_else(|| CardSimError::NoCard(cfg.name.clone()))?;
    let ports = card
        .ports
        .iter()
        .map(|p| {
            PortSpec::new(
                &p.name,
                if p.dir == "input" {
                    Direction::Input
                } else {
                    Direction::Output
                },
                p.width,
            )
        })
        .collect();
    let spec = BuildSpec {
        top: card.top.clone(),
        sources: g
            .files
            .iter()
            .filter(|(n, _)| n.ends_with(".v"))
            .cloned()
            .collect(),
        ports,
        trace: opts.trace,
        extra_args: vec![format!("-G{}=64'd{}", card.mem_bytes_param, opts.mem_bytes)],
    };
    Ok(spec.build(&tc)?)
}

/// The card top under Verilator with its memories.
pub struct CardSim {
    model: Model,
    lite: LitePorts,
    hp: MPorts,
    cp: MPorts,
    host: HostMem,
    card: CardMem,
    hmod: PortModel,
    cmod: PortModel,
    cycle: u64,
    /// AXI-Lite inputs held this cycle.
    aw: Option<(u32, u32)>,
    ar: Option<u32>,
    cq_base: u64,
    cq_log2: u32,
    cq_writes: u64,
    opts: CardSimOptions,
    buf: Vec<u32>,
    /// Cycles a register transaction may take before [`CardSimError::RegTimeout`].
    pub reg_timeout: u64,
}

fn words_of(bytes: &[u8], out: &mut Vec<u32>) {
    out.clear();
    for c in bytes.chunks(4) {
        out.push(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    }
}

impl CardSim {
    /// Builds the card top of `cfg` (cached) and resets it.
    pub fn new(cfg: &ArrayConfig, opts: CardSimOptions) -> Result<Self, CardSimError> {
        for (what, t) in [("card", opts.card_mem), ("host", opts.host_mem)] {
            if !(t.words_per_cycle > 0.0 && t.words_per_cycle <= 1.0) {
                return Err(CardSimError::BadParam(format!(
                    "{what} memory: words_per_cycle = {} (legal: (0, 1])",
                    t.words_per_cycle
                )));
            }
        }
        if opts.mem_bytes == 0 || !opts.mem_bytes.is_multiple_of(64) {
            return Err(CardSimError::BadParam(format!(
                "mem_bytes = {} (legal: a non-zero multiple of 64)",
                opts.mem_bytes
            )));
        }
        let built = build(cfg, &opts)?;
        let model = built.instantiate()?;
        let p = |n: &str| model.port(n);
        let lite = LitePorts {
            clk: p("clk")?,
            rst: p("rst")?,
            awvalid: p("s_awvalid")?,
            awready: p("s_awready")?,
            awaddr: p("s_awaddr")?,
            wvalid: p("s_wvalid")?,
            wdata: p("s_wdata")?,
            wstrb: p("s_wstrb")?,
            bvalid: p("s_bvalid")?,
            bready: p("s_bready")?,
            arvalid: p("s_arvalid")?,
            arready: p("s_arready")?,
            araddr: p("s_araddr")?,
            rvalid: p("s_rvalid")?,
            rready: p("s_rready")?,
            rdata: p("s_rdata")?,
        };
        let hp = MPorts::new(&model, "h")?;
        let cp = MPorts::new(&model, "c")?;
        let mut s = Self {
            model,
            lite,
            hp,
            cp,
            host: HostMem {
                next_iova: IOVA_BASE,
                next_id: 1,
                ..Default::default()
            },
            card: CardMem {
                size: opts.mem_bytes,
                pages: HashMap::new(),
            },
            hmod: PortModel::new(opts.host_mem),
            cmod: PortModel::new(opts.card_mem),
            cycle: 0,
            aw: None,
            ar: None,
            cq_base: 0,
            cq_log2: 0,
            cq_writes: 0,
            opts,
            buf: Vec::new(),
            reg_timeout: 10_000,
        };
        s.hard_reset()?;
        Ok(s)
    }

    /// The options this simulation was built with.
    pub fn options(&self) -> &CardSimOptions {
        &self.opts
    }

    /// Pulses `rst` for 4 cycles (the function-level reset); memories keep their contents,
    /// outstanding memory transactions are dropped.
    pub fn hard_reset(&mut self) -> Result<(), CardSimError> {
        let l = &self.lite;
        for i in [l.awvalid, l.wvalid, l.arvalid] {
            self.model.set_u64(i, 0)?;
        }
        self.model.set_u64(l.bready, 1)?;
        self.model.set_u64(l.rready, 1)?;
        self.model.set_u64(l.wstrb, 0xf)?;
        self.model.set_u64(l.rst, 1)?;
        self.hmod = PortModel::new(self.opts.host_mem);
        self.cmod = PortModel::new(self.opts.card_mem);
        for _ in 0..4 {
            self.cycle_once()?;
        }
        self.model.set_u64(self.lite.rst, 0)?;
        self.aw = None;
        self.ar = None;
        self.model.eval();
        Ok(())
    }

    /// Clock cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.cycle
    }

    /// Completion-ring writes seen so far (writes into the CQ the host configured).
    pub fn cq_writes(&self) -> u64 {
        self.cq_writes
    }

    fn check_off(off: u32) -> Result<(), CardSimError> {
        if !off.is_multiple_of(4) || off >= tern_spec::card::regs::BAR0_BYTES {
            return Err(CardSimError::BadOffset(off));
        }
        Ok(())
    }

    /// An AXI4-Lite read of a BAR0 register.
    pub fn read32(&mut self, offset: u32) -> Result<u32, CardSimError> {
        Self::check_off(offset)?;
        self.ar = Some(offset);
        let start = self.cycle;
        loop {
            let (ar_fire, _, r) = self.cycle_once()?;
            if ar_fire {
                self.ar = None;
            }
            if let Some(v) = r {
                return Ok(v);
            }
            if self.cycle - start > self.reg_timeout {
                self.ar = None;
                return Err(CardSimError::RegTimeout {
                    what: "read",
                    offset,
                    cycles: self.reg_timeout,
                });
            }
        }
    }

    /// An AXI4-Lite write of a BAR0 register (all byte strobes).
    pub fn write32(&mut self, offset: u32, value: u32) -> Result<(), CardSimError> {
        Self::check_off(offset)?;
        match offset {
            off::CQ_BASE_LO => self.cq_base = (self.cq_base & !0xffff_ffff) | value as u64,
            off::CQ_BASE_HI => self.cq_base = (self.cq_base & 0xffff_ffff) | (value as u64) << 32,
            off::CQ_LOG2_SIZE if value <= 12 => self.cq_log2 = value,
            _ => {}
        }
        self.aw = Some((offset, value));
        let start = self.cycle;
        loop {
            let (_, b, _) = self.cycle_once()?;
            if b {
                return Ok(());
            }
            if self.cycle - start > self.reg_timeout {
                self.aw = None;
                return Err(CardSimError::RegTimeout {
                    what: "write",
                    offset,
                    cycles: self.reg_timeout,
                });
            }
        }
    }

    /// Allocates a zeroed host buffer of `len` bytes mapped at a fresh page-aligned IOVA
    /// (with an unmapped guard page after it).
    pub fn alloc(&mut self, len: usize) -> Result<HostBuf, CardSimError> {
        if len == 0 || len > (1 << 34) {
            return Err(CardSimError::Alloc(len));
        }
        let pages = (len as u64).div_ceil(PAGE);
        let iova = self.host.next_iova;
        let next = iova
            .checked_add((pages + 1) * PAGE)
            .ok_or(CardSimError::Alloc(len))?;
        self.host.next_iova = next;
        let id = self.host.next_id;
        self.host.next_id += 1;
        self.host.regions.insert(
            iova,
            Region {
                id,
                len,
                data: vec![0u8; (pages * PAGE) as usize],
            },
        );
        self.host.by_id.insert(id, iova);
        Ok(HostBuf { id, iova, len })
    }

    /// Unmaps and frees a host buffer (card accesses to it answer SLVERR from now on).
    pub fn free(&mut self, id: u64) -> Result<(), CardSimError> {
        let iova = self
            .host
            .by_id
            .remove(&id)
            .ok_or(CardSimError::UnknownBuf(id))?;
        self.host.regions.remove(&iova);
        Ok(())
    }

    fn region(&mut self, id: u64) -> Result<&mut Region, CardSimError> {
        let iova = *self
            .host
            .by_id
            .get(&id)
            .ok_or(CardSimError::UnknownBuf(id))?;
        self.host
            .regions
            .get_mut(&iova)
            .ok_or(CardSimError::UnknownBuf(id))
    }

    /// Writes bytes into a host buffer.
    pub fn write_host(&mut self, id: u64, offset: usize, data: &[u8]) -> Result<(), CardSimError> {
        let r = self.region(id)?;
        let end = offset.checked_add(data.len()).filter(|&e| e <= r.len);
        let Some(end) = end else {
            return Err(CardSimError::BufRange {
                id,
                offset,
                len: data.len(),
                size: r.len,
            });
        };
        r.data[offset..end].copy_from_slice(data);
        debug_assert_eq!(r.id, id);
        Ok(())
    }

    /// Reads bytes from a host buffer.
    pub fn read_host(
        &mut self,
        id: u64,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), CardSimError> {
        let r = self.region(id)?;
        let end = offset.checked_add(out.len()).filter(|&e| e <= r.len);
        let Some(end) = end else {
            return Err(CardSimError::BufRange {
                id,
                offset,
                len: out.len(),
                size: r.len,
            });
        };
        out.copy_from_slice(&r.data[offset..end]);
        Ok(())
    }

    /// Backdoor write of card memory (test set-up; the card's own port is the normal path).
    pub fn write_card(&mut self, addr: u64, data: &[u8]) -> Result<(), CardSimError> {
        if addr
            .checked_add(data.len() as u64)
            .is_none_or(|e| e > self.card.size)
        {
            return Err(CardSimError::CardRange {
                addr,
                len: data.len(),
                size: self.card.size,
            });
        }
        for (i, b) in data.iter().enumerate() {
            let a = addr + i as u64;
            self.card.page_mut(a)[(a % PAGE) as usize] = *b;
        }
        Ok(())
    }

    /// Backdoor read of card memory.
    pub fn read_card(&mut self, addr: u64, out: &mut [u8]) -> Result<(), CardSimError> {
        if addr
            .checked_add(out.len() as u64)
            .is_none_or(|e| e > self.card.size)
        {
            return Err(CardSimError::CardRange {
                addr,
                len: out.len(),
                size: self.card.size,
            });
        }
        for (i, o) in out.iter_mut().enumerate() {
            let a = addr + i as u64;
            *o = self
                .card
                .pages
                .get(&(a / PAGE))
                .map_or(0, |p| p[(a % PAGE) as usize]);
        }
        Ok(())
    }

    /// Runs `n` cycles.
    pub fn step(&mut self, n: u64) -> Result<(), CardSimError> {
        for _ in 0..n {
            self.cycle_once()?;
        }
        Ok(())
    }

    /// Runs until the card writes into the completion ring or `budget` cycles passed;
    /// returns whether a completion was written.
    pub fn run_until_cq_write(&mut self, budget: u64) -> Result<bool, CardSimError> {
        let seen = self.cq_writes;
        for _ in 0..budget {
            self.cycle_once()?;
            if self.cq_writes != seen {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether any memory transaction is outstanding on either port.
    pub fn memory_busy(&self) -> bool {
        self.hmod.busy() || self.cmod.busy()
    }

    /// One clock cycle: present the slaves' outputs, settle, observe the handshakes,
    /// advance the memory models, clock edge. Returns (AR-lite fire, B-lite seen, R-lite data).
    fn cycle_once(&mut self) -> Result<(bool, bool, Option<u32>), CardSimError> {
        let m = &mut self.model;
        let l = &self.lite;
        // AXI-Lite inputs
        match self.aw {
            Some((a, v)) => {
                m.set_u64(l.awvalid, 1)?;
                m.set_u64(l.wvalid, 1)?;
                m.set_u64(l.awaddr, a as u64)?;
                m.set_u64(l.wdata, v as u64)?;
            }
            None => {
                m.set_u64(l.awvalid, 0)?;
                m.set_u64(l.wvalid, 0)?;
            }
        }
        match self.ar {
            Some(a) => {
                m.set_u64(l.arvalid, 1)?;
                m.set_u64(l.araddr, a as u64)?;
            }
            None => m.set_u64(l.arvalid, 0)?,
        }
        // memory slave outputs (decided before the card's outputs settle)
        let hs = present(
            m,
            &self.hp,
            &mut self.hmod,
            self.cycle,
            &mut |addr, out| match self.host.word(addr) {
                Some(w) => {
                    out.copy_from_slice(w);
                    true
                }
                None => false,
            },
            &mut self.buf,
        )?;
        let card = &self.card;
        let cs = present(
            m,
            &self.cp,
            &mut self.cmod,
            self.cycle,
            &mut |addr, out| {
                let mut w = [0u8; 64];
                let ok = card.read_word(addr, &mut w);
                out.copy_from_slice(&w);
                ok
            },
            &mut self.buf,
        )?;
        m.eval();
        // AXI-Lite outputs
        let mut ar_fire = false;
        let mut b_seen = false;
        let mut r_data = None;
        if self.aw.is_some() && m.get_u64(l.awready)? & 1 == 1 {
            self.aw = None;
        }
        if m.get_u64(l.bvalid)? & 1 == 1 {
            b_seen = true;
        }
        if self.ar.is_some() && m.get_u64(l.arready)? & 1 == 1 {
            ar_fire = true;
        }
        if m.get_u64(l.rvalid)? & 1 == 1 {
            r_data = Some(m.get_u64(l.rdata)? as u32);
        }
        // memory handshakes
        let cycle = self.cycle;
        let host = &mut self.host;
        let hw = observe(
            m,
            &self.hp,
            &mut self.hmod,
            hs,
            cycle,
            "host",
            &mut |addr, data, strb| match host.word(addr) {
                Some(w) => {
                    for i in 0..64 {
                        if (strb >> i) & 1 == 1 {
                            w[i] = data[i];
                        }
                    }
                    true
                }
                None => false,
            },
        )?;
        let cq_end = self.cq_base + (16u64 << self.cq_log2);
        for a in hw {
            if a + 64 > self.cq_base && a < cq_end {
                self.cq_writes += 1;
            }
        }
        let card = &mut self.card;
        observe(
            m,
            &self.cp,
            &mut self.cmod,
            cs,
            cycle,
            "card",
            &mut |addr, data, strb| {
                if addr.checked_add(64).is_none_or(|e| e > card.size) {
                    return false;
                }
                let o = (addr % PAGE) as usize;
                let p = card.page_mut(addr);
                for i in 0..64 {
                    if (strb >> i) & 1 == 1 {
                        p[o + i] = data[i];
                    }
                }
                true
            },
        )?;
        m.tick(l.clk, 1)?;
        self.cycle += 1;
        Ok((ar_fire, b_seen, r_data))
    }
}

/// What a slave presented this cycle.
#[derive(Clone, Copy)]
struct Shown {
    arready: bool,
    awready: bool,
    rvalid: bool,
    wready: bool,
    bvalid: bool,
}

fn present(
    m: &mut Model,
    p: &MPorts,
    s: &mut PortModel,
    cycle: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> bool,
    buf: &mut Vec<u32>,
) -> Result<Shown, SimError> {
    s.rd_credit = (s.rd_credit + s.t.words_per_cycle).min(1.0);
    s.wr_credit = (s.wr_credit + s.t.words_per_cycle).min(1.0);
    let arready = s.ar.len() < QUEUE_DEPTH;
    let awready = s.aw.len() < QUEUE_DEPTH;
    let mut rvalid = false;
    if let Some(b) = s.ar.front_mut() {
        if b.ready_at <= cycle && s.rd_credit >= 1.0 - 1e-9 {
            rvalid = true;
            let addr = b.addr + 64 * b.done;
            if s.shown != Some((addr, b.done)) {
                let mut w = [0u8; 64];
                let ok = read(addr, &mut w);
                if !ok {
                    b.err = true;
                }
                words_of(&w, buf);
                m.set(p.rdata, buf)?;
                m.set_u64(p.rresp, if ok { 0 } else { SLVERR })?;
                s.shown = Some((addr, b.done));
            }
            m.set_u64(p.rlast, (b.done + 1 == b.beats) as u64)?;
        }
    }
    let wready = !s.aw.is_empty() && s.wr_credit >= 1.0 - 1e-9;
    let bvalid = s.b.front().is_some_and(|&(t, _)| t <= cycle);
    if let Some(&(_, resp)) = s.b.front() {
        m.set_u64(p.bresp, resp)?;
    }
    m.set_u64(p.arready, arready as u64)?;
    m.set_u64(p.awready, awready as u64)?;
    m.set_u64(p.rvalid, rvalid as u64)?;
    m.set_u64(p.wready, wready as u64)?;
    m.set_u64(p.bvalid, bvalid as u64)?;
    Ok(Shown {
        arready,
        awready,
        rvalid,
        wready,
        bvalid,
    })
}

/// Applies this cycle's handshakes; returns the host addresses written (word-aligned).
fn observe(
    m: &mut Model,
    p: &MPorts,
    s: &mut PortModel,
    sh: Shown,
    cycle: u64,
    port: &'static str,
    write: &mut dyn FnMut(u64, &[u8], u64) -> bool,
) -> Result<Vec<u64>, CardSimError> {
    let mut written = Vec::new();
    if sh.rvalid && m.get_u64(p.rready)? & 1 == 1 {
        s.rd_credit -= 1.0;
        s.shown = None;
        if let Some(b) = s.ar.front_mut() {
            b.done += 1;
            if b.done == b.beats {
                s.ar.pop_front();
            }
        }
    }
    if sh.bvalid && m.get_u64(p.bready)? & 1 == 1 {
        s.b.pop_front();
    }
    if sh.arready && m.get_u64(p.arvalid)? & 1 == 1 {
        let addr = m.get_u64(p.araddr)?;
        let len = m.get_u64(p.arlen)? + 1;
        s.ar.push_back(Burst {
            addr: addr & !63,
            beats: len,
            done: 0,
            ready_at: cycle + s.t.latency,
            err: false,
        });
    }
    if sh.awready && m.get_u64(p.awvalid)? & 1 == 1 {
        let addr = m.get_u64(p.awaddr)?;
        let len = m.get_u64(p.awlen)? + 1;
        s.aw.push_back(Burst {
            addr: addr & !63,
            beats: len,
            done: 0,
            ready_at: cycle,
            err: false,
        });
    }
    if sh.wready && m.get_u64(p.wvalid)? & 1 == 1 {
        s.wr_credit -= 1.0;
        let data = m.get(p.wdata)?;
        let strb = m.get_u64(p.wstrb)?;
        let mut bytes = [0u8; 64];
        for (i, w) in data.iter().enumerate() {
            bytes[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        let last = m.get_u64(p.wlast)? & 1 == 1;
        if let Some(b) = s.aw.front_mut() {
            if last != (b.done + 1 == b.beats) {
                return Err(CardSimError::Protocol {
                    port,
                    cycle,
                    what: format!(
                        "wlast = {last} on beat {} of a {}-beat burst at {:#x}",
                        b.done, b.beats, b.addr
                    ),
                });
            }
            let addr = b.addr + 64 * b.done;
            if strb != 0 {
                if write(addr, &bytes, strb) {
                    written.push(addr);
                } else {
                    b.err = true;
                }
            }
            b.done += 1;
            if b.done == b.beats {
                let resp = if b.err { SLVERR } else { 0 };
                s.aw.pop_front();
                s.b.push_back((cycle + WRITE_RESP_LATENCY, resp));
            }
        }
    }
    Ok(written)
}

/// Writes a VCD of the rest of the run (the sim must be built with `trace: true`).
pub fn trace_to(sim: &mut CardSim, path: &Path) -> Result<(), CardSimError> {
    sim.model.trace_open(path)?;
    Ok(())
}
