//! [`Card`]: the driver proper, over any [`Transport`]. It discovers the register blocks,
//! checks the identity, runs the NVMe-style rings, validates every command before the card
//! sees it, manages card memory, and offers `load_weights` / `gemm` on top.
//!
//! Every wait has a deadline ([`CardOptions::deadline`]); while waiting the driver watches
//! the heartbeat (no change for [`CardOptions::hang_after`] → [`DriverError::CardHung`])
//! and notices a command the card consumed without completing it
//! ([`DriverError::CompletionLost`]). Failures carry a [`CardState`] snapshot.

use crate::error::{opcode_name, status_name, CardState, DriverError};
use crate::transport::{DmaBuf, Transport};
use ndarray::{s, Array2, ArrayView2};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tern_spec::card::cmd::{Command, Completion, Opcode, Status, CMD_BYTES, CPL_BYTES};
use tern_spec::card::image::{self, outputs_layout, region_layout, round_up, WORD_BYTES};
use tern_spec::card::regs::{self, block_type, off};
use tern_spec::config::{
    AccumulatorFormat, ActivationFormat, ArrayConfig, ArrayGeometry, BlockShape, ClockTarget,
    ScaleFormat,
};
use tern_spec::{QuantizedActs, ScaledTernaryMatrix};

/// Driver knobs.
#[derive(Debug, Clone)]
pub struct CardOptions {
    /// Longest wait for any one command (or for ring space, or for a reset).
    pub deadline: Duration,
    /// A heartbeat that does not move for this long means the card hung.
    pub hang_after: Duration,
    /// How long the card may sit idle with a consumed, uncompleted command before the
    /// completion counts as lost.
    pub lost_after: Duration,
    /// log2 entries of the submission and completion rings.
    pub ring_log2: u32,
    /// Largest single DMA (bytes, a multiple of 64).
    pub dma_chunk: usize,
}

impl Default for CardOptions {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(5),
            hang_after: Duration::from_secs(1),
            lost_after: Duration::from_millis(50),
            ring_log2: 6,
            dma_chunk: 4 << 20,
        }
    }
}

/// One register block found on the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BlockInfo {
    pub offset: u32,
    pub block_type: u16,
    pub version: u16,
}

/// The decoded ID block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardInfo {
    pub backend: String,
    pub magic: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub build_hash: String,
    pub caps: u32,
    pub caps_names: Vec<&'static str>,
    pub rows: u32,
    pub cols: u32,
    pub token_tile: u32,
    pub block_n: u32,
    pub block_k: u32,
    pub act_bits: u32,
    pub mant_bits: u32,
    pub psum_bits: u32,
    pub acc_bits: u32,
    pub max_k: u32,
    pub max_n: u32,
    pub clock_khz: u32,
    pub mem_bytes: u64,
    pub ring_log2_max: u32,
    pub blocks: Vec<BlockInfo>,
}

impl CardInfo {
    /// The array configuration the card reports (name `card`).
    pub fn config(&self) -> Result<ArrayConfig, DriverError> {
        let cfg = ArrayConfig {
            name: "card".into(),
            array: ArrayGeometry {
                rows: self.rows,
                cols: self.cols,
                token_tile: self.token_tile,
            },
            block: BlockShape {
                n: self.block_n,
                k: self.block_k,
            },
            activation: ActivationFormat {
                bits: self.act_bits,
            },
            scale: ScaleFormat {
                mantissa_bits: self.mant_bits,
            },
            accumulator: AccumulatorFormat {
                psum_bits: self.psum_bits,
                acc_bits: self.acc_bits,
                max_k: self.max_k as u64,
                max_n: self.max_n as u64,
            },
            clock: ClockTarget {
                target_mhz: self.clock_khz as f64 / 1000.0,
            },
        };
        cfg.validate("card ID block")
            .map_err(|e| DriverError::GeometryUnsupported {
                reason: e.to_string(),
            })?;
        Ok(cfg)
    }

    /// Whether the card runs GEMMs with M > 1.
    pub fn has_gemm(&self) -> bool {
        self.caps & regs::caps::GEMM != 0
    }
}

/// Performance counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerfCounters {
    pub cycles: u64,
    pub busy: u64,
    pub stall_mem: u64,
    pub stall_out: u64,
    pub idle: u64,
    pub bytes_rd: u64,
    pub bytes_wr: u64,
    pub macs: u64,
    pub cmds_done: u32,
}

/// A weight layer resident in card memory (one region per slice of at most max_n outputs).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionHandle {
    pub k: usize,
    pub n: usize,
    /// The layer's block shape and exponents: the host applies them.
    pub block: BlockShape,
    pub exps: ndarray::Array1<i16>,
    pub parts: Vec<RegionPart>,
}

/// One region: outputs `n0..n0 + n` at card address `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionPart {
    pub addr: u64,
    pub bytes: u64,
    pub n0: usize,
    pub n: usize,
}

/// A GEMM's result.
#[derive(Debug, Clone, PartialEq)]
pub struct GemmRun {
    /// Exact integer outputs [M, N].
    pub acc: Array2<i64>,
    /// Sum of the GEMM commands' completion cycles.
    pub cycles: u64,
    /// GEMM commands issued (several when M or N exceed the array's limits).
    pub commands: usize,
}

