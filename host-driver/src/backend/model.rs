//! The software model of the card (back end `model`): BAR0 per
//! [`tern_spec::card::regs::REGS`], sparse card memory, host DMA buffers behind an IOVA
//! allocator with guard gaps, and a command engine with exactly the semantics of
//! docs/card.md. GEMMs decode the weight-region image from card memory and run
//! [`tern_spec::reference::gemm_acc`] on it; completions carry a modeled cycle count (the
//! array's `ideal_cycles` plus command and memory overheads).
//!
//! Fault injection ([`Fault`]) makes the card misbehave once, on the first eligible command
//! after `after` eligible ones, so the driver's error paths can be tested.

use crate::transport::{DmaBuf, Transport, TransportError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern_hdl::{HdlOptions, Params};
use tern_spec::card::cmd::{CmdError, Command, Completion, Opcode, Status, CMD_BYTES, CPL_BYTES};
use tern_spec::card::image::{
    self, decode_acts, encode_outputs, outputs_layout, HeaderField, RegionHeader, HEADER_BYTES,
};
use tern_spec::card::regs::{self, off, Access};
use tern_spec::config::ArrayConfig;
use tern_spec::ScaledTernaryMatrix;

/// A fault the model can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The command runs forever (BUSY) while the heartbeat keeps running.
    Timeout,
    /// The next LOAD_WEIGHTS corrupts one byte: CRC_MISMATCH.
    Crc,
    /// The next DMA gets an error response: DMA_ERROR.
    Dma,
    /// The engine stays BUSY forever and the heartbeat stops.
    Stuck,
    /// The next command executes but its completion is never written.
    Dropped,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Timeout,
        Fault::Crc,
        Fault::Dma,
        Fault::Stuck,
        Fault::Dropped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Timeout => "timeout",
            Fault::Crc => "crc",
            Fault::Dma => "dma",
            Fault::Stuck => "stuck",
            Fault::Dropped => "dropped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Whether the fault can hit a command with this opcode.
    fn applies_to(self, op: Opcode) -> bool {
        match self {
            Fault::Crc => op == Opcode::LoadWeights,
            Fault::Dma => matches!(
                op,
                Opcode::DmaToCard | Opcode::DmaToHost | Opcode::LoadWeights
            ),
            _ => true,
        }
    }
}

/// Default card memory of the model: 4 GiB.
pub const DEFAULT_MEM_BYTES: u64 = 4 << 30;
/// Card memory page of the sparse store.
const PAGE: u64 = 64 * 1024;
/// First IOVA handed out, and the unmapped gap after every buffer.
const IOVA_BASE: u64 = 0x1_0000_0000;
const IOVA_GUARD: u64 = 0x1000;
/// Modeled cycle costs.
const CMD_CYCLES: u64 = 16;
const MEM_LATENCY: u64 = 100;

/// How to build a model card.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    pub cfg: ArrayConfig,
    pub mem_bytes: u64,
    pub fault: Option<Fault>,
    /// Eligible commands that run normally before the fault hits.
    pub fault_after: u32,
    /// Identity overrides (tests of the driver's probe).
    pub magic: u32,
    pub abi: (u16, u16),
}

impl ModelOptions {
    pub fn new(cfg: ArrayConfig) -> Self {
        Self {
            cfg,
            mem_bytes: DEFAULT_MEM_BYTES,
            fault: None,
            fault_after: 0,
            magic: regs::MAGIC,
            abi: (regs::ABI_MAJOR, regs::ABI_MINOR),
        }
    }
    pub fn fault(mut self, f: Fault) -> Self {
        self.fault = Some(f);
        self
    }
    pub fn fault_after(mut self, n: u32) -> Self {
        self.fault_after = n;
        self
    }
    pub fn mem_bytes(mut self, b: u64) -> Self {
        self.mem_bytes = b;
        self
    }
    pub fn magic(mut self, m: u32) -> Self {
        self.magic = m;
        self
    }
    pub fn abi(mut self, major: u16, minor: u16) -> Self {
        self.abi = (major, minor);
        self
    }
}

/// The build hash the model reports: FNV-1a of the config's canonical TOML.
pub fn build_hash(cfg: &ArrayConfig) -> u64 {
    u64::from_str_radix(&cfg.hash_hex(), 16).unwrap_or(0)
}

#[derive(Debug, Default, Clone, Copy)]
struct Perf {
    cycles: u64,
    busy: u64,
    stall_mem: u64,
    stall_out: u64,
    idle: u64,
    bytes_rd: u64,
    bytes_wr: u64,
    macs: u64,
    cmds: u32,
}

/// A command that does not finish (injected Timeout or Stuck).
#[derive(Debug, Clone, Copy)]
struct Running {
    tag: u16,
    stuck: bool,
}

#[derive(Debug)]
struct HostBuf {
    id: u64,
    data: Vec<u8>,
}

/// A failed command: status and info.
type Fail = (Status, u32);

