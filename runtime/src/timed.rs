//! A [`TernaryBackend`] wrapper that measures the wall time spent in the ternary matrix
//! products, so a benchmark can split a token's time into the GEMMs (which a faster kernel or
//! the card removes) and everything else the host does (embeddings, norms, activation
//! quantization, attention, the output head, sampling).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ndarray::Array2;
use tern_spec::{QuantizedActs, ScaledTernaryMatrix};

use crate::backend::{BackendError, LayerId, TernaryBackend};

/// Time and calls spent in `gemm`, readable while the session owns the backend.
#[derive(Debug, Clone, Default)]
pub struct GemmClock {
    spent: Rc<Cell<Duration>>,
    calls: Rc<Cell<u64>>,
}

impl GemmClock {
    /// Time spent in `gemm` so far.
    pub fn spent(&self) -> Duration {
        self.spent.get()
    }
    /// Calls of `gemm` so far.
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }
    fn add(&self, spent: Duration, calls: u64) {
        self.spent.set(self.spent.get() + spent);
        self.calls.set(self.calls.get() + calls);
    }
    /// Sets both back to zero.
    pub fn clear(&self) {
        self.spent.set(Duration::ZERO);
        self.calls.set(0);
    }
}

/// `B` with its `gemm` calls timed.
pub struct Timed<B> {
    inner: B,
    clock: GemmClock,
}

impl<B: TernaryBackend> Timed<B> {
    /// Wraps `inner`; the returned clock reads the time spent in its `gemm`.
    pub fn new(inner: B) -> (Self, GemmClock) {
        let clock = GemmClock::default();
        (
            Self {
                inner,
                clock: clock.clone(),
            },
            clock,
        )
    }
}

impl<B: TernaryBackend> TernaryBackend for Timed<B> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn load(&mut self, layers: &[(&str, &ScaledTernaryMatrix)]) -> Result<(), BackendError> {
        self.inner.load(layers)
    }
    fn gemm(&mut self, layer: LayerId, acts: &QuantizedActs) -> Result<Array2<i64>, BackendError> {
        let t = Instant::now();
        let r = self.inner.gemm(layer, acts);
        self.clock.add(t.elapsed(), 1);
        r
    }
    /// Forwarded, so the inner backend keeps running the layers together (one thread hand-off
    /// for Q, K, V) when timed; counts one call per layer.
    fn gemm_many(
        &mut self,
        layers: &[LayerId],
        acts: &QuantizedActs,
    ) -> Result<Vec<Array2<i64>>, BackendError> {
        let t = Instant::now();
        let r = self.inner.gemm_many(layers, acts);
        self.clock.add(t.elapsed(), layers.len() as u64);
        r
    }
    fn threads(&self) -> usize {
        self.inner.threads()
    }
    fn weight_bytes(&self) -> usize {
        self.inner.weight_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use tern_spec::random;

    #[test]
    fn counts_calls_and_time_and_passes_results_through() {
        let block = tern_spec::BlockShape { n: 8, k: 16 };
        let (w, _) = random::layer(3, 40, 70, block, 16, random::ScaleDist::Typical).unwrap();
        let (mut t, clock) = Timed::new(CpuBackend::new());
        t.load(&[("w", &w)]).unwrap();
        let a = random::acts(4, 2, 70, 8).unwrap();
        let got = t.gemm(LayerId(0), &a).unwrap();
        assert_eq!(got, tern_spec::reference::gemm_acc(&w, a.q.view()).unwrap());
        assert_eq!(clock.calls(), 1);
        assert!(clock.spent() > Duration::ZERO);
        assert!(t.gemm(LayerId(1), &a).is_err());
        assert_eq!(clock.calls(), 2);
        // several layers in one call: forwarded, one count per layer
        let many = t.gemm_many(&[LayerId(0), LayerId(0)], &a).unwrap();
        assert_eq!(many, vec![got.clone(), got.clone()]);
        assert_eq!(clock.calls(), 4);
        clock.clear();
        assert_eq!((clock.calls(), clock.spent()), (0, Duration::ZERO));
    }
}