/// A first-fit free-list allocator of card memory (4 KiB granules).
#[derive(Debug, Clone)]
pub struct CardMem {
    total: u64,
    free: BTreeMap<u64, u64>,
    used: HashMap<u64, u64>,
}

/// Allocation granule of card memory.
pub const CARD_ALIGN: u64 = 4096;

impl CardMem {
    pub fn new(total: u64) -> Self {
        let total = total / CARD_ALIGN * CARD_ALIGN;
        let mut free = BTreeMap::new();
        if total > 0 {
            free.insert(0, total);
        }
        Self {
            total,
            free,
            used: HashMap::new(),
        }
    }

    pub fn alloc(&mut self, len: u64) -> Result<u64, DriverError> {
        let need = round_up(len.max(1) as usize, CARD_ALIGN as usize) as u64;
        let hit = self
            .free
            .iter()
            .find(|(_, &l)| l >= need)
            .map(|(&a, &l)| (a, l));
        match hit {
            Some((a, l)) => {
                self.free.remove(&a);
                if l > need {
                    self.free.insert(a + need, l - need);
                }
                self.used.insert(a, need);
                Ok(a)
            }
            None => Err(DriverError::OutOfCardMemory {
                need,
                largest: self.free.values().copied().max().unwrap_or(0),
                total: self.total,
            }),
        }
    }

    pub fn free(&mut self, addr: u64) -> Result<(), DriverError> {
        let len = self
            .used
            .remove(&addr)
            .ok_or_else(|| DriverError::Refused {
                reason: format!("card address {addr:#x} is not an allocation"),
            })?;
        let (mut a, mut l) = (addr, len);
        if let Some((&pa, &pl)) = self.free.range(..a).next_back() {
            if pa + pl == a {
                self.free.remove(&pa);
                a = pa;
                l += pl;
            }
        }
        if let Some(&nl) = self.free.get(&(a + l)) {
            self.free.remove(&(a + l));
            l += nl;
        }
        self.free.insert(a, l);
        Ok(())
    }

    pub fn free_bytes(&self) -> u64 {
        self.free.values().sum()
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u64,
    opcode: u8,
}

#[derive(Debug, Clone, Copy)]
struct Blocks {
    id: u32,
    ctrl: u32,
    rings: u32,
    perf: Option<u32>,
}

/// A card behind a transport.
pub struct Card<T: Transport> {
    t: T,
    info: CardInfo,
    cfg: ArrayConfig,
    opts: CardOptions,
    blocks: Blocks,
    sq: DmaBuf,
    cq: DmaBuf,
    ring_size: u32,
    sq_tail: u32,
    cq_head: u32,
    phase: bool,
    next_tag: u16,
    seq: u64,
    pending: HashMap<u16, Pending>,
    done: HashMap<u16, (Completion, Pending)>,
    staging: Option<DmaBuf>,
    user_bufs: Vec<DmaBuf>,
    mem: CardMem,
    regions: HashMap<u64, (usize, usize, u64)>,
}

impl<T: Transport> std::fmt::Debug for Card<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Card({})", self.info.backend)
    }
}

fn refused(reason: impl Into<String>) -> DriverError {
    DriverError::Refused {
        reason: reason.into(),
    }
}

/// Walks the register block chain.
fn walk_blocks<T: Transport>(t: &mut T) -> Result<Vec<BlockInfo>, DriverError> {
    let mut out = vec![];
    let mut at = 0u32;
    loop {
        let hdr = t.read32(at)?;
        out.push(BlockInfo {
            offset: at,
            block_type: (hdr >> 16) as u16,
            version: hdr as u16,
        });
        let next = t.read32(at + 4)?;
        if next == 0 {
            return Ok(out);
        }
        if next <= at || next >= regs::BAR0_BYTES || next % 4 != 0 || out.len() >= 64 {
            return Err(DriverError::RegisterBlocks {
                reason: format!(
                    "block at {at:#06x} points to {next:#06x} (must move forward inside BAR0)"
                ),
            });
        }
        at = next;
    }
}

impl<T: Transport> Card<T> {
    /// Probes with default options.
    pub fn probe(t: T) -> Result<Self, DriverError> {
        Self::probe_with(t, CardOptions::default())
    }

