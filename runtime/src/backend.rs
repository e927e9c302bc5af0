//! The ternary GEMM backend: every ternary linear layer of a model runs through it.
//!
//! A backend receives the model's matrices once ([`TernaryBackend::load`], in registry
//! order: layer `i`'s Q, K, V, O, gate, up, down have [`LayerId`] `7i .. 7i + 7`) and then
//! computes exact integer accumulators `acc [M, N]` for quantized activations `[M, K]`
//! (docs/arithmetic.md §5). The host turns them into f32 with
//! `tern_spec::reference::output_to_f32`, so every backend that returns the right integers
//! gives bit-identical logits. Prefill sends all prompt tokens at once (M > 1), decode M = 1.

use ndarray::Array2;
use tern_spec::{QuantizedActs, ScaledTernaryMatrix};
use thiserror::Error;

/// Index of a layer in the order it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerId(pub usize);

#[derive(Debug, Error)]
pub enum BackendError {
    #[error("backend {backend}: layer {layer} is not loaded ({loaded} layers are)")]
    UnknownLayer {
        backend: String,
        layer: usize,
        loaded: usize,
    },
    #[error("backend {backend}: layer {layer} ({name}): {problem}")]
    Layer {
        backend: String,
        layer: usize,
        name: String,
        problem: String,
    },
    #[error("backend {backend}: {problem}")]
    Other { backend: String, problem: String },
}

/// A ternary GEMM engine.
pub trait TernaryBackend {
    /// Short name, e.g. "cpu".
    fn name(&self) -> String;
    /// Takes the model's matrices (name, matrix); `LayerId(i)` is `layers[i]`.
    fn load(&mut self, layers: &[(&str, &ScaledTernaryMatrix)]) -> Result<(), BackendError>;
    /// Exact accumulators `acc [M, N]` of layer `layer` for `acts [M, K]`.
    fn gemm(&mut self, layer: LayerId, acts: &QuantizedActs) -> Result<Array2<i64>, BackendError>;
    /// Several layers of the same input width on the same activations (Q, K, V; gate, up):
    /// one accumulator array per layer, each what [`TernaryBackend::gemm`] gives. Backends may
    /// run them together (one thread hand-off instead of several).
    fn gemm_many(
        &mut self,
        layers: &[LayerId],
        acts: &QuantizedActs,
    ) -> Result<Vec<Array2<i64>>, BackendError> {
        layers.iter().map(|&l| self.gemm(l, acts)).collect()
    }
    /// Host threads the backend computes on (the session runs its output head on as many).
    fn threads(&self) -> usize {
        1
    }
    /// Bytes of weights one token reads from memory (0 if unknown, e.g. off-host).
    fn weight_bytes(&self) -> usize {
        0
    }
}

/// The plain CPU backend: `tern_spec::reference::gemm_acc`, the contract's definition.
#[derive(Debug, Default)]
pub struct CpuBackend {
    layers: Vec<(String, ScaledTernaryMatrix)>,
}

impl CpuBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

impl TernaryBackend for CpuBackend {
    fn name(&self) -> String {
        "reference".into()
    }

    fn load(&mut self, layers: &[(&str, &ScaledTernaryMatrix)]) -> Result<(), BackendError> {
        self.layers = layers
            .iter()
            .map(|(n, w)| (n.to_string(), (*w).clone()))
            .collect();
        Ok(())
    }

    fn gemm(&mut self, layer: LayerId, acts: &QuantizedActs) -> Result<Array2<i64>, BackendError> {
        let (name, w) = self.layers.get(layer.0).ok_or(BackendError::UnknownLayer {
            backend: self.name(),
            layer: layer.0,
            loaded: self.layers.len(),
        })?;
        tern_spec::reference::gemm_acc(w, acts.q.view()).map_err(|e| BackendError::Layer {
            backend: "reference".into(),
            layer: layer.0,
            name: name.clone(),
            problem: e.to_string(),
        })
    }
}

/// The fast CPU backend: tern-kernels (AVX-512 VNNI / AVX2 / NEON / portable, chosen at
/// run time; `TERN_KERNEL` forces one), bit-exact with [`CpuBackend`]. Weights are laid
/// out for the kernel once, at load.
pub struct KernelBackend {
    layers: Vec<(String, tern_kernels::PreparedMatrix)>,
    threads: usize,
}