/// The model card.
pub struct ModelCard {
    opts: ModelOptions,
    params: Params,
    id_regs: HashMap<u32, u32>,
    // control block
    enable: bool,
    halted: bool,
    reset_done: bool,
    error: u32,
    error_tag: u32,
    error_info: u32,
    scratch: u32,
    // rings
    sq_base: u64,
    sq_log2: u32,
    sq_tail: u32,
    sq_head: u32,
    cq_base: u64,
    cq_log2: u32,
    cq_head: u32,
    cq_tail: u32,
    phase: bool,
    running: Option<Running>,
    // perf
    perf: Perf,
    latched_hi: HashMap<u32, u32>,
    frozen_heartbeat: Option<u32>,
    last_wall: Instant,
    // memories
    pages: HashMap<u64, Box<[u8]>>,
    bufs: BTreeMap<u64, HostBuf>,
    next_iova: u64,
    next_buf_id: u64,
    regions: HashMap<u64, (u64, Arc<ScaledTernaryMatrix>)>,
    // faults
    fault: Option<Fault>,
    fault_after: u32,
}

impl std::fmt::Debug for ModelCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModelCard({})", self.describe())
    }
}

fn bad_offset(offset: u32) -> TransportError {
    TransportError::BadOffset {
        backend: "model".into(),
        offset,
    }
}

impl ModelCard {
    /// A model card of the array `opts.cfg`.
    pub fn new(opts: ModelOptions) -> Result<Self, TransportError> {
        let cfg = &opts.cfg;
        let params =
            Params::new(cfg, HdlOptions::default()).map_err(|e| TransportError::Other {
                backend: "model".into(),
                msg: format!("config {} cannot be modeled: {e}", cfg.name),
            })?;
        let hash = build_hash(cfg);
        let mut caps = regs::caps::WEIGHT_CRC | regs::caps::PERF;
        if cfg.array.token_tile > 1 {
            caps |= regs::caps::GEMM;
        }
        let mut id_regs: HashMap<u32, u32> = regs::REGS
            .iter()
            .filter(|r| r.offset < off::CTRL_HDR)
            .map(|r| (r.offset, r.reset))
            .collect();
        for (o, v) in [
            (off::MAGIC, opts.magic),
            (
                off::ABI_VERSION,
                (opts.abi.0 as u32) << 16 | opts.abi.1 as u32,
            ),
            (off::BUILD_HASH_LO, hash as u32),
            (off::BUILD_HASH_HI, (hash >> 32) as u32),
            (off::CAPS, caps),
            (off::ROWS, cfg.array.rows),
            (off::COLS, cfg.array.cols),
            (off::TOKEN_TILE, cfg.array.token_tile),
            (off::BLOCK_N, cfg.block.n),
            (off::BLOCK_K, cfg.block.k),
            (off::ACT_BITS, cfg.activation.bits),
            (off::MANT_BITS, cfg.scale.mantissa_bits),
            (off::PSUM_BITS, cfg.accumulator.psum_bits),
            (off::ACC_BITS, cfg.accumulator.acc_bits),
            (off::MAX_K, cfg.accumulator.max_k as u32),
            (off::MAX_N, cfg.accumulator.max_n as u32),
            (
                off::CLOCK_KHZ,
                (cfg.clock.target_mhz * 1000.0).round() as u32,
            ),
            (off::MEM_BYTES_LO, opts.mem_bytes as u32),
            (off::MEM_BYTES_HI, (opts.mem_bytes >> 32) as u32),
        ] {
            id_regs.insert(o, v);
        }
        let fault = opts.fault;
        let fault_after = opts.fault_after;
        let mut m = Self {
            opts,
            params,
            id_regs,
            enable: false,
            halted: false,
            reset_done: true,
            error: 0,
            error_tag: 0,
            error_info: 0,
            scratch: 0,
            sq_base: 0,
            sq_log2: 0,
            sq_tail: 0,
            sq_head: 0,
            cq_base: 0,
            cq_log2: 0,
            cq_head: 0,
            cq_tail: 0,
            phase: true,
            running: None,
            perf: Perf::default(),
            latched_hi: HashMap::new(),
            frozen_heartbeat: None,
            last_wall: Instant::now(),
            pages: HashMap::new(),
            bufs: BTreeMap::new(),
            next_iova: IOVA_BASE,
            next_buf_id: 1,
            regions: HashMap::new(),
            fault,
            fault_after,
        };
        m.power_on_reset();
        Ok(m)
    }

    /// A model of a built-in config or TOML file, no faults.
    pub fn with_config(cfg: ArrayConfig) -> Result<Self, TransportError> {
        Self::new(ModelOptions::new(cfg))
    }

    /// The array this card models.
    pub fn config(&self) -> &ArrayConfig {
        &self.opts.cfg
    }

    fn power_on_reset(&mut self) {
        self.enable = false;
        self.scratch = 0;
        self.sq_base = 0;
        self.sq_log2 = 0;
        self.cq_base = 0;
        self.cq_log2 = 0;
        self.soft_reset();
    }

