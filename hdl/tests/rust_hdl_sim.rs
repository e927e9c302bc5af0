//! The whole core in rust-hdl's own simulator (the blocks' `update()` cycle models) against
//! tern-spec's reference, with random stalls. The Verilator testbench checks the emitted
//! Verilog the same way; together they show the models and the Verilog agree.

mod common;

use common::*;
use rust_hdl::prelude::*;
use tern_hdl::core::Core;
use tern_hdl::host::CommandStreams;
use tern_hdl::vlog::wrap_signed;
use tern_hdl::{HdlOptions, Params};

fn get(words: &[u64], at: usize, w: usize) -> u64 {
    (0..w).fold(0u64, |acc, b| {
        acc | (((words[(at + b) / 64] >> ((at + b) % 64)) & 1) << b)
    })
}

#[test]
fn tiny_core_models_match_reference() {
    let cfg = config("tiny", 3, 4, 3, 2, 8);
    let p = Params::new(&cfg, HdlOptions::default()).unwrap();
    let cmds: Vec<CommandStreams> = [(13usize, 7usize, 2usize), (5, 2, 1), (16, 3, 3)]
        .iter()
        .enumerate()
        .map(|(i, &(k, n, m))| random_command(&p, &cfg, 300 + i as u64, k, n, m))
        .collect();
    let (r, c) = (p.rows as usize, p.cols as usize);
    let mut uut = Core::<8, 16>::new(&p);
    uut.clock.connect();
    uut.rst.connect();
    uut.start.connect();
    uut.cmd_k.connect();
    uut.cmd_n.connect();
    uut.cmd_m.connect();
    uut.w_valid.connect();
    uut.act_valid.connect();
    uut.scale_valid.connect();
    uut.out_ready.connect();
    uut.w.iter_mut().for_each(|s| s.connect());
    uut.act.iter_mut().for_each(|s| s.connect());
    uut.scale.iter_mut().for_each(|s| s.connect());
    uut.connect_all();
    let mut sim = Simulation::new();
    sim.add_clock(5, |x: &mut Box<Core<8, 16>>| x.clock.next = !x.clock.val());
    sim.add_testbench(move |mut sim: Sim<Core<8, 16>>| {
        let mut x = sim.init()?;
        let mut seed = 12345u64;
        let mut coin = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) & 3 != 0
        };
        x.rst.next = true;
        wait_clock_cycles!(sim, clock, x, 2);
        x.rst.next = false;
        let mut checked = 0usize;
        for cs in &cmds {
            x.cmd_k.next = bits::<32>(cs.k as u64);
            x.cmd_n.next = bits::<32>(cs.n as u64);
            x.cmd_m.next = bits::<32>(cs.m as u64);
            x.start.next = true;
            wait_clock_cycle!(sim, clock, x);
            x.start.next = false;
            let (mut wi, mut ai, mut si, mut oi) = (0, 0, 0, 0);
            let mut cycles = 0;
            loop {
                x.w_valid.next = wi < cs.weights.len() && coin();
                x.act_valid.next = ai < cs.acts.len() && coin();
                x.scale_valid.next = si < cs.scales.len() && coin();
                x.out_ready.next = coin();
                if wi < cs.weights.len() {
                    for i in 0..r * c {
                        x.w[i].next = bits::<2>(get(&cs.weights[wi], 2 * i, 2));
                    }
                }
                if ai < cs.acts.len() {
                    for i in 0..c {
                        x.act[i].next = bits::<8>(get(&cs.acts[ai], 8 * i, 8));
                    }
                }
                if si < cs.scales.len() {
                    for i in 0..r {
                        x.scale[i].next = bits::<16>(get(&cs.scales[si], 16 * i, 16));
                    }
                }
                x = sim.wait(1, x)?;
                let done = x.done.val();
                if x.w_valid.val() && x.w_ready.val() {
                    wi += 1;
                }
                if x.act_valid.val() && x.act_ready.val() {
                    ai += 1;
                }
                if x.scale_valid.val() && x.scale_ready.val() {
                    si += 1;
                }
                if x.out_valid.val() && x.out_ready.val() {
                    let e = &cs.outputs[oi];
                    let got: Vec<i64> = x
                        .out
                        .iter()
                        .map(|o| wrap_signed(o.val().to_u64() as i128, 64))
                        .collect();
                    sim_assert_eq!(sim, got, e.values.clone(), x);
                    sim_assert_eq!(sim, x.out_token.val().to_u64() as usize, e.token, x);
                    sim_assert_eq!(sim, x.out_n.val().to_u64() as usize, e.n, x);
                    sim_assert_eq!(sim, x.out_last.val(), e.last, x);
                    oi += 1;
                    checked += 1;
                }
                wait_clock_true!(sim, clock, x);
                wait_clock_false!(sim, clock, x);
                cycles += 1;
                if done || cycles > 5000 {
                    break;
                }
            }
            sim_assert!(sim, !x.err.val(), x);
            sim_assert_eq!(
                sim,
                (wi, ai, si, oi),
                (
                    cs.weights.len(),
                    cs.acts.len(),
                    cs.scales.len(),
                    cs.outputs.len()
                ),
                x
            );
        }
        sim_assert_eq!(
            sim,
            checked,
            cmds.iter().map(|c| c.outputs.len()).sum::<usize>(),
            x
        );
        sim.done(x)
    });
    sim.run(Box::new(uut), 2_000_000).unwrap();
}
