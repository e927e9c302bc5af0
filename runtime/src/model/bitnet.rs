//! The forward pass of BitNet b1.58 (2B-4T architecture) and its Llama-style variant.
//!
//! Per block, for hidden states `x [M, H]` (f32 on the host):
//!
//! ```text
//! h = RMSNorm(x) · attn_norm
//! q, k, v = Q(h), K(h), V(h)                  ternary linears (one activation quantization)
//! q, k = RoPE(q, k) at positions p..p+M        θ from the file; KV cache grows by M
//! a = softmax(q·kᵀ / √d, causal) · v           GQA: query head j uses KV head j / (Hq/Hkv)
//! a = RMSNorm(a) · attn_sub_norm               (BitNet only)
//! x = x + O(a)
//! h = RMSNorm(x) · ffn_norm
//! f = act(Gate(h)) ⊙ Up(h)                     act = relu² (BitNet) or SiLU (Llama)
//! f = RMSNorm(f) · ffn_sub_norm                (BitNet only)
//! x = x + Down(f)
//! ```
//!
//! then `logits = RMSNorm(x) · output_norm · Eᵀ` (tied embeddings) or `· lm_headᵀ`.
//! Every ternary linear quantizes its input per token with `tern_spec::act` (int8) and runs
//! through the [`TernaryBackend`]; the host converts the integers with `output_to_f32`.

use ndarray::{s, Array2, ArrayView2};
use tern_spec::reference::output_to_f32;
use tern_spec::QuantizedActs;
use thiserror::Error;

use super::config::{Activation, ModelConfig, RopeStyle};
use super::weights::{LayerNorms, LinearKind, Weights};
use super::Model;
use crate::backend::{BackendError, LayerId, TernaryBackend};

/// Activation width of every ternary linear (BitNet b1.58: int8).
pub const ACT_BITS: u32 = 8;

#[derive(Debug, Error)]
pub enum ForwardError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("layer {layer}: {problem}")]
    Layer { layer: String, problem: String },
    #[error("token id {id} is outside the vocabulary (0..{vocab})")]
    Token { id: u32, vocab: usize },
    #[error("context full: {pos} + {m} tokens exceed the context length {context}")]
    Context {
        pos: usize,
        m: usize,
        context: usize,
    },
}

/// What the host keeps of a linear after the backend took the trits: its shape and the
/// exponent of each block row (the hardware sees only mantissas, docs §4).
#[derive(Debug, Clone)]
struct HostLinear {
    name: String,
    n: usize,
    bn: usize,
    exps: Vec<i16>,
}

/// A model bound to a backend, with its KV cache.
pub struct Session<B: TernaryBackend> {
    pub config: ModelConfig,
    embed: Array2<f32>,
    output_norm: Vec<f32>,
    lm_head: Option<Array2<f32>>,
    norms: Vec<LayerNorms>,
    linears: Vec<HostLinear>,
    backend: B,
    /// Per layer: keys and values, each `[pos, kv_dim]` row-major.
    k_cache: Vec<Vec<f32>>,
    v_cache: Vec<Vec<f32>>,
    pos: usize,
}

impl<B: TernaryBackend> Session<B> {
    /// Loads the weights' matrices into `backend` (the session keeps only what the host needs).
    pub fn new(
        weights: Weights,
        config: ModelConfig,
        mut backend: B,
    ) -> Result<Self, ForwardError> {
        let Weights {
            embed,
            output_norm,
            lm_head,
            norms,
            linears,
        } = weights;
        {
            let refs: Vec<(&str, &tern_spec::ScaledTernaryMatrix)> =
                linears.iter().map(|l| (l.name.as_str(), &l.w)).collect();
            backend.load(&refs)?;
        }
        let linears = linears
            .into_iter()
            .map(|l| HostLinear {
                n: l.w.n(),
                bn: l.w.block.n as usize,
                exps: l.w.exps.to_vec(),
                name: l.name,
            })
            .collect();
        let n = config.n_layers;
        Ok(Self {
            config,
            embed,
            output_norm,
            lm_head,
            norms,
            linears,
            backend,
            k_cache: vec![Vec::new(); n],
            v_cache: vec![Vec::new(); n],
            pos: 0,
        })
    }

