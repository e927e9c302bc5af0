//! `tern run`: generate text with a model on a ternary backend.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use tern_runtime::backend;
use tern_runtime::generate::generate;
use tern_runtime::model;
use tern_runtime::model::bitnet::{HeadType, Session};
use tern_runtime::sample::Sampler;

use crate::progress;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// GGUF file, or a safetensors model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Prompt text (BOS is added when the tokenizer asks for it).
    #[arg(long, conflicts_with = "prompt_ids")]
    pub prompt: Option<String>,
    /// Prompt as token ids, e.g. 1,2,3 (used as given).
    #[arg(long, value_delimiter = ',')]
    pub prompt_ids: Option<Vec<u32>>,
    /// Tokens to generate.
    #[arg(long, default_value_t = 32)]
    pub steps: usize,
    /// Ternary GEMM backend.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Output head: f32 (default; the embedding's values), f16 (half the bytes; the same
    /// logits for an F16 embedding) or q8 (int8 rows and activations: a quarter of the bytes,
    /// slightly different logits; docs/runtime.md).
    #[arg(long, default_value = "f32")]
    pub head: String,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object (token ids, the prompt's last-position logits, tokens/s).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: RunArgs) -> Result<()> {
    if !(a.temperature >= 0.0 && a.temperature.is_finite()) {
        bail!("--temperature {} (legal: finite, ≥ 0)", a.temperature);
    }
    if !(a.top_p > 0.0 && a.top_p <= 1.0) {
        bail!("--top-p {} (legal: 0 < p ≤ 1)", a.top_p);
    }
    let head = parse_head(&a.head)?;
    let t0 = std::time::Instant::now();
    let m = model::load(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
    let info = (m.config.clone(), m.weight_format.clone(), m.format);
    let be = backend::backend_by_name(&a.backend)?;
    let (mut session, tok) = Session::from_model_with_head(m, be, head)?;
    let load_secs = t0.elapsed().as_secs_f64();
    let prompt = match (&a.prompt, &a.prompt_ids) {
        (Some(p), None) => tok.encode(p, true)?,
        (None, Some(ids)) if !ids.is_empty() => ids.clone(),
        _ => bail!("give --prompt TEXT or --prompt-ids 1,2,3"),
    };
    if !a.json {
        eprintln!(
            "model {} ({:?}, {}, weights {}), activation {} ({}), backend {}, head {}, loaded in {load_secs:.2} s",
            a.model.display(), info.2, info.0.arch, info.1, info.0.activation.name(), info.0.activation_source, session.backend().name(), head
        );
        if let Some(p) = &a.prompt {
            print!("{p}");
        }
    }
    let mut sampler = Sampler::new(a.temperature, a.top_p, a.seed);
    // Stream text: emit only complete UTF-8, keeping a partial character for the next token.
    let mut pending: Vec<u8> = Vec::new();
    let json = a.json;
    let tok2 = tok.clone();
    let g = generate(
        &mut session,
        &prompt,
        a.steps,
        &mut sampler,
        tok.eos,
        |id| {
            if !json {
                if let Ok(b) = tok2.token_bytes(id) {
                    pending.extend(b);
                    // Print complete UTF-8; an invalid sequence is printed as U+FFFD at once,
                    // an incomplete one waits for the next token.
                    loop {
                        match std::str::from_utf8(&pending) {
                            Ok(s) => {
                                print!("{s}");
                                pending.clear();
                                break;
                            }
                            Err(e) => {
                                let (ok, bad) = (e.valid_up_to(), e.error_len());
                                print!("{}", String::from_utf8_lossy(&pending[..ok]));
                                match bad {
                                    Some(n) => {
                                        print!("\u{FFFD}");
                                        pending.drain(..ok + n);
                                    }
                                    None => {
                                        pending.drain(..ok);
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    let _ = std::io::stdout().flush();
                }
            }
            !progress::interrupted()
        },
    )?;
    if json {
        let logits = &g.prompt_logits;
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": a.model.display().to_string(),
                "arch": info.0.arch,
                "activation": info.0.activation.name(),
                "activation_source": info.0.activation_source,
                "weights": info.1,
                "backend": session.backend().name(),
                "head": head.name(),
                "seed": a.seed,
                "temperature": a.temperature,
                "top_p": a.top_p,
                "prompt_ids": g.prompt_ids,
                "generated_ids": g.generated_ids,
                "text": tok.decode(&g.generated_ids)?,
                "prompt_last_logits_first16": &logits[..16.min(logits.len())],
                "prompt_last_argmax": g.prompt_argmax,
                "prefill_tokens": g.prompt_ids.len(),
                "prefill_tokens_per_s": g.prefill_tokens_per_sec(),
                "decode_tokens_per_s": g.decode_tokens_per_sec(),
                "stopped_at_eos": g.stopped_at_eos,
                "interrupted": progress::interrupted(),
            }))?
        );
    } else {
        if !pending.is_empty() {
            print!("{}", String::from_utf8_lossy(&pending));
        }
        println!();
        eprintln!(
            "prefill {} tokens at {:.1} tokens/s, decode {} tokens at {:.1} tokens/s{}",
            g.prompt_ids.len(),
            g.prefill_tokens_per_sec(),
            g.generated_ids.len(),
            g.decode_tokens_per_sec(),
            if progress::interrupted() {
                " (interrupted)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Parses `--head`.
pub fn parse_head(s: &str) -> Result<HeadType> {
    HeadType::parse(s).with_context(|| format!("--head {s:?} (legal: f32, f16, q8)"))
}
