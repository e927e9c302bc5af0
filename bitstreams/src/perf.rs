//! Cycle-level performance model: projected decode tokens/s of a model on an array and a
//! board.
//!
//! For one generated token (decode, M = 1), every ternary matrix of the model is one GEMV
//! command on the array. With every stream valid and ready, a command takes exactly
//! [`tern_hdl::host::ideal_cycles`] cycles (the formula the Verilator testbench checks, and the
//! manifest's `cycles_formula`):
//!
//! ```text
//! cycles(N, K)     = ceil(N/rows) · ceil(K/cols) + bubbles + (tree_stages + 8) + 1
//!                    (bubbles = ceil(N/rows) − 1 when K ≤ cols, else 0)
//! cycles/token     = Σ over the model's matrices of cycles(N, K)
//! bytes/token      = Σ ceil(N/rows)·ceil(K/cols) · 2·rows·cols / 8          (weight beats)
//!                  + Σ ceil(N/rows)·ceil(K/block.k) · rows·mantissa_bits / 8  (scale vectors)
//! t_compute        = cycles/token / Fmax
//! t_memory         = bytes/token / bandwidth            (board memory.bandwidth_gbs)
//! tokens/s         = 1 / max(t_compute, t_memory)
//! ```
//!
//! The weights are streamed as the array consumes them (2-bit codes, padded to whole array
//! tiles), so `bytes/token` is what the memory must deliver. Not counted: activations (K
//! codes per command, on-chip), the output vectors, the host's work between matrices
//! (norms, attention over the KV cache, the LM head, which BitNet keeps in bf16), and command
//! gaps. A board without memory for weights (`bandwidth_gbs = 0`) projects 0 tokens/s and
//! reports the compute bound alone.

use serde::Serialize;
use tern_hdl::host::ideal_cycles;
use tern_hdl::Params;

/// One ternary matrix of a model: `count` matrices of N outputs × K inputs per token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gemv {
    pub name: String,
    pub n: usize,
    pub k: usize,
    pub count: usize,
}

/// The ternary matrices a model runs per token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelShape {
    pub name: String,
    pub description: String,
    pub gemvs: Vec<Gemv>,
}

impl ModelShape {
    /// Ternary weights per token.
    pub fn weights(&self) -> u64 {
        self.gemvs
            .iter()
            .map(|g| (g.n * g.k * g.count) as u64)
            .sum()
    }
}

/// Names [`model_shape`] knows.
pub const MODEL_SHAPES: &[&str] = &["bitnet-2b"];

/// A built-in model shape: `bitnet-2b` (BitNet b1.58 2B-4T: 30 layers, hidden 2560,
/// 20 query / 5 KV heads of 128, FFN 6912; per layer q, k, v, o, gate, up, down).
pub fn model_shape(name: &str) -> Option<ModelShape> {
    match name {
        "bitnet-2b" | "bitnet-2b-4t" | "bitnet-b1.58-2b-4t" => {
            let (layers, hidden, kv, ffn) = (30, 2560, 640, 6912);
            let g = |name: &str, n: usize, k: usize| Gemv {
                name: name.to_string(),
                n,
                k,
                count: layers,
            };
            Some(ModelShape {
                name: "bitnet-2b".into(),
                description: "BitNet b1.58 2B-4T: 30 layers × (q, k, v, o, gate, up, down); LM head (bf16) on the host".into(),
                gemvs: vec![
                    g("q_proj", hidden, hidden),
                    g("k_proj", kv, hidden),
                    g("v_proj", kv, hidden),
                    g("o_proj", hidden, hidden),
                    g("gate_proj", ffn, hidden),
                    g("up_proj", ffn, hidden),
                    g("down_proj", hidden, ffn),
                ],
            })
        }
        _ => None,
    }
}

/// Cycles of one GEMV command (M = 1) on the array: [`tern_hdl::host::ideal_cycles`].
pub fn gemv_cycles(p: &Params, n: usize, k: usize) -> u64 {
    ideal_cycles(p, k, n, 1) as u64
}

/// Array cycles per decoded token.
pub fn cycles_per_token(p: &Params, model: &ModelShape) -> u64 {
    model
        .gemvs
        .iter()
        .map(|g| g.count as u64 * gemv_cycles(p, g.n, g.k))
        .sum()
}

/// Bytes the memory delivers per decoded token: weight beats and scale vectors.
pub fn weight_bytes_per_token(p: &Params, model: &ModelShape) -> f64 {
    let (r, c, bk) = (p.rows as u64, p.cols as u64, p.block_k as u64);
    let bits: u64 = model
        .gemvs
        .iter()
        .map(|g| {
            let tiles = (g.n as u64).div_ceil(r);
            let beats = tiles * (g.k as u64).div_ceil(c);
            let scales = tiles * (g.k as u64).div_ceil(bk);
            g.count as u64 * (beats * 2 * r * c + scales * r * p.mant_bits as u64)
        })
        .sum();
    bits as f64 / 8.0
}

/// What limits the projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    Compute,
    Memory,
    /// The board has no memory to stream weights from.
    NoMemory,
}

