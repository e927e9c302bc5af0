//! Synthetic models end to end: GGUF and safetensors copies load to the same weights and give
//! the same tokens; the forward pass matches an independent f64 implementation; prefill and
//! step-by-step decode agree bit for bit; malformed files give clear errors.

use std::path::{Path, PathBuf};

use tern_runtime::backend::CpuBackend;
use tern_runtime::generate::generate;
use tern_runtime::gguf::{GgmlType, GgufBuilder, GgufFile};
use tern_runtime::model::bitnet::Session;
use tern_runtime::model::{self, Activation, Model, RopeStyle};
use tern_runtime::sample::Sampler;
use tern_runtime::synth::{self, Format, Preset, SynthOptions, Variant};
use tern_spec::BlockShape;

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runtime_model_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn make(
    preset: Preset,
    variant: Variant,
    format: Format,
    seed: u64,
    gguf_type: Option<GgmlType>,
    out: &Path,
) {
    let opts = SynthOptions {
        preset,
        variant,
        format,
        seed,
        gguf_type,
    };
    synth::synth(&opts, out, &mut |_, _| true)
        .unwrap_or_else(|e| panic!("seed {seed}: synth {opts:?}: {e}"));
}

fn greedy(m: Model, prompt: &str, steps: usize) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let (mut s, tok) = Session::from_model(m, CpuBackend::new()).unwrap();
    let ids = tok.encode(prompt, true).unwrap();
    let g = generate(&mut s, &ids, steps, &mut Sampler::greedy(), None, |_| true).unwrap();
    (ids, g.generated_ids, g.prompt_logits)
}

fn same_weights(a: &Model, b: &Model, seed: u64) {
    assert_eq!(a.weights.embed, b.weights.embed, "seed {seed}: embeddings");
    assert_eq!(a.weights.output_norm, b.weights.output_norm, "seed {seed}");
    for (x, y) in a.weights.linears.iter().zip(&b.weights.linears) {
        assert_eq!(x.name, y.name);
        assert_eq!(x.w, y.w, "seed {seed}: {}", x.name);
    }
    for (x, y) in a.weights.norms.iter().zip(&b.weights.norms) {
        assert_eq!(x.attn_norm, y.attn_norm);
        assert_eq!(x.ffn_sub_norm, y.ffn_sub_norm);
    }
    assert_eq!(
        a.tokenizer.tokens[..b.tokenizer.vocab_size().min(a.tokenizer.vocab_size())],
        b.tokenizer.tokens[..b.tokenizer.vocab_size().min(a.tokenizer.vocab_size())]
    );
}

