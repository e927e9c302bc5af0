//! Dense output-head kernels: `logits [M, V] = x [M, K] · Wᵀ` for the vocabulary matrix
//! `W [V, K]` of an LLM (tied embeddings or `lm_head`), the largest single read of a decoded
//! token (BitNet 2B: 128256 × 2560).
//!
//! Three storage types, each with one exact definition that every path (AVX-512, AVX2,
//! portable) reproduces bit for bit, and a plain reference beside it ([`reference`]):
//!
//! * [`HeadType::F32`] and [`HeadType::F16`]: weights stored as f32 or as IEEE f16 (widened
//!   to f32 exactly). K is padded with zeros to a multiple of 64; per row, 16 f32 lanes
//!   accumulate `lane[i mod 16] = fma(w[i], x[i], lane[i mod 16])` for i in index order
//!   (one rounding per step), starting from +0; the lanes are then summed by the fixed tree
//!   `s8[i] = l[i] + l[i+8]`, `s4[i] = s8[i] + s8[i+4]`, `s2[i] = s4[i] + s4[i+2]`,
//!   `logit = s2[0] + s2[1]`. An F16 head of weights that are exactly f16 (an F16 GGUF
//!   embedding) therefore gives the same logits as the F32 head, from half the bytes.
//! * [`HeadType::Q8`]: per row an f32 scale `d = amax / 127` and int8 codes
//!   `round_ties_even(w · 127 / amax)` (all-zero rows: d = 0, codes 0); per token the
//!   activations are quantized like every ternary linear's input
//!   ([`tern_spec::act::quantize_token`], 8 bits: codes `round(x · s)`, `s = 127 / amax`).
//!   `logit = (Σ qw · qa) as f32 · (d · (1 / s))`: an exact i32 dot product, then two f32
//!   multiplies. A quarter of the F32 head's bytes, at a different numerics (like llama.cpp's
//!   Q8_0 / Q6_K output matrices).
//!
//! The kernels compute a range of rows for every token into `out [row - r0][token]`; rows are
//! split over the persistent pool of [`crate::threads`].

use crate::dispatch::{check_available, default_path, KernelError, KernelPath};
use crate::portable;
use half::f16;
use ndarray::{Array2, ArrayView2};
use serde::Serialize;
use std::fmt;

/// K is padded to a multiple of this (64 int8 codes = one 64-byte line).
pub const HEAD_PAD: usize = 64;
/// Largest K (so that every Q8 partial sum, `Σ (code + 128) · w ≤ 255 · 127 · K`, fits in i32).
pub const MAX_K: usize = 65536;
/// f32 lanes of the F32/F16 definition.
pub const LANES: usize = 16;

/// Storage type of a dense head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadType {
    F32,
    F16,
    Q8,
}

impl HeadType {
    pub const ALL: [HeadType; 3] = [HeadType::F32, HeadType::F16, HeadType::Q8];

    pub fn name(self) -> &'static str {
        match self {
            HeadType::F32 => "f32",
            HeadType::F16 => "f16",
            HeadType::Q8 => "q8",
        }
    }

    /// Parses `f32`, `f16` or `q8` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for HeadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One 64-byte line: the unit of storage, so every row starts 64-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A 64-byte aligned, zero-initialised byte buffer.
#[derive(Clone)]
struct Lines(Vec<Line>);

impl Lines {
    fn zeroed(bytes: usize) -> Self {
        Lines(vec![Line([0; 64]); bytes.div_ceil(64)])
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: `Line` is `repr(C)` around `[u8; 64]` (size 64, no padding), so the vector's
        // storage is `len · 64` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>(), self.0.len() * 64) }
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and the borrow is exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), self.0.len() * 64)
        }
    }
}