    /// Walks the register blocks, reads and checks the ID block, sets up the rings and
    /// enables the engine.
    pub fn probe_with(mut t: T, opts: CardOptions) -> Result<Self, DriverError> {
        t.alive()?;
        let magic = t.read32(off::MAGIC)?;
        if magic != regs::MAGIC {
            return Err(DriverError::NotATernCard {
                magic,
                expected: regs::MAGIC,
            });
        }
        let chain = walk_blocks(&mut t)?;
        let find = |ty: u16| chain.iter().find(|b| b.block_type == ty).map(|b| b.offset);
        let need = |ty: u16, name: &str| {
            find(ty).ok_or_else(|| DriverError::RegisterBlocks {
                reason: format!("no {name} block (type {ty:#06x}) on the chain"),
            })
        };
        let blocks = Blocks {
            id: need(block_type::ID, "ID")?,
            ctrl: need(block_type::CONTROL, "CONTROL")?,
            rings: need(block_type::RINGS, "RINGS")?,
            perf: find(block_type::PERF),
        };
        let idr = |t: &mut T, o: u32| t.read32(blocks.id + o - off::ID_HDR);
        let abi = idr(&mut t, off::ABI_VERSION)?;
        let (maj, min) = ((abi >> 16) as u16, abi as u16);
        if maj != regs::ABI_MAJOR || min > regs::ABI_MINOR {
            return Err(DriverError::AbiMismatch {
                card_major: maj,
                card_minor: min,
                driver_major: regs::ABI_MAJOR,
                driver_minor: regs::ABI_MINOR,
                reason: if maj != regs::ABI_MAJOR {
                    "major versions differ"
                } else {
                    "the card's minor version is newer than the driver's"
                },
            });
        }
        let mut rd = |o| idr(&mut t, o);
        let hash = (rd(off::BUILD_HASH_LO)? as u64) | (rd(off::BUILD_HASH_HI)? as u64) << 32;
        let caps = rd(off::CAPS)?;
        let mem_bytes = (rd(off::MEM_BYTES_LO)? as u64) | (rd(off::MEM_BYTES_HI)? as u64) << 32;
        let info = CardInfo {
            backend: String::new(),
            magic,
            abi_major: maj,
            abi_minor: min,
            build_hash: format!("{hash:016x}"),
            caps,
            caps_names: crate::error::decode_bits("CAPS", caps),
            rows: rd(off::ROWS)?,
            cols: rd(off::COLS)?,
            token_tile: rd(off::TOKEN_TILE)?,
            block_n: rd(off::BLOCK_N)?,
            block_k: rd(off::BLOCK_K)?,
            act_bits: rd(off::ACT_BITS)?,
            mant_bits: rd(off::MANT_BITS)?,
            psum_bits: rd(off::PSUM_BITS)?,
            acc_bits: rd(off::ACC_BITS)?,
            max_k: rd(off::MAX_K)?,
            max_n: rd(off::MAX_N)?,
            clock_khz: rd(off::CLOCK_KHZ)?,
            mem_bytes,
            ring_log2_max: rd(off::RING_LOG2_MAX)?,
            blocks: chain,
        };
        let info = CardInfo {
            backend: t.describe(),
            ..info
        };
        let cfg = info.config()?;
        if info.mem_bytes < 2 * CARD_ALIGN {
            return Err(DriverError::GeometryUnsupported {
                reason: format!("card memory of {} bytes is too small", info.mem_bytes),
            });
        }
        if opts.dma_chunk == 0
            || !opts.dma_chunk.is_multiple_of(WORD_BYTES)
            || opts.dma_chunk > 1 << 30
        {
            return Err(refused(format!(
                "dma_chunk = {} must be a multiple of 64 in 64..=1 GiB",
                opts.dma_chunk
            )));
        }
        let ring_log2 = opts.ring_log2.clamp(1, info.ring_log2_max.max(1));
        let ring_size = 1u32 << ring_log2;
        let sq = t.alloc(ring_size as usize * CMD_BYTES)?;
        let cq = t.alloc(ring_size as usize * CPL_BYTES)?;
        let mut card = Self {
            mem: CardMem::new(info.mem_bytes),
            t,
            info,
            cfg,
            opts: CardOptions { ring_log2, ..opts },
            blocks,
            sq,
            cq,
            ring_size,
            sq_tail: 0,
            cq_head: 0,
            phase: true,
            next_tag: 0,
            seq: 0,
            pending: HashMap::new(),
            done: HashMap::new(),
            staging: None,
            user_bufs: vec![],
            regions: HashMap::new(),
        };
        card.soft_reset_and_setup()?;
        Ok(card)
    }

    /// The decoded ID block.
    pub fn info(&self) -> &CardInfo {
        &self.info
    }

    /// The array configuration the card reports.
    pub fn config(&self) -> &ArrayConfig {
        &self.cfg
    }

    pub fn options(&self) -> &CardOptions {
        &self.opts
    }

    /// Sets the per-wait deadline.
    pub fn set_deadline(&mut self, d: Duration) {
        self.opts.deadline = d;
    }

    /// The transport (tests, debugging).
    pub fn transport(&mut self) -> &mut T {
        &mut self.t
    }

    /// Card memory allocator state.
    pub fn card_mem(&self) -> &CardMem {
        &self.mem
    }

    /// Absolute BAR0 offset of a register, through the discovered block bases.
    fn reg(&self, o: u32) -> u32 {
        let std_base = o & !0xff;
        let base = match std_base {
            off::ID_HDR => self.blocks.id,
            off::CTRL_HDR => self.blocks.ctrl,
            off::RINGS_HDR => self.blocks.rings,
            _ => self.blocks.perf.unwrap_or(off::PERF_HDR),
        };
        base + (o - std_base)
    }

    fn rd(&mut self, o: u32) -> Result<u32, DriverError> {
        let r = self.reg(o);
        Ok(self.t.read32(r)?)
    }

    fn wr(&mut self, o: u32, v: u32) -> Result<(), DriverError> {
        let r = self.reg(o);
        Ok(self.t.write32(r, v)?)
    }

