//! # tern-runtime: full-model inference for ternary LLMs
//!
//! - [`gguf`]: tern's own GGUF v3 reader and streaming writer.
//! - [`safetensors`]: safetensors reading (memory-mapped) and streaming writing.
//! - [`tokenizer`]: byte-level BPE (GPT-2 / Llama-3 style), from `tokenizer.json` or GGUF.
//! - [`model`]: configs, weights and loaders (GGUF, Hugging Face `BitNetForCausalLM`,
//!   tern Scaled-Ternary-Block), and the BitNet b1.58 / Llama forward pass.
//! - [`backend`]: the [`backend::TernaryBackend`] trait every ternary linear layer runs
//!   through, and the `cpu` backend (tern_spec::reference).
//! - [`synth`]: synthetic models with random ternary weights and a real BPE tokenizer.
//!
//! docs/runtime.md describes the pipeline, docs/formats.md the file formats.

pub mod backend;
pub mod bytes;
pub mod card_backend;
pub mod decode;
pub mod generate;
pub mod gguf;
pub mod inspect;
pub mod model;
pub mod quantize;
pub mod safetensors;
pub mod sample;
pub mod synth;
pub mod timed;
pub mod tokenizer;
