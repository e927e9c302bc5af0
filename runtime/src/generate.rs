//! Generation: prefill the prompt as one batch (M = prompt length), then decode one token at
//! a time (M = 1), timing both.

use std::time::Instant;

use crate::backend::TernaryBackend;
use crate::model::bitnet::{ForwardError, Session};
use crate::sample::{argmax, Sampler};

/// The result of [`generate`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    /// Logits at the prompt's last position.
    pub prompt_logits: Vec<f32>,
    pub prompt_argmax: u32,
    pub prefill_secs: f64,
    pub decode_secs: f64,
    /// Whether generation stopped at the end-of-sequence token.
    pub stopped_at_eos: bool,
}

impl Generation {
    pub fn prefill_tokens_per_sec(&self) -> f64 {
        self.prompt_ids.len() as f64 / self.prefill_secs.max(1e-12)
    }

    /// Decode rate: tokens after the first (the first comes from the prefill's logits).
    pub fn decode_tokens_per_sec(&self) -> f64 {
        let n = self.generated_ids.len().saturating_sub(1);
        if n == 0 {
            0.0
        } else {
            n as f64 / self.decode_secs.max(1e-12)
        }
    }
}

/// Generates up to `steps` tokens after `prompt`; `on_token(id)` is called for each and
/// returns false to stop early (e.g. Ctrl-C). Stops at `eos` if given.
pub fn generate<B: TernaryBackend>(
    session: &mut Session<B>,
    prompt: &[u32],
    steps: usize,
    sampler: &mut Sampler,
    eos: Option<u32>,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<Generation, ForwardError> {
    session.reset();
    let t0 = Instant::now();
    let logits = session.forward(prompt, false)?;
    let prefill_secs = t0.elapsed().as_secs_f64();
    let prompt_logits = logits.row(0).to_vec();
    let mut out = Vec::new();
    let mut stopped_at_eos = false;
    let t1 = Instant::now();
    let mut next = if steps > 0 {
        Some(sampler.sample(&prompt_logits))
    } else {
        None
    };
    while let Some(tok) = next {
        out.push(tok);
        if Some(tok) == eos {
            stopped_at_eos = true;
            break;
        }
        if !on_token(tok) || out.len() >= steps || session.position() >= session.config.context {
            break;
        }
        let l = session.forward(&[tok], false)?;
        next = Some(sampler.sample(l.row(0).as_slice().unwrap_or(&[])));
    }
    Ok(Generation {
        prompt_ids: prompt.to_vec(),
        generated_ids: out,
        prompt_argmax: argmax(&prompt_logits),
        prompt_logits,
        prefill_secs,
        decode_secs: t1.elapsed().as_secs_f64(),
        stopped_at_eos,
    })
}
