//! The yosys estimate of the small config on ECP5 (the fast synthesis test of `make test`),
//! `report.json`, and the search for a config that fits.
//!
//! Skipped (with "skipped: …") when yosys is missing, failed under CI=true.

use std::path::Path;
use tern_bitstreams::board::Boards;
use tern_bitstreams::flow;
use tern_bitstreams::tools::{self, Quiet, ToolKind};
use tern_bitstreams::{estimate, synth, Depth, SynthError, SynthOptions};
use tern_hdl::HdlOptions;
use tern_spec::ArrayConfig;

/// Whether yosys is installed; without it `test` prints "skipped" (fails under CI=true).
fn have_yosys(test: &str) -> bool {
    if tools::find(ToolKind::Yosys, true).is_some() {
        return true;
    }
    assert!(
        !tools::under_ci(),
        "yosys is not installed (required under CI=true)"
    );
    println!("skipped: {test}: yosys is not installed");
    false
}

#[test]
fn small_config_yosys_estimate_on_ecp5() {
    if !have_yosys("small_config_yosys_estimate_on_ecp5") {
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

/// A config that does not fit gets the largest smaller variant that does: on a copy of the
/// iCE40-HX8K board with its logic cells cut to `CAP`, a 4 × 4 array of the small config does
/// not fit and the search tries 2 × 4, 4 × 2, … until one does, by the same synthesis and fit
/// check the full flow runs (no place and route).
#[test]
fn fit_search_finds_the_largest_smaller_config_that_fits() {
    if !have_yosys("fit_search") {
        return;
    }
    const CAP: u64 = 2_600;
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fit_search");
    let _ = std::fs::remove_dir_all(&root);
    let bdir = root.join("boards/ice40-tight");
    std::fs::create_dir_all(&bdir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/ice40-hx8k");
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        let name = f.file_name().unwrap().to_owned();
        let mut text = std::fs::read_to_string(&f).unwrap();
        if name == "board.toml" {
            text = text
                .replace("name = \"ice40-hx8k\"", "name = \"ice40-tight\"")
                .replace("lut = 7680", &format!("lut = {CAP}"));
        }
        std::fs::write(bdir.join(name), text).unwrap();
    }
    let boards = Boards::with_extra(Some(&root.join("boards"))).unwrap();
    let board = boards.get("ice40-tight").unwrap();
    let mut cfg = ArrayConfig::builtin("small").unwrap();
    cfg.name = "fit4".into();
    cfg.array.rows = 4;
    cfg.array.cols = 4;
    cfg.validate("test").unwrap();
    let names: Vec<String> = flow::smaller_configs(&cfg)
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "fit4_2x4", "fit4_4x2", "fit4_1x4", "fit4_2x2", "fit4_4x1", "fit4_1x2", "fit4_2x1",
            "fit4_1x1"
        ]
    );
    let opts = SynthOptions {
        depth: Depth::Fit,
        ..SynthOptions::new(root.join("fit4"))
    };
    let e = synth(board, &cfg, &opts, &Quiet).unwrap_err();
    let SynthError::DoesNotFit {
        used, available, ..
    } = e
    else {
        panic!("expected DoesNotFit, got {e}");
    };
    assert_eq!(available, CAP);
    assert!(used > CAP, "{used}");
    let (v, rep) = flow::find_fitting(board, &cfg, opts.hdl, &opts.out_dir, 6, &Quiet)
        .unwrap()
        .expect("a smaller variant fits");
    println!(
        "4 × 4 needs {used} LC; the search found {} × {} at {} LC (of {CAP})",
        v.array.rows, v.array.cols, rep.resources.total.lut
    );
    assert!(v.array.rows * v.array.cols < 16);
    assert!(rep.resources.total.lut <= CAP);
    assert!(
        rep.resources.includes_wrapper,
        "checked with the board wrapper"
    );
    assert_eq!(rep.depth, Depth::Fit);
    assert!(rep.bitstream.is_none() && rep.fmax_mhz.is_none());
    // every larger variant tried before it did not fit
    for c in flow::smaller_configs(&cfg)
        .iter()
        .take_while(|c| c.name != v.name)
    {
        let r = opts
            .out_dir
            .join(format!("fit-{}x{}/report.json", c.array.rows, c.array.cols));
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&r).unwrap()).unwrap();
        assert!(
            j["does_not_fit"]["used"].as_u64().unwrap() > CAP,
            "{}",
            r.display()
        );
    }
}