impl KernelBackend {
    /// `threads` = 0 uses every available core.
    pub fn new(threads: usize) -> Self {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        Self {
            layers: Vec::new(),
            threads,
        }
    }
}

impl TernaryBackend for KernelBackend {
    fn name(&self) -> String {
        format!(
            "cpu ({}, {} threads)",
            tern_kernels::detect().name(),
            self.threads
        )
    }

    fn load(&mut self, layers: &[(&str, &ScaledTernaryMatrix)]) -> Result<(), BackendError> {
        self.layers = layers
            .iter()
            .map(|(n, w)| (n.to_string(), tern_kernels::PreparedMatrix::new(w)))
            .collect();
        Ok(())
    }

    fn gemm(&mut self, layer: LayerId, acts: &QuantizedActs) -> Result<Array2<i64>, BackendError> {
        let (name, w) = self.layers.get(layer.0).ok_or(BackendError::UnknownLayer {
            backend: "cpu".into(),
            layer: layer.0,
            loaded: self.layers.len(),
        })?;
        tern_kernels::gemm(w, acts, self.threads).map_err(|e| BackendError::Layer {
            backend: "cpu".into(),
            layer: layer.0,
            name: name.clone(),
            problem: e.to_string(),
        })
    }

    fn gemm_many(
        &mut self,
        layers: &[LayerId],
        acts: &QuantizedActs,
    ) -> Result<Vec<Array2<i64>>, BackendError> {
        let loaded = self.layers.len();
        let pms = layers
            .iter()
            .map(|l| {
                self.layers
                    .get(l.0)
                    .map(|(_, pm)| pm)
                    .ok_or(BackendError::UnknownLayer {
                        backend: "cpu".into(),
                        layer: l.0,
                        loaded,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        tern_kernels::gemm_many(&pms, acts, self.threads).map_err(|e| BackendError::Other {
            backend: "cpu".into(),
            problem: format!("layers {layers:?}: {e}"),
        })
    }

    fn threads(&self) -> usize {
        self.threads
    }

    fn weight_bytes(&self) -> usize {
        self.layers.iter().map(|(_, pm)| pm.bytes()).sum()
    }
}

/// Backend names `backend_by_name` knows: `cpu` (fast kernels, all cores), `cpu:N`
/// (N threads), `reference` (the plain contract implementation).
/// The card back ends (`model`, `sim`, `vfio:BDF`, with their options) are tern-driver's
/// specs: see [`crate::card_backend`].
pub const BACKENDS: &[&str] = &[
    "cpu",
    "cpu:N",
    "reference",
    "model[:CONFIG]",
    "sim[:CONFIG]",
    "vfio:DDDD:BB:DD.F",
];

/// A backend by name.
pub fn backend_by_name(name: &str) -> Result<Box<dyn TernaryBackend>, BackendError> {
    let unknown = || BackendError::Other {
        backend: name.into(),
        problem: format!("unknown backend (legal: {})", BACKENDS.join(", ")),
    };
    if tern_driver::backend::is_card_spec(name) {
        return Ok(Box::new(crate::card_backend::CardBackend::open(name)?));
    }
    match name {
        "reference" => Ok(Box::new(CpuBackend::new())),
        "cpu" => Ok(Box::new(KernelBackend::new(0))),
        _ => match name.strip_prefix("cpu:").map(str::parse::<usize>) {
            Some(Ok(t)) if t >= 1 => Ok(Box::new(KernelBackend::new(t))),
            _ => Err(unknown()),
        },
    }
}

impl TernaryBackend for Box<dyn TernaryBackend> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn load(&mut self, layers: &[(&str, &ScaledTernaryMatrix)]) -> Result<(), BackendError> {
        (**self).load(layers)
    }
    fn gemm(&mut self, layer: LayerId, acts: &QuantizedActs) -> Result<Array2<i64>, BackendError> {
        (**self).gemm(layer, acts)
    }
    fn gemm_many(
        &mut self,
        layers: &[LayerId],
        acts: &QuantizedActs,
    ) -> Result<Vec<Array2<i64>>, BackendError> {
        (**self).gemm_many(layers, acts)
    }
    fn threads(&self) -> usize {
        (**self).threads()
    }
    fn weight_bytes(&self) -> usize {
        (**self).weight_bytes()
    }
}