#[test]
fn gguf_and_safetensors_copies_give_identical_tokens() {
    let d = tmp("copies");
    for (seed, variant, gguf_type) in [
        (11u64, Variant::BitNet, None),
        (12, Variant::BitNet, Some(GgmlType::F16)),
        (13, Variant::LlamaStb(BlockShape { n: 64, k: 64 }), None),
        (14, Variant::LlamaStb(BlockShape { n: 32, k: 48 }), None),
    ] {
        let g = d.join(format!("m{seed}.gguf"));
        let h = d.join(format!("m{seed}_hf"));
        make(Preset::Tiny, variant, Format::Gguf, seed, gguf_type, &g);
        make(Preset::Tiny, variant, Format::Safetensors, seed, None, &h);
        let (a, b) = (model::load(&g).unwrap(), model::load(&h).unwrap());
        same_weights(&a, &b, seed);
        assert_eq!(a.config.activation, b.config.activation);
        let prompt = "The ternary accelerator reads weights";
        let (pa, ta, la) = greedy(a, prompt, 8);
        let (pb, tb, lb) = greedy(b, prompt, 8);
        assert_eq!(pa, pb, "seed {seed}: prompt ids");
        assert_eq!(ta, tb, "seed {seed}: generated ids");
        assert_eq!(la, lb, "seed {seed}: logits must be bit-identical");
        assert_eq!(ta.len(), 8);
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn small_preset_tq1_and_tq2_agree_with_safetensors() {
    let d = tmp("small");
    let seed = 21;
    let h = d.join("hf");
    make(
        Preset::Small,
        Variant::BitNet,
        Format::Safetensors,
        seed,
        None,
        &h,
    );
    let (_, want, _) = greedy(model::load(&h).unwrap(), "hello", 2);
    for t in [GgmlType::Tq2_0, GgmlType::Tq1_0] {
        let g = d.join(format!("{t}.gguf"));
        make(
            Preset::Small,
            Variant::BitNet,
            Format::Gguf,
            seed,
            Some(t),
            &g,
        );
        let m = model::load(&g).unwrap();
        assert_eq!(m.weight_format, t.name());
        assert_eq!(m.config.arch, "bitnet");
        assert_eq!(m.config.activation_source, "bitnet.hidden_activation");
        assert_eq!(greedy(m, "hello", 2).1, want, "seed {seed}: {t}");
    }
    std::fs::remove_dir_all(&d).ok();
}

/// Prefill (M = prompt length) and one-token-at-a-time decode give bit-identical logits.
#[test]
fn prefill_equals_step_by_step() {
    let d = tmp("prefill");
    let g = d.join("m.gguf");
    make(Preset::Tiny, Variant::BitNet, Format::Gguf, 5, None, &g);
    let m = model::load(&g).unwrap();
    assert_eq!(m.config.arch, "bitnet-b1.58");
    assert_eq!(m.weight_format, "I2_S");
    assert!(
        m.config.activation_source.contains("default"),
        "{}",
        m.config.activation_source
    );
    let (mut s, tok) = Session::from_model(m, CpuBackend::new()).unwrap();
    let ids = tok.encode("Tokens are pieces of words.", true).unwrap();
    let all = s.forward(&ids, true).unwrap();
    s.reset();
    for (t, &id) in ids.iter().enumerate() {
        let l = s.forward(&[id], false).unwrap();
        assert_eq!(l.row(0), all.row(t), "position {t}");
    }
    std::fs::remove_dir_all(&d).ok();
}

// ---------------------------------------------------------------------------------------
// An independent f64 implementation of the architecture.

/// The contract's int8 quantizer, applied to f32(x) (tern_spec::act, written out again).
fn quant(x: &[f64]) -> (Vec<f64>, f64) {
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let amax = xf.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let s = 127.0f32 / amax.max(1e-5);
    let q = xf
        .iter()
        .map(|&v| (v * s).round_ties_even().clamp(-128.0, 127.0) as f64)
        .collect();
    (q, s as f64)
}

fn rms(x: &[f64], w: &[f32], eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let inv = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(v, &g)| v * inv * g as f64).collect()
}

struct Dense {
    n: usize,
    k: usize,
    w: Vec<f64>,
}

fn dense(l: &tern_runtime::model::Linear) -> Dense {
    let w = &l.w;
    let (bn, bk) = (w.block.n as usize, w.block.k as usize);
    let mut v = vec![0.0; w.n() * w.k()];
    for r in 0..w.n() {
        for c in 0..w.k() {
            v[r * w.k() + c] = w.trits[(r, c)] as f64 * w.block_scale(r / bn, c / bk);
        }
    }
    Dense {
        n: w.n(),
        k: w.k(),
        w: v,
    }
}

fn apply(d: &Dense, x: &[f64]) -> Vec<f64> {
    let (q, s) = quant(x);
    (0..d.n)
        .map(|r| (0..d.k).map(|c| d.w[r * d.k + c] * q[c]).sum::<f64>() / s)
        .collect()
}

fn rope64(x: &mut [f64], hd: usize, pos: usize, theta: f64, style: RopeStyle) {
    for head in x.chunks_exact_mut(hd) {
        for i in 0..hd / 2 {
            let a = pos as f64 * theta.powf(-2.0 * i as f64 / hd as f64);
            let (j0, j1) = match style {
                RopeStyle::Neox => (i, i + hd / 2),
                RopeStyle::Norm => (2 * i, 2 * i + 1),
            };
            let (x0, x1) = (head[j0], head[j1]);
            head[j0] = x0 * a.cos() - x1 * a.sin();
            head[j1] = x1 * a.cos() + x0 * a.sin();
        }
    }
}

/// Logits [T, V] of all positions.
fn reference_f64(m: &Model, ids: &[u32]) -> Vec<Vec<f64>> {
    let c = &m.config;
    let w = &m.weights;
    let eps = c.rms_eps as f64;
    let lin: Vec<Dense> = w.linears.iter().map(dense).collect();
    let mut xs: Vec<Vec<f64>> = ids
        .iter()
        .map(|&i| w.embed.row(i as usize).iter().map(|&v| v as f64).collect())
        .collect();
    let hd = c.head_dim;
    for l in 0..c.n_layers {
        let nm = &w.norms[l];
        let f = |k: usize| &lin[l * 7 + k];
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        let mut qs = Vec::new();
        for (t, x) in xs.iter().enumerate() {
            let h = rms(x, &nm.attn_norm, eps);
            let (mut q, mut k, v) = (apply(f(0), &h), apply(f(1), &h), apply(f(2), &h));
            rope64(&mut q, hd, t, c.rope_theta as f64, c.rope);
            rope64(&mut k, hd, t, c.rope_theta as f64, c.rope);
            qs.push(q);
            ks.push(k);
            vs.push(v);
        }
        for t in 0..xs.len() {
            let mut a = vec![0.0; c.q_dim()];
            for h in 0..c.n_heads {
                let kh = h / (c.n_heads / c.n_kv_heads);
                let sc: Vec<f64> = (0..=t)
                    .map(|j| {
                        (0..hd)
                            .map(|i| qs[t][h * hd + i] * ks[j][kh * hd + i])
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let mx = sc.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = sc.iter().map(|s| (s - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                for i in 0..hd {
                    a[h * hd + i] = (0..=t).map(|j| e[j] / z * vs[j][kh * hd + i]).sum();
                }
            }
            if let Some(sn) = &nm.attn_sub_norm {
                a = rms(&a, sn, eps);
            }
            let o = apply(f(3), &a);
            xs[t].iter_mut().zip(o).for_each(|(x, y)| *x += y);
            let h = rms(&xs[t], &nm.ffn_norm, eps);
            let (g, u) = (apply(f(4), &h), apply(f(5), &h));
            let mut ff: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(&g, &u)| match c.activation {
                    Activation::Relu2 => g.max(0.0).powi(2) * u,
                    Activation::Silu => g / (1.0 + (-g).exp()) * u,
                })
                .collect();
            if let Some(sn) = &nm.ffn_sub_norm {
                ff = rms(&ff, sn, eps);
            }
            let dn = apply(f(6), &ff);
            xs[t].iter_mut().zip(dn).for_each(|(x, y)| *x += y);
        }
    }
    let head = w.lm_head.as_ref().unwrap_or(&w.embed);
    xs.iter()
        .map(|x| {
            let h = rms(x, &w.output_norm, eps);
            (0..c.vocab)
                .map(|v| {
                    head.row(v)
                        .iter()
                        .zip(&h)
                        .map(|(&e, &y)| e as f64 * y)
                        .sum()
                })
                .collect()
        })
        .collect()
}

/// Tolerance: both implementations quantize activations to int8 with the contract's f32
/// formula, but the f64 one feeds it f32(x_f64) where the runtime feeds its own f32 x. The
/// two differ by f32 rounding (~1e-7 relative), which moves a code by one only when x·s lies
/// within ~1e-5 of a half-integer; such a flip changes one product by |w|·amax/127. Together
/// with f32 vs f64 accumulation in norms, attention and logits, the measured max |Δlogit| is
/// about 2e-7 of the logit range on these models (no flip occurred); the bound checked is
/// 2e-5 of the range (plus 1e-5 absolute), which leaves room for a rare code flip
/// (≈ amax/127 · |w| on one term, ~1e-5 of the range here) and still catches any real bug
/// (a wrong norm, RoPE pair, scale or head mapping moves logits by a sizeable fraction).
#[test]
fn logits_match_independent_f64_implementation() {
    let d = tmp("f64");
    for (seed, variant) in [
        (31u64, Variant::BitNet),
        (32, Variant::LlamaStb(BlockShape { n: 64, k: 64 })),
    ] {
        let g = d.join(format!("m{seed}.gguf"));
        make(Preset::Tiny, variant, Format::Gguf, seed, None, &g);
        let m = model::load(&g).unwrap();
        let ids = m
            .tokenizer
            .encode("How much wood would a woodchuck chuck?", true)
            .unwrap();
        let want = reference_f64(&m, &ids);
        let (mut s, _) = Session::from_model(model::load(&g).unwrap(), CpuBackend::new()).unwrap();
        let got = s.forward(&ids, true).unwrap();
        let (mut lo, mut hi, mut worst) = (f64::MAX, f64::MIN, 0.0f64);
        for (t, row) in want.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                lo = lo.min(x);
                hi = hi.max(x);
                worst = worst.max((got[(t, v)] as f64 - x).abs());
            }
        }
        let range = hi - lo;
        println!("seed {seed} {variant:?}: max |Δlogit| = {worst:.3e}, logit range {range:.3}, ratio {:.2e}", worst / range);
        assert!(range > 1e-3, "seed {seed}: degenerate logits");
        assert!(
            worst <= 2e-5 * range + 1e-5,
            "seed {seed}: max |Δlogit| {worst} vs range {range}"
        );
    }
    std::fs::remove_dir_all(&d).ok();
}

// ---------------------------------------------------------------------------------------
// Scale conventions and malformed inputs.

/// A `bitlinear` checkpoint (÷ weight_scale) and the same one rewritten as `autobitlinear`
/// (× weight_scale, with weight_scale replaced by its reciprocal) load to identical matrices.
#[test]
fn both_hf_scale_conventions() {
    use tern_runtime::safetensors::{StBuilder, StFile};
    let d = tmp("conv");
    let a = d.join("bitlinear");
    make(
        Preset::Tiny,
        Variant::BitNet,
        Format::Safetensors,
        41,
        None,
        &a,
    );
    let b = d.join("autobitlinear");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(a.join("tokenizer.json"), b.join("tokenizer.json")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("config.json")).unwrap()).unwrap();
    cfg["quantization_config"]["linear_class"] = "autobitlinear".into();
    std::fs::write(b.join("config.json"), cfg.to_string()).unwrap();
    let st = StFile::open(&a.join("model.safetensors")).unwrap();
    let mut bld = StBuilder::new();
    for t in &st.tensors {
        bld.tensor(&t.name, &t.dtype, &t.shape);
    }
    let mut w = bld
        .begin(std::fs::File::create(b.join("model.safetensors")).unwrap())
        .unwrap();
    let mut rewritten = 0;
    for t in &st.tensors {
        let mut data = st.data(t).to_vec();
        if t.name.ends_with("weight_scale") {
            let v = half::bf16::from_le_bytes([data[0], data[1]]).to_f32();
            data = half::bf16::from_f32(1.0 / v).to_le_bytes().to_vec();
            rewritten += 1;
        }
        w.write_tensor(&t.name, &data).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(rewritten, 14);
    let (ma, mb) = (model::load(&a).unwrap(), model::load(&b).unwrap());
    assert!(
        ma.weight_format.contains("bitlinear (÷"),
        "{}",
        ma.weight_format
    );
    assert!(
        mb.weight_format.contains("autobitlinear (×"),
        "{}",
        mb.weight_format
    );
    same_weights(&ma, &mb, 41);
    // Scales are not all 1: the conversion mattered.
    assert!(ma
        .weights
        .linears
        .iter()
        .any(|l| l.w.block_scale(0, 0) != 1.0));
    std::fs::remove_dir_all(&d).ok();
}

/// Rewrites a GGUF with one tensor's declared shape or type changed.
fn rewrite(src: &Path, dst: &Path, edit: impl Fn(&str, &mut Vec<u64>, &mut GgmlType)) -> bool {
    let f = GgufFile::open(src).unwrap();
    let mut b = GgufBuilder::new();
    for (k, v) in &f.metadata {
        b.meta(k, v.clone());
    }
    let mut datas = Vec::new();
    for t in &f.tensors {
        let (mut ne, mut ty) = (t.ne.clone(), t.ty);
        edit(&t.name, &mut ne, &mut ty);
        let n = match ty.nbytes(&ne) {
            Ok(n) => n as usize,
            Err(_) => return false,
        };
        let mut d = f.data(t).to_vec();
        d.resize(n, 0x55);
        b.tensor(&t.name, &ne, ty);
        datas.push((t.name.clone(), d));
    }
    let mut w = b.begin(std::fs::File::create(dst).unwrap()).unwrap();
    for (n, d) in &datas {
        w.write_tensor(n, d).unwrap();
    }
    w.finish().unwrap();
    true
}

#[test]
fn malformed_models_give_clear_errors() {
    let d = tmp("bad");
    let g = d.join("m.gguf");
    make(Preset::Tiny, Variant::BitNet, Format::Gguf, 51, None, &g);
    let bad = d.join("bad.gguf");
    let err = |p: &Path| {
        model::load(p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "loaded".into())
    };
    // Wrong shape.
    assert!(rewrite(
        &g,
        &bad,
        |n, ne, _| if n == "blk.1.attn_k.weight" {
            ne[1] = 128
        }
    ));
    let m = err(&bad);
    assert!(
        m.contains("blk.1.attn_k.weight") && m.contains("expected [128, 64]"),
        "{m}"
    );
    // Unsupported (known) type.
    assert!(rewrite(
        &g,
        &bad,
        |n, _, ty| if n == "blk.0.ffn_up.weight" {
            *ty = GgmlType::Q8_0
        }
    ));
    let m = err(&bad);
    assert!(
        m.contains("blk.0.ffn_up.weight") && m.contains("Q8_0"),
        "{m}"
    );
    // Truncated file.
    let bytes = std::fs::read(&g).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() - 1000]).unwrap();
    let m = err(&bad);
    assert!(m.contains("past the end"), "{m}");
    // Unknown type id (patch the first tensor info's type of the last tensor).
    let f = GgufFile::open(&g).unwrap();
    let last = f.tensors.last().unwrap().name.clone();
    let pos = bytes
        .windows(last.len())
        .rposition(|w| w == last.as_bytes())
        .unwrap()
        + last.len();
    let mut b2 = bytes.clone();
    let ty_at = pos + 4 + 8 * 2; // n_dims, two dims
    b2[ty_at..ty_at + 4].copy_from_slice(&77u32.to_le_bytes());
    std::fs::write(&bad, &b2).unwrap();
    let m = err(&bad);
    assert!(
        m.contains("unknown ggml type id 77") && m.contains(&last),
        "{m}"
    );
    // Not ternary floats.
    let h = d.join("hf");
    make(
        Preset::Tiny,
        Variant::BitNet,
        Format::Safetensors,
        52,
        None,
        &h,
    );
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.join("config.json")).unwrap()).unwrap();
    cfg["hidden_size"] = 96.into();
    std::fs::write(h.join("config.json"), cfg.to_string()).unwrap();
    let m = err(&h);
    assert!(m.contains("shape") && m.contains("expected"), "{m}");
    cfg["hidden_act"] = "gelu".into();
    std::fs::write(h.join("config.json"), cfg.to_string()).unwrap();
    let m = err(&h);
    assert!(m.contains("hidden_act") && m.contains("gelu"), "{m}");
    std::fs::remove_dir_all(&d).ok();
}