/// A vocabulary matrix laid out for the head kernels: rows of `kp()` elements (K padded with
/// zeros), 64-byte aligned.
#[derive(Clone)]
pub struct HeadMatrix {
    ty: HeadType,
    rows: usize,
    k: usize,
    kp: usize,
    data: Lines,
    /// Q8: per-row dequantization scale `d`.
    scale: Vec<f32>,
    /// Q8: per-row code sum (the AVX-512 kernel's unsigned-offset correction).
    rowsum: Vec<i32>,
    exact: bool,
}

impl fmt::Debug for HeadMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeadMatrix")
            .field("ty", &self.ty)
            .field("rows", &self.rows)
            .field("k", &self.k)
            .field("exact", &self.exact)
            .finish()
    }
}

/// Q8 codes and scale of one weight row (see the module docs).
pub fn quantize_row_q8(w: &[f32]) -> (Vec<i8>, f32) {
    let amax = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if amax == 0.0 || !amax.is_finite() {
        return (vec![0; w.len()], 0.0);
    }
    let s = 127.0 / amax;
    // round_ties_even by adding and subtracting 1.5 · 2^23: exact for |w · s| ≤ 127 (+ one
    // rounding), and a vector instruction where `round_ties_even` is a libm call.
    const MAGIC: f32 = 12_582_912.0;
    let q = w
        .iter()
        .map(|&v| (((v * s) + MAGIC) - MAGIC).clamp(-127.0, 127.0) as i8)
        .collect();
    (q, amax / 127.0)
}

impl HeadMatrix {
    /// Lays out `w [V, K]` (rows = vocabulary entries) as `ty`. Refuses non-finite weights.
    pub fn new(ty: HeadType, w: ArrayView2<f32>) -> Result<Self, KernelError> {
        let (rows, k) = w.dim();
        if let Some(((r, c), v)) = w.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(KernelError::Head(format!(
                "weight [{r}, {c}] = {v} is not finite"
            )));
        }
        if k > MAX_K {
            return Err(KernelError::Head(format!(
                "K = {k} exceeds {MAX_K} (the Q8 dot products must fit in i32)"
            )));
        }
        let kp = k.div_ceil(HEAD_PAD).max(1) * HEAD_PAD;
        let elem = match ty {
            HeadType::F32 => 4,
            HeadType::F16 => 2,
            HeadType::Q8 => 1,
        };
        let mut data = Lines::zeroed(rows * kp * elem);
        let mut scale = Vec::new();
        let mut rowsum = Vec::new();
        let mut exact = true;
        {
            let bytes = data.bytes_mut();
            for (r, row) in w.rows().into_iter().enumerate() {
                let dst = &mut bytes[r * kp * elem..(r * kp + k) * elem];
                match ty {
                    HeadType::F32 => {
                        for (d, &v) in dst.chunks_exact_mut(4).zip(row.iter()) {
                            d.copy_from_slice(&v.to_le_bytes());
                        }
                    }
                    HeadType::F16 => {
                        for (d, &v) in dst.chunks_exact_mut(2).zip(row.iter()) {
                            let h = f16::from_f32(v);
                            exact &= h.to_f32() == v;
                            d.copy_from_slice(&h.to_bits().to_le_bytes());
                        }
                    }
                    HeadType::Q8 => {
                        let (q, d) = quantize_row_q8(&row.to_vec());
                        for (b, &c) in dst.iter_mut().zip(&q) {
                            *b = c as u8;
                        }
                        rowsum.push(q.iter().map(|&c| c as i32).sum());
                        scale.push(d);
                        exact = false;
                    }
                }
            }
        }
        Ok(Self {
            ty,
            rows,
            k,
            kp,
            data,
            scale,
            rowsum,
            exact,
        })
    }

    pub fn head_type(&self) -> HeadType {
        self.ty
    }
    /// Rows (vocabulary entries).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Inputs per row.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Padded inputs per row.
    pub fn kp(&self) -> usize {
        self.kp
    }
    /// Whether the stored weights equal the f32 weights given (F32 always; F16 when every
    /// weight is an f16 value; Q8 never).
    pub fn exact(&self) -> bool {
        self.exact
    }
    /// Bytes one pass over the head reads (weights with padding, plus Q8's per-row scale and
    /// code sum).
    pub fn bytes(&self) -> usize {
        self.rows * self.row_bytes() + self.scale.len() * 4 + self.rowsum.len() * 4
    }
    fn row_bytes(&self) -> usize {
        self.kp
            * match self.ty {
                HeadType::F32 => 4,
                HeadType::F16 => 2,
                HeadType::Q8 => 1,
            }
    }
    /// The stored bytes of row `r` (`kp()` elements, little-endian).
    pub fn row(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.data.bytes()[r * rb..(r + 1) * rb]
    }
    /// Q8: the dequantization scale of row `r` (0 for other types).
    pub fn scale(&self, r: usize) -> f32 {
        self.scale.get(r).copied().unwrap_or(0.0)
    }
    /// Q8: the code sum of row `r`.
    pub fn rowsum(&self, r: usize) -> i32 {
        self.rowsum.get(r).copied().unwrap_or(0)
    }
    /// Element `i` of row `r` widened to f32 (F32/F16), or its code (Q8).
    pub fn weight(&self, r: usize, i: usize) -> f32 {
        let b = self.row(r);
        match self.ty {
            HeadType::F32 => {
                f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
            }
            HeadType::F16 => f16::from_bits(u16::from_le_bytes([b[2 * i], b[2 * i + 1]])).to_f32(),
            HeadType::Q8 => b[i] as i8 as f32,
        }
    }
}