    /// A snapshot of the control registers (never fails: unreadable registers are noted).
    pub fn state(&mut self) -> CardState {
        let mut s = CardState {
            sq_tail: self.sq_tail,
            cq_head: self.cq_head,
            ..Default::default()
        };
        let r = (|| -> Result<(), DriverError> {
            s.status = self.rd(off::STATUS)?;
            s.error = self.rd(off::ERROR)?;
            s.error_tag = self.rd(off::ERROR_TAG)?;
            s.error_info = self.rd(off::ERROR_INFO)?;
            s.heartbeat = self.rd(off::HEARTBEAT)?;
            s.sq_head = self.rd(off::SQ_HEAD)?;
            s.cq_tail = self.rd(off::CQ_TAIL)?;
            Ok(())
        })();
        if let Err(e) = r {
            s.unreadable = Some(e.to_string());
        }
        s
    }

    /// SOFT_RESET, then programs the rings and enables the engine.
    fn soft_reset_and_setup(&mut self) -> Result<(), DriverError> {
        self.wr(off::CONTROL, regs::control::SOFT_RESET)?;
        let start = Instant::now();
        loop {
            let st = self.rd(off::STATUS)?;
            if st & regs::status::RESET_DONE != 0 && st & regs::status::BUSY == 0 {
                break;
            }
            if start.elapsed() > self.opts.deadline {
                return Err(DriverError::Timeout {
                    what: "SOFT_RESET (STATUS.RESET_DONE)".into(),
                    tag: None,
                    waited: start.elapsed(),
                    state: self.state(),
                });
            }
            self.t.wait(Instant::now() + Duration::from_millis(1))?;
        }
        let zeros = vec![0u8; self.cq.len];
        let cq = self.cq.clone();
        self.t.write_buf(&cq, 0, &zeros)?;
        let (sq_iova, cq_iova) = (self.sq.iova, self.cq.iova);
        let log2 = self.opts.ring_log2;
        self.wr(off::SQ_BASE_LO, sq_iova as u32)?;
        self.wr(off::SQ_BASE_HI, (sq_iova >> 32) as u32)?;
        self.wr(off::SQ_LOG2_SIZE, log2)?;
        self.wr(off::CQ_BASE_LO, cq_iova as u32)?;
        self.wr(off::CQ_BASE_HI, (cq_iova >> 32) as u32)?;
        self.wr(off::CQ_LOG2_SIZE, log2)?;
        self.wr(off::CQ_HEAD, 0)?;
        self.wr(off::CONTROL, regs::control::ENABLE)?;
        self.sq_tail = 0;
        self.cq_head = 0;
        self.phase = true;
        self.pending.clear();
        self.done.clear();
        let st = self.rd(off::STATUS)?;
        if st & regs::status::ENABLED == 0 {
            return Err(DriverError::Halted {
                state: self.state(),
            });
        }
        Ok(())
    }

    /// Recovers the card: SOFT_RESET and ring setup; if the soft reset does not take, a
    /// transport reset (function-level reset) first. Resident weight regions stay valid.
    pub fn reset(&mut self) -> Result<(), DriverError> {
        if self.soft_reset_and_setup().is_err() {
            self.t.reset()?;
            self.soft_reset_and_setup()?;
        }
        Ok(())
    }

    /// Clears the sticky ERROR bits so a halted engine resumes with the next command.
    pub fn clear_errors(&mut self) -> Result<u32, DriverError> {
        let e = self.rd(off::ERROR)?;
        self.wr(off::ERROR, e)?;
        Ok(e)
    }

    /// Reads the performance counters.
    pub fn perf(&mut self) -> Result<PerfCounters, DriverError> {
        if self.blocks.perf.is_none() {
            return Err(DriverError::GeometryUnsupported {
                reason: "the card has no PERF block".into(),
            });
        }
        let c64 = |s: &mut Self, lo: u32| -> Result<u64, DriverError> {
            let l = s.rd(lo)? as u64;
            let h = s.rd(lo + 4)? as u64;
            Ok(h << 32 | l)
        };
        Ok(PerfCounters {
            cycles: c64(self, off::CYCLES_LO)?,
            busy: c64(self, off::BUSY_LO)?,
            stall_mem: c64(self, off::STALL_MEM_LO)?,
            stall_out: c64(self, off::STALL_OUT_LO)?,
            idle: c64(self, off::IDLE_LO)?,
            bytes_rd: c64(self, off::BYTES_RD_LO)?,
            bytes_wr: c64(self, off::BYTES_WR_LO)?,
            macs: c64(self, off::MACS_LO)?,
            cmds_done: self.rd(off::CMDS_DONE)?,
        })
    }

    /// Allocates a host DMA buffer the driver knows about (commands may name it).
    pub fn map(&mut self, len: usize) -> Result<DmaBuf, DriverError> {
        let b = self.t.alloc(round_up(len.max(1), WORD_BYTES))?;
        self.user_bufs.push(b.clone());
        Ok(b)
    }

    /// Frees a buffer from [`Card::map`].
    pub fn unmap(&mut self, buf: &DmaBuf) -> Result<(), DriverError> {
        let i = self
            .user_bufs
            .iter()
            .position(|b| b == buf)
            .ok_or_else(|| refused(format!("DMA buffer {} was not mapped by this card", buf.id)))?;
        self.user_bufs.remove(i);
        self.t.free(buf)?;
        Ok(())
    }