mod mutate {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Mutated model files load or fail with an error; never a panic or a huge allocation.
        #[test]
        fn mutated_model_files_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            header_only in any::<bool>(),
        ) {
            let d = tmp("mutate");
            let g = d.join("m.gguf");
            if !g.exists() {
                make(Preset::Tiny, Variant::BitNet, Format::Gguf, 61, None, &g);
            }
            let mut bytes = std::fs::read(&g).unwrap();
            let span = if header_only { 8192.min(bytes.len()) } else { bytes.len() };
            for (i, v) in &edits {
                let i = i.index(span);
                bytes[i] = *v;
            }
            let p = d.join(format!("x{}.gguf", std::thread::current().name().unwrap_or("t").len()));
            std::fs::write(&p, &bytes).unwrap();
            let _ = model::load(&p);
        }
    }
}

#[test]
fn activation_key_is_honored() {
    let d = tmp("act");
    let g = d.join("m.gguf");
    make(
        Preset::Tiny,
        Variant::BitNet,
        Format::Gguf,
        71,
        Some(GgmlType::F16),
        &g,
    );
    let f = GgufFile::open(&g).unwrap();
    assert_eq!(f.get_str("general.architecture").unwrap(), Some("bitnet"));
    let out = d.join("silu.gguf");
    let mut b = GgufBuilder::new();
    for (k, v) in &f.metadata {
        let v = if k == "bitnet.hidden_activation" {
            tern_runtime::gguf::Value::Str("silu".into())
        } else {
            v.clone()
        };
        b.meta(k, v);
    }
    for t in &f.tensors {
        b.tensor(&t.name, &t.ne, t.ty);
    }
    let mut w = b.begin(std::fs::File::create(&out).unwrap()).unwrap();
    for t in &f.tensors {
        w.write_tensor(&t.name, f.data(t)).unwrap();
    }
    w.finish().unwrap();
    let m = model::load(&out).unwrap();
    assert_eq!(m.config.activation, Activation::Silu);
    assert_eq!(m.config.activation_source, "bitnet.hidden_activation");
    std::fs::remove_dir_all(&d).ok();
}