/// A projection of decode speed.
#[derive(Debug, Clone, Serialize)]
pub struct Projection {
    pub model: String,
    pub cycles_per_token: u64,
    pub weight_bytes_per_token: f64,
    pub fmax_mhz: f64,
    pub bandwidth_gbs: f64,
    /// 1 / t_compute.
    pub compute_tokens_per_s: f64,
    /// 1 / t_memory (None without memory).
    pub memory_tokens_per_s: Option<f64>,
    /// The projection: min of the two (0 without memory).
    pub tokens_per_s: f64,
    pub bound: Bound,
    /// Useful ternary MACs over array slots during the token's cycles.
    pub array_utilization: f64,
    /// Whether the streamed weights fit the board's memory.
    pub fits_memory: bool,
}

/// Projects decode tokens/s of `model` on the array `p` at `fmax_mhz`, fed by a memory of
/// `bandwidth_gbs` GB/s and `memory_gb` GB.
pub fn project(
    p: &Params,
    model: &ModelShape,
    fmax_mhz: f64,
    bandwidth_gbs: f64,
    memory_gb: f64,
) -> Projection {
    let cycles = cycles_per_token(p, model);
    let bytes = weight_bytes_per_token(p, model);
    let compute = fmax_mhz * 1e6 / cycles as f64;
    let memory = (bandwidth_gbs > 0.0).then(|| bandwidth_gbs * 1e9 / bytes);
    let (tokens, bound) = match memory {
        None => (0.0, Bound::NoMemory),
        Some(m) if m < compute => (m, Bound::Memory),
        Some(_) => (compute, Bound::Compute),
    };
    let slots = cycles as f64 * (p.rows as f64 * p.cols as f64);
    Projection {
        model: model.name.clone(),
        cycles_per_token: cycles,
        weight_bytes_per_token: bytes,
        fmax_mhz,
        bandwidth_gbs,
        compute_tokens_per_s: compute,
        memory_tokens_per_s: memory,
        tokens_per_s: tokens,
        bound,
        array_utilization: model.weights() as f64 / slots,
        fits_memory: bytes <= memory_gb * 1e9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_hdl::HdlOptions;
    use tern_spec::ArrayConfig;

    fn params(name: &str) -> Params {
        Params::new(&ArrayConfig::builtin(name).unwrap(), HdlOptions::default()).unwrap()
    }

    #[test]
    fn bitnet_2b_shapes() {
        let m = model_shape("bitnet-2b").unwrap();
        // 30 · (2·2560² + 2·640·2560 + 3·6912·2560)
        assert_eq!(m.weights(), 2_084_044_800);
        assert!(model_shape("gpt-5").is_none());
    }

    /// The default 16×16 array: every BitNet dimension is a multiple of 16, so each matrix is
    /// N·K/256 beats plus the pipeline drain (tree_stages + 8 + 1).
    #[test]
    fn cycles_and_bytes_by_hand() {
        let p = params("default");
        let drain = (p.tree_lat() + 9) as u64;
        assert_eq!(gemv_cycles(&p, 2560, 2560), 160 * 160 + drain);
        let m = model_shape("bitnet-2b").unwrap();
        let beats: u64 = 30 * (2 * 160 * 160 + 2 * 40 * 160 + 2 * 432 * 160 + 160 * 432);
        assert_eq!(beats * 256, m.weights());
        assert_eq!(cycles_per_token(&p, &m), beats + 30 * 7 * drain);
        // 2 bits per weight, plus one 16-bit mantissa per 64 weights of a row (block.k = 64)
        let scale_bits = m.weights() / 64 * 16;
        let bytes = (m.weights() * 2 + scale_bits) as f64 / 8.0;
        assert_eq!(weight_bytes_per_token(&p, &m), bytes);
    }

    #[test]
    fn padding_counts_in_cycles_and_bytes() {
        // a 3-row matrix on 8 lanes takes a whole tile
        let p = params("small");
        let m = ModelShape {
            name: "t".into(),
            description: String::new(),
            gemvs: vec![Gemv {
                name: "x".into(),
                n: 3,
                k: 10,
                count: 1,
            }],
        };
        assert_eq!(cycles_per_token(&p, &m), 2 + (p.tree_lat() + 9) as u64);
        // 2 beats of 8·8 trits, 1 scale vector of 8 mantissas
        assert_eq!(
            weight_bytes_per_token(&p, &m),
            (2.0 * 128.0 + 8.0 * 16.0) / 8.0
        );
    }

    #[test]
    fn bounds() {
        let p = params("default");
        let m = model_shape("bitnet-2b").unwrap();
        let cycles = cycles_per_token(&p, &m) as f64;
        let bytes = weight_bytes_per_token(&p, &m);
        // 19.2 GB/s: the 16×16 array at 150 MHz needs 9.6 GB/s of weights, so compute bound
        let pr = project(&p, &m, 150.0, 19.2, 4.0);
        assert_eq!(pr.bound, Bound::Compute);
        assert!((pr.tokens_per_s - 150e6 / cycles).abs() < 1e-9);
        assert!(pr.fits_memory);
        assert!(pr.array_utilization > 0.999 && pr.array_utilization <= 1.0);
        // 0.33 GB/s SDRAM: memory bound, and 32 MB cannot hold the weights
        let pr = project(&p, &m, 150.0, 0.33, 0.032);
        assert_eq!(pr.bound, Bound::Memory);
        assert!((pr.tokens_per_s - 0.33e9 / bytes).abs() < 1e-9);
        assert!(!pr.fits_memory);
        // no memory
        let pr = project(&p, &m, 150.0, 0.0, 0.0);
        assert_eq!((pr.bound, pr.tokens_per_s), (Bound::NoMemory, 0.0));
        assert!(pr.compute_tokens_per_s > 0.0);
    }
}
