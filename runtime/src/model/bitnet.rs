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
//! then `logits = RMSNorm(x) · output_norm · Eᵀ` (tied embeddings) or `· lm_headᵀ`, by the
//! output head chosen with [`Session::with_head`] (tern-kernels' dense head kernels,
//! [`HeadType`]): `f32` (the default: the embedding's values, f32 lanes in a fixed order),
//! `f16` (the same logits from half the bytes when the embedding is F16) or `q8` (int8 rows
//! with per-row scales and int8 activations: a quarter of the bytes, different numerics).
//! Every ternary linear quantizes its input per token with `tern_spec::act` (int8) and runs
//! through the [`TernaryBackend`]; the host converts the integers with `output_to_f32`.

use ndarray::{s, Array2, ArrayView2};
use tern_spec::reference::output_to_f32;
use tern_spec::QuantizedActs;
use thiserror::Error;

use super::attention::{attention, AttnShape, KvCache};
pub use super::attention::{dot, softmax};
use super::config::{Activation, ModelConfig, RopeStyle};
use super::weights::{LayerNorms, LinearKind, Weights};
use super::Model;
use crate::backend::{BackendError, LayerId, TernaryBackend};
pub use tern_kernels::HeadType;
use tern_kernels::{HeadMatrix, KernelError};

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
    #[error("output head: {0}")]
    Head(#[from] KernelError),
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
    /// `2^-exp` of each output row's block row.
    pow2: Vec<f64>,
}

/// A model bound to a backend, with its KV cache.
pub struct Session<B: TernaryBackend> {
    pub config: ModelConfig,
    embed: Array2<f32>,
    output_norm: Vec<f32>,
    /// The untied output matrix (tied models use `embed`), kept to rebuild the head.
    lm_head: Option<Array2<f32>>,
    head: HeadMatrix,
    norms: Vec<LayerNorms>,
    linears: Vec<HostLinear>,
    backend: B,
    /// Keys and values per layer and KV head, each `[pos, head_dim]` row-major.
    kv: KvCache,
    pos: usize,
}

impl<B: TernaryBackend> Session<B> {
    /// Loads the weights' matrices into `backend` (the session keeps only what the host needs),
    /// with the default (`f32`) output head.
    pub fn new(weights: Weights, config: ModelConfig, backend: B) -> Result<Self, ForwardError> {
        Self::with_head(weights, config, backend, HeadType::F32)
    }

    /// As [`Session::new`] with the output head stored as `head`.
    pub fn with_head(
        weights: Weights,
        config: ModelConfig,
        mut backend: B,
        head: HeadType,
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
            .map(|l| {
                let bn = l.w.block.n as usize;
                HostLinear {
                    n: l.w.n(),
                    bn,
                    pow2: (0..l.w.n())
                        .map(|o| tern_spec::scale::pow2(-(l.w.exps[o / bn] as i64)))
                        .collect(),
                    exps: l.w.exps.to_vec(),
                    name: l.name,
                }
            })
            .collect();
        let kv = KvCache::new(config.n_layers, config.n_kv_heads, config.head_dim);
        let head = HeadMatrix::new(head, lm_head.as_ref().unwrap_or(&embed).view())?;
        Ok(Self {
            config,
            embed,
            output_norm,
            lm_head,
            head,
            norms,
            linears,
            backend,
            kv,
            pos: 0,
        })
    }

    /// Builds a session from a loaded model (its tokenizer is returned beside).
    pub fn from_model(
        model: Model,
        backend: B,
    ) -> Result<(Self, crate::tokenizer::Tokenizer), ForwardError> {
        Self::from_model_with_head(model, backend, HeadType::F32)
    }