/// The bitnet-2b-shape preset has the real 2B-4T shapes (size only: no file is written).
#[test]
fn bitnet_2b_shape_sizes() {
    let c = synth::config(Preset::Bitnet2bShape, Variant::BitNet);
    assert_eq!(
        (
            c.n_layers,
            c.hidden,
            c.n_heads,
            c.n_kv_heads,
            c.head_dim,
            c.ffn,
            c.vocab
        ),
        (30, 2560, 20, 5, 128, 6912, 128256)
    );
    // 30 · (2·2560² + 2·640·2560 + 3·6912·2560) ternary weights ≈ 521 MB at 2 bits.
    assert_eq!(synth::ternary_weight_count(&c), 2_084_044_800);
    let opts = SynthOptions {
        preset: Preset::Bitnet2bShape,
        variant: Variant::BitNet,
        format: Format::Gguf,
        seed: 0,
        gguf_type: None,
    };
    assert_eq!(synth::gguf_weight_type(&opts, &c), GgmlType::Tq2_0);
}

/// Writes the full bitnet-2b-shape GGUF (streamed; ~0.6 GB ternary + 0.66 GB embedding) and
/// reads its header back. Slow: `cargo test -p tern-runtime --release -- --ignored`.
#[test]
#[ignore]
fn bitnet_2b_shape_writes_and_reads_back() {
    let d = tmp("2b");
    let g = d.join("m.gguf");
    make(
        Preset::Bitnet2bShape,
        Variant::BitNet,
        Format::Gguf,
        1,
        None,
        &g,
    );
    let f = GgufFile::open(&g).unwrap();
    assert_eq!(
        f.tensor("blk.29.ffn_down.weight").unwrap().torch_shape(),
        vec![2560, 6912]
    );
    assert_eq!(
        f.tensor("token_embd.weight").unwrap().torch_shape(),
        vec![128256, 2560]
    );
    std::fs::remove_dir_all(&d).ok();
}

