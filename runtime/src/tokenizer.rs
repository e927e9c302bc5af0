//! Byte-level BPE (GPT-2 / Llama-3 style): encode, decode, train, and conversion to and from
//! Hugging Face `tokenizer.json` and GGUF `tokenizer.ggml.*` metadata.
//!
//! Encoding: special (added) tokens are split out first; the rest is cut into words by the
//! pre-tokenizer regex; each word's UTF-8 bytes are mapped to printable characters
//! (GPT-2's `bytes_to_unicode`), then adjacent symbols are merged by lowest merge rank until
//! no ranked pair is left. With `ignore_merges` (Llama-3, llama.cpp `llama-bpe`) a word that
//! is itself in the vocabulary is taken whole. Decoding maps characters back to bytes.

use std::collections::HashMap;

use fancy_regex::Regex;
use serde_json::{json, Value as Json};
use thiserror::Error;

use crate::gguf::{GgufFile, Value};

/// GPT-2's pre-tokenizer pattern (also tokenizers' ByteLevel `use_regex`).
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama-3's pre-tokenizer pattern (llama.cpp `llama-bpe`).
pub const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types (llama.cpp `llama_token_type`).
pub const TOKEN_NORMAL: i32 = 1;
pub const TOKEN_CONTROL: i32 = 3;
pub const TOKEN_USER_DEFINED: i32 = 4;

#[derive(Debug, Error)]
pub enum TokenizerError {
    #[error("{source_name}: {problem}")]
    Format {
        source_name: String,
        problem: String,
    },
    #[error("token id {id} is outside the vocabulary (0..{size})")]
    BadId { id: u32, size: usize },
    #[error("the symbol {symbol:?} of the word {word:?} is not in the vocabulary (a byte-level BPE vocabulary must hold every byte)")]
    NoSymbol { word: String, symbol: String },
    #[error("pre-tokenizer regex: {0}")]
    Regex(String),
}

/// A byte-level BPE tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    /// id → token string (byte-level characters, or a special token's text).
    pub tokens: Vec<String>,
    /// Merges in rank order, each a pair of token strings.
    pub merges: Vec<(String, String)>,
    /// Token ids of special (control) tokens, matched in the input text before BPE.
    pub special: Vec<u32>,
    /// Pre-tokenizer regex.
    pub pattern: String,
    pub ignore_merges: bool,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Prepend `bos` when encoding a prompt.
    pub add_bos: bool,
    vocab: HashMap<String, u32>,
    ranks: HashMap<(String, String), usize>,
    regex: Regex,
    byte_to_char: [char; 256],
    char_to_byte: HashMap<char, u8>,
}

/// GPT-2's reversible map from bytes to printable characters.
pub fn bytes_to_unicode() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        out[b as usize] = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('\0')
        };
    }
    out
}

fn fmt_err(source_name: &str, problem: impl Into<String>) -> TokenizerError {
    TokenizerError::Format {
        source_name: source_name.to_string(),
        problem: problem.into(),
    }
}