    /// CONTROL.SOFT_RESET: empty rings, clear errors and counters, RESET_DONE.
    fn soft_reset(&mut self) {
        self.sq_head = 0;
        self.sq_tail = 0;
        self.cq_head = 0;
        self.cq_tail = 0;
        self.phase = true;
        self.halted = false;
        self.error = 0;
        self.error_tag = 0;
        self.error_info = 0;
        self.running = None;
        self.frozen_heartbeat = None;
        self.perf = Perf::default();
        self.latched_hi.clear();
        self.reset_done = true;
    }

    fn clock_hz(&self) -> f64 {
        self.opts.cfg.clock.target_mhz * 1e6
    }

    fn heartbeat(&self) -> u32 {
        self.frozen_heartbeat
            .unwrap_or((self.perf.cycles / 1024) as u32)
    }

    /// Advances simulated time with wall time while nothing executes (heartbeat runs
    /// unless the engine is stuck).
    fn tick_wall(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last_wall);
        self.last_wall = now;
        if self.frozen_heartbeat.is_some() {
            return;
        }
        let c = (dt.as_secs_f64() * self.clock_hz()) as u64;
        self.perf.cycles += c;
        if self.running.is_some() {
            self.perf.busy += c;
        } else {
            self.perf.idle += c;
        }
    }

    fn sq_size(&self) -> u32 {
        1 << self.sq_log2.min(31)
    }
    fn cq_size(&self) -> u32 {
        1 << self.cq_log2.min(31)
    }

    fn raise(&mut self, bit: u32, tag: u16, info: u32) {
        if self.error == 0 {
            self.error_tag = tag as u32;
            self.error_info = info;
        }
        self.error |= bit;
        self.halted = true;
    }

    // ---- card memory ----

    fn mem_check(&self, addr: u64, len: u64) -> Result<(), Fail> {
        match addr.checked_add(len) {
            Some(end) if end <= self.opts.mem_bytes => Ok(()),
            _ => {
                let bad = if addr >= self.opts.mem_bytes {
                    addr
                } else {
                    self.opts.mem_bytes
                };
                Err((Status::AddrRange, bad as u32))
            }
        }
    }

    fn mem_read(&mut self, addr: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let mut done = 0usize;
        while done < len {
            let a = addr + done as u64;
            let (page, po) = (a / PAGE, (a % PAGE) as usize);
            let n = (PAGE as usize - po).min(len - done);
            if let Some(p) = self.pages.get(&page) {
                out[done..done + n].copy_from_slice(&p[po..po + n]);
            }
            done += n;
        }
        self.perf.bytes_rd += len as u64;
        out
    }

    fn mem_write(&mut self, addr: u64, data: &[u8]) {
        let end = addr + data.len() as u64;
        self.regions.retain(|&a, (l, _)| end <= a || addr >= a + *l);
        let mut done = 0usize;
        while done < data.len() {
            let a = addr + done as u64;
            let (page, po) = (a / PAGE, (a % PAGE) as usize);
            let n = (PAGE as usize - po).min(data.len() - done);
            let p = self
                .pages
                .entry(page)
                .or_insert_with(|| vec![0u8; PAGE as usize].into_boxed_slice());
            p[po..po + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        self.perf.bytes_wr += data.len() as u64;
    }

    /// Bytes of card memory backed by pages (never-written memory costs nothing).
    pub fn resident_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    // ---- host memory (the host port) ----

    fn host_slice(&mut self, iova: u64, len: usize) -> Option<(&mut Vec<u8>, usize)> {
        let (&base, buf) = self.bufs.range_mut(..=iova).next_back()?;
        let off = (iova - base) as usize;
        if off.checked_add(len)? <= buf.data.len() {
            Some((&mut buf.data, off))
        } else {
            None
        }
    }

    fn host_read(&mut self, iova: u64, len: usize) -> Result<Vec<u8>, Fail> {
        match self.host_slice(iova, len) {
            Some((d, o)) => Ok(d[o..o + len].to_vec()),
            None => Err((Status::DmaError, iova as u32)),
        }
    }

    fn host_write(&mut self, iova: u64, data: &[u8]) -> Result<(), Fail> {
        match self.host_slice(iova, data.len()) {
            Some((d, o)) => {
                d[o..o + data.len()].copy_from_slice(data);
                Ok(())
            }
            None => Err((Status::DmaError, iova as u32)),
        }
    }

    // ---- the engine ----

    /// Whether the armed fault hits this command (consumes it if so).
    fn take_fault(&mut self, op: Opcode) -> Option<Fault> {
        let f = self.fault?;
        if !f.applies_to(op) {
            return None;
        }
        if self.fault_after > 0 {
            self.fault_after -= 1;
            return None;
        }
        self.fault = None;
        Some(f)
    }

    fn cq_full(&self) -> bool {
        (self.cq_tail + 1) % self.cq_size() == self.cq_head
    }

    /// Runs every command it can; returns how many completions it wrote or errors it raised.
    fn run(&mut self) -> usize {
        let mut progress = 0;
        while self.enable && !self.halted && self.running.is_none() && self.sq_head != self.sq_tail
        {
            if self.cq_full() {
                break;
            }
            let at = self.sq_base + self.sq_head as u64 * CMD_BYTES as u64;
            let raw = match self.host_read(at, CMD_BYTES) {
                Ok(r) => r,
                Err((_, info)) => {
                    self.raise(regs::error::DMA_ERROR, 0xffff, info);
                    progress += 1;
                    break;
                }
            };
            let raw: [u8; CMD_BYTES] = raw.try_into().expect("64 bytes");
            self.sq_head = (self.sq_head + 1) % self.sq_size();
            self.reset_done = false;
            let tag = u16::from_le_bytes([raw[2], raw[3]]);
            let mut drop = false;
            let (res, cycles) = match Command::decode(&raw) {
                Err(CmdError::BadOpcode { opcode, .. }) => {
                    (Err((Status::BadOpcode, opcode as u32)), CMD_CYCLES)
                }
                Err(CmdError::Reserved { byte, .. }) => {
                    (Err((Status::BadField, 0x100 + byte as u32)), CMD_CYCLES)
                }
                Err(CmdError::BadFlags { .. }) => (Err((Status::BadField, 0x101)), CMD_CYCLES),
                Ok(cmd) => match self.take_fault(cmd.opcode) {
                    Some(Fault::Timeout) => {
                        self.running = Some(Running { tag, stuck: false });
                        progress += 1;
                        break;
                    }
                    Some(Fault::Stuck) => {
                        self.running = Some(Running { tag, stuck: true });
                        self.frozen_heartbeat = Some(self.heartbeat());
                        progress += 1;
                        break;
                    }
                    Some(Fault::Dropped) => {
                        drop = true;
                        self.execute(&cmd, false, false)
                    }
                    Some(Fault::Crc) => self.execute(&cmd, true, false),
                    Some(Fault::Dma) => self.execute(&cmd, false, true),
                    None => self.execute(&cmd, false, false),
                },
            };
            self.perf.cycles += cycles;
            self.perf.cmds = self.perf.cmds.wrapping_add(1);
            progress += 1;
            let (status, info) = match res {
                Ok(()) => (Status::Ok, 0),
                Err(f) => f,
            };
            if !drop && !self.complete(tag, status, info, cycles) {
                break;
            }
            if status != Status::Ok {
                let bit = match status {
                    Status::BadOpcode => regs::error::BAD_OPCODE,
                    Status::BadField => regs::error::BAD_FIELD,
                    Status::AddrRange => regs::error::ADDR_RANGE,
                    Status::CrcMismatch => regs::error::CRC_MISMATCH,
                    Status::DmaError => regs::error::DMA_ERROR,
                    _ => regs::error::INTERNAL_TIMEOUT,
                };
                self.raise(bit, tag, info);
            }
        }
        progress
    }

    /// Writes a completion; false (and DMA_ERROR, halted) if the CQ is not reachable.
    fn complete(&mut self, tag: u16, status: Status, info: u32, cycles: u64) -> bool {
        let c = Completion {
            tag,
            status: status as u8,
            phase: self.phase,
            info,
            cycles,
        };
        let at = self.cq_base + self.cq_tail as u64 * CPL_BYTES as u64;
        if let Err((_, i)) = self.host_write(at, &c.encode()) {
            self.raise(regs::error::DMA_ERROR, tag, i);
            return false;
        }
        self.cq_tail = (self.cq_tail + 1) % self.cq_size();
        if self.cq_tail == 0 {
            self.phase = !self.phase;
        }
        true
    }

    fn dma_fields(cmd: &Command) -> Result<(), Fail> {
        if cmd.w0 == 0 || !cmd.w0.is_multiple_of(64) {
            return Err((Status::BadField, 0x100 + 32));
        }
        if !cmd.a0.is_multiple_of(64) {
            return Err((Status::BadField, 0x100 + 8));
        }
        if !cmd.a1.is_multiple_of(64) {
            return Err((Status::BadField, 0x100 + 16));
        }
        Ok(())
    }

    fn dma_cycles(&mut self, len: u64) -> u64 {
        self.perf.stall_mem += MEM_LATENCY;
        CMD_CYCLES + MEM_LATENCY + len.div_ceil(64)
    }

    /// Executes one command: its result and its cycle count.
    fn execute(&mut self, cmd: &Command, corrupt: bool, dma_fail: bool) -> (Result<(), Fail>, u64) {
        match cmd.opcode {
            Opcode::Nop | Opcode::Fence => (Ok(()), CMD_CYCLES),
            Opcode::DmaToCard | Opcode::LoadWeights => {
                let len = cmd.w0 as u64;
                let r = (|| {
                    Self::dma_fields(cmd)?;
                    self.mem_check(cmd.a1, len)?;
                    if dma_fail {
                        return Err((Status::DmaError, cmd.a0 as u32));
                    }
                    let mut data = self.host_read(cmd.a0, len as usize)?;
                    if corrupt {
                        let i = data.len() / 2;
                        data[i] ^= 0x40;
                    }
                    self.mem_write(cmd.a1, &data);
                    if cmd.opcode == Opcode::LoadWeights {
                        let crc = crc32fast::hash(&data);
                        if crc != cmd.w1 {
                            return Err((Status::CrcMismatch, crc));
                        }
                    }
                    Ok(())
                })();
                (r, self.dma_cycles(len))
            }
            Opcode::DmaToHost => {
                let len = cmd.w0 as u64;
                let r = (|| {
                    Self::dma_fields(cmd)?;
                    self.mem_check(cmd.a1, len)?;
                    if dma_fail {
                        return Err((Status::DmaError, cmd.a0 as u32));
                    }
                    let data = self.mem_read(cmd.a1, len as usize);
                    self.host_write(cmd.a0, &data)
                })();
                (r, self.dma_cycles(len))
            }
            Opcode::Gemm => match self.gemm(cmd) {
                Ok(c) => (Ok(()), c),
                Err(f) => (Err(f), CMD_CYCLES),
            },
        }
    }

    fn gemm(&mut self, cmd: &Command) -> Result<u64, Fail> {
        let cfg = self.opts.cfg.clone();
        let (m, k, n) = (cmd.w0 as usize, cmd.w1 as usize, cmd.w2 as usize);
        let field = |byte: u32| (Status::BadField, 0x100 + byte);
        for (a, byte) in [(cmd.a0, 8), (cmd.a1, 16), (cmd.a2, 24)] {
            if a % 64 != 0 {
                return Err(field(byte));
            }
        }
        if m == 0 || m > cfg.array.token_tile as usize {
            return Err(field(32));
        }
        if k == 0 || k as u64 > cfg.accumulator.max_k {
            return Err(field(36));
        }
        if n == 0 || n as u64 > cfg.accumulator.max_n {
            return Err(field(40));
        }
        self.mem_check(cmd.a0, HEADER_BYTES as u64)?;
        let hb = self.mem_read(cmd.a0, HEADER_BYTES);
        let hdr = match RegionHeader::decode(&hb) {
            Ok(h) => h,
            Err(image::ImageError::Header { field, .. }) => {
                return Err((Status::BadField, field.index()))
            }
            Err(_) => return Err((Status::BadField, HeaderField::Magic.index())),
        };
        if let Err(image::ImageError::Header { field, .. }) = hdr.check_geometry(&cfg) {
            return Err((Status::BadField, field.index()));
        }
        if hdr.k as usize != k {
            return Err((Status::BadField, HeaderField::K.index()));
        }
        if hdr.n as usize != n {
            return Err((Status::BadField, HeaderField::N.index()));
        }
        let layout = hdr.layout();
        let stride = image::acts_stride(k);
        let ol = outputs_layout(m, n, cfg.array.rows as usize);
        self.mem_check(cmd.a0, layout.total_bytes as u64)?;
        self.mem_check(cmd.a1, (m * stride) as u64)?;
        self.mem_check(cmd.a2, ol.dma_bytes as u64)?;
        let w = match self.regions.get(&cmd.a0) {
            Some((l, w)) if *l == layout.total_bytes as u64 => w.clone(),
            _ => {
                let bytes = self.mem_read(cmd.a0, layout.total_bytes);
                let (_, w) = image::decode_region(&bytes).map_err(|e| match e {
                    image::ImageError::Header { field, .. } => (Status::BadField, field.index()),
                    _ => (Status::BadField, HeaderField::WeightBytes.index()),
                })?;
                let w = Arc::new(w);
                self.regions
                    .insert(cmd.a0, (layout.total_bytes as u64, w.clone()));
                w
            }
        };
        let ab = self.mem_read(cmd.a1, m * stride);
        let acts = decode_acts(&ab, m, k).map_err(|_| field(16))?;
        let acc = tern_spec::reference::gemm_acc(&w, acts.view())
            .map_err(|_| (Status::InternalTimeout, 0))?;
        let out = encode_outputs(&acc, cfg.array.rows as usize);
        self.mem_write(cmd.a2, &out);
        let ideal = tern_hdl::host::ideal_cycles(&self.params, k, n, m) as u64;
        let bubbles = tern_hdl::host::back_to_back_vectors(&self.params, k, n, m) as u64;
        let beats = ideal - bubbles - self.params.issue_to_out() as u64 - 1;
        self.perf.busy += beats;
        self.perf.macs += tern_spec::reference::macs(m, n, k);
        Ok(CMD_CYCLES + MEM_LATENCY + ideal + (ol.dma_bytes as u64).div_ceil(64))
    }

    fn read_reg(&mut self, offset: u32) -> u32 {
        if offset < off::CTRL_HDR {
            return self.id_regs.get(&offset).copied().unwrap_or(0);
        }
        let status = ((self.enable as u32) * regs::status::ENABLED)
            | ((self.running.is_some() as u32) * regs::status::BUSY)
            | ((self.halted as u32) * regs::status::HALTED)
            | ((self.reset_done as u32) * regs::status::RESET_DONE);
        let p = self.perf;
        let counter = |lo: u32| -> Option<u64> {
            Some(match lo {
                off::CYCLES_LO => p.cycles,
                off::BUSY_LO => p.busy,
                off::STALL_MEM_LO => p.stall_mem,
                off::STALL_OUT_LO => p.stall_out,
                off::IDLE_LO => p.idle,
                off::BYTES_RD_LO => p.bytes_rd,
                off::BYTES_WR_LO => p.bytes_wr,
                off::MACS_LO => p.macs,
                _ => return None,
            })
        };
        if let Some(v) = counter(offset) {
            self.latched_hi.insert(offset + 4, (v >> 32) as u32);
            return v as u32;
        }
        if let Some(v) = self.latched_hi.get(&offset) {
            return *v;
        }
        match offset {
            off::CONTROL => self.enable as u32 * regs::control::ENABLE,
            off::STATUS => status,
            off::ERROR => self.error,
            off::ERROR_TAG => self.error_tag,
            off::ERROR_INFO => self.error_info,
            off::HEARTBEAT => self.heartbeat(),
            off::SCRATCH => self.scratch,
            off::SQ_BASE_LO => self.sq_base as u32,
            off::SQ_BASE_HI => (self.sq_base >> 32) as u32,
            off::SQ_LOG2_SIZE => self.sq_log2,
            off::SQ_TAIL => self.sq_tail,
            off::SQ_HEAD => self.sq_head,
            off::CQ_BASE_LO => self.cq_base as u32,
            off::CQ_BASE_HI => (self.cq_base >> 32) as u32,
            off::CQ_LOG2_SIZE => self.cq_log2,
            off::CQ_HEAD => self.cq_head,
            off::CQ_TAIL => self.cq_tail,
            off::CMDS_DONE => p.cmds,
            o => match regs::by_offset(o) {
                // block headers and next pointers; high halves read before their low half
                Some(r) if r.access == Access::Ro && r.name.ends_with("_HI") => 0,
                Some(r) if r.access == Access::Ro => r.reset,
                _ => 0,
            },
        }
    }

    fn write_reg(&mut self, offset: u32, v: u32) {
        let lo = |x: u64| x & 0xffff_ffff_0000_0000 | v as u64;
        let hi = |x: u64| x & 0xffff_ffff | (v as u64) << 32;
        match offset {
            off::CONTROL => {
                if v & regs::control::SOFT_RESET != 0 {
                    self.soft_reset();
                }
                if v & regs::control::ABORT != 0 {
                    if let Some(r) = self.running {
                        if !r.stuck {
                            self.running = None;
                            self.perf.cmds = self.perf.cmds.wrapping_add(1);
                            self.complete(r.tag, Status::Aborted, 0, 0);
                        }
                    }
                }
                self.enable = v & regs::control::ENABLE != 0;
            }
            off::ERROR => {
                self.error &= !v;
                if self.error == 0 {
                    self.halted = false;
                    self.error_tag = 0;
                    self.error_info = 0;
                }
            }
            off::SCRATCH => self.scratch = v,
            off::SQ_BASE_LO => self.sq_base = lo(self.sq_base),
            off::SQ_BASE_HI => self.sq_base = hi(self.sq_base),
            off::CQ_BASE_LO => self.cq_base = lo(self.cq_base),
            off::CQ_BASE_HI => self.cq_base = hi(self.cq_base),
            off::SQ_LOG2_SIZE => self.sq_log2 = v.min(31),
            off::CQ_LOG2_SIZE => self.cq_log2 = v.min(31),
            off::SQ_TAIL => {
                let max = self.id_regs[&off::RING_LOG2_MAX];
                if v >= self.sq_size() || self.sq_log2 > max || self.cq_log2 > max {
                    self.raise(regs::error::RING_ERROR, 0xffff, v);
                } else {
                    self.sq_tail = v;
                }
            }
            off::CQ_HEAD => {
                if v >= self.cq_size() {
                    self.raise(regs::error::RING_ERROR, 0xffff, v);
                } else {
                    self.cq_head = v;
                }
            }
            off::PERF_CONTROL if v & 1 == 1 => {
                self.perf = Perf::default();
                self.latched_hi.clear();
            }
            _ => {} // read-only or reserved: ignored
        }
    }

    fn buf_mut(&mut self, buf: &DmaBuf) -> Result<&mut HostBuf, TransportError> {
        match self.bufs.get_mut(&buf.iova) {
            Some(b) if b.id == buf.id => Ok(b),
            _ => Err(TransportError::UnknownBuf {
                backend: "model".into(),
                id: buf.id,
            }),
        }
    }
}

fn check_range(buf: &DmaBuf, offset: usize, len: usize, size: usize) -> Result<(), TransportError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(TransportError::BufRange {
            backend: "model".into(),
            id: buf.id,
            offset,
            len,
            size,
        }),
    }
}