/// The fast CPU kernels (every path this CPU has, 1 and 2 threads) give bit-identical logits
/// and tokens to the reference backend, on block-scaled and per-tensor models.
#[test]
fn fast_cpu_backend_is_bit_identical_to_reference() {
    use tern_runtime::backend::KernelBackend;
    let d = tmp("fastcpu");
    for (i, variant) in [
        Variant::BitNet,
        Variant::LlamaStb(tern_spec::BlockShape { n: 64, k: 64 }),
    ]
    .into_iter()
    .enumerate()
    {
        let g = d.join(format!("m{i}.gguf"));
        make(Preset::Tiny, variant, Format::Gguf, 21 + i as u64, None, &g);
        let prompt = "The array adds and subtracts.";
        let (ids, want_gen, want_logits) = greedy(model::load(&g).unwrap(), prompt, 6);
        for threads in [1, 2] {
            let (mut s, _) =
                Session::from_model(model::load(&g).unwrap(), KernelBackend::new(threads)).unwrap();
            let got = generate(&mut s, &ids, 6, &mut Sampler::greedy(), None, |_| true).unwrap();
            assert_eq!(
                got.generated_ids, want_gen,
                "variant {i}, {threads} threads"
            );
            assert_eq!(
                got.prompt_logits, want_logits,
                "variant {i}, {threads} threads"
            );
        }
    }
    std::fs::remove_dir_all(&d).ok();
}

