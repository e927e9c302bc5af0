//! The `tern` binary end to end: every subcommand that exists, its JSON, and its errors.

use std::path::PathBuf;
use std::process::{Command, Output};

fn tern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .output()
        .expect("run tern")
}

fn ok(args: &[&str]) -> String {
    let o = tern(args);
    assert!(
        o.status.success(),
        "tern {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let o = tern(args);
    assert!(!o.status.success(), "tern {args:?} should fail");
    String::from_utf8(o.stderr).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn config_show_check_list() {
    let v = json(&ok(&["config", "show", "--json", "--ranges"]));
    assert_eq!(v["config"]["array"]["rows"], 16);
    assert_eq!(v["derived"]["required_acc_bits"], 39);
    assert!(v["ranges"]["activation.bits"]
        .as_str()
        .unwrap()
        .contains("4..=8"));
    let text = ok(&["config", "show", "small"]);
    assert!(text.contains("rows = 8"), "{text}");
    let list = json(&ok(&["config", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 3);

    let good = tmp("good.toml");
    std::fs::write(
        &good,
        ok(&["config", "show", "large"])
            .split("\n#")
            .next()
            .unwrap(),
    )
    .unwrap();
    let v = json(&ok(&["config", "check", good.to_str().unwrap(), "--json"]));
    assert_eq!(v["valid"], true);
    assert_eq!(v["name"], "large");

    let bad = tmp("bad.toml");
    let text = std::fs::read_to_string(&good)
        .unwrap()
        .replace("bits = 8", "bits = 12");
    std::fs::write(&bad, text).unwrap();
    let e = fails(&["config", "check", bad.to_str().unwrap()]);
    assert!(
        e.contains("bad.toml")
            && e.contains("activation.bits")
            && e.contains("= 12")
            && e.contains("4..=8"),
        "{e}"
    );
    let e = fails(&["config", "check", "/nonexistent.toml"]);
    assert!(e.contains("/nonexistent.toml"), "{e}");
}

#[test]
fn gemm_reports_and_is_deterministic() {
    let args = [
        "gemm", "--m", "3", "--k", "200", "--n", "70", "--seed", "9", "--json",
    ];
    let a = json(&ok(&args));
    let b = json(&ok(&args));
    assert_eq!(a["checksum"], b["checksum"]);
    assert_eq!(a["within_bound"], true);
    assert_eq!(a["macs"], 3 * 200 * 70);
    assert_eq!(
        a["adds"].as_u64().unwrap() + a["subs"].as_u64().unwrap() + a["holds"].as_u64().unwrap(),
        3 * 200 * 70
    );
    assert_eq!(a["scaler_mults"], 3 * 70 * 4); // ceil(200/64) = 4 block columns
    let c = json(&ok(&[
        "gemm", "--m", "3", "--k", "200", "--n", "70", "--seed", "10", "--json",
    ]));
    assert_ne!(a["checksum"], c["checksum"]);
    let e = json(&ok(&[
        "gemm", "--block", "1x128", "--scales", "extreme", "--k", "300", "--n", "5", "--json",
    ]));
    assert_eq!(e["within_bound"], true);
    assert_eq!(e["block"], "1x128");
    let err = fails(&["gemm", "--block", "1x32", "--k", "64"]);
    assert!(err.contains("block.k") && err.contains("64"), "{err}");
    let err = fails(&["gemm", "--k", "40000"]);
    assert!(err.contains("max_k"), "{err}");
    let err = fails(&["gemm", "--block", "64by64"]);
    assert!(err.contains("NxK"), "{err}");
}

#[test]
fn demo_runs() {
    let out = ok(&["demo"]);
    assert!(out.contains("inside"), "{out}");
    let v = json(&ok(&["demo", "--json"]));
    assert_eq!(v["layer"]["within_bound"], true);
    // the tiny model on the card (the software model here; `make demo` uses the simulated one)
    let v = json(&ok(&["demo", "--json", "--card", "model", "--steps", "3"]));
    assert_eq!(v["model"]["identical"], true, "{v}");
    assert_eq!(v["model"]["card_ids"], v["model"]["cpu_ids"]);
    assert!(v["model"]["cycles_per_token"].as_f64().unwrap() > 0.0);
}

#[test]
fn pack_unpack_all_layouts() {
    // a 4 × 256 trit matrix through every layout and back, raw and .npy
    let trits: Vec<u8> = (0..4 * 256)
        .map(|i| [0u8, 1, 255][(i * 7 + i / 3) % 3])
        .collect();
    let src = tmp("w.i8");
    std::fs::write(&src, &trits).unwrap();
    for layout in ["i8", "tern2", "tern5", "tq2_0", "tq1_0", "i2_s", "hf"] {
        let packed = tmp(&format!("w.{layout}"));
        let back = tmp(&format!("w.{layout}.i8"));
        let v = json(&ok(&[
            "pack",
            src.to_str().unwrap(),
            packed.to_str().unwrap(),
            "--shape",
            "4x256",
            "--to",
            layout,
            "--json",
        ]));
        assert_eq!(
            v["bytes_out"].as_u64().unwrap() as usize,
            std::fs::metadata(&packed).unwrap().len() as usize
        );
        ok(&[
            "unpack",
            packed.to_str().unwrap(),
            back.to_str().unwrap(),
            "--shape",
            "4x256",
            "--from",
            layout,
        ]);
        assert_eq!(std::fs::read(&back).unwrap(), trits, "{layout}");
    }
    // .npy in and out, with scales
    let npy = tmp("w.npy");
    ok(&[
        "unpack",
        src.to_str().unwrap(),
        npy.to_str().unwrap(),
        "--shape",
        "4x256",
        "--from",
        "i8",
    ]);
    let tq = tmp("w2.tq2_0");
    ok(&[
        "pack",
        npy.to_str().unwrap(),
        tq.to_str().unwrap(),
        "--to",
        "tq2_0",
        "--scale",
        "0.25",
    ]);
    let sc = tmp("s.npy");
    let v = json(&ok(&[
        "unpack",
        tq.to_str().unwrap(),
        tmp("w2.i8").to_str().unwrap(),
        "--shape",
        "4x256",
        "--from",
        "tq2_0",
        "--scales-out",
        sc.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(v["scale_count"], 4);
    // errors name the problem
    let e = fails(&[
        "pack",
        src.to_str().unwrap(),
        tmp("x").to_str().unwrap(),
        "--shape",
        "4x100",
        "--to",
        "tq2_0",
    ]);
    assert!(e.contains("1024") || e.contains("400"), "{e}");
    let e = fails(&[
        "pack",
        src.to_str().unwrap(),
        tmp("x").to_str().unwrap(),
        "--shape",
        "4x256",
        "--to",
        "nope",
    ]);
    assert!(e.contains("nope"), "{e}");
    let e = fails(&[
        "pack",
        src.to_str().unwrap(),
        tmp("x").to_str().unwrap(),
        "--shape",
        "4x256",
        "--to",
        "tern2",
        "--scale",
        "2",
    ]);
    assert!(e.contains("carries no scales"), "{e}");
}

/// Verilator is needed below; under CI its absence is a failure.
fn have_verilator() -> bool {
    let ok = Command::new("verilator").arg("--version").output().is_ok();
    if !ok {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "verilator missing under CI: run make setup"
        );
        eprintln!("skipped: verilator not installed (make setup)");
    }
    ok
}

#[test]
fn hdl_emit_writes_verilog_and_manifest() {
    let dir = tmp("emit");
    let v = json(&ok(&[
        "hdl",
        "emit",
        "--config",
        "small",
        "--out",
        dir.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(v["top"], "tern_small");
    assert!(v["modules"].as_u64().unwrap() > 10);
    for f in ["tern_small.v", "tern_small_core.v", "tern_small.json"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    assert_eq!(v["manifest"]["options"]["acc_read_ahead"], true, "{v}");
    let core = std::fs::read_to_string(dir.join("tern_small_core.v")).unwrap();
    assert!(core.contains("acc_rd <= acc_fwd"));
    // the Xilinx variants: no read-ahead, merged lane copies
    let xdir = tmp("emit_xilinx");
    let x = json(&ok(&[
        "hdl",
        "emit",
        "--config",
        "small",
        "--out",
        xdir.to_str().unwrap(),
        "--no-acc-read-ahead",
        "--no-lane-copies",
        "--json",
    ]));
    assert_eq!(x["manifest"]["options"]["acc_read_ahead"], false, "{x}");
    assert_eq!(x["manifest"]["options"]["lane_copies"], false, "{x}");
    let core = std::fs::read_to_string(xdir.join("tern_small_core.v")).unwrap();
    assert!(!core.contains("acc_rd") && core.contains("first_q <= rd_first"));
    assert!(!core.contains("(* keep *)"));
    let e = fails(&[
        "hdl",
        "emit",
        "--config",
        "/nonexistent.toml",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(e.contains("/nonexistent.toml"), "{e}");
}

#[test]
fn sim_gemm_fuzz_and_mismatch_report() {
    if !have_verilator() {
        return;
    }
    let v = json(&ok(&[
        "sim",
        "gemm",
        "--config",
        "small",
        "--m",
        "3",
        "--k",
        "130",
        "--n",
        "19",
        "--stall",
        "0.3",
        "--engine",
        "verilator",
        "--seed",
        "4",
        "--json",
    ]));
    assert_eq!(v["mismatches"], 0);
    assert_eq!(
        v["engines"]["verilator"]["checksum"],
        v["engines"]["reference"]["checksum"]
    );
    // all three engines on one stimulus: same outputs, same cycle counts
    let all = json(&ok(&[
        "sim", "gemm", "--config", "small", "--m", "2", "--k", "70", "--n", "9", "--stall", "0.2",
        "--engine", "all", "--seed", "6", "--json",
    ]));
    assert_eq!(all["mismatches"], 0);
    assert_eq!(
        all["engines"]["rusthdl"]["checksum"],
        all["engines"]["reference"]["checksum"]
    );
    assert_eq!(
        all["engines"]["rusthdl"]["cycles"],
        all["engines"]["verilator"]["cycles"]
    );
    assert!(v["cycles"].as_u64().unwrap() >= v["ideal_cycles"].as_u64().unwrap());
    let f = json(&ok(&[
        "sim", "fuzz", "--config", "small", "--cases", "8", "--seed", "2", "--json",
    ]));
    assert_eq!(f["cases"], 8);
    assert_eq!(f["mismatches"], 0);
    // an injected corruption is reported with its position, a reproducer and a waveform
    let dir = tmp("mm");
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tern"))
        .current_dir(&dir)
        .args([
            "sim",
            "gemm",
            "--config",
            "small",
            "--m",
            "1",
            "--k",
            "64",
            "--n",
            "8",
            "--engine",
            "verilator",
            "--seed",
            "9",
            "--corrupt-output",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("token 0, row 0") && err.contains("seed 9"),
        "{err}"
    );
    let repro = dir.join("tern-repro-small-9.json");
    assert!(repro.exists() && dir.join("tern-repro-small-9.vcd").exists());
    // the reproducer replays (without the injected fault) and passes
    let v = json(&ok(&[
        "sim",
        "gemm",
        "--repro",
        repro.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(v["mismatches"], 0);
    assert_eq!(v["seed"], 9);
}

#[test]
fn model_synth_run_and_bench_agree_across_backends() {
    let g = tmp("tiny.gguf");
    ok(&[
        "model",
        "synth",
        "--preset",
        "tiny",
        "--format",
        "gguf",
        "--seed",
        "3",
        "--out",
        g.to_str().unwrap(),
    ]);
    let st = tmp("tiny-st");
    ok(&[
        "model",
        "synth",
        "--preset",
        "tiny",
        "--format",
        "safetensors",
        "--seed",
        "3",
        "--out",
        st.to_str().unwrap(),
    ]);
    let info = json(&ok(&["model", "inspect", g.to_str().unwrap(), "--json"]));
    assert!(info.to_string().contains("bitnet"), "{info}");
    let mut runs = Vec::new();
    for (m, b) in [(&g, "reference"), (&g, "cpu"), (&g, "cpu:1"), (&st, "cpu")] {
        let v = json(&ok(&[
            "run",
            "--model",
            m.to_str().unwrap(),
            "--prompt",
            "ternary weights",
            "--steps",
            "5",
            "--backend",
            b,
            "--json",
        ]));
        assert_eq!(v["generated_ids"].as_array().unwrap().len(), 5, "{b}");
        runs.push((
            v["generated_ids"].clone(),
            v["prompt_last_logits_first16"].clone(),
        ));
    }
    assert!(
        runs.windows(2).all(|w| w[0] == w[1]),
        "every backend and format gives identical ids and logits: {runs:?}"
    );
    // `tern bench run --model G --prefill P --decode D ARGS… --json`
    let bench_run = |prefill: &str, decode: &str, args: &[&str]| {
        let model = g.to_str().unwrap();
        let mut a = vec!["bench", "run", "--model", model, "--prefill", prefill];
        a.extend(["--decode", decode]);
        a.extend_from_slice(args);
        a.push("--json");
        json(&ok(&a))
    };
    let b = bench_run("8", "4", &["--bandwidth-seconds", "0.1"]);
    assert_eq!(b["prefill_tokens"], 8);
    assert_eq!(b["decode_tokens"], 4);
    assert!(b["loadavg_before"].is_string());
    assert_eq!(b["head"], "f32");
    assert!(b["bytes_per_token"].as_u64().unwrap() > b["head_bytes"].as_u64().unwrap());
    assert!(b["pct_of_bound"].as_f64().unwrap() > 0.0);
    assert!(b["host_ms_per_decode_token"].as_f64().unwrap() > 0.0);
    assert!(b["card"].is_null());
    // on the card model: cycles per token and PE utilization from the card
    let c = bench_run(
        "4",
        "2",
        &["--backend", "model:small", "--bandwidth-seconds", "0"],
    );
    assert_eq!(c["decode_tokens"], 2);
    assert_eq!(c["card"]["pes"], 64);
    for phase in ["prefill", "decode"] {
        let u = c["card"][phase]["pe_utilization"].as_f64().unwrap();
        assert!(u > 0.0 && u <= 1.0, "{phase}: {c}");
        assert!(c["card"][phase]["cycles_per_token"].as_f64().unwrap() > 0.0);
    }
    let heads = bench_run("4", "2", &["--head", "f16,q8", "--bandwidth-seconds", "0"]);
    assert_eq!(heads[0]["head"], "f16");
    assert_eq!(heads[1]["head"], "q8");
    assert!(heads[1]["bound_tokens_per_s"].is_null());
    let k = json(&ok(&[
        "bench",
        "kernels",
        "--quick",
        "--threads",
        "1",
        "--json",
    ]));
    assert_eq!(k["verified"], true);
    let e = fails(&[
        "run",
        "--model",
        g.to_str().unwrap(),
        "--prompt",
        "x",
        "--backend",
        "gpu",
    ]);
    assert!(e.contains("gpu") && e.contains("reference"), "{e}");
}

#[test]
fn card_info_and_selftest_on_the_model() {
    let v = json(&ok(&["card", "info", "--backend", "model:small", "--json"]));
    assert_eq!(v["magic"], 0x6e72_6574u32);
    assert_eq!(v["rows"], 8);
    assert_eq!(v["abi_major"], 1);
    let text = ok(&["card", "info", "--backend", "model"]);
    assert!(text.contains("16×16") && text.contains("ABI 1.0"), "{text}");
    let v = json(&ok(&[
        "card",
        "selftest",
        "--backend",
        "model",
        "--config",
        "small",
        "--seed",
        "7",
        "--json",
    ]));
    assert_eq!(v["ok"], true);
    assert_eq!(v["cases"][0]["name"], "gemv");
    assert_eq!(v["cases"][1]["m"], 11);
    assert_eq!(v["cases"][1]["bit_exact"], true);
    assert_eq!(v["cases"][1]["gemm_commands"], 2);
    let text = ok(&["card", "selftest", "--backend", "model:small"]);
    assert!(
        text.contains("PASS") && text.contains("bit-exact"),
        "{text}"
    );
}

#[test]
fn card_selftest_reports_each_injected_fault() {
    for (fault, want) in [
        ("crc", "CRC_MISMATCH"),
        ("dma", "DMA_ERROR"),
        ("stuck", "heartbeat stopped"),
        ("timeout", "timed out"),
        ("dropped", "completion lost"),
    ] {
        let t0 = std::time::Instant::now();
        let e = fails(&[
            "card",
            "selftest",
            "--backend",
            "model",
            "--config",
            "small",
            "--inject",
            fault,
            "--deadline-ms",
            "400",
        ]);
        assert!(e.contains(want), "--inject {fault}: {e}");
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "--inject {fault} hung"
        );
    }
    let e = fails(&["card", "info", "--backend", "pcie0"]);
    assert!(
        e.contains("unknown back end") && e.contains("vfio:DDDD:BB:DD.F"),
        "{e}"
    );
    let e = fails(&["card", "selftest", "--backend", "sim", "--inject", "crc"]);
    assert!(e.contains("model back end"), "{e}");
}

#[test]
fn card_bench_reports_figures() {
    let v = json(&ok(&[
        "card",
        "bench",
        "--backend",
        "model:small",
        "--seconds",
        "0.05",
        "--gemvs",
        "1",
        "--size",
        "128",
        "--json",
    ]));
    assert!(v["nop_round_trips_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["gemv_us"].as_f64().unwrap() > 0.0);
    assert_eq!(v["gemv_layer"], "128×128");
}
