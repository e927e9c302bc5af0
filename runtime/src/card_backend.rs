//! The card as a [`TernaryBackend`]: every ternary linear layer of a model runs on a tern card
//! through `tern-driver`, whichever back end the card is (`model`, `sim`, `vfio:BDF`).
//!
//! [`TernaryBackend::load`] writes every layer's weight-region image into card memory once
//! (LOAD_WEIGHTS with its CRC); each [`TernaryBackend::gemm`] sends the activation codes
//! (DMA_TO_CARD), runs GEMM on the resident region and reads the exact accumulators back
//! (DMA_TO_HOST). The card returns the same integers as `tern_spec::reference::gemm_acc`, so a
//! model gives bit-identical logits on the card and on the CPU back ends.

use ndarray::Array2;
use tern_driver::card::{Card, PerfCounters, RegionHandle};
use tern_driver::Transport;
use tern_spec::{QuantizedActs, ScaledTernaryMatrix};

use crate::backend::{BackendError, LayerId, TernaryBackend};

/// Counts of what the card did for this backend since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CardUse {
    /// GEMM commands issued (a layer larger than the array's limits takes several).
    pub gemm_commands: u64,
    /// Sum of the GEMM commands' completion cycles.
    pub gemm_cycles: u64,
    /// Calls of [`TernaryBackend::gemm`].
    pub calls: u64,
}

/// A tern card behind the [`TernaryBackend`] interface.
pub struct CardBackend {
    spec: String,
    card: Card<Box<dyn Transport>>,
    regions: Vec<(String, RegionHandle)>,
    used: CardUse,
}

impl std::fmt::Debug for CardBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardBackend")
            .field("spec", &self.spec)
            .field("layers", &self.regions.len())
            .field("used", &self.used)
            .finish()
    }
}

impl CardBackend {
    /// Opens and probes the card a back-end spec names (`model`, `sim:small`, `vfio:…`).
    pub fn open(spec: &str) -> Result<Self, BackendError> {
        let other = |e: tern_driver::DriverError| BackendError::Other {
            backend: spec.to_string(),
            problem: e.to_string(),
        };
        let transport = tern_driver::backend::open(spec).map_err(other)?;
        let card = Card::probe(transport).map_err(other)?;
        Ok(Self {
            spec: spec.to_string(),
            card,
            regions: vec![],
            used: CardUse::default(),
        })
    }

    /// The driver's card (ID block, performance counters, …).
    pub fn card(&mut self) -> &mut Card<Box<dyn Transport>> {
        &mut self.card
    }

    /// The card's performance counters.
    pub fn perf(&mut self) -> Result<PerfCounters, BackendError> {
        self.card.perf().map_err(|e| BackendError::Other {
            backend: self.spec.clone(),
            problem: e.to_string(),
        })
    }

    /// Processing elements of the card's array (rows × cols).
    pub fn pes(&self) -> u64 {
        let cfg = self.card.config();
        u64::from(cfg.array.rows) * u64::from(cfg.array.cols)
    }

    /// What this backend asked of the card so far.
    pub fn used(&self) -> CardUse {
        self.used
    }
}

impl TernaryBackend for CardBackend {
    fn name(&self) -> String {
        self.spec.clone()
    }

    fn load(&mut self, layers: &[(&str, &ScaledTernaryMatrix)]) -> Result<(), BackendError> {
        for h in std::mem::take(&mut self.regions) {
            // a reload replaces the model: give its card memory back first
            self.card
                .free_region(&h.1)
                .map_err(|e| BackendError::Other {
                    backend: self.spec.clone(),
                    problem: e.to_string(),
                })?;
        }
        for (i, (name, w)) in layers.iter().enumerate() {
            let h = self.card.load_weights(w).map_err(|e| BackendError::Layer {
                backend: self.spec.clone(),
                layer: i,
                name: name.to_string(),
                problem: e.to_string(),
            })?;
            self.regions.push((name.to_string(), h));
        }
        Ok(())
    }

    fn gemm(&mut self, layer: LayerId, acts: &QuantizedActs) -> Result<Array2<i64>, BackendError> {
        let (name, h) = self
            .regions
            .get(layer.0)
            .ok_or_else(|| BackendError::UnknownLayer {
                backend: self.spec.clone(),
                layer: layer.0,
                loaded: self.regions.len(),
            })?;
        let run = self
            .card
            .gemm(h, acts.q.view())
            .map_err(|e| BackendError::Layer {
                backend: self.spec.clone(),
                layer: layer.0,
                name: name.clone(),
                problem: e.to_string(),
            })?;
        self.used.calls += 1;
        self.used.gemm_commands += run.commands as u64;
        self.used.gemm_cycles += run.cycles;
        Ok(run.acc)
    }
}

/// A [`CardBackend`] shared between a session (which owns its backend) and the code that
/// reads the card's counters while the session runs.
#[derive(Debug, Clone)]
pub struct SharedCard(pub std::rc::Rc<std::cell::RefCell<CardBackend>>);

impl SharedCard {
    pub fn new(card: CardBackend) -> Self {
        Self(std::rc::Rc::new(std::cell::RefCell::new(card)))
    }
}

impl TernaryBackend for SharedCard {
    fn name(&self) -> String {
        self.0.borrow().name()
    }
    fn load(&mut self, layers: &[(&str, &ScaledTernaryMatrix)]) -> Result<(), BackendError> {
        self.0.borrow_mut().load(layers)
    }
    fn gemm(&mut self, layer: LayerId, acts: &QuantizedActs) -> Result<Array2<i64>, BackendError> {
        self.0.borrow_mut().gemm(layer, acts)
    }
}