    /// Builds a session from a loaded model (its tokenizer is returned beside).
    pub fn from_model(
        model: Model,
        backend: B,
    ) -> Result<(Self, crate::tokenizer::Tokenizer), ForwardError> {
        let Model {
            config,
            weights,
            tokenizer,
            ..
        } = model;
        Ok((Self::new(weights, config, backend)?, tokenizer))
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Tokens in the KV cache.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Empties the KV cache.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.k_cache.iter_mut().for_each(Vec::clear);
        self.v_cache.iter_mut().for_each(Vec::clear);
    }

    /// Runs `tokens` (M ≥ 1) after the cached ones; returns logits `[M, vocab]` for every
    /// position when `all_logits`, else `[1, vocab]` for the last one.
    pub fn forward(
        &mut self,
        tokens: &[u32],
        all_logits: bool,
    ) -> Result<Array2<f32>, ForwardError> {
        let c = self.config.clone();
        let m = tokens.len();
        if self.pos + m > c.context {
            return Err(ForwardError::Context {
                pos: self.pos,
                m,
                context: c.context,
            });
        }
        let mut x = Array2::<f32>::zeros((m, c.hidden));
        for (t, &id) in tokens.iter().enumerate() {
            if id as usize >= c.vocab {
                return Err(ForwardError::Token { id, vocab: c.vocab });
            }
            x.row_mut(t).assign(&self.embed.row(id as usize));
        }
        for l in 0..c.n_layers {
            let norms = self.norms[l].clone();
            // Attention.
            let h = rms_norm(x.view(), &norms.attn_norm, c.rms_eps);
            let acts = self.quantize(&h, l, "attn input")?;
            let mut q = self.linear(l, LinearKind::Q, &acts)?;
            let mut k = self.linear(l, LinearKind::K, &acts)?;
            let v = self.linear(l, LinearKind::V, &acts)?;
            for t in 0..m {
                let p = self.pos + t;
                rope(
                    q.row_mut(t).as_slice_mut().unwrap_or(&mut []),
                    c.head_dim,
                    p,
                    c.rope_theta,
                    c.rope,
                );
                rope(
                    k.row_mut(t).as_slice_mut().unwrap_or(&mut []),
                    c.head_dim,
                    p,
                    c.rope_theta,
                    c.rope,
                );
            }
            self.k_cache[l].extend(k.iter());
            self.v_cache[l].extend(v.iter());
            let mut a = self.attention(l, &q, &c);
            if let Some(w) = &norms.attn_sub_norm {
                a = rms_norm(a.view(), w, c.rms_eps);
            }
            let acts = self.quantize(&a, l, "o_proj input")?;
            x += &self.linear(l, LinearKind::O, &acts)?;
            // FFN.
            let h = rms_norm(x.view(), &norms.ffn_norm, c.rms_eps);
            let acts = self.quantize(&h, l, "ffn input")?;
            let gate = self.linear(l, LinearKind::Gate, &acts)?;
            let up = self.linear(l, LinearKind::Up, &acts)?;
            let mut f =
                Array2::from_shape_fn(gate.dim(), |ij| act(c.activation, gate[ij]) * up[ij]);
            if let Some(w) = &norms.ffn_sub_norm {
                f = rms_norm(f.view(), w, c.rms_eps);
            }
            let acts = self.quantize(&f, l, "down_proj input")?;
            x += &self.linear(l, LinearKind::Down, &acts)?;
        }
        self.pos += m;
        let rows = if all_logits {
            x.view()
        } else {
            x.slice(s![m - 1.., ..])
        };
        let h = rms_norm(rows, &self.output_norm, c.rms_eps);
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        // logits [R, V] = h [R, H] · headᵀ, f32 dot products in index order.
        Ok(Array2::from_shape_fn((h.nrows(), c.vocab), |(t, v)| {
            dot(
                h.row(t).as_slice().unwrap_or(&[]),
                head.row(v).as_slice().unwrap_or(&[]),
            )
        }))
    }

    fn quantize(
        &self,
        x: &Array2<f32>,
        layer: usize,
        what: &str,
    ) -> Result<QuantizedActs, ForwardError> {
        QuantizedActs::quantize(x.view(), ACT_BITS).map_err(|e| ForwardError::Layer {
            layer: format!("blk.{layer} {what}"),
            problem: e.to_string(),
        })
    }

