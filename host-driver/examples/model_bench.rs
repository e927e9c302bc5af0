//! Host overhead of the driver on the software model, criterion-free:
//!
//! ```text
//! cargo run --release -p tern-driver --example model_bench [-- <backend spec> [size] [gemvs]]
//! ```
//!
//! Prints NOP round trips per second, the time of one GEMV on a size×size layer (default
//! 2560) through the card, the time of `tern_spec::reference::gemm_acc` alone on the same
//! operands, their difference (the host overhead: images, DMA copies, rings, decode), and
//! the load average. `tern card bench` prints the same figures.

use std::time::Instant;
use tern_driver::{open, Card};
use tern_spec::card::image;
use tern_spec::random::{self, ScaleDist};
use tern_spec::reference::gemm_acc;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).map(String::as_str).unwrap_or("model");
    let size: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2560);
    let gemvs: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let mut card = Card::probe(open(spec)?)?;
    let cfg = card.config().clone();

    let t0 = Instant::now();
    let mut nops = 0u64;
    while t0.elapsed().as_secs_f64() < 1.0 {
        card.nop()?;
        nops += 1;
    }
    let nop_rate = nops as f64 / t0.elapsed().as_secs_f64();

    let (w, _) = random::layer(
        1,
        size,
        size,
        cfg.block,
        cfg.scale.mantissa_bits,
        ScaleDist::Typical,
    )?;
    let t = Instant::now();
    let h = card.load_weights(&w)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let acts = random::act_codes(2, 1, size, cfg.activation.bits);
    let t = Instant::now();
    card.gemm(&h, acts.q.view())?; // first GEMV: the model decodes and caches the region
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    // the model runs the reference on the matrix it decoded from the image (block 1×block_k)
    let (_, decoded) = image::decode_region(&image::build_region(&cfg, &w)?)?;
    let (mut on_card, mut reference, mut ref_decoded) = (vec![], vec![], vec![]);
    for _ in 0..gemvs.max(1) {
        let t = Instant::now();
        let run = card.gemm(&h, acts.q.view())?;
        on_card.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        let want = gemm_acc(&w, acts.q.view())?;
        reference.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        let same = gemm_acc(&decoded, acts.q.view())?;
        ref_decoded.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(run.acc, want, "the card's GEMV differs from the reference");
        assert_eq!(same, want);
    }
    let (g, r, rd) = (median(on_card), median(reference), median(ref_decoded));
    // a small layer: compute is negligible, the time is the driver's and the model's overhead
    let (ws, _) = random::layer(
        3,
        64,
        64,
        cfg.block,
        cfg.scale.mantissa_bits,
        ScaleDist::Typical,
    )?;
    let hs = card.load_weights(&ws)?;
    let a64 = random::act_codes(4, 1, 64, cfg.activation.bits);
    let small: Vec<f64> = (0..200)
        .map(|_| {
            let t = Instant::now();
            card.gemm(&hs, a64.q.view())
                .map(|_| t.elapsed().as_secs_f64() * 1e6)
        })
        .collect::<Result<_, _>>()?;
    let small = median(small);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("backend            {}", card.info().backend);
    println!(
        "NOP round trips    {nop_rate:.0} /s ({:.2} µs each)",
        1e6 / nop_rate
    );
    println!("load_weights       {size}×{size}: {load_ms:.1} ms (first GEMV incl. image decode {first_ms:.1} ms)");
    println!("GEMV on the card   {g:.1} µs (median of {})", gemvs.max(1));
    println!("reference alone    {r:.1} µs on the layer, {rd:.1} µs on the model's decoded image");
    println!("host overhead      {:.1} µs per GEMV (card − reference on the decoded image), {:.1} µs vs the layer", g - rd, g - r);
    println!("64×64 GEMV         {small:.1} µs per GEMV through the driver (median of 200)");
    println!("loadavg            {}", load.trim());
    Ok(())
}
