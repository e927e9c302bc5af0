//! The `sim` back end: the card RTL (`tern_NAME_card`) under Verilator through
//! [`tern_sim::card::CardSim`]. Register accesses are AXI4-Lite transactions on the
//! simulated BAR0; DMA buffers live in the harness's host memory at IOVAs; [`wait`] runs
//! clock cycles in chunks until the card writes a completion or the deadline passes.
//!
//! [`wait`]: Transport::wait

use crate::transport::{DmaBuf, Transport, TransportError};
use std::time::Instant;
use tern_sim::card::{CardSim, CardSimError, CardSimOptions, MemTiming};
use tern_spec::config::ArrayConfig;

const BACKEND: &str = "sim";

/// Cycles simulated per step of [`Transport::wait`] before the deadline is checked.
pub const WAIT_CHUNK: u64 = 4096;

/// The Verilated card behind the [`Transport`] trait.
pub struct SimCard {
    sim: CardSim,
    cfg: ArrayConfig,
}

fn err(e: CardSimError) -> TransportError {
    match e {
        CardSimError::BadOffset(offset) => TransportError::BadOffset {
            backend: BACKEND.into(),
            offset,
        },
        CardSimError::UnknownBuf(id) => TransportError::UnknownBuf {
            backend: BACKEND.into(),
            id,
        },
        CardSimError::BufRange {
            id,
            offset,
            len,
            size,
        } => TransportError::BufRange {
            backend: BACKEND.into(),
            id,
            offset,
            len,
            size,
        },
        CardSimError::Alloc(len) => TransportError::Alloc {
            backend: BACKEND.into(),
            len,
            reason: "1..=16 GiB".into(),
        },
        other => TransportError::Other {
            backend: BACKEND.into(),
            msg: other.to_string(),
        },
    }
}

impl SimCard {
    /// Builds (or finds in the cache) the card RTL of `cfg` and resets it.
    pub fn open(cfg: &ArrayConfig, opts: CardSimOptions) -> Result<Self, TransportError> {
        Ok(Self {
            sim: CardSim::new(cfg, opts).map_err(err)?,
            cfg: cfg.clone(),
        })
    }

    /// [`SimCard::open`] on a built-in config name or a TOML path, default memory model
    /// (card memory: 1 GiB, latency 40 cycles, 1 word/cycle).
    pub fn open_named(name: &str) -> Result<Self, TransportError> {
        let cfg = ArrayConfig::builtin_or_load(name).map_err(|e| TransportError::Other {
            backend: BACKEND.into(),
            msg: e.to_string(),
        })?;
        Self::open(&cfg, CardSimOptions::default())
    }

    /// The memory model of a spec's options: `mem=BYTES`, `latency=CYCLES`, `bw=WORDS`.
    pub fn options_for(mem: Option<u64>, latency: Option<u64>, bw: Option<f64>) -> CardSimOptions {
        let d = CardSimOptions::default();
        CardSimOptions {
            mem_bytes: mem.unwrap_or(d.mem_bytes),
            card_mem: MemTiming {
                latency: latency.unwrap_or(d.card_mem.latency),
                words_per_cycle: bw.unwrap_or(d.card_mem.words_per_cycle),
            },
            ..d
        }
    }

    /// The simulation (cycle counter, backdoor memory access).
    pub fn sim(&mut self) -> &mut CardSim {
        &mut self.sim
    }

    /// The config the RTL was generated from.
    pub fn config(&self) -> &ArrayConfig {
        &self.cfg
    }
}

impl Transport for SimCard {
    fn describe(&self) -> String {
        let o = self.sim.options();
        format!(
            "sim:{} (Verilator; card memory {} MiB, latency {} cycles, {} words/cycle)",
            self.cfg.name,
            o.mem_bytes >> 20,
            o.card_mem.latency,
            o.card_mem.words_per_cycle
        )
    }

    fn read32(&mut self, offset: u32) -> Result<u32, TransportError> {
        self.sim.read32(offset).map_err(err)
    }

    fn write32(&mut self, offset: u32, value: u32) -> Result<(), TransportError> {
        self.sim.write32(offset, value).map_err(err)
    }

    fn alloc(&mut self, len: usize) -> Result<DmaBuf, TransportError> {
        let b = self.sim.alloc(len).map_err(err)?;
        Ok(DmaBuf {
            id: b.id,
            iova: b.iova,
            len: b.len,
        })
    }

    fn free(&mut self, buf: &DmaBuf) -> Result<(), TransportError> {
        self.sim.free(buf.id).map_err(err)
    }

    fn write_buf(
        &mut self,
        buf: &DmaBuf,
        offset: usize,
        data: &[u8],
    ) -> Result<(), TransportError> {
        self.sim.write_host(buf.id, offset, data).map_err(err)
    }

    fn read_buf(
        &mut self,
        buf: &DmaBuf,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), TransportError> {
        self.sim.read_host(buf.id, offset, out).map_err(err)
    }

    fn wait(&mut self, until: Instant) -> Result<(), TransportError> {
        loop {
            if self.sim.run_until_cq_write(WAIT_CHUNK).map_err(err)? {
                return Ok(());
            }
            if Instant::now() >= until {
                return Ok(());
            }
        }
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.sim.hard_reset().map_err(err)
    }

    fn alive(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::sim_options;

    #[test]
    fn sim_specs_parse() {
        let (cfg, o) = sim_options("sim").unwrap();
        assert_eq!(cfg.name, "default");
        assert_eq!(o.card_mem.latency, 40);
        let (cfg, o) = sim_options("sim:small?mem=1M&latency=10&bw=0.5").unwrap();
        assert_eq!(cfg.name, "small");
        assert_eq!(o.mem_bytes, 1 << 20);
        assert_eq!(o.card_mem.latency, 10);
        assert_eq!(o.card_mem.words_per_cycle, 0.5);
        for bad in [
            "sim:",
            "sim?bw=2",
            "sim?bw=0",
            "sim?latency=x",
            "sim?mem=100",
            "sim?speed=1",
            "sim:no_such_config",
        ] {
            assert!(sim_options(bad).is_err(), "{bad}");
        }
    }
}