impl Transport for ModelCard {
    fn describe(&self) -> String {
        match self.fault {
            Some(f) => format!("model:{}?inject={}", self.opts.cfg.name, f.name()),
            None => format!("model:{}", self.opts.cfg.name),
        }
    }

    fn read32(&mut self, offset: u32) -> Result<u32, TransportError> {
        if !offset.is_multiple_of(4) || offset >= regs::BAR0_BYTES {
            return Err(bad_offset(offset));
        }
        Ok(self.read_reg(offset))
    }

    fn write32(&mut self, offset: u32, value: u32) -> Result<(), TransportError> {
        if !offset.is_multiple_of(4) || offset >= regs::BAR0_BYTES {
            return Err(bad_offset(offset));
        }
        self.write_reg(offset, value);
        Ok(())
    }

    fn alloc(&mut self, len: usize) -> Result<DmaBuf, TransportError> {
        if len == 0 || len > (1 << 34) {
            return Err(TransportError::Alloc {
                backend: "model".into(),
                len,
                reason: "length must be 1..=16 GiB".into(),
            });
        }
        let iova = self.next_iova;
        self.next_iova += (len as u64).div_ceil(0x1000) * 0x1000 + IOVA_GUARD;
        let id = self.next_buf_id;
        self.next_buf_id += 1;
        self.bufs.insert(
            iova,
            HostBuf {
                id,
                data: vec![0u8; len],
            },
        );
        Ok(DmaBuf { id, iova, len })
    }

