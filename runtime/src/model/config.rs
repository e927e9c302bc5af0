//! Model hyper-parameters, read from GGUF metadata or a Hugging Face `config.json`.

use serde::Serialize;
use serde_json::Value as Json;

use crate::gguf::GgufFile;

/// The FFN gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Activation {
    /// relu(x)² (BitNet b1.58 2B-4T).
    Relu2,
    /// x·sigmoid(x) (Llama; llama.cpp's `bitnet` graph).
    Silu,
}

impl Activation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "relu2" | "relu_squared" | "squared_relu" => Some(Activation::Relu2),
            "silu" | "swish" => Some(Activation::Silu),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu2 => "relu2",
            Activation::Silu => "silu",
        }
    }
}

/// Which dimensions RoPE rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RopeStyle {
    /// Pairs (i, i + d/2): Hugging Face `rotate_half`, llama.cpp NEOX (its `bitnet` arch).
    Neox,
    /// Pairs (2i, 2i + 1): llama.cpp NORM (its `llama` arch, whose converter permutes Q/K).
    Norm,
}

/// The model family: BitNet b1.58 (sub-norms) or Llama (no sub-norms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Family {
    BitNet,
    Llama,
}

/// Everything the forward pass needs to know about shapes and numerics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    /// The architecture as the file names it ("bitnet", "bitnet-b1.58", "llama",
    /// "BitNetForCausalLM", "LlamaForCausalLM").
    pub arch: String,
    pub family: Family,
    pub n_layers: usize,
    pub hidden: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub context: usize,
    pub rope_theta: f32,
    pub rope: RopeStyle,
    pub rms_eps: f32,
    pub activation: Activation,
    /// Where the activation came from, e.g. "bitnet.hidden_activation" or a default.
    pub activation_source: String,
    /// RMSNorms before o_proj and down_proj (BitNet).
    pub sub_norms: bool,
    /// lm_head = embed_tokens.
    pub tied: bool,
}

/// Hard limits that keep a malformed file from asking for absurd allocations.
const LIMITS: [(&str, usize); 6] = [
    ("n_layers", 4096),
    ("hidden", 1 << 17),
    ("ffn", 1 << 20),
    ("vocab", 1 << 24),
    ("heads", 4096),
    ("context", 1 << 24),
];