/// Activations laid out for a [`HeadMatrix`]: per token `kp()` padded f32 values (F32/F16) or
/// int8 codes, their unsigned-offset copy (`code + 128`) and `1 / s` (Q8).
#[derive(Debug, Clone)]
pub struct HeadActs {
    m: usize,
    kp: usize,
    x: Vec<f32>,
    q: Vec<i8>,
    u: Vec<u8>,
    inv: Vec<f32>,
}

impl HeadActs {
    /// Lays out (and for Q8 quantizes) `x [M, K]` for `head`.
    pub fn new(head: &HeadMatrix, x: ArrayView2<f32>) -> Result<Self, KernelError> {
        let (m, k) = x.dim();
        if k != head.k {
            return Err(KernelError::Head(format!(
                "activations have {k} values per token, the head {}",
                head.k
            )));
        }
        let kp = head.kp;
        let mut a = Self {
            m,
            kp,
            x: Vec::new(),
            q: Vec::new(),
            u: Vec::new(),
            inv: Vec::new(),
        };
        match head.ty {
            HeadType::F32 | HeadType::F16 => {
                a.x = vec![0.0; m * kp];
                for (t, row) in x.rows().into_iter().enumerate() {
                    for (d, &v) in a.x[t * kp..].iter_mut().zip(row.iter()) {
                        *d = v;
                    }
                }
            }
            HeadType::Q8 => {
                a.q = vec![0; m * kp];
                a.u = vec![128; m * kp];
                for (t, row) in x.rows().into_iter().enumerate() {
                    let (codes, s) = tern_spec::act::quantize_token(&row.to_vec(), 8, t)
                        .map_err(|e| KernelError::Head(e.to_string()))?;
                    Self::put_codes(&mut a, t, &codes, 1.0 / s);
                }
            }
        }
        Ok(a)
    }

    /// Q8 activations from given codes and `1 / s` per token (any i8 codes, including -128).
    pub fn from_codes(
        head: &HeadMatrix,
        codes: ArrayView2<i8>,
        inv_scales: &[f32],
    ) -> Result<Self, KernelError> {
        let (m, k) = codes.dim();
        if head.ty != HeadType::Q8 || k != head.k || inv_scales.len() != m {
            return Err(KernelError::Head(format!(
                "codes [{m}, {k}] with {} scales for a {} head of K = {}",
                inv_scales.len(),
                head.ty,
                head.k
            )));
        }
        let kp = head.kp;
        let mut a = Self {
            m,
            kp,
            x: Vec::new(),
            q: vec![0; m * kp],
            u: vec![128; m * kp],
            inv: Vec::new(),
        };
        for (t, row) in codes.rows().into_iter().enumerate() {
            Self::put_codes(&mut a, t, &row.to_vec(), inv_scales[t]);
        }
        Ok(a)
    }