impl Tokenizer {
    /// Builds a tokenizer from its parts, checking consistency.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tokens: Vec<String>,
        merges: Vec<(String, String)>,
        special: Vec<u32>,
        pattern: &str,
        ignore_merges: bool,
        bos: Option<u32>,
        eos: Option<u32>,
        add_bos: bool,
    ) -> Result<Self, TokenizerError> {
        let src = "tokenizer";
        let mut vocab = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            // Duplicates: the first id wins (as llama.cpp's token_to_id map does).
            vocab.entry(t.clone()).or_insert(i as u32);
        }
        for id in special.iter().chain(bos.iter()).chain(eos.iter()) {
            if *id as usize >= tokens.len() {
                return Err(fmt_err(
                    src,
                    format!(
                        "special token id {id} is outside the vocabulary of {}",
                        tokens.len()
                    ),
                ));
            }
        }
        let ranks = merges
            .iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), i))
            .collect();
        let regex = Regex::new(pattern).map_err(|e| TokenizerError::Regex(e.to_string()))?;
        let byte_to_char = bytes_to_unicode();
        let char_to_byte = byte_to_char
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        Ok(Self {
            tokens,
            merges,
            special,
            pattern: pattern.to_string(),
            ignore_merges,
            bos,
            eos,
            add_bos,
            vocab,
            ranks,
            regex,
            byte_to_char,
            char_to_byte,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn token_id(&self, s: &str) -> Option<u32> {
        self.vocab.get(s).copied()
    }

    /// Encodes `text` (adding `bos` first when `add_bos` is set and `with_bos` is true).
    pub fn encode(&self, text: &str, with_bos: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::new();
        if with_bos && self.add_bos {
            if let Some(b) = self.bos {
                out.push(b);
            }
        }
        let mut specials: Vec<(&str, u32)> = self
            .special
            .iter()
            .map(|&id| (self.tokens[id as usize].as_str(), id))
            .filter(|(s, _)| !s.is_empty())
            .collect();
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let mut rest = text;
        while !rest.is_empty() {
            // The earliest special token (longest at that position).
            let hit = specials
                .iter()
                .filter_map(|(s, id)| rest.find(s).map(|p| (p, s.len(), *id)))
                .min_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            match hit {
                Some((p, len, id)) => {
                    self.encode_plain(&rest[..p], &mut out)?;
                    out.push(id);
                    rest = &rest[p + len..];
                }
                None => {
                    self.encode_plain(rest, &mut out)?;
                    rest = "";
                }
            }
        }
        Ok(out)
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) -> Result<(), TokenizerError> {
        for m in self.regex.find_iter(text) {
            let m = m.map_err(|e| TokenizerError::Regex(e.to_string()))?;
            let word: String = m
                .as_str()
                .bytes()
                .map(|b| self.byte_to_char[b as usize])
                .collect();
            if self.ignore_merges {
                if let Some(&id) = self.vocab.get(&word) {
                    out.push(id);
                    continue;
                }
            }
            for sym in self.bpe(&word) {
                match self.vocab.get(&sym) {
                    Some(&id) => out.push(id),
                    None => {
                        return Err(TokenizerError::NoSymbol {
                            word: m.as_str().to_string(),
                            symbol: sym,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Merges the characters of one byte-level word by rank.
    fn bpe(&self, word: &str) -> Vec<String> {
        let mut syms: Vec<String> = word.chars().map(|c| c.to_string()).collect();
        loop {
            let mut best: Option<(usize, usize)> = None; // (rank, position)
            for i in 0..syms.len().saturating_sub(1) {
                if let Some(&r) = self.ranks.get(&(syms[i].clone(), syms[i + 1].clone())) {
                    if best.is_none_or(|(br, _)| r < br) {
                        best = Some((r, i));
                    }
                }
            }
            let Some((_, i)) = best else { break };
            let merged = format!("{}{}", syms[i], syms[i + 1]);
            syms[i] = merged;
            syms.remove(i + 1);
        }
        syms
    }

    /// The bytes a token stands for (a special token: its text).
    pub fn token_bytes(&self, id: u32) -> Result<Vec<u8>, TokenizerError> {
        let t = self.tokens.get(id as usize).ok_or(TokenizerError::BadId {
            id,
            size: self.tokens.len(),
        })?;
        if self.special.contains(&id) {
            return Ok(t.as_bytes().to_vec());
        }
        Ok(t.chars()
            .map(|c| match self.char_to_byte.get(&c) {
                Some(&b) => vec![b],
                None => c.to_string().into_bytes(),
            })
            .collect::<Vec<_>>()
            .concat())
    }

    /// Decodes ids to text (invalid UTF-8 becomes U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend(self.token_bytes(id)?);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Trains a byte-level BPE on `text`: 256 byte tokens, then the most frequent adjacent
    /// pair is merged (ties broken by the pair's strings, so the result is deterministic)
    /// until `vocab_size - specials.len()` tokens exist or no pair occurs twice; then the
    /// special tokens are appended.
    pub fn train(
        text: &str,
        vocab_size: usize,
        specials: &[&str],
        pattern: &str,
    ) -> Result<Self, TokenizerError> {
        let regex = Regex::new(pattern).map_err(|e| TokenizerError::Regex(e.to_string()))?;
        let b2c = bytes_to_unicode();
        let mut counts: HashMap<Vec<String>, usize> = HashMap::new();
        for m in regex.find_iter(text) {
            let m = m.map_err(|e| TokenizerError::Regex(e.to_string()))?;
            let w: Vec<String> = m
                .as_str()
                .bytes()
                .map(|b| b2c[b as usize].to_string())
                .collect();
            *counts.entry(w).or_default() += 1;
        }
        let mut words: Vec<(Vec<String>, usize)> = counts.into_iter().collect();
        words.sort();
        let mut tokens: Vec<String> = b2c.iter().map(|c| c.to_string()).collect();
        let mut merges = Vec::new();
        let target = vocab_size.saturating_sub(specials.len());
        while tokens.len() < target {
            let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
            for (w, n) in &words {
                for p in w.windows(2) {
                    *pairs.entry((p[0].as_str(), p[1].as_str())).or_default() += n;
                }
            }
            let best = pairs
                .into_iter()
                .filter(|(_, n)| *n >= 2)
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
            let Some(((a, b), _)) = best else { break };
            let (a, b) = (a.to_string(), b.to_string());
            let merged = format!("{a}{b}");
            for (w, _) in words.iter_mut() {
                let mut i = 0;
                while i + 1 < w.len() {
                    if w[i] == a && w[i + 1] == b {
                        w[i] = merged.clone();
                        w.remove(i + 1);
                    }
                    i += 1;
                }
            }
            if !tokens.contains(&merged) {
                tokens.push(merged);
            }
            merges.push((a, b));
        }
        let first_special = tokens.len() as u32;
        tokens.extend(specials.iter().map(|s| s.to_string()));
        let special: Vec<u32> = (first_special..tokens.len() as u32).collect();
        let bos = special.first().copied();
        let eos = special.get(1).copied();
        Self::new(tokens, merges, special, pattern, true, bos, eos, true)
    }

    /// Reads a Hugging Face `tokenizer.json` (model type BPE with a byte-level
    /// pre-tokenizer). `bos`/`eos` from config files may be given to override.
    pub fn from_hf_json(text: &str, source_name: &str) -> Result<Self, TokenizerError> {
        let e = |p: String| fmt_err(source_name, p);
        let j: Json = serde_json::from_str(text).map_err(|x| e(format!("not JSON: {x}")))?;
        let model = &j["model"];
        if model["type"].as_str() != Some("BPE") {
            return Err(e(format!(
                "model.type = {} (tern reads byte-level \"BPE\" tokenizers)",
                model["type"]
            )));
        }
        let vocab = model["vocab"]
            .as_object()
            .ok_or_else(|| e("model.vocab is not an object".into()))?;
        let mut added: Vec<(u32, String, bool)> = Vec::new();
        if let Some(a) = j["added_tokens"].as_array() {
            for t in a {
                let id = t["id"]
                    .as_u64()
                    .ok_or_else(|| e("added_tokens[].id missing".into()))?;
                let content = t["content"]
                    .as_str()
                    .ok_or_else(|| e("added_tokens[].content missing".into()))?;
                added.push((
                    id as u32,
                    content.to_string(),
                    t["special"].as_bool().unwrap_or(false),
                ));
            }
        }
        let size = vocab
            .values()
            .filter_map(|v| v.as_u64())
            .chain(added.iter().map(|a| a.0 as u64))
            .max()
            .map_or(0, |m| m as usize + 1);
        if size > 16 << 20 {
            return Err(e(format!("vocabulary size {size} is absurd")));
        }
        let mut tokens = vec![String::new(); size];
        for (s, id) in vocab {
            let id = id
                .as_u64()
                .ok_or_else(|| e(format!("model.vocab[{s:?}] is not an id")))?;
            tokens[id as usize] = s.clone();
        }
        for (id, content, _) in &added {
            tokens[*id as usize] = content.clone();
        }
        let mut merges = Vec::new();
        for (i, m) in model["merges"].as_array().into_iter().flatten().enumerate() {
            let pair = match m {
                Json::String(s) => s
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string())),
                Json::Array(p) if p.len() == 2 => match (p[0].as_str(), p[1].as_str()) {
                    (Some(a), Some(b)) => Some((a.to_string(), b.to_string())),
                    _ => None,
                },
                _ => None,
            };
            merges.push(pair.ok_or_else(|| e(format!("model.merges[{i}] = {m} is not a pair")))?);
        }
        let pattern = pre_tokenizer_pattern(&j["pre_tokenizer"])
            .ok_or_else(|| e(format!("pre_tokenizer {} is not byte-level (tern reads ByteLevel, optionally after a Split regex)", j["pre_tokenizer"])))?;
        let special: Vec<u32> = added.iter().map(|a| a.0).collect();
        // BOS: the first special token of a TemplateProcessing post-processor, if any.
        let bos = j["post_processor"]["single"]
            .as_array()
            .and_then(|s| s.first())
            .and_then(|f| f["SpecialToken"]["id"].as_str())
            .and_then(|name| added.iter().find(|a| a.1 == name).map(|a| a.0))
            .or_else(|| {
                find_processor_bos(&j["post_processor"])
                    .and_then(|name| added.iter().find(|a| a.1 == name).map(|a| a.0))
            });
        let ignore = model["ignore_merges"].as_bool().unwrap_or(false);
        Self::new(
            tokens,
            merges,
            special,
            &pattern,
            ignore,
            bos,
            None,
            bos.is_some(),
        )
    }

    /// Writes a Hugging Face `tokenizer.json` that `tokenizers` and tern read identically.
    pub fn to_hf_json(&self) -> String {
        let vocab: serde_json::Map<String, Json> = self
            .tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.special.contains(&(*i as u32)))
            .map(|(i, t)| (t.clone(), json!(i)))
            .collect();
        let added: Vec<Json> = self
            .special
            .iter()
            .map(|&id| {
                json!({"id": id, "content": self.tokens[id as usize], "single_word": false,
                       "lstrip": false, "rstrip": false, "normalized": false, "special": true})
            })
            .collect();
        let post = match self.bos.filter(|_| self.add_bos) {
            Some(b) => {
                let name = &self.tokens[b as usize];
                json!({"type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": name, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": name, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                             {"SpecialToken": {"id": name, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                    "special_tokens": {name.as_str(): {"id": name, "ids": [b], "tokens": [name]}}})
            }
            None => Json::Null,
        };
        let merges: Vec<String> = self
            .merges
            .iter()
            .map(|(a, b)| format!("{a} {b}"))
            .collect();
        let j = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": self.pattern}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
            ]},
            "post_processor": post,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                      "ignore_merges": self.ignore_merges, "vocab": vocab, "merges": merges}
        });
        serde_json::to_string_pretty(&j).unwrap_or_default()
    }

    /// Reads `tokenizer.ggml.*` metadata (model "gpt2").
    pub fn from_gguf(f: &GgufFile) -> Result<Self, TokenizerError> {
        let src = f.source.as_str();
        let e = |p: String| fmt_err(src, p);
        match f.get("tokenizer.ggml.model").and_then(Value::as_str) {
            Some("gpt2") => {}
            Some(m) => {
                return Err(e(format!(
                    "tokenizer.ggml.model = {m:?} is not supported (tern reads byte-level BPE, \"gpt2\")"
                )))
            }
            None => return Err(e("tokenizer.ggml.model is missing".into())),
        }
        let strings = |key: &str| -> Result<Vec<String>, TokenizerError> {
            match f.get(key) {
                Some(Value::Array(_, items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| e(format!("{key}[{i}] is not a string")))
                    })
                    .collect(),
                Some(v) => Err(e(format!("{key} = {} is not an array", v.short()))),
                None => Err(e(format!("{key} is missing"))),
            }
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| e(format!("tokenizer.ggml.merges[{i}] = {m:?} is not \"a b\"")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut special = Vec::new();
        if let Some(Value::Array(_, types)) = f.get("tokenizer.ggml.token_type") {
            if types.len() != tokens.len() {
                return Err(e(format!(
                    "tokenizer.ggml.token_type has {} entries, tokens has {}",
                    types.len(),
                    tokens.len()
                )));
            }
            for (i, t) in types.iter().enumerate() {
                if let Value::I32(TOKEN_CONTROL) = t {
                    special.push(i as u32);
                }
            }
        }
        let id = |key: &str| -> Result<Option<u32>, TokenizerError> {
            match f.get(key) {
                None => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if (n as usize) < tokens.len() => Ok(Some(n as u32)),
                    _ => Err(e(format!(
                        "{key} = {} is not a token id < {}",
                        v.short(),
                        tokens.len()
                    ))),
                },
            }
        };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        let add_bos = f
            .get("tokenizer.ggml.add_bos_token")
            .and_then(Value::as_bool)
            .unwrap_or(bos.is_some());
        let pre = f
            .get("tokenizer.ggml.pre")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let (pattern, ignore) = match pre {
            "llama-bpe" | "llama3" | "llama-v3" => (LLAMA3_PATTERN, true),
            "gpt2" | "gpt-2" | "default" => (GPT2_PATTERN, false),
            p => {
                return Err(e(format!(
                    "tokenizer.ggml.pre = {p:?} is not supported (legal: \"llama-bpe\", \"gpt2\", \"default\")"
                )))
            }
        };
        Self::new(tokens, merges, special, pattern, ignore, bos, eos, add_bos)
    }

    /// The `tokenizer.ggml.*` metadata for this tokenizer, padded with `[PAD{i}]` tokens to
    /// `n_vocab` entries (as llama.cpp's converter pads a vocabulary smaller than the model's).
    pub fn to_gguf_meta(&self, n_vocab: usize) -> Vec<(String, Value)> {
        use crate::gguf::ValueType;
        let mut tokens = self.tokens.clone();
        let mut types: Vec<i32> = (0..tokens.len() as u32)
            .map(|i| {
                if self.special.contains(&i) {
                    TOKEN_CONTROL
                } else {
                    TOKEN_NORMAL
                }
            })
            .collect();
        for i in tokens.len()..n_vocab {
            tokens.push(format!("[PAD{i}]"));
            types.push(TOKEN_USER_DEFINED);
        }
        let pre = if self.pattern == LLAMA3_PATTERN {
            "llama-bpe"
        } else {
            "gpt2"
        };
        let mut m = vec![
            (
                "tokenizer.ggml.model".to_string(),
                Value::Str("gpt2".into()),
            ),
            ("tokenizer.ggml.pre".to_string(), Value::Str(pre.into())),
            (
                "tokenizer.ggml.tokens".to_string(),
                crate::gguf::writer::str_array(&tokens),
            ),
            (
                "tokenizer.ggml.token_type".to_string(),
                crate::gguf::writer::i32_array(&types),
            ),
            (
                "tokenizer.ggml.merges".to_string(),
                Value::Array(
                    ValueType::Str,
                    self.merges
                        .iter()
                        .map(|(a, b)| Value::Str(format!("{a} {b}")))
                        .collect(),
                ),
            ),
        ];
        if let Some(b) = self.bos {
            m.push(("tokenizer.ggml.bos_token_id".into(), Value::U32(b)));
        }
        if let Some(b) = self.eos {
            m.push(("tokenizer.ggml.eos_token_id".into(), Value::U32(b)));
        }
        m.push((
            "tokenizer.ggml.add_bos_token".into(),
            Value::Bool(self.add_bos),
        ));
        m
    }
}

fn find_processor_bos(p: &Json) -> Option<&str> {
    // Llama-3 wraps TemplateProcessing in a Sequence with ByteLevel.
    p["processors"]
        .as_array()?
        .iter()
        .find_map(|q| q["single"].as_array()?.first()?["SpecialToken"]["id"].as_str())
}

/// The regex of a byte-level pre-tokenizer: a Split(Regex) before ByteLevel(use_regex false),
/// or ByteLevel(use_regex true) alone (GPT-2's pattern).
fn pre_tokenizer_pattern(p: &Json) -> Option<String> {
    match p["type"].as_str()? {
        "ByteLevel" => (p["use_regex"].as_bool() != Some(false)).then(|| GPT2_PATTERN.to_string()),
        "Sequence" => {
            let list = p["pretokenizers"].as_array()?;
            let mut pattern = None;
            let mut byte_level = false;
            for q in list {
                match q["type"].as_str()? {
                    "Split" => pattern = Some(q["pattern"]["Regex"].as_str()?.to_string()),
                    "ByteLevel" => {
                        byte_level = true;
                        if q["use_regex"].as_bool() != Some(false) && pattern.is_none() {
                            pattern = Some(GPT2_PATTERN.to_string());
                        }
                    }
                    _ => return None,
                }
            }
            if byte_level {
                pattern
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A small built-in English text synthetic tokenizers are trained on.
pub const TRAINING_TEXT: &str = include_str!("tokenizer_text.txt");

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        Tokenizer::train(
            TRAINING_TEXT,
            400,
            &["<|begin_of_text|>", "<|end_of_text|>"],
            LLAMA3_PATTERN,
        )
        .unwrap()
    }

    #[test]
    fn trained_bpe_round_trips_arbitrary_text() {
        let t = tiny();
        assert_eq!(t.vocab_size(), 400);
        assert!(t.merges.len() > 100);
        for s in [
            "The ternary accelerator runs the model.",
            "ünïcödé ✓ 漢字 🙂 tabs\tand\nnewlines  ",
            "",
            "<|begin_of_text|>hello<|end_of_text|> world",
        ] {
            let ids = t.encode(s, false).unwrap();
            assert_eq!(t.decode(&ids).unwrap(), s, "{ids:?}");
        }
        // Merges compress familiar text.
        let s = "the model and the weights";
        assert!(t.encode(s, false).unwrap().len() < s.len() / 2);
        // BOS first.
        assert_eq!(t.encode("x", true).unwrap()[0], t.bos.unwrap());
        let ids = t.encode("<|end_of_text|>", false).unwrap();
        assert_eq!(ids, vec![t.eos.unwrap()]);
    }

    #[test]
    fn training_is_deterministic() {
        assert_eq!(tiny().merges, tiny().merges);
    }

    #[test]
    fn hf_json_round_trip() {
        let t = tiny();
        let j = t.to_hf_json();
        let u = Tokenizer::from_hf_json(&j, "t.json").unwrap();
        assert_eq!(u.tokens, t.tokens);
        assert_eq!(u.merges, t.merges);
        assert_eq!(u.bos, t.bos);
        assert_eq!(u.pattern, t.pattern);
        let s = "Weights are ternary: -1, 0 or +1.";
        assert_eq!(u.encode(s, true).unwrap(), t.encode(s, true).unwrap());
        let e = Tokenizer::from_hf_json(r#"{"model": {"type": "Unigram"}}"#, "x.json").unwrap_err();
        assert!(e.to_string().contains("Unigram"), "{e}");
    }
}