/// The output heads on the tiny model (GGUF, F16 embedding): `f16` gives the `f32` head's
/// logits bit for bit; `q8` changes them by a small fraction of their range (measured and
/// printed; the bound checked is loose), and on 1 and 2 threads alike.
#[test]
fn output_heads_f16_exact_q8_close() {
    use tern_runtime::backend::KernelBackend;
    use tern_runtime::model::bitnet::HeadType;
    let d = tmp("heads");
    let g = d.join("m.gguf");
    make(Preset::Tiny, Variant::BitNet, Format::Gguf, 5, None, &g);
    let ids: Vec<u32> = (0..12).map(|i| (i * 37 + 3) % 500).collect();
    let logits = |head: HeadType, threads: usize| {
        let m = model::load(&g).unwrap();
        let (mut s, _) =
            Session::from_model_with_head(m, KernelBackend::new(threads), head).unwrap();
        s.forward(&ids, true).unwrap()
    };
    let f32l = logits(HeadType::F32, 1);
    assert_eq!(f32l, logits(HeadType::F32, 2));
    assert_eq!(
        f32l,
        logits(HeadType::F16, 2),
        "f16 head of an F16 embedding"
    );
    let q8 = logits(HeadType::Q8, 1);
    assert_eq!(q8, logits(HeadType::Q8, 2));
    let range = f32l.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
        - f32l.iter().fold(f32::INFINITY, |a, &b| a.min(b));
    let worst = f32l
        .iter()
        .zip(q8.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let rms = (f32l
        .iter()
        .zip(q8.iter())
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        / f32l.len() as f64)
        .sqrt();
    let same_argmax = f32l
        .rows()
        .into_iter()
        .zip(q8.rows())
        .filter(|(a, b)| argmax(a.as_slice().unwrap()) == argmax(b.as_slice().unwrap()))
        .count();
    println!(
        "q8 head vs f32 head: max |Δlogit| {worst:.3e}, rms {rms:.3e}, logit range {range:.3}, \
         max/range {:.2e}, argmax equal at {same_argmax}/{} positions",
        worst / range,
        f32l.nrows()
    );
    assert!(worst / range < 0.02, "max |Δ| {worst} vs range {range}");
    std::fs::remove_dir_all(&d).ok();
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |b, (i, &x)| if x > b.1 { (i, x) } else { b },
        )
        .0
}