    fn host_range_mapped(&self, iova: u64, len: u64) -> bool {
        self.user_bufs
            .iter()
            .chain(self.staging.iter())
            .any(|b| iova >= b.iova && iova.saturating_add(len) <= b.iova + b.len as u64)
    }

    fn card_range(&self, what: &str, addr: u64, len: u64) -> Result<(), DriverError> {
        match addr.checked_add(len) {
            Some(end) if end <= self.info.mem_bytes => Ok(()),
            _ => Err(refused(format!(
                "{what}: card range {addr:#x}+{len} is outside card memory ({} bytes)",
                self.info.mem_bytes
            ))),
        }
    }

    /// The driver-side check of a command: what the card would refuse, refused before it
    /// is submitted.
    pub fn validate(&self, c: &Command) -> Result<(), DriverError> {
        let name = opcode_name(c.opcode as u8);
        match c.opcode {
            Opcode::Nop | Opcode::Fence => {
                if (c.a0, c.a1, c.a2, c.w0, c.w1, c.w2) != (0, 0, 0, 0, 0, 0) {
                    return Err(refused(format!("{name}: operands must be 0")));
                }
            }
            Opcode::DmaToCard | Opcode::DmaToHost | Opcode::LoadWeights => {
                let len = c.w0 as u64;
                if len == 0 || !len.is_multiple_of(64) {
                    return Err(refused(format!(
                        "{name}: len = {len} must be a non-zero multiple of 64"
                    )));
                }
                if !c.a0.is_multiple_of(64) || !c.a1.is_multiple_of(64) {
                    return Err(refused(format!(
                        "{name}: host {:#x} and card {:#x} addresses must be 64-byte aligned",
                        c.a0, c.a1
                    )));
                }
                if c.a2 != 0 || c.w2 != 0 || (c.opcode != Opcode::LoadWeights && c.w1 != 0) {
                    return Err(refused(format!("{name}: unused operands must be 0")));
                }
                self.card_range(name, c.a1, len)?;
                if !self.host_range_mapped(c.a0, len) {
                    return Err(refused(format!(
                        "{name}: host range {:#x}+{len} is not inside a DMA buffer mapped by this driver",
                        c.a0
                    )));
                }
            }
            Opcode::Gemm => {
                let (m, k, n) = (c.w0 as u64, c.w1 as u64, c.w2 as u64);
                let tt = if self.info.has_gemm() {
                    self.info.token_tile as u64
                } else {
                    1
                };
                if m == 0 || m > tt {
                    return Err(refused(format!("GEMM: m = {m} is outside 1..={tt}")));
                }
                if k == 0 || k > self.info.max_k as u64 {
                    return Err(refused(format!(
                        "GEMM: k = {k} is outside 1..={}",
                        self.info.max_k
                    )));
                }
                if n == 0 || n > self.info.max_n as u64 {
                    return Err(refused(format!(
                        "GEMM: n = {n} is outside 1..={}",
                        self.info.max_n
                    )));
                }
                if !c.a0.is_multiple_of(64) || !c.a1.is_multiple_of(64) || !c.a2.is_multiple_of(64)
                {
                    return Err(refused("GEMM: card addresses must be 64-byte aligned"));
                }
                match self.regions.get(&c.a0) {
                    Some(&(rk, rn, _)) if (rk, rn) == (k as usize, n as usize) => {}
                    Some(&(rk, rn, _)) => {
                        return Err(refused(format!(
                            "GEMM: region {:#x} holds K = {rk}, N = {rn}, not K = {k}, N = {n}",
                            c.a0
                        )))
                    }
                    None => {
                        return Err(refused(format!(
                            "GEMM: {:#x} is not a weight region loaded by this driver",
                            c.a0
                        )))
                    }
                }
                let ol = outputs_layout(m as usize, n as usize, self.info.rows as usize);
                self.card_range(
                    "GEMM activations",
                    c.a1,
                    image::acts_bytes(m as usize, k as usize) as u64,
                )?;
                self.card_range("GEMM outputs", c.a2, ol.dma_bytes as u64)?;
            }
        }
        Ok(())
    }

    fn alloc_tag(&mut self) -> Result<u16, DriverError> {
        for _ in 0..=u16::MAX as u32 {
            let t = self.next_tag;
            self.next_tag = self.next_tag.wrapping_add(1);
            if !self.pending.contains_key(&t) && !self.done.contains_key(&t) {
                return Ok(t);
            }
        }
        Err(refused("every tag is in use: wait for completions"))
    }

    /// Validates a command, gives it a fresh tag and submits it. Returns the tag.
    pub fn submit(&mut self, mut cmd: Command) -> Result<u16, DriverError> {
        self.validate(&cmd)?;
        cmd.tag = self.alloc_tag()?;
        self.submit_raw(&cmd.encode())
    }

