//! `tern demo`: the main job on the embedded default config, with a short readable report.
//!
//! Today: one Scaled-Ternary-Block layer through the bit-exact reference, checked against
//! an independent f64 computation within the contract's error bound.

use super::gemm::{self, GemmArgs, Scales};
use anyhow::Result;
use clap::Args;
use tern_spec::{widths, ArrayConfig};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Config: a built-in name or a TOML file.
    #[arg(long, default_value = "default")]
    pub config: String,
    /// Seed of the random layer.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: DemoArgs) -> Result<()> {
    let cfg = ArrayConfig::builtin_or_load(&a.config)?;
    let layer = GemmArgs {
        config: a.config.clone(),
        m: 4,
        k: 2560,
        n: 640,
        seed: a.seed,
        block: None,
        scales: Scales::Typical,
        json: a.json,
    };
    let r = gemm::compute(&cfg, &layer)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "config": cfg, "derived": super::config::derived(&cfg), "layer": r
            }))?
        );
    } else {
        let bits = cfg.activation.bits;
        let mb = cfg.scale.mantissa_bits;
        println!("tern demo: one Scaled-Ternary-Block layer on the bit-exact reference");
        println!();
        println!("config {:?} (hash {})", cfg.name, cfg.hash_hex());
        println!(
            "  array        {} lanes × {} trits/cycle = {} add/sub PEs, {} tokens per weight tile, target {} MHz",
            cfg.array.rows, cfg.array.cols, cfg.macs_per_cycle(), cfg.array.token_tile, cfg.clock.target_mhz
        );
        println!("  blocks       {} (one scale per block)", cfg.block);
        println!("  activations  int{bits}, per-token absmax, round half to even");
        println!("  scales       u{mb} mantissa per block, exponent per block row (host)");
        println!(
            "  widths       partial sum {} bits (needs {}), accumulator {} bits (needs {} for K ≤ {})",
            cfg.accumulator.psum_bits,
            widths::required_psum_bits(cfg.block.k as u64, bits),
            cfg.accumulator.acc_bits,
            widths::required_acc_bits(cfg.accumulator.max_k, bits, mb),
            cfg.accumulator.max_k
        );
        println!();
        println!(
            "layer: W [{} × {}] ternary in {} blocks, {} tokens, seed {}",
            r.n, r.k, r.block, r.m, r.seed
        );
        println!(
            "  {} MACs = {} adds + {} subs + {} holds, {} block-scale products",
            r.macs, r.adds, r.subs, r.holds, r.scaler_mults
        );
        println!(
            "  integer output checksum {}, largest |acc| {}",
            r.checksum,
            r.largest_acc_fmt()
        );
        println!(
            "  f32 outputs vs f64 float view: max abs error {:.2e} ({:.2e} of the largest output), {:.2} of the stated bound ({})",
            r.max_abs_err,
            r.max_rel_err,
            r.max_err_over_bound,
            if r.within_bound { "inside" } else { "OUTSIDE" }
        );
        println!("  {:.2} s", r.elapsed_s);
        println!();
        println!("Next: `tern gemm --help`, `tern config show --ranges`, docs/arithmetic.md.");
    }
    if !r.within_bound {
        anyhow::bail!("float error outside the contract's bound (seed {})", r.seed);
    }
    Ok(())
}

impl gemm::GemmReport {
    fn largest_acc_fmt(&self) -> String {
        let bits = 64 - (self.max_abs_acc as u64).leading_zeros() + 1;
        format!("{} ({bits} signed bits)", self.max_abs_acc)
    }
}
