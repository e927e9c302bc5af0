//! Shared helpers of the integration tests.
#![allow(dead_code)]

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use tern_hdl::host::{command_streams, CommandStreams};
use tern_hdl::Params;
use tern_spec::{ArrayConfig, BlockShape, ScaledTernaryMatrix};

/// Whether a tool is installed; when not, fails under CI=true and otherwise prints
/// "skipped: …" and returns false.
pub fn have_tool(tool: &str, test: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
            panic!("{tool} is not installed (required under CI=true)");
        }
        println!("skipped: {test}: {tool} is not installed");
    }
    ok
}

/// A config from the default one with the given geometry and block.
pub fn config(name: &str, rows: u32, cols: u32, token_tile: u32, bn: u32, bk: u32) -> ArrayConfig {
    let mut c = ArrayConfig {
        name: name.into(),
        ..Default::default()
    };
    c.array.rows = rows;
    c.array.cols = cols;
    c.array.token_tile = token_tile;
    c.block = BlockShape { n: bn, k: bk };
    c.accumulator.psum_bits = tern_spec::widths::required_psum_bits(bk as u64, c.activation.bits);
    c.validate("test").unwrap();
    c
}

/// Random operands of shape N × K (M tokens), with extreme activations and mantissas, and
/// their streams.
pub fn random_command(
    p: &Params,
    cfg: &ArrayConfig,
    seed: u64,
    k: usize,
    n: usize,
    m: usize,
) -> CommandStreams {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let trits = Array2::from_shape_fn((n, k), |_| r.gen_range(-1i8..=1));
    let (bn, bk) = (cfg.block.n as usize, cfg.block.k as usize);
    let mb = cfg.scale.mantissa_bits;
    let mmax = (1u64 << mb) - 1;
    let mants = Array2::from_shape_fn((n.div_ceil(bn), k.div_ceil(bk)), |_| {
        match r.gen_range(0..6) {
            0 => mmax as u32,
            1 => 0,
            _ => r.gen_range(0..=mmax) as u32,
        }
    });
    let exps = ndarray::Array1::zeros(n.div_ceil(bn));
    let w = ScaledTernaryMatrix::new(trits, cfg.block, mants, exps, mb).unwrap();
    let bits = cfg.activation.bits;
    let (lo, hi) = (-(1i32 << (bits - 1)), (1i32 << (bits - 1)) - 1);
    let a = Array2::from_shape_fn((m, k), |_| match r.gen_range(0..8) {
        0 => lo as i8,
        1 => hi as i8,
        _ => r.gen_range(lo..=hi) as i8,
    });
    let acc = tern_spec::reference::gemm_acc(&w, a.view()).unwrap();
    command_streams(p, &w, a.view(), &acc)
}

/// A fresh scratch directory under target/.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The Verilog files of an emitted design (absolute paths), with the behavioural
/// `MULT18X18D` model written beside them when the design instantiates the ECP5 DSP (the
/// vendor cell is a black box to every open tool).
pub fn rtl_files(rep: &tern_hdl::emit::EmitReport, ecp5_dsp: bool) -> Vec<PathBuf> {
    let mut rtl: Vec<PathBuf> = rep
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "v"))
        .cloned()
        .collect();
    if ecp5_dsp {
        let model = rep.dir.join("MULT18X18D.v");
        std::fs::write(&model, tern_hdl::vtb::ecp5_mult18x18d_model()).unwrap();
        rtl.push(model);
    }
    rtl
}