    /// Puts a raw 64-byte record into the submission ring unchecked (tests of the card's
    /// own checks). Returns the tag in bytes 2..4.
    pub fn submit_raw(&mut self, raw: &[u8; CMD_BYTES]) -> Result<u16, DriverError> {
        let tag = u16::from_le_bytes([raw[2], raw[3]]);
        if self.pending.contains_key(&tag) || self.done.contains_key(&tag) {
            return Err(refused(format!("tag {tag} is still in use")));
        }
        let next = (self.sq_tail + 1) % self.ring_size;
        let start = Instant::now();
        let deadline = start + self.opts.deadline;
        while next == self.rd(off::SQ_HEAD)? {
            self.poll()?;
            self.watch(start, deadline, "space in the submission ring", None)?;
            self.t
                .wait(deadline.min(Instant::now() + Duration::from_millis(2)))?;
        }
        let sq = self.sq.clone();
        self.t
            .write_buf(&sq, self.sq_tail as usize * CMD_BYTES, raw)?;
        self.sq_tail = next;
        self.seq += 1;
        self.pending.insert(
            tag,
            Pending {
                seq: self.seq,
                opcode: raw[0],
            },
        );
        self.wr(off::SQ_TAIL, next)?;
        Ok(tag)
    }

    /// Consumes every new completion; returns how many.
    pub fn poll(&mut self) -> Result<usize, DriverError> {
        let mut n = 0;
        let cq = self.cq.clone();
        loop {
            let mut b = [0u8; CPL_BYTES];
            self.t
                .read_buf(&cq, self.cq_head as usize * CPL_BYTES, &mut b)?;
            let c = Completion::decode(&b);
            if c.phase != self.phase {
                break;
            }
            let p = self.pending.remove(&c.tag).unwrap_or(Pending {
                seq: 0,
                opcode: 0xff,
            });
            self.done.insert(c.tag, (c, p));
            self.cq_head = (self.cq_head + 1) % self.ring_size;
            if self.cq_head == 0 {
                self.phase = !self.phase;
            }
            n += 1;
        }
        if n > 0 {
            self.wr(off::CQ_HEAD, self.cq_head)?;
        }
        Ok(n)
    }

    fn failed(&mut self, c: Completion, p: Pending) -> DriverError {
        DriverError::CommandFailed {
            tag: c.tag,
            opcode: opcode_name(p.opcode),
            status: status_name(c.status),
            status_code: c.status,
            info: c.info,
            state: self.state(),
        }
    }

    /// Checks liveness and the deadline while waiting.
    fn watch(
        &mut self,
        start: Instant,
        deadline: Instant,
        what: &str,
        tag: Option<u16>,
    ) -> Result<(), DriverError> {
        self.t.alive()?;
        let now = Instant::now();
        if now >= deadline {
            return Err(DriverError::Timeout {
                what: what.to_string(),
                tag,
                waited: now - start,
                state: self.state(),
            });
        }
        Ok(())
    }

    /// Waits for command `tag`'s completion until `deadline`. A failed earlier command (the
    /// engine runs in order and halts on errors) is reported instead, naming that command.
    pub fn wait(&mut self, tag: u16, deadline: Instant) -> Result<Completion, DriverError> {
        let start = Instant::now();
        let my = match self.pending.get(&tag) {
            Some(p) => *p,
            None => match self.done.get(&tag) {
                Some((_, p)) => *p,
                None => return Err(refused(format!("tag {tag} was never submitted"))),
            },
        };
        let what = format!("{} completion", opcode_name(my.opcode));
        let mut hb = self.rd(off::HEARTBEAT)?;
        let mut hb_moved = start;
        let mut idle_since: Option<Instant> = None;
        loop {
            self.poll()?;
            if let Some((c, p)) = self.done.remove(&tag) {
                if c.status != Status::Ok as u8 {
                    return Err(self.failed(c, p));
                }
                return Ok(c);
            }
            // an earlier command failed: the card halted before ours
            let earlier = self
                .done
                .iter()
                .filter(|(_, (c, p))| c.status != Status::Ok as u8 && p.seq < my.seq)
                .map(|(t, _)| *t)
                .next();
            if let Some(t) = earlier {
                let (c, p) = self.done.remove(&t).expect("present");
                return Err(self.failed(c, p));
            }
            // a later command completed but ours did not: its completion was lost
            if self.done.values().any(|(_, p)| p.seq > my.seq) {
                self.pending.remove(&tag);
                return Err(DriverError::CompletionLost {
                    tag,
                    opcode: opcode_name(my.opcode),
                    state: self.state(),
                });
            }
            let now = Instant::now();
            let st = self.rd(off::STATUS)?;
            if st & regs::status::HALTED != 0 {
                self.poll()?;
                if !self
                    .done
                    .values()
                    .any(|(c, _)| c.status != Status::Ok as u8)
                {
                    return Err(DriverError::Halted {
                        state: self.state(),
                    });
                }
                continue;
            }
            let h = self.rd(off::HEARTBEAT)?;
            if h != hb {
                hb = h;
                hb_moved = now;
            } else if now - hb_moved > self.opts.hang_after {
                return Err(DriverError::CardHung {
                    what,
                    tag: Some(tag),
                    heartbeat: h,
                    stalled: now - hb_moved,
                    state: self.state(),
                });
            }
            let idle = st & regs::status::BUSY == 0
                && self.rd(off::SQ_HEAD)? == self.sq_tail
                && self.rd(off::CQ_TAIL)? == self.cq_head;
            if idle {
                let since = *idle_since.get_or_insert(now);
                if now - since > self.opts.lost_after && self.poll()? == 0 {
                    self.pending.remove(&tag);
                    return Err(DriverError::CompletionLost {
                        tag,
                        opcode: opcode_name(my.opcode),
                        state: self.state(),
                    });
                }
            } else {
                idle_since = None;
            }
            self.watch(start, deadline, &what, Some(tag))?;
            self.t
                .wait(deadline.min(Instant::now() + Duration::from_millis(2)))?;
        }
    }