    /// As [`Session::from_model`] with the output head stored as `head`.
    pub fn from_model_with_head(
        model: Model,
        backend: B,
        head: HeadType,
    ) -> Result<(Self, crate::tokenizer::Tokenizer), ForwardError> {
        let Model {
            config,
            weights,
            tokenizer,
            ..
        } = model;
        Ok((Self::with_head(weights, config, backend, head)?, tokenizer))
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The output head.
    pub fn head(&self) -> &HeadMatrix {
        &self.head
    }

    /// Rebuilds the output head as `ty` (the KV cache is kept).
    pub fn set_head(&mut self, ty: HeadType) -> Result<(), ForwardError> {
        self.head = HeadMatrix::new(ty, self.lm_head.as_ref().unwrap_or(&self.embed).view())?;
        Ok(())
    }

    /// Bytes of weights one decoded token reads: the backend's ternary matrices (0 if it does
    /// not say) plus the output head.
    pub fn weight_bytes_per_token(&self) -> usize {
        self.backend.weight_bytes() + self.head.bytes()
    }

    /// Bytes of the KV cache per cached position (keys and values of every layer, f32): what
    /// a decoded token reads once for every position it attends to.
    pub fn kv_bytes_per_position(&self) -> usize {
        self.config.n_layers * 2 * self.config.kv_dim() * std::mem::size_of::<f32>()
    }

    /// Tokens in the KV cache.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Empties the KV cache.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.kv.clear();
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
            let [mut q, mut k, v] =
                self.linears(l, [LinearKind::Q, LinearKind::K, LinearKind::V], &acts)?;
            for t in 0..m {
                let angles = rope_angles(c.head_dim, self.pos + t, c.rope_theta);
                rope_with(
                    q.row_mut(t).as_slice_mut().unwrap_or(&mut []),
                    c.head_dim,
                    &angles,
                    c.rope,
                );
                rope_with(
                    k.row_mut(t).as_slice_mut().unwrap_or(&mut []),
                    c.head_dim,
                    &angles,
                    c.rope,
                );
            }
            let (k, v) = (k.as_standard_layout(), v.as_standard_layout());
            self.kv
                .push(l, k.as_slice().unwrap_or(&[]), v.as_slice().unwrap_or(&[]));
            let mut a = self.attention(l, &q, &c);
            if let Some(w) = &norms.attn_sub_norm {
                a = rms_norm(a.view(), w, c.rms_eps);
            }
            let acts = self.quantize(&a, l, "o_proj input")?;
            x += &self.linear(l, LinearKind::O, &acts)?;
            // FFN.
            let h = rms_norm(x.view(), &norms.ffn_norm, c.rms_eps);
            let acts = self.quantize(&h, l, "ffn input")?;
            let [gate, up] = self.linears(l, [LinearKind::Gate, LinearKind::Up], &acts)?;
            let mut f = gate;
            f.zip_mut_with(&up, |g, &u| *g = act(c.activation, *g) * u);
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
        // logits [R, V] = h [R, H] · headᵀ on the backend's thread count (every kernel path
        // gives the same bits, so the backend's choice does not change the logits).
        let threads = self.backend.threads().max(1);
        Ok(tern_kernels::head_logits(&self.head, h.view(), threads)?)
    }

