//! `tern config check|show|list`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use tern_spec::config::{limits, BUILTIN};
use tern_spec::{widths, ArrayConfig};

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Validate a config file; every bad value is named with its legal range.
    Check {
        /// TOML file.
        file: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print a config (the default when none is named) with its derived widths.
    Show {
        /// A built-in name (default, small, large) or a TOML file.
        #[arg(default_value = "default")]
        config: String,
        /// Also print the legal range of every field.
        #[arg(long)]
        ranges: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the built-in configs.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Check { file, json } => {
            let cfg = ArrayConfig::load(&file)?;
            if json {
                println!(
                    "{}",
                    json!({"file": file.display().to_string(), "valid": true, "name": cfg.name, "hash": cfg.hash_hex()})
                );
            } else {
                println!(
                    "{}: valid (config \"{}\", hash {})",
                    file.display(),
                    cfg.name,
                    cfg.hash_hex()
                );
            }
            Ok(())
        }
        ConfigCmd::Show {
            config,
            ranges,
            json,
        } => {
            let cfg = ArrayConfig::builtin_or_load(&config)?;
            let derived = derived(&cfg);
            if json {
                let mut v = json!({"config": cfg, "derived": derived, "hash": cfg.hash_hex()});
                if ranges {
                    v["ranges"] = ranges_json();
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", cfg.to_toml());
                println!("\n# derived (docs/arithmetic.md §5)");
                for (k, v) in derived.as_object().into_iter().flatten() {
                    println!("# {k} = {v}");
                }
                if ranges {
                    println!("\n# legal ranges");
                    for (k, v) in ranges_json().as_object().into_iter().flatten() {
                        println!("# {k}: {}", v.as_str().unwrap_or_default());
                    }
                }
            }
            Ok(())
        }
        ConfigCmd::List { json } => {
            let list: Vec<_> = BUILTIN
                .iter()
                .map(|(n, _)| {
                    let c = ArrayConfig::builtin(n).expect("builtin");
                    json!({"name": n, "rows": c.array.rows, "cols": c.array.cols,
                           "block": c.block.to_string(), "hash": c.hash_hex()})
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for v in list {
                    println!(
                        "{:<8} {}x{} array, {} blocks",
                        v["name"].as_str().unwrap_or_default(),
                        v["rows"],
                        v["cols"],
                        v["block"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
    }
}

/// Widths and rates that follow from a config.
pub fn derived(cfg: &ArrayConfig) -> serde_json::Value {
    let bits = cfg.activation.bits;
    let mb = cfg.scale.mantissa_bits;
    let bk = cfg.block.k as u64;
    json!({
        "pes": cfg.macs_per_cycle(),
        "required_psum_bits": widths::required_psum_bits(bk, bits),
        "required_product_bits": widths::required_product_bits(bk, bits, mb),
        "required_acc_bits": widths::required_acc_bits(cfg.accumulator.max_k, bits, mb),
        "max_abs_psum": widths::max_abs_psum(bk, bits).to_string(),
        "max_abs_acc": widths::max_abs_acc(cfg.accumulator.max_k, bits, mb).to_string(),
        "weight_bits_per_cycle": cfg.macs_per_cycle() * 2,
        "weight_gbytes_per_s_at_target": cfg.macs_per_cycle() as f64 * 2.0 / 8.0 * cfg.clock.target_mhz * 1e6 / 1e9,
    })
}

fn ranges_json() -> serde_json::Value {
    use limits::*;
    let r = |(a, b): (u32, u32)| format!("{a}..={b}");
    json!({
        "name": "1..=32 characters of [a-z0-9_], starting with a letter",
        "array.rows": r(ROWS),
        "array.cols": r(COLS),
        "array.token_tile": r(TOKEN_TILE),
        "block.n": r(BLOCK_N),
        "block.k": format!("{}, a multiple of array.cols", r(BLOCK_K)),
        "activation.bits": r(ACT_BITS),
        "scale.mantissa_bits": r(MANT_BITS),
        "accumulator.psum_bits": format!("activation.bits + ceil(log2(block.k)) + 1 ..= {PSUM_BITS_MAX} (exactly: the smallest width holding block.k·2^(bits-1))"),
        "accumulator.acc_bits": format!("smallest width holding max_k·2^(bits-1)·(2^mantissa_bits-1) ..= {ACC_BITS_MAX}"),
        "accumulator.max_k": format!("{}..={}", MAX_K.0, MAX_K.1),
        "accumulator.max_n": format!("{}..={}", MAX_N.0, MAX_N.1),
        "clock.target_mhz": format!("{}..={}", TARGET_MHZ.0, TARGET_MHZ.1),
    })
}