    /// Submits and waits with the default deadline.
    pub fn run(&mut self, cmd: Command) -> Result<Completion, DriverError> {
        let tag = self.submit(cmd)?;
        let d = Instant::now() + self.opts.deadline;
        self.wait(tag, d)
    }

    /// Submits a NOP and waits for it.
    pub fn nop(&mut self) -> Result<Completion, DriverError> {
        self.run(Command::new(Opcode::Nop, 0))
    }

    fn staging(&mut self, len: usize) -> Result<DmaBuf, DriverError> {
        let len = round_up(len.max(WORD_BYTES), WORD_BYTES);
        if let Some(b) = &self.staging {
            if b.len >= len {
                return Ok(b.clone());
            }
            let old = b.clone();
            self.staging = None;
            self.t.free(&old)?;
        }
        let b = self.t.alloc(len.max(64 * 1024))?;
        self.staging = Some(b.clone());
        Ok(b)
    }

    /// Copies bytes to card memory through the staging buffer, in chunks.
    fn upload(&mut self, addr: u64, bytes: &[u8], crc: bool) -> Result<(), DriverError> {
        let chunk = self.opts.dma_chunk;
        let st = self.staging(chunk.min(round_up(bytes.len(), WORD_BYTES)))?;
        for (i, part) in bytes.chunks(chunk).enumerate() {
            let len = round_up(part.len(), WORD_BYTES);
            let mut padded;
            let data = if len == part.len() {
                part
            } else {
                padded = part.to_vec();
                padded.resize(len, 0);
                &padded[..]
            };
            self.t.write_buf(&st, 0, data)?;
            let mut c = Command::new(
                if crc {
                    Opcode::LoadWeights
                } else {
                    Opcode::DmaToCard
                },
                0,
            );
            c.a0 = st.iova;
            c.a1 = addr + (i * chunk) as u64;
            c.w0 = len as u32;
            if crc {
                c.w1 = crc32fast::hash(data);
            }
            self.run(c)?;
        }
        Ok(())
    }

    /// Builds the weight image(s) of a layer, allocates card memory and loads them with
    /// LOAD_WEIGHTS (CRC-checked). A layer with more outputs than the card's max_n is split
    /// into several regions on block-row boundaries.
    pub fn load_weights(&mut self, w: &ScaledTernaryMatrix) -> Result<RegionHandle, DriverError> {
        let (k, n) = (w.k(), w.n());
        if k == 0 || k > self.info.max_k as usize {
            return Err(refused(format!(
                "K = {k} is outside 1..={} (the card's max_k)",
                self.info.max_k
            )));
        }
        if n == 0 {
            return Err(refused("N = 0"));
        }
        let bn = w.block.n as usize;
        let max_n = self.info.max_n as usize;
        let rows_per_part = max_n / bn * bn;
        if rows_per_part == 0 {
            return Err(DriverError::GeometryUnsupported {
                reason: format!("the layer's block.n = {bn} exceeds the card's max_n = {max_n}"),
            });
        }
        let mut handle = RegionHandle {
            k,
            n,
            block: w.block,
            exps: w.exps.clone(),
            parts: vec![],
        };
        let nb = w.mants.nrows();
        let per = rows_per_part / bn;
        let mut br = 0;
        while br < nb {
            let part = w.block_rows(br, (br + per).min(nb));
            let img = image::build_region(&self.cfg, &part)?;
            let addr = self.mem.alloc(img.len() as u64)?;
            let r = self.upload(addr, &img, true);
            if let Err(e) = r {
                let _ = self.mem.free(addr);
                let _ = self.free_region(&handle);
                return Err(e);
            }
            self.regions.insert(addr, (k, part.n(), img.len() as u64));
            handle.parts.push(RegionPart {
                addr,
                bytes: img.len() as u64,
                n0: br * bn,
                n: part.n(),
            });
            br += per;
        }
        Ok(handle)
    }

    /// Releases a layer's card memory.
    pub fn free_region(&mut self, h: &RegionHandle) -> Result<(), DriverError> {
        for p in &h.parts {
            if self.regions.remove(&p.addr).is_some() {
                self.mem.free(p.addr)?;
            }
        }
        Ok(())
    }