/// `quantize_acts` (the forward pass's fast activation quantizer) equals the contract's
/// `QuantizedActs::quantize` bit for bit: random rows of ordinary, tiny, huge, tie-valued
/// (x · s = k + 0.5) and constant values, 1 and 2 threads. The seed is printed on failure.
#[test]
fn fast_activation_quantizer_equals_the_contract() {
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use tern_runtime::model::bitnet::quantize_acts;
    use tern_spec::QuantizedActs;
    for seed in 0..300u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (m, k) = (rng.gen_range(1..6), rng.gen_range(1..300));
        let kind = seed % 5;
        let x = Array2::from_shape_simple_fn((m, k), || {
            let u: f32 = rng.gen_range(-1.0..1.0);
            match kind {
                0 => u,
                1 => u * 1e-7,
                2 => u * 3e38,
                3 => (rng.gen_range(-254i32..=254) as f32) * 0.5,
                _ => 0.75,
            }
        });
        let want = QuantizedActs::quantize(x.view(), 8).unwrap();
        for threads in [1, 2] {
            let got = quantize_acts(x.view(), threads).unwrap();
            assert_eq!(got.q, want.q, "seed {seed}, {threads} threads");
            assert_eq!(got.scales, want.scales, "seed {seed}");
            assert_eq!(got.bits, want.bits);
        }
    }
    let bad = ndarray::array![[1.0f32, f32::NAN]];
    assert!(quantize_acts(bad.view(), 1).is_err());
    // a value that is not finite anywhere (16-lane body or remainder) is named
    for pos in 0..40 {
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut x = Array2::from_elem((2, 40), 0.5f32);
            x[(1, pos)] = v;
            match quantize_acts(x.view(), 2) {
                Err(tern_spec::act::ActError::NotFinite { token, index, .. }) => {
                    assert_eq!((token, index), (1, pos), "{v} at {pos}")
                }
                other => panic!("{v} at {pos}: {other:?}"),
            }
        }
    }
}