    fn free(&mut self, buf: &DmaBuf) -> Result<(), TransportError> {
        self.buf_mut(buf)?;
        self.bufs.remove(&buf.iova);
        Ok(())
    }

    fn write_buf(
        &mut self,
        buf: &DmaBuf,
        offset: usize,
        data: &[u8],
    ) -> Result<(), TransportError> {
        let b = self.buf_mut(buf)?;
        check_range(buf, offset, data.len(), b.data.len())?;
        b.data[offset..offset + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn read_buf(
        &mut self,
        buf: &DmaBuf,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), TransportError> {
        let b = self.buf_mut(buf)?;
        check_range(buf, offset, out.len(), b.data.len())?;
        out.copy_from_slice(&b.data[offset..offset + out.len()]);
        Ok(())
    }

    fn wait(&mut self, until: Instant) -> Result<(), TransportError> {
        self.tick_wall();
        if self.run() > 0 {
            return Ok(());
        }
        let now = Instant::now();
        if until > now {
            std::thread::sleep((until - now).min(Duration::from_micros(200)));
        }
        self.tick_wall();
        self.run();
        Ok(())
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.power_on_reset();
        Ok(())
    }

    fn alive(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str) -> ModelCard {
        ModelCard::with_config(ArrayConfig::builtin(name).unwrap()).unwrap()
    }

    #[test]
    fn register_file_agrees_with_the_table() {
        let cfg = ArrayConfig::builtin("small").unwrap();
        let mut m = model("small");
        let config_values: HashMap<u32, u32> = [
            (off::ROWS, 8),
            (off::COLS, 8),
            (off::TOKEN_TILE, 8),
            (off::BLOCK_N, 64),
            (off::BLOCK_K, 64),
            (off::ACT_BITS, 8),
            (off::MANT_BITS, 16),
            (off::PSUM_BITS, 15),
            (off::ACC_BITS, 40),
            (off::MAX_K, 32768),
            (off::MAX_N, 262144),
            (off::CLOCK_KHZ, 150_000),
            (off::MEM_BYTES_LO, 0),
            (off::MEM_BYTES_HI, 1),
            (off::BUILD_HASH_LO, build_hash(&cfg) as u32),
            (off::BUILD_HASH_HI, (build_hash(&cfg) >> 32) as u32),
            (
                off::CAPS,
                regs::caps::GEMM | regs::caps::WEIGHT_CRC | regs::caps::PERF,
            ),
        ]
        .into_iter()
        .collect();
        for r in regs::REGS {
            let v = m.read32(r.offset).unwrap();
            let want = config_values.get(&r.offset).copied().unwrap_or(r.reset);
            assert_eq!(v, want, "{} after reset", r.name);
            // writes to RO registers are ignored, WO registers read 0
            if r.access == Access::Ro {
                m.write32(r.offset, 0x5a5a_5a5a).unwrap();
                assert_eq!(m.read32(r.offset).unwrap(), want, "{} is RO", r.name);
            }
            if r.access == Access::Wo {
                m.write32(r.offset, 0).unwrap();
                assert_eq!(m.read32(r.offset).unwrap(), 0, "{} is WO", r.name);
            }
        }
        m.write32(off::SCRATCH, 0xdead_beef).unwrap();
        assert_eq!(m.read32(off::SCRATCH).unwrap(), 0xdead_beef);
        assert!(m.read32(2).is_err());
        assert!(m.read32(regs::BAR0_BYTES).is_err());
    }

    #[test]
    fn card_memory_is_sparse_and_zero_until_written() {
        let mut m = model("small");
        assert_eq!(m.mem_read(3 << 30, 128), vec![0u8; 128]);
        m.mem_write(PAGE - 10, &[7u8; 20]);
        assert_eq!(m.mem_read(PAGE - 12, 24)[2..22], [7u8; 20]);
        assert_eq!(m.resident_bytes(), 2 * PAGE);
        assert!(m.mem_check(DEFAULT_MEM_BYTES - 64, 64).is_ok());
        assert_eq!(
            m.mem_check(DEFAULT_MEM_BYTES - 64, 128),
            Err((Status::AddrRange, 0))
        );
    }

    #[test]
    fn iovas_have_unmapped_guard_gaps() {
        let mut m = model("small");
        let a = m.alloc(100).unwrap();
        let b = m.alloc(4096).unwrap();
        assert!(b.iova >= a.iova + 4096 + IOVA_GUARD);
        assert!(m.host_read(a.iova, 100).is_ok());
        assert!(m.host_read(a.iova, 101).is_err());
        assert!(m.host_read(a.iova + 4096, 64).is_err());
        m.free(&a).unwrap();
        assert!(m.host_read(a.iova, 64).is_err());
        assert!(m.free(&a).is_err());
        let mut out = [0u8; 8];
        assert!(m.read_buf(&b, 4090, &mut out).is_err());
    }

    #[test]
    fn counters_latch_their_high_half() {
        let mut m = model("small");
        m.perf.bytes_rd = 0x1_2345_6789;
        assert_eq!(m.read32(off::BYTES_RD_LO).unwrap(), 0x2345_6789);
        m.perf.bytes_rd = 0x7_0000_0000;
        assert_eq!(m.read32(off::BYTES_RD_HI).unwrap(), 1);
        m.write32(off::PERF_CONTROL, 1).unwrap();
        assert_eq!(m.read32(off::BYTES_RD_LO).unwrap(), 0);
    }

    #[test]
    fn engine_waits_while_the_completion_ring_is_full() {
        let mut m = model("small");
        let sq = m.alloc(4 * CMD_BYTES).unwrap();
        let cq = m.alloc(4 * CPL_BYTES).unwrap();
        for i in 0..4u16 {
            let c = Command::new(Opcode::Nop, 10 + i).encode();
            m.write_buf(&sq, i as usize * CMD_BYTES, &c).unwrap();
        }
        for (o, v) in [
            (off::SQ_BASE_LO, sq.iova as u32),
            (off::SQ_BASE_HI, (sq.iova >> 32) as u32),
            (off::CQ_BASE_LO, cq.iova as u32),
            (off::CQ_BASE_HI, (cq.iova >> 32) as u32),
            (off::SQ_LOG2_SIZE, 2),
            (off::CQ_LOG2_SIZE, 2),
            (off::CONTROL, regs::control::ENABLE),
            (off::SQ_TAIL, 3),
        ] {
            m.write32(o, v).unwrap();
        }
        m.wait(Instant::now()).unwrap();
        assert_eq!(m.read32(off::SQ_HEAD).unwrap(), 3);
        assert_eq!(m.read32(off::CQ_TAIL).unwrap(), 3);
        // one more command: the CQ (3 of 4 slots used) is full, the engine waits
        m.write32(off::SQ_TAIL, 0).unwrap();
        m.wait(Instant::now()).unwrap();
        assert_eq!(
            m.read32(off::SQ_HEAD).unwrap(),
            3,
            "not fetched while the CQ is full"
        );
        m.write32(off::CQ_HEAD, 3).unwrap();
        m.wait(Instant::now()).unwrap();
        assert_eq!(m.read32(off::SQ_HEAD).unwrap(), 0);
        assert_eq!(m.read32(off::CQ_TAIL).unwrap(), 0);
        // the fourth completion is in slot 3 with phase 1; the CQ wrapped, so the next
        // completion will carry phase 0
        let mut b = [0u8; CPL_BYTES];
        m.read_buf(&cq, 3 * CPL_BYTES, &mut b).unwrap();
        let c = Completion::decode(&b);
        assert_eq!((c.tag, c.phase, c.status), (13, true, 0));
        assert!(!m.phase);
        assert_eq!(m.read32(off::CMDS_DONE).unwrap(), 4);
    }

    #[test]
    fn fault_names_parse() {
        for f in Fault::ALL {
            assert_eq!(Fault::parse(f.name()), Some(f));
        }
        assert_eq!(Fault::parse("gremlins"), None);
    }
}
