//! The Verilator layer on a small fixture: build, cache, drive every width class, trace.

use rand::{Rng, SeedableRng};
use tern_sim::verilator::{BuildSpec, Direction, PortSpec, SimError, Toolchain};

fn spec(trace: bool) -> BuildSpec {
    BuildSpec {
        top: "acc".into(),
        sources: vec![("acc.v".into(), include_str!("fixtures/acc.v").into())],
        ports: vec![
            PortSpec::new("clk", Direction::Input, 1),
            PortSpec::new("rst", Direction::Input, 1),
            PortSpec::new("a", Direction::Input, 8),
            PortSpec::new("wide_in", Direction::Input, 100),
            PortSpec::new("sum", Direction::Output, 40),
            PortSpec::new("wide_out", Direction::Output, 100),
        ],
        trace,
        extra_args: vec![],
    }
}

#[test]
fn fixture_matches_rust_model() {
    let Some(tc) = Toolchain::find_or_skip().unwrap() else {
        return;
    };
    let built = spec(false).build(&tc).unwrap();
    let again = spec(false).build(&tc).unwrap();
    assert!(!again.fresh, "second build must come from the cache");
    assert_eq!(built.hash, again.hash);

    let mut m = built.instantiate().unwrap();
    let (clk, rst, a, wi, sum, wo) = (
        m.port("clk").unwrap(),
        m.port("rst").unwrap(),
        m.port("a").unwrap(),
        m.port("wide_in").unwrap(),
        m.port("sum").unwrap(),
        m.port("wide_out").unwrap(),
    );
    m.set_u64(rst, 1).unwrap();
    m.tick(clk, 2).unwrap();
    m.set_u64(rst, 0).unwrap();
    let seed: u64 = 0x7e57;
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let mut model: i64 = 0;
    for cycle in 0..5000 {
        let v: i8 = r.gen();
        m.set_u64(a, v as u8 as u64).unwrap();
        m.tick(clk, 1).unwrap();
        model = (model + v as i64) & ((1 << 40) - 1);
        assert_eq!(
            m.get_u64(sum).unwrap() as i64,
            model,
            "seed {seed}, cycle {cycle}"
        );
    }
    let w: Vec<u32> = vec![0x1234_5678, 0xdead_beef, 0x0bad_f00d, 0xf];
    m.set(wi, &w).unwrap();
    m.eval();
    let out = m.get(wo).unwrap();
    assert_eq!(out, vec![!w[0], !w[1], !w[2], 0x0]);

    // errors name the problem
    assert!(matches!(m.port("nope"), Err(SimError::UnknownPort { .. })));
    assert!(matches!(
        m.set_u64(sum, 1),
        Err(SimError::PortDirection { .. })
    ));
    assert!(matches!(
        m.set(wi, &[1, 2]),
        Err(SimError::PortWidth {
            need: 4,
            got: 2,
            ..
        })
    ));
}

#[test]
fn trace_writes_vcd() {
    let Some(tc) = Toolchain::find_or_skip().unwrap() else {
        return;
    };
    let built = spec(true).build(&tc).unwrap();
    let mut m = built.instantiate().unwrap();
    let dir = std::env::temp_dir().join(format!("tern-sim-vcd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("acc.vcd");
    m.trace_open(&path).unwrap();
    let clk = m.port("clk").unwrap();
    let a = m.port("a").unwrap();
    m.set_u64(a, 3).unwrap();
    m.tick(clk, 10).unwrap();
    m.trace_close();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("$var") && text.contains(" sum "),
        "VCD lacks the sum signal"
    );
    assert!(text.contains("#19"), "VCD has the last timestamp");
    std::fs::remove_dir_all(&dir).unwrap();
    // a model built without tracing refuses to trace
    let mut m2 = spec(false).build(&tc).unwrap().instantiate().unwrap();
    assert!(m2.trace_open(&path).is_err());
}

#[test]
fn verilog_errors_show_the_log() {
    let Some(tc) = Toolchain::find_or_skip().unwrap() else {
        return;
    };
    let mut s = spec(false);
    s.sources = vec![(
        "acc.v".into(),
        "module acc(input clk); syntax error here\nendmodule\n".into(),
    )];
    let e = s.build(&tc).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("verilator on top `acc` failed") && msg.contains("acc.v"),
        "{msg}"
    );
}
