//! The yosys estimate of the small config on ECP5 (the fast synthesis test of `make test`),
//! and `report.json`.
//!
//! Skipped (with "skipped: …") when yosys is missing, failed under CI=true.

use std::path::Path;
use tern_bitstreams::board::Boards;
use tern_bitstreams::tools::{self, Quiet, ToolKind};
use tern_bitstreams::{estimate, Depth};
use tern_hdl::HdlOptions;
use tern_spec::ArrayConfig;

#[test]
fn small_config_yosys_estimate_on_ecp5() {
    if tools::find(ToolKind::Yosys, true).is_none() {
        assert!(
            !tools::under_ci(),
            "yosys is not installed (required under CI=true)"
        );
        println!("skipped: small_config_yosys_estimate_on_ecp5: yosys is not installed");
        return;
    }
    let boards = Boards::builtin().unwrap();
    let board = boards.get("ecp5-85f").unwrap();
    let cfg = ArrayConfig::builtin("small").unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("estimate_small_ecp5");
    let _ = std::fs::remove_dir_all(&dir);
    let r = estimate(board, &cfg, HdlOptions::default(), &dir, &Quiet).unwrap();
    assert_eq!(r.depth, Depth::Estimate);
    assert_eq!(r.top, "tern_small");
    assert!(!r.resources.includes_wrapper);
    let a = &r.resources.array;
    println!(
        "tern_small on ECP5: {} LUT4 (incl. 2 per CCU2C), {} FF, {} MULT18 ({:.1} LUT/PE, {:.1} FF/PE)",
        a.lut, a.ff, a.dsp, r.resources.lut_per_pe, r.resources.ff_per_pe
    );
    // 64 PEs, 8 lanes with adder trees, psums, scalers (one multiplier each), controller
    assert!((1_000..20_000).contains(&a.lut), "{} LUT", a.lut);
    assert!((1_000..20_000).contains(&a.ff), "{} FF", a.ff);
    assert_eq!(a.dsp, 8, "one MULT18X18D per lane's scaler");
    assert_eq!(a.lut, a.cells["LUT4"] + 2 * a.cells["CCU2C"]);
    assert!(r.fmax_mhz.is_none() && r.timing_met.is_none() && r.bitstream.is_none());
    // report.json is written and carries the figures
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(v["format"], "tern-synth-report/1");
    assert_eq!(v["resources"]["array"]["lut"], a.lut);
    assert_eq!(v["target_mhz"], 150.0);
    assert_eq!(v["utilization_source"], "yosys");
    // the yosys log is where the step record says
    let synth = r.steps.iter().find(|s| s.name == "synth").unwrap();
    let log = std::fs::read_to_string(&synth.log).unwrap();
    // yosys 0.70 runs synth_ecp5 as SYNTH_LATTICE
    assert!(log.contains("Executing SYNTH_"), "{}", synth.log.display());
}