    fn quantize(
        &self,
        x: &Array2<f32>,
        layer: usize,
        what: &str,
    ) -> Result<QuantizedActs, ForwardError> {
        quantize_acts(x.view(), self.backend.threads()).map_err(|e| ForwardError::Layer {
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
        let [y] = self.linears(layer, [kind], acts)?;
        Ok(y)
    }

    /// Ternary linears of the same input on one batch of activations (one backend call).
    fn linears<const L: usize>(
        &mut self,
        layer: usize,
        kinds: [LinearKind; L],
        acts: &QuantizedActs,
    ) -> Result<[Array2<f32>; L], ForwardError> {
        let ids = kinds.map(|k| Weights::index(layer, k));
        let accs = if L == 1 {
            vec![self.backend.gemm(LayerId(ids[0]), acts)?]
        } else {
            self.backend.gemm_many(&ids.map(LayerId), acts)?
        };
        if accs.len() != L {
            return Err(ForwardError::Layer {
                layer: format!("blk.{layer}"),
                problem: format!("backend returned {} results for {L} layers", accs.len()),
            });
        }
        let mut out = Vec::with_capacity(L);
        for (id, acc) in ids.into_iter().zip(accs) {
            out.push(self.to_f32(id, acc, acts)?);
        }
        out.try_into().map_err(|_| ForwardError::Layer {
            layer: format!("blk.{layer}"),
            problem: format!("expected {L} outputs"),
        })
    }

    /// Backend integers of linear `id` → f32 `[M, N]`.
    fn to_f32(
        &self,
        id: usize,
        acc: Array2<i64>,
        acts: &QuantizedActs,
    ) -> Result<Array2<f32>, ForwardError> {
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
        // output_to_f32 per value, with 2^-exp looked up per row (the same f64 arithmetic).
        let mut y = Array2::<f32>::zeros(acc.dim());
        let n = hl.n;
        let acc = acc.as_standard_layout();
        // [M, N] in pieces of up to 1024 values (a token's row, or part of it), over threads
        let piece = n.clamp(1, 1024);
        let per_row = n.div_ceil(piece).max(1);
        let acc_s = acc.as_slice().unwrap_or(&[]);
        let ys = y.as_slice_mut().unwrap_or(&mut []);
        let mut pieces: Vec<&mut [f32]> = ys
            .chunks_mut(n.max(1))
            .flat_map(|r| r.chunks_mut(piece))
            .collect();
        let convert = |i: usize, yp: &mut [f32]| {
            let (t, o0) = (i / per_row, (i % per_row) * piece);
            let s = acts.scales[t] as f64;
            let ap = &acc_s[t * n + o0..][..yp.len()];
            to_f32_row(yp, ap, &hl.pow2[o0..][..yp.len()], s);
        };
        // A decoded token's few thousand values convert in microseconds: less than a hand-off
        // to the helpers costs, so small outputs stay on the calling thread.
        let threads = if acc_s.len() < PARALLEL_CONVERT {
            1
        } else {
            self.backend.threads()
        };
        tern_kernels::threads::for_each_mut(threads, &mut pieces, |i, yp| convert(i, yp));
        debug_assert!(y.indexed_iter().all(|((t, o), &v)| v.to_bits()
            == output_to_f32(acc[(t, o)], hl.exps[o / hl.bn], acts.scales[t]).to_bits()
            || v.is_nan()));
        Ok(y)
    }

    /// Causal GQA attention of the M new queries `q [M, q_dim]` over the cache
    /// ([`super::attention`]), on the backend's thread count.
    fn attention(&self, l: usize, q: &Array2<f32>, c: &ModelConfig) -> Array2<f32> {
        let m = q.nrows();
        let shape = AttnShape {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim,
            pos: self.pos,
        };
        let q = q.as_standard_layout();
        let out = attention(
            q.as_slice().unwrap_or(&[]),
            m,
            self.kv.layer(l),
            shape,
            self.backend.threads(),
        );
        Array2::from_shape_vec((m, c.q_dim()), out).expect("attention returns M × q_dim values")
    }
}

/// Per-token int8 activations, equal to `QuantizedActs::quantize(x, 8)` (checked by the
/// tests): the same absmax and scale, and `round_ties_even` by adding and subtracting
/// 1.5 · 2^23, exact for the |x · s| ≤ 127 (+ rounding) that occur here. Tokens in parallel
/// when there are several.
pub fn quantize_acts(
    x: ArrayView2<f32>,
    threads: usize,
) -> Result<QuantizedActs, tern_spec::act::ActError> {
    use tern_spec::act::{ActError, AMAX_FLOOR};
    let (m, k) = x.dim();
    let mut q = Array2::<i8>::zeros((m, k));
    let mut scales = ndarray::Array1::<f32>::zeros(m);
    let one = |t: usize, row: ndarray::ArrayView1<f32>, out: &mut [i8]| -> Result<f32, ActError> {
        let owned;
        let xs = match row.as_slice() {
            Some(xs) => xs,
            None => {
                owned = row.to_vec();
                &owned
            }
        };
        let (amax, finite) = absmax(xs);
        if !finite {
            let (index, &value) = xs
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite())
                .expect("absmax saw a value that is not finite");
            return Err(ActError::NotFinite {
                token: t,
                index,
                value,
            });
        }
        let s = 127.0f32 / amax.max(AMAX_FLOOR);
        round_codes(xs, s, out);
        Ok(s)
    };
    let qs = q.as_slice_mut().unwrap_or(&mut []);
    let rows: Vec<_> = x.rows().into_iter().collect();
    // tokens over threads (one token runs on the calling thread)
    let mut results: Vec<Result<f32, ActError>> = (0..m).map(|_| Ok(0.0)).collect();
    let mut work: Vec<_> = qs.chunks_mut(k.max(1)).zip(results.iter_mut()).collect();
    tern_kernels::threads::for_each_mut(threads, &mut work, |t, (out, r)| {
        **r = one(t, rows[t].view(), out)
    });
    for (t, r) in results.into_iter().enumerate() {
        scales[t] = r?;
    }
    Ok(QuantizedActs {
        bits: ACT_BITS,
        q,
        scales,
    })
}

/// Outputs (M·N values) from which the integer → f32 conversion is split over threads.
const PARALLEL_CONVERT: usize = 32 * 1024;

/// `max |x|` and whether every value is finite. The max is exact in any order, so it is
/// taken in 16 lanes; a value that is not finite makes its lane's `x · 0` sum NaN.
fn absmax(xs: &[f32]) -> (f32, bool) {
    #[inline(always)]
    fn body(xs: &[f32]) -> (f32, bool) {
        let (mut lanes, mut bad) = ([0.0f32; 16], [0.0f32; 16]);
        let chunks = xs.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            for i in 0..16 {
                lanes[i] = lanes[i].max(c[i].abs());
                bad[i] += c[i] * 0.0;
            }
        }
        for &x in rest {
            lanes[0] = lanes[0].max(x.abs());
            bad[0] += x * 0.0;
        }
        let amax = lanes.iter().copied().fold(0.0f32, f32::max);
        (amax, bad.iter().all(|&b| b == 0.0))
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide(xs: &[f32]) -> (f32, bool) {
            body(xs)
        }
        // SAFETY: the CPU has AVX-512 F (checked above).
        return unsafe { wide(xs) };
    }
    body(xs)
}