impl ModelConfig {
    /// Checks shapes for consistency; the message names the field and the legal range.
    pub fn validate(&self) -> Result<(), String> {
        let vals = [
            self.n_layers,
            self.hidden,
            self.ffn,
            self.vocab,
            self.n_heads,
            self.context,
        ];
        for ((name, max), v) in LIMITS.iter().zip(vals) {
            if v == 0 || v > *max {
                return Err(format!("{name} = {v} is out of range (legal: 1..={max})"));
            }
        }
        if self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(format!(
                "n_kv_heads = {} must divide n_heads = {}",
                self.n_kv_heads, self.n_heads
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) || self.head_dim > 4096 {
            return Err(format!(
                "head_dim = {} (legal: even, 2..=4096)",
                self.head_dim
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(format!(
                "rope theta = {} (legal: finite, > 0)",
                self.rope_theta
            ));
        }
        if !(self.rms_eps.is_finite() && self.rms_eps >= 0.0) {
            return Err(format!(
                "rms_norm_eps = {} (legal: finite, ≥ 0)",
                self.rms_eps
            ));
        }
        Ok(())
    }

    /// Q width = n_heads · head_dim; KV width = n_kv_heads · head_dim.
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Reads `<arch>.*` keys. `vocab_rows` is the embedding's row count (the vocab size when
    /// `<arch>.vocab_size` is absent).
    pub fn from_gguf(f: &GgufFile, vocab_rows: usize) -> Result<Self, String> {
        let arch = f
            .get_str("general.architecture")
            .map_err(|e| e.to_string())?
            .ok_or("general.architecture is missing")?
            .to_string();
        let (family, rope, default_act) = match arch.as_str() {
            "bitnet" | "bitnet-b1.58" | "bitnet-25" => (Family::BitNet, RopeStyle::Neox, Activation::Relu2),
            "llama" => (Family::Llama, RopeStyle::Norm, Activation::Silu),
            a => {
                return Err(format!(
                    "general.architecture = {a:?} is not supported (legal: \"bitnet\", \"bitnet-b1.58\", \"llama\")"
                ))
            }
        };
        let key = |k: &str| format!("{arch}.{k}");
        let uint = |k: &str, max: usize| -> Result<Option<usize>, String> {
            f.get_uint(&key(k), max as u64)
                .map(|v| v.map(|x| x as usize))
                .map_err(|e| e.to_string())
        };
        let need = |k: &str, max: usize| -> Result<usize, String> {
            uint(k, max)?.ok_or_else(|| format!("metadata key {:?} is missing (required)", key(k)))
        };
        let hidden = need("embedding_length", 1 << 17)?;
        let n_heads = need("attention.head_count", 4096)?;
        let n_kv_heads = uint("attention.head_count_kv", 4096)?.unwrap_or(n_heads);
        let head_dim = uint("attention.key_length", 4096)?.unwrap_or(hidden / n_heads.max(1));
        if let Some(r) = uint("rope.dimension_count", 4096)? {
            if r != head_dim {
                return Err(format!(
                    "{} = {r} differs from head_dim = {head_dim}: partial RoPE is not supported",
                    key("rope.dimension_count")
                ));
            }
        }
        let f64_key = |k: &str| f.get_f64(&key(k)).map_err(|e| e.to_string());
        let (activation, activation_source) = match f
            .get_str(&key("hidden_activation"))
            .map_err(|e| e.to_string())?
        {
            Some(s) => (
                Activation::parse(s).ok_or_else(|| {
                    format!(
                        "{} = {s:?} is not supported (legal: \"relu2\", \"silu\")",
                        key("hidden_activation")
                    )
                })?,
                key("hidden_activation"),
            ),
            None => (
                default_act,
                format!(
                    "default for arch {arch:?} ({} is absent{})",
                    key("hidden_activation"),
                    if arch == "bitnet" {
                        "; llama.cpp's bitnet graph would use silu"
                    } else {
                        ""
                    }
                ),
            ),
        };
        let tern_stb = f.get("tern.stb.block_n").is_some();
        let cfg = ModelConfig {
            family,
            n_layers: need("block_count", 4096)?,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn: need("feed_forward_length", 1 << 20)?,
            vocab: uint("vocab_size", 1 << 24)?.unwrap_or(vocab_rows),
            context: uint("context_length", 1 << 24)?.unwrap_or(4096),
            rope_theta: f64_key("rope.freq_base")?.unwrap_or(10000.0) as f32,
            // tern's own Llama-STB files keep Hugging Face's Q/K row order (docs/formats.md).
            rope: if tern_stb { RopeStyle::Neox } else { rope },
            rms_eps: f64_key("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5) as f32,
            activation,
            activation_source,
            sub_norms: family == Family::BitNet,
            tied: f.tensor("output.weight").is_none(),
            arch,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a Hugging Face `config.json` (`BitNetForCausalLM` or `LlamaForCausalLM`).
    pub fn from_hf(j: &Json) -> Result<Self, String> {
        let arch = j["architectures"][0]
            .as_str()
            .or(j["model_type"].as_str())
            .ok_or("config.json: architectures[0] and model_type are missing")?
            .to_string();
        let family = match arch.as_str() {
            "BitNetForCausalLM" | "BitnetForCausalLM" | "bitnet" => Family::BitNet,
            "LlamaForCausalLM" | "llama" => Family::Llama,
            a => {
                return Err(format!(
                    "config.json: architecture {a:?} is not supported (legal: BitNetForCausalLM, LlamaForCausalLM)"
                ))
            }
        };
        let uint = |k: &str| -> Result<Option<usize>, String> {
            match &j[k] {
                Json::Null => Ok(None),
                v => v
                    .as_u64()
                    .filter(|&n| n <= 1 << 24)
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| {
                        format!("config.json: {k} = {v} is not an integer 0..=16777216")
                    }),
            }
        };
        let need =
            |k: &str| uint(k)?.ok_or_else(|| format!("config.json: {k} is missing (required)"));
        let float = |k: &str, d: f64| -> Result<f64, String> {
            match &j[k] {
                Json::Null => Ok(d),
                v => v
                    .as_f64()
                    .ok_or_else(|| format!("config.json: {k} = {v} is not a number")),
            }
        };
        let hidden = need("hidden_size")?;
        let n_heads = need("num_attention_heads")?;
        let (activation, activation_source) = match j["hidden_act"].as_str() {
            Some(s) => (
                Activation::parse(s).ok_or_else(|| {
                    format!("config.json: hidden_act = {s:?} is not supported (legal: relu2, silu)")
                })?,
                "config.json hidden_act".to_string(),
            ),
            None => match family {
                Family::BitNet => (
                    Activation::Relu2,
                    "default for BitNetForCausalLM (hidden_act absent)".into(),
                ),
                Family::Llama => (
                    Activation::Silu,
                    "default for LlamaForCausalLM (hidden_act absent)".into(),
                ),
            },
        };
        let cfg = ModelConfig {
            family,
            n_layers: need("num_hidden_layers")?,
            hidden,
            n_heads,
            n_kv_heads: uint("num_key_value_heads")?.unwrap_or(n_heads),
            head_dim: uint("head_dim")?.unwrap_or(hidden / n_heads.max(1)),
            ffn: need("intermediate_size")?,
            vocab: need("vocab_size")?,
            context: uint("max_position_embeddings")?.unwrap_or(4096),
            rope_theta: float("rope_theta", 10000.0)? as f32,
            rope: RopeStyle::Neox,
            rms_eps: float("rms_norm_eps", 1e-5)? as f32,
            activation,
            activation_source,
            sub_norms: family == Family::BitNet,
            tied: j["tie_word_embeddings"]
                .as_bool()
                .unwrap_or(family == Family::BitNet),
            arch,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