    fn put_codes(a: &mut Self, t: usize, codes: &[i8], inv: f32) {
        let kp = a.kp;
        for (i, &c) in codes.iter().enumerate() {
            a.q[t * kp + i] = c;
            a.u[t * kp + i] = (c as u8) ^ 0x80;
        }
        a.inv.push(inv);
    }

    pub fn m(&self) -> usize {
        self.m
    }
    pub fn kp(&self) -> usize {
        self.kp
    }
    /// F32/F16: padded values of token `t`.
    pub fn values(&self, t: usize) -> &[f32] {
        &self.x[t * self.kp..(t + 1) * self.kp]
    }
    /// Q8: padded codes of token `t`.
    pub fn codes(&self, t: usize) -> &[i8] {
        &self.q[t * self.kp..(t + 1) * self.kp]
    }
    /// Q8: padded `code + 128` of token `t`.
    pub fn offset_codes(&self, t: usize) -> &[u8] {
        &self.u[t * self.kp..(t + 1) * self.kp]
    }
    /// Q8: `1 / s` of token `t`.
    pub fn inv_scale(&self, t: usize) -> f32 {
        self.inv[t]
    }
}

/// The fixed lane reduction of the F32/F16 definition.
#[inline]
pub fn reduce_lanes(l: &[f32; LANES]) -> f32 {
    let s8: [f32; 8] = std::array::from_fn(|i| l[i] + l[i + 8]);
    let s4: [f32; 4] = std::array::from_fn(|i| s8[i] + s8[i + 4]);
    let s2: [f32; 2] = std::array::from_fn(|i| s4[i] + s4[i + 2]);
    s2[0] + s2[1]
}

/// The Q8 logit of an exact dot product.
#[inline]
pub fn q8_logit(dot: i32, d: f32, inv: f32) -> f32 {
    dot as f32 * (d * inv)
}

/// The definition, written plainly: `[M, V]` logits from the stored weights.
pub fn reference(head: &HeadMatrix, acts: &HeadActs) -> Array2<f32> {
    Array2::from_shape_fn((acts.m, head.rows), |(t, r)| match head.ty {
        HeadType::F32 | HeadType::F16 => {
            let x = acts.values(t);
            let mut lanes = [0.0f32; LANES];
            for i in 0..head.kp {
                lanes[i % LANES] = head.weight(r, i).mul_add(x[i], lanes[i % LANES]);
            }
            reduce_lanes(&lanes)
        }
        HeadType::Q8 => {
            let a = acts.codes(t);
            let dot: i32 = (0..head.k)
                .map(|i| head.weight(r, i) as i32 * a[i] as i32)
                .sum();
            q8_logit(dot, head.scale(r), acts.inv_scale(t))
        }
    })
}

/// A kernel: rows `r0..r1` for every token into `out [row - r0][token]`.
pub(crate) type HeadKernel = fn(&HeadMatrix, &HeadActs, usize, usize, &mut [f32]);

fn kernel(path: KernelPath) -> HeadKernel {
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512Vnni => crate::avx512::head_run,
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 => crate::avx2::head_run,
        _ => portable::head_run,
    }
}

/// Rows per task: about 8 tasks per thread, a multiple of 4 (the kernels' row block).
fn chunk_rows(rows: usize, threads: usize) -> usize {
    (rows.div_ceil(threads * 8).max(4)).div_ceil(4) * 4
}

