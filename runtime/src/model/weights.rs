//! Model weights in tern's form: f32 host tensors (embeddings, norms) and one
//! [`ScaledTernaryMatrix`] per ternary linear layer.

use ndarray::{Array2, ArrayView2};
use tern_spec::{BlockShape, ScaledTernaryMatrix};

use super::MANT_BITS;
use crate::decode::{Ternary, TernaryScales};

/// The seven ternary linear layers of a block, in registry order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearKind {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl LinearKind {
    pub const ALL: [LinearKind; 7] = [
        LinearKind::Q,
        LinearKind::K,
        LinearKind::V,
        LinearKind::O,
        LinearKind::Gate,
        LinearKind::Up,
        LinearKind::Down,
    ];

    /// Hugging Face module path within `model.layers.{i}`.
    pub fn hf(self) -> &'static str {
        match self {
            LinearKind::Q => "self_attn.q_proj",
            LinearKind::K => "self_attn.k_proj",
            LinearKind::V => "self_attn.v_proj",
            LinearKind::O => "self_attn.o_proj",
            LinearKind::Gate => "mlp.gate_proj",
            LinearKind::Up => "mlp.up_proj",
            LinearKind::Down => "mlp.down_proj",
        }
    }

    /// GGUF tensor name within `blk.{i}`.
    pub fn gguf(self) -> &'static str {
        match self {
            LinearKind::Q => "attn_q",
            LinearKind::K => "attn_k",
            LinearKind::V => "attn_v",
            LinearKind::O => "attn_output",
            LinearKind::Gate => "ffn_gate",
            LinearKind::Up => "ffn_up",
            LinearKind::Down => "ffn_down",
        }
    }

    /// Shape `[N out, K in]` for a config.
    pub fn shape(self, c: &super::ModelConfig) -> (usize, usize) {
        match self {
            LinearKind::Q => (c.q_dim(), c.hidden),
            LinearKind::K | LinearKind::V => (c.kv_dim(), c.hidden),
            LinearKind::O => (c.hidden, c.q_dim()),
            LinearKind::Gate | LinearKind::Up => (c.ffn, c.hidden),
            LinearKind::Down => (c.hidden, c.ffn),
        }
    }
}

/// One ternary linear layer.
#[derive(Debug, Clone)]
pub struct Linear {
    /// Registry name, `blk.{i}.{gguf name}` (e.g. `blk.0.attn_q`).
    pub name: String,
    pub w: ScaledTernaryMatrix,
}

/// The RMSNorm weights of one block, each `[hidden]` (sub-norms: `[q_dim]`, `[ffn]`).
#[derive(Debug, Clone)]
pub struct LayerNorms {
    pub attn_norm: Vec<f32>,
    pub attn_sub_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub ffn_sub_norm: Option<Vec<f32>>,
}

/// All weights.
#[derive(Debug, Clone)]
pub struct Weights {
    /// `[vocab, hidden]`.
    pub embed: Array2<f32>,
    /// `[hidden]`.
    pub output_norm: Vec<f32>,
    /// `[vocab, hidden]` when not tied to `embed`.
    pub lm_head: Option<Array2<f32>>,
    pub norms: Vec<LayerNorms>,
    /// `n_layers × 7` linears, layer-major in [`LinearKind::ALL`] order.
    pub linears: Vec<Linear>,
}

impl Weights {
    /// Ternary multiply-accumulates one token costs: Σ K·N over the linears.
    pub fn ternary_macs_per_token(&self) -> u64 {
        self.linears
            .iter()
            .map(|l| (l.w.k() * l.w.n()) as u64)
            .sum()
    }

    /// Registry index of a layer's linear.
    pub fn index(layer: usize, kind: LinearKind) -> usize {
        layer * 7 + LinearKind::ALL.iter().position(|&k| k == kind).unwrap_or(0)
    }
}

/// Builds the contract's matrix from decoded trits and scales (scales become 16-bit
/// mantissas with one exponent per block row, docs/arithmetic.md §4).
///
/// - per-tensor scale `s`: one block `N × K`;
/// - per-row-group (TQ1_0/TQ2_0): blocks `1 × group`;
/// - `external` block scales `[⌈N/bn⌉, ⌈K/bk⌉]` (tern STB, or a per-tensor Hugging Face
///   `weight_scale` as a 1×1 array with `block = N × K`) when the codes carry none.
pub fn to_matrix(
    t: Ternary,
    external: Option<(BlockShape, ArrayView2<f32>)>,
) -> Result<ScaledTernaryMatrix, String> {
    let (n, k) = (t.shape.rows, t.shape.cols);
    let trits = Array2::from_shape_vec((n, k), t.trits).map_err(|e| e.to_string())?;
    let full = BlockShape {
        n: n as u32,
        k: k as u32,
    };
    let r = match (t.scales, external) {
        (_, Some((block, s))) => ScaledTernaryMatrix::from_f32_scales(trits, block, s, MANT_BITS),
        (TernaryScales::PerTensor(s), None) => {
            let a = Array2::from_elem((1, 1), s);
            ScaledTernaryMatrix::from_f32_scales(trits, full, a.view(), MANT_BITS)
        }
        (TernaryScales::PerRowGroup { group, values }, None) => {
            let a = Array2::from_shape_vec((n, k / group), values).map_err(|e| e.to_string())?;
            let block = BlockShape {
                n: 1,
                k: group as u32,
            };
            ScaledTernaryMatrix::from_f32_scales(trits, block, a.view(), MANT_BITS)
        }
        (TernaryScales::None, None) => {
            return Err("the codes carry no scale and none was given".into())
        }
    };
    r.map_err(|e| e.to_string())
}