/// `code = clamp(round_ties_even(x · s), −128, 127)` for finite `x`: rounding by adding and
/// subtracting 1.5 · 2^23 (exact for |x · s| < 2^22), and clamping before or after rounding
/// gives the same code since the bounds are integers.
fn round_codes(xs: &[f32], s: f32, out: &mut [i8]) {
    #[inline(always)]
    fn body(xs: &[f32], s: f32, out: &mut [i8]) {
        const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
        for (o, &v) in out.iter_mut().zip(xs) {
            let r = ((v * s + MAGIC) - MAGIC).clamp(-128.0, 127.0);
            *o = r as i32 as i8; // r is an integer in [-128, 127]
        }
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512bw") {
        #[target_feature(enable = "avx512f,avx512bw")]
        unsafe fn wide(xs: &[f32], s: f32, out: &mut [i8]) {
            body(xs, s, out)
        }
        // SAFETY: the CPU has AVX-512 F and BW (checked above).
        return unsafe { wide(xs, s, out) };
    }
    body(xs, s, out)
}

/// `y_o = f32(f64(acc_o) · pow2_o / s)`: `output_to_f32` of one token's outputs, with
/// 2^-exp per output looked up (the same f64 operations; vectorized with AVX-512 where
/// present, which has the i64 → f64 conversion).
fn to_f32_row(y: &mut [f32], acc: &[i64], pow2: &[f64], s: f64) {
    #[inline(always)]
    fn body(y: &mut [f32], acc: &[i64], pow2: &[f64], s: f64) {
        for ((yv, &a), &p) in y.iter_mut().zip(acc).zip(pow2) {
            *yv = ((a as f64) * p / s) as f32;
        }
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512dq") {
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn wide(y: &mut [f32], acc: &[i64], pow2: &[f64], s: f64) {
            body(y, acc, pow2, s)
        }
        // SAFETY: the CPU has AVX-512 F and DQ (checked above).
        return unsafe { wide(y, acc, pow2, s) };
    }
    body(y, acc, pow2, s)
}

/// RMSNorm per row: `x · w / sqrt(mean(x²) + eps)` in f32, the mean of squares summed in
/// [`dot`]'s order.
pub fn rms_norm(x: ArrayView2<f32>, w: &[f32], eps: f32) -> Array2<f32> {
    let mut y = x.as_standard_layout().into_owned();
    for mut row in y.rows_mut() {
        // mean of squares with [`dot`]'s eight-lane order (vectorizes)
        let ms = match row.as_slice() {
            Some(r) => dot(r, r),
            None => dot(&row.to_vec(), &row.to_vec()),
        } / row.len() as f32;
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

/// Rotates every head of `x` (heads of `d` values) for position `pos`:
/// angle_i = pos · θ^(-2i/d), i < d/2 (computed in f64, applied in f32).
pub fn rope(x: &mut [f32], d: usize, pos: usize, theta: f32, style: RopeStyle) {
    rope_with(x, d, &rope_angles(d, pos, theta), style);
}

/// `(sin, cos)` of angle_i = pos · θ^(-2i/d) for i < d/2, computed in f64, rounded to f32:
/// the same for every head of a position, so [`rope_with`] computes them once per token.
pub fn rope_angles(d: usize, pos: usize, theta: f32) -> Vec<(f32, f32)> {
    (0..d / 2)
        .map(|i| {
            let freq = (theta as f64).powf(-2.0 * i as f64 / d as f64);
            let (sin, cos) = (pos as f64 * freq).sin_cos();
            (sin as f32, cos as f32)
        })
        .collect()
}

/// [`rope`] with the angles of [`rope_angles`].
pub fn rope_with(x: &mut [f32], d: usize, angles: &[(f32, f32)], style: RopeStyle) {
    let half = d / 2;
    for head in x.chunks_exact_mut(d) {
        for (i, &(sin, cos)) in angles.iter().enumerate().take(half) {
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