/// Logits `[M, V]` of `x [M, K]` on the default path with `threads` threads.
pub fn head_logits(
    head: &HeadMatrix,
    x: ArrayView2<f32>,
    threads: usize,
) -> Result<Array2<f32>, KernelError> {
    head_logits_with(head, x, threads, default_path()?)
}

/// As [`head_logits`] on a chosen path.
pub fn head_logits_with(
    head: &HeadMatrix,
    x: ArrayView2<f32>,
    threads: usize,
    path: KernelPath,
) -> Result<Array2<f32>, KernelError> {
    let acts = HeadActs::new(head, x)?;
    head_prepared(head, &acts, threads, path)
}

/// The kernel on laid-out activations: `[M, V]` logits.
pub fn head_prepared(
    head: &HeadMatrix,
    acts: &HeadActs,
    threads: usize,
    path: KernelPath,
) -> Result<Array2<f32>, KernelError> {
    let path = check_available(path)?;
    if acts.kp != head.kp {
        return Err(KernelError::Head(format!(
            "activations laid out for K = {}, the head has {}",
            acts.kp, head.kp
        )));
    }
    let m = acts.m;
    let mut out = vec![0.0f32; head.rows * m];
    let f = kernel(path);
    let cr = chunk_rows(head.rows, threads.max(1));
    if threads <= 1 || head.rows <= cr {
        f(head, acts, 0, head.rows, &mut out);
    } else {
        crate::threads::for_chunks_mut(threads, &mut out, cr * m, |i, chunk| {
            f(head, acts, i * cr, i * cr + chunk.len() / m, chunk)
        });
    }
    if m == 1 {
        return Ok(Array2::from_shape_vec((1, head.rows), out).expect("shape"));
    }
    Ok(Array2::from_shape_fn((m, head.rows), |(t, r)| {
        out[r * m + t]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn q8_rounding_is_ties_to_even() {
        let w = [127.0f32, 0.5, 1.5, 2.5, -0.5, -1.5, -126.5, 3.49, -3.51];
        let (q, d) = quantize_row_q8(&w);
        let want: Vec<i8> = w.iter().map(|&v| v.round_ties_even() as i8).collect();
        assert_eq!(q, want);
        assert_eq!(d, 1.0);
    }

    #[test]
    fn names_and_sizes() {
        for t in HeadType::ALL {
            assert_eq!(HeadType::parse(t.name()), Some(t));
        }
        assert_eq!(HeadType::parse("Q8"), Some(HeadType::Q8));
        assert_eq!(HeadType::parse("q4"), None);
        let w = array![[1.0f32, -2.0, 0.5], [0.0, 0.0, 0.0]];
        let f = HeadMatrix::new(HeadType::F16, w.view()).unwrap();
        assert!(f.exact());
        assert_eq!(f.bytes(), 2 * 64 * 2);
        let q = HeadMatrix::new(HeadType::Q8, w.view()).unwrap();
        assert_eq!(q.bytes(), 2 * 64 + 2 * 8);
        assert_eq!(q.scale(1), 0.0);
        assert_eq!(q.weight(0, 1), -127.0);
        let inexact = HeadMatrix::new(HeadType::F16, array![[0.1f32]].view()).unwrap();
        assert!(!inexact.exact());
        assert!(HeadMatrix::new(HeadType::F32, array![[f32::NAN]].view()).is_err());
    }

    #[test]
    fn q8_logit_is_close_to_the_float_dot() {
        let w = array![[0.5f32, -0.25, 1.0, 0.125]];
        let x = array![[1.0f32, 2.0, -0.5, 4.0]];
        let h = HeadMatrix::new(HeadType::Q8, w.view()).unwrap();
        let got = head_logits_with(&h, x.view(), 1, KernelPath::Portable).unwrap();
        let exact = 0.5 - 0.5 - 0.5 + 0.5;
        assert!((got[(0, 0)] - exact).abs() < 0.05, "{got}");
    }
}