    /// y = W·a on the card for activation codes `acts` [M, K]: the exact integer outputs.
    /// M is split into tiles of `token_tile` (1 without the GEMM capability) and the layer
    /// into its regions; each piece is DMA_TO_CARD, GEMM, DMA_TO_HOST.
    pub fn gemm(&mut self, h: &RegionHandle, acts: ArrayView2<i8>) -> Result<GemmRun, DriverError> {
        let (m, k) = acts.dim();
        if k != h.k {
            return Err(refused(format!(
                "activations have K = {k}, the layer has K = {}",
                h.k
            )));
        }
        if m == 0 {
            return Err(refused("M = 0 tokens"));
        }
        let (lo, hi) = (self.cfg.act_min(), self.cfg.act_max());
        if let Some(((t, i), v)) = acts
            .indexed_iter()
            .find(|(_, &v)| (v as i32) < lo || v as i32 > hi)
        {
            return Err(refused(format!(
                "activation [{t}, {i}] = {v} is outside the card's {}-bit range {lo}..={hi}",
                self.cfg.activation.bits
            )));
        }
        for p in &h.parts {
            if !self.regions.contains_key(&p.addr) {
                return Err(refused(format!(
                    "region {:#x} is not resident (freed?)",
                    p.addr
                )));
            }
        }
        let tt = if self.info.has_gemm() {
            self.info.token_tile as usize
        } else {
            1
        };
        let rows = self.info.rows as usize;
        let max_part_n = h.parts.iter().map(|p| p.n).max().unwrap_or(0);
        let acts_len = round_up(image::acts_bytes(tt.min(m), k), WORD_BYTES);
        let out_len = outputs_layout(tt.min(m), max_part_n, rows).dma_bytes;
        let acts_addr = self.mem.alloc(acts_len as u64)?;
        let out_addr = match self.mem.alloc(out_len as u64) {
            Ok(a) => a,
            Err(e) => {
                let _ = self.mem.free(acts_addr);
                return Err(e);
            }
        };
        let r = self.gemm_pieces(h, acts, tt, acts_addr, out_addr);
        let _ = self.mem.free(acts_addr);
        let _ = self.mem.free(out_addr);
        r
    }

    fn gemm_pieces(
        &mut self,
        h: &RegionHandle,
        acts: ArrayView2<i8>,
        tt: usize,
        acts_addr: u64,
        out_addr: u64,
    ) -> Result<GemmRun, DriverError> {
        let (m, k) = acts.dim();
        let rows = self.info.rows as usize;
        let mut acc = Array2::<i64>::zeros((m, h.n));
        let mut cycles = 0u64;
        let mut commands = 0usize;
        for m0 in (0..m).step_by(tt) {
            let mc = tt.min(m - m0);
            let img = image::acts_image(acts.slice(s![m0..m0 + mc, ..]));
            self.upload(acts_addr, &img, false)?;
            for p in h.parts.clone() {
                let ol = outputs_layout(mc, p.n, rows);
                let st = self.staging(ol.dma_bytes)?;
                let g = self.submit(Command::gemm(
                    0, p.addr, acts_addr, out_addr, mc as u32, k as u32, p.n as u32,
                ))?;
                let mut d = Command::new(Opcode::DmaToHost, 0);
                d.a0 = st.iova;
                d.a1 = out_addr;
                d.w0 = ol.dma_bytes as u32;
                let dt = self.submit(d)?;
                let deadline = Instant::now() + self.opts.deadline;
                let c = self.wait(g, deadline)?;
                cycles += c.cycles;
                commands += 1;
                let deadline = Instant::now() + self.opts.deadline;
                self.wait(dt, deadline)?;
                let mut out = vec![0u8; ol.dma_bytes];
                self.t.read_buf(&st, 0, &mut out)?;
                let part = image::decode_outputs(&out, mc, p.n, rows)?;
                acc.slice_mut(s![m0..m0 + mc, p.n0..p.n0 + p.n])
                    .assign(&part);
            }
        }
        Ok(GemmRun {
            acc,
            cycles,
            commands,
        })
    }

    /// The f32 outputs of a GEMM: the card's integers, then the host's block exponents and
    /// token scales (docs/arithmetic.md §6).
    pub fn gemm_f32(
        &mut self,
        h: &RegionHandle,
        acts: &QuantizedActs,
    ) -> Result<Array2<f32>, DriverError> {
        let run = self.gemm(h, acts.q.view())?;
        let bn = h.block.n as usize;
        Ok(Array2::from_shape_fn(run.acc.dim(), |(t, o)| {
            tern_spec::reference::output_to_f32(run.acc[(t, o)], h.exps[o / bn], acts.scales[t])
        }))
    }

    /// The region layout of a layer on this card.
    pub fn region_layout(&self, k: usize, n: usize) -> Result<image::Layout, DriverError> {
        Ok(region_layout(&self.cfg, k, n)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_memory_allocator_splits_and_coalesces() {
        let mut m = CardMem::new(64 * 1024);
        let a = m.alloc(100).unwrap();
        let b = m.alloc(5000).unwrap();
        let c = m.alloc(4096).unwrap();
        assert_eq!((a, b, c), (0, 4096, 3 * 4096));
        assert_eq!(m.free_bytes(), 64 * 1024 - 4 * 4096);
        m.free(b).unwrap();
        assert!(m.free(b).is_err());
        m.free(a).unwrap();
        // a and b coalesced into one 3-granule extent
        assert_eq!(m.alloc(3 * 4096).unwrap(), 0);
        m.free(0).unwrap();
        m.free(c).unwrap();
        assert_eq!(m.free_bytes(), 64 * 1024);
        assert_eq!(m.alloc(64 * 1024).unwrap(), 0);
        assert!(matches!(
            m.alloc(1),
            Err(DriverError::OutOfCardMemory { need: 4096, .. })
        ));
    }
}