    /// One ternary linear: backend integers → f32 `[M, N]`.
    fn linear(
        &mut self,
        layer: usize,
        kind: LinearKind,
        acts: &QuantizedActs,
    ) -> Result<Array2<f32>, ForwardError> {
        let id = Weights::index(layer, kind);
        let acc = self.backend.gemm(LayerId(id), acts)?;
        let hl = &self.linears[id];
        if acc.dim() != (acts.m(), hl.n) {
            return Err(ForwardError::Layer {
                layer: hl.name.clone(),
                problem: format!(
                    "backend returned {:?}, expected [{}, {}]",
                    acc.shape(),
                    acts.m(),
                    hl.n
                ),
            });
        }
        Ok(Array2::from_shape_fn(acc.dim(), |(t, o)| {
            output_to_f32(acc[(t, o)], hl.exps[o / hl.bn], acts.scales[t])
        }))
    }

    /// Causal GQA attention of the M new queries `q [M, q_dim]` over the cache.
    fn attention(&self, l: usize, q: &Array2<f32>, c: &ModelConfig) -> Array2<f32> {
        let (m, d, kvd) = (q.nrows(), c.head_dim, c.kv_dim());
        let group = c.n_heads / c.n_kv_heads;
        let scale = 1.0 / (d as f32).sqrt();
        let (kc, vc) = (&self.k_cache[l], &self.v_cache[l]);
        let mut out = Array2::<f32>::zeros((m, c.q_dim()));
        let mut scores = Vec::new();
        for t in 0..m {
            let len = self.pos + t + 1; // keys 0..=p
            for hq in 0..c.n_heads {
                let hk = hq / group;
                let qv = &q.row(t).to_slice().unwrap_or(&[])[hq * d..hq * d + d];
                scores.clear();
                for j in 0..len {
                    scores.push(dot(qv, &kc[j * kvd + hk * d..j * kvd + hk * d + d]) * scale);
                }
                softmax(&mut scores);
                let mut o = vec![0.0f32; d];
                for (j, &w) in scores.iter().enumerate() {
                    let vv = &vc[j * kvd + hk * d..j * kvd + hk * d + d];
                    for (oi, &vi) in o.iter_mut().zip(vv) {
                        *oi += w * vi;
                    }
                }
                out.slice_mut(s![t, hq * d..hq * d + d])
                    .assign(&ndarray::ArrayView1::from(&o[..]));
            }
        }
        out
    }
}

/// f32 dot product in index order.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// RMSNorm per row: `x · w / sqrt(mean(x²) + eps)` in f32.
pub fn rms_norm(x: ArrayView2<f32>, w: &[f32], eps: f32) -> Array2<f32> {
    let mut y = x.to_owned();
    for mut row in y.rows_mut() {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for (v, &g) in row.iter_mut().zip(w) {
            *v = *v * inv * g;
        }
    }
    y
}

/// The FFN gate activation.
pub fn act(a: Activation, x: f32) -> f32 {
    match a {
        Activation::Relu2 => {
            let r = x.max(0.0);
            r * r
        }
        Activation::Silu => x / (1.0 + (-x).exp()),
    }
}

/// In-place softmax.
pub fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// Rotates every head of `x` (heads of `d` values) for position `pos`:
/// angle_i = pos · θ^(-2i/d), i < d/2 (computed in f64, applied in f32).
pub fn rope(x: &mut [f32], d: usize, pos: usize, theta: f32, style: RopeStyle) {
    let half = d / 2;
    for head in x.chunks_exact_mut(d) {
        for i in 0..half {
            let freq = (theta as f64).powf(-2.0 * i as f64 / d as f64);
            let (sin, cos) = (pos as f64 * freq).sin_cos();
            let (sin, cos) = (sin as f32, cos as f32);
            let (a, b) = match style {
                RopeStyle::Neox => (i, i + half),
                RopeStyle::Norm => (2 * i, 2 * i + 1),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos - x1 * sin;
            head[b] = x1 * cos + x0 * sin;
        }
    }
}
