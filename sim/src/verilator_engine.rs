//! The emitted Verilog under Verilator as an [`Engine`]: the truth the other engines are
//! held to. The wrapper of the config is generated in memory by tern-hdl, built (or found
//! in the cache) by [`crate::verilator`], and driven by [`crate::driver`].

use crate::case::Case;
use crate::driver::{to_u32_words, CommandDriver, CycleOutputs, OutVector};
use crate::engine::{Engine, EngineError, RunResult};
use crate::verilator::{BuildSpec, BuiltModel, Direction, Model, PortSpec, Toolchain};
use ndarray::{s, Array2};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use tern_hdl::host::command_streams;
use tern_hdl::{HdlOptions, Params};
use tern_spec::ArrayConfig;

/// Port indices of the wrapper.
struct Ports {
    clk: usize,
    rst: usize,
    start: usize,
    cmd_k: usize,
    cmd_n: usize,
    cmd_m: usize,
    busy: usize,
    err: usize,
    w_valid: usize,
    w_ready: usize,
    w_data: usize,
    act_valid: usize,
    act_ready: usize,
    act_data: usize,
    scale_valid: usize,
    scale_ready: usize,
    scale_data: usize,
    out_valid: usize,
    out_ready: usize,
    out_data: usize,
    out_token: usize,
    out_n: usize,
    out_last: usize,
}

/// The Verilator engine for one config.
pub struct VerilatorEngine {
    cfg: ArrayConfig,
    params: Params,
    built: BuiltModel,
    model: Model,
    ports: Ports,
    trace: Option<PathBuf>,
    /// Cycles without progress before a run is declared hung.
    pub hang_cycles: u64,
    /// Total cycles simulated by this engine (all runs).
    pub total_cycles: u64,
}

/// Builds (or finds in the cache) the Verilated wrapper of `cfg`.
pub fn build(cfg: &ArrayConfig, trace: bool) -> Result<BuiltModel, EngineError> {
    let tc = Toolchain::find()?;
    let g =
        tern_hdl::emit::generate(cfg, HdlOptions::default()).map_err(|e| EngineError::Failed {
            engine: "verilator".into(),
            message: e.to_string(),
        })?;
    let ports = g
        .manifest
        .ports
        .iter()
        .map(|p| {
            PortSpec::new(
                &p.name,
                if p.dir == "input" {
                    Direction::Input
                } else {
                    Direction::Output
                },
                p.width,
            )
        })
        .collect();
    let spec = BuildSpec {
        top: g.manifest.top.clone(),
        sources: g
            .files
            .iter()
            .filter(|(n, _)| n.ends_with(".v"))
            .cloned()
            .collect(),
        ports,
        trace,
        extra_args: vec![],
    };
    Ok(spec.build(&tc)?)
}

impl VerilatorEngine {
    /// Builds the model for `cfg`; with `trace`, every run writes a VCD there.
    pub fn new(cfg: &ArrayConfig, trace: Option<&Path>) -> Result<Self, EngineError> {
        let params = Params::new(cfg, HdlOptions::default()).map_err(|e| EngineError::Failed {
            engine: "verilator".into(),
            message: e.to_string(),
        })?;
        let built = build(cfg, trace.is_some())?;
        let model = built.instantiate()?;
        let p = |n: &str| model.port(n);
        let ports = Ports {
            clk: p("clk")?,
            rst: p("rst")?,
            start: p("start")?,
            cmd_k: p("cmd_k")?,
            cmd_n: p("cmd_n")?,
            cmd_m: p("cmd_m")?,
            busy: p("busy")?,
            err: p("err")?,
            w_valid: p("w_valid")?,
            w_ready: p("w_ready")?,
            w_data: p("w_data")?,
            act_valid: p("act_valid")?,
            act_ready: p("act_ready")?,
            act_data: p("act_data")?,
            scale_valid: p("scale_valid")?,
            scale_ready: p("scale_ready")?,
            scale_data: p("scale_data")?,
            out_valid: p("out_valid")?,
            out_ready: p("out_ready")?,
            out_data: p("out_data")?,
            out_token: p("out_token")?,
            out_n: p("out_n")?,
            out_last: p("out_last")?,
        };
        let mut e = Self {
            cfg: cfg.clone(),
            params,
            built,
            model,
            ports,
            trace: trace.map(Path::to_path_buf),
            hang_cycles: 100_000,
            total_cycles: 0,
        };
        if let Some(t) = &e.trace {
            e.model.trace_open(t)?;
        }
        e.reset()?;
        Ok(e)
    }

    /// Whether this build came from the cache.
    pub fn cached(&self) -> bool {
        !self.built.fresh
    }

    /// Synchronous reset for two cycles.
    pub fn reset(&mut self) -> Result<(), EngineError> {
        let m = &mut self.model;
        for i in [
            self.ports.start,
            self.ports.w_valid,
            self.ports.act_valid,
            self.ports.scale_valid,
            self.ports.out_ready,
        ] {
            m.set_u64(i, 0)?;
        }
        m.set_u64(self.ports.rst, 1)?;
        m.tick(self.ports.clk, 2)?;
        m.set_u64(self.ports.rst, 0)?;
        m.eval();
        Ok(())
    }

    fn bit(&mut self, port: usize) -> Result<bool, EngineError> {
        Ok(self.model.get_u64(port)? & 1 == 1)
    }

    /// Runs one command (M ≤ token_tile) and returns its output vectors and cycles.
    fn command(
        &mut self,
        streams: &tern_hdl::host::CommandStreams,
        stalls: crate::case::Stalls,
        rng: &mut ChaCha8Rng,
        seed: u64,
    ) -> Result<(Vec<OutVector>, u64), EngineError> {
        let pt = &self.ports;
        let (clk, start) = (pt.clk, pt.start);
        if self.bit(self.ports.busy)? {
            return Err(EngineError::Failed {
                engine: "verilator".into(),
                message: "busy before start".into(),
            });
        }
        self.model.set_u64(self.ports.cmd_k, streams.k as u64)?;
        self.model.set_u64(self.ports.cmd_n, streams.n as u64)?;
        self.model.set_u64(self.ports.cmd_m, streams.m as u64)?;
        self.model.set_u64(start, 1)?;
        self.model.eval();
        self.model.tick(clk, 1)?;
        self.model.set_u64(start, 0)?;
        let rows = self.params.rows as usize;
        let (w_bits, a_bits, s_bits) = (
            self.model.ports()[self.ports.w_data].width,
            self.model.ports()[self.ports.act_data].width,
            self.model.ports()[self.ports.scale_data].width,
        );
        let mut drv = CommandDriver::new(streams, stalls);
        let mut buf = Vec::new();
        let mut out_words = vec![0u32; rows * 2];
        let (mut last_w, mut last_a, mut last_s) = (usize::MAX, usize::MAX, usize::MAX);
        let mut cycles = 1u64;
        while !drv.finished() {
            let i = drv.inputs(rng);
            let pt = &self.ports;
            let m = &mut self.model;
            m.set_u64(pt.w_valid, i.w.is_some() as u64)?;
            if let Some(w) = i.w.filter(|&w| w != last_w) {
                to_u32_words(&streams.weights[w], w_bits, &mut buf);
                m.set(pt.w_data, &buf)?;
                last_w = w;
            }
            m.set_u64(pt.act_valid, i.act.is_some() as u64)?;
            if let Some(a) = i.act.filter(|&a| a != last_a) {
                to_u32_words(&streams.acts[a], a_bits, &mut buf);
                m.set(pt.act_data, &buf)?;
                last_a = a;
            }
            m.set_u64(pt.scale_valid, i.scale.is_some() as u64)?;
            if let Some(s) = i.scale.filter(|&s| s != last_s) {
                to_u32_words(&streams.scales[s], s_bits, &mut buf);
                m.set(pt.scale_data, &buf)?;
                last_s = s;
            }
            m.set_u64(pt.out_ready, i.out_ready as u64)?;
            m.eval();
            let out_valid = m.get_u64(pt.out_valid)? & 1 == 1;
            let out = if out_valid && i.out_ready {
                m.get_into(pt.out_data, &mut out_words)?;
                let values = (0..rows)
                    .map(|r| (out_words[2 * r] as u64 | (out_words[2 * r + 1] as u64) << 32) as i64)
                    .collect();
                Some(OutVector {
                    values,
                    token: m.get_u64(pt.out_token)? as usize,
                    n: m.get_u64(pt.out_n)? as usize,
                    last: m.get_u64(pt.out_last)? & 1 == 1,
                })
            } else {
                None
            };
            let o = CycleOutputs {
                w_ready: m.get_u64(pt.w_ready)? & 1 == 1,
                act_ready: m.get_u64(pt.act_ready)? & 1 == 1,
                scale_ready: m.get_u64(pt.scale_ready)? & 1 == 1,
                out_valid,
                out,
            };
            m.tick(pt.clk, 1)?;
            cycles += 1;
            drv.observe(o);
            if drv.idle_cycles() > self.hang_cycles {
                return Err(EngineError::Hang {
                    engine: "verilator".into(),
                    cycles,
                    seed,
                });
            }
        }
        // the command ends with `busy` low; a refused command raises `err`
        let mut guard = 0;
        while self.bit(self.ports.busy)? {
            self.model.tick(clk, 1)?;
            guard += 1;
            if guard > 64 {
                return Err(EngineError::Hang {
                    engine: "verilator".into(),
                    cycles: cycles + guard,
                    seed,
                });
            }
        }
        if self.bit(self.ports.err)? {
            return Err(EngineError::Failed {
                engine: "verilator".into(),
                message: "the array refused the command (err)".into(),
            });
        }
        let (rw, ra, rs) = drv.remaining();
        if (rw, ra, rs) != (0, 0, 0) {
            return Err(EngineError::Failed {
                engine: "verilator".into(),
                message: format!("command finished with beats left over: weights {rw}, acts {ra}, scales {rs} (seed {seed})"),
            });
        }
        self.total_cycles += cycles;
        Ok((drv.outputs, cycles))
    }
}

/// Splits M tokens into commands of at most `token_tile` and runs `cmd` on each; assembles
/// acc [M, N]. Shared by the cycle-level engines.
pub(crate) fn run_tiled<F>(
    cfg: &ArrayConfig,
    params: &Params,
    case: &Case,
    mut cmd: F,
) -> Result<RunResult, EngineError>
where
    F: FnMut(&tern_hdl::host::CommandStreams) -> Result<(Vec<OutVector>, u64), EngineError>,
{
    let (m, n) = (case.acts.m(), case.w.n());
    let tile = cfg.array.token_tile as usize;
    let rows = params.rows as usize;
    let mut acc = Array2::<i64>::zeros((m, n));
    let mut cycles = 0u64;
    let mut t0 = 0;
    while t0 < m {
        let t1 = (t0 + tile).min(m);
        let a = case.acts.q.slice(s![t0..t1, ..]);
        // the expected values inside the streams are not used by the engines
        let dummy = Array2::<i64>::zeros((t1 - t0, n));
        let streams = command_streams(params, &case.w, a, &dummy);
        let (outs, c) = cmd(&streams)?;
        cycles += c;
        let expected_vectors = n.div_ceil(rows) * (t1 - t0);
        if outs.len() != expected_vectors {
            return Err(EngineError::Failed {
                engine: "cycle".into(),
                message: format!("{} output vectors, expected {expected_vectors}", outs.len()),
            });
        }
        for v in outs {
            for (lane, &val) in v.values.iter().enumerate() {
                let nn = v.n + lane;
                if nn < n && v.token < t1 - t0 {
                    acc[(t0 + v.token, nn)] = val;
                }
            }
        }
        t0 = t1;
    }
    Ok(RunResult {
        acc,
        cycles: Some(cycles),
    })
}

impl Engine for VerilatorEngine {
    fn name(&self) -> &'static str {
        "verilator"
    }

    fn run(&mut self, case: &Case) -> Result<RunResult, EngineError> {
        case.w.check_fits(&self.cfg)?;
        let mut rng = tern_spec::random::rng(case.spec.seed ^ 0x57a1_1500);
        let stalls = case.spec.stalls;
        let seed = case.spec.seed;
        let cfg = self.cfg.clone();
        let params = self.params.clone();
        let r = run_tiled(&cfg, &params, case, |st| {
            self.command(st, stalls, &mut rng, seed)
        })?;
        if self.trace.is_some() {
            self.model.trace_close();
            // reopen appends nothing: one traced run per engine
            self.trace = None;
        }
        Ok(r)
    }
}

/// Ideal cycles of a GEMM on `cfg` without stalls (sum over commands of ≤ token_tile tokens).
pub fn ideal_cycles(cfg: &ArrayConfig, m: usize, n: usize, k: usize) -> u64 {
    let p = Params::new(cfg, HdlOptions::default()).expect("valid config");
    let tile = cfg.array.token_tile as usize;
    let mut c = 0u64;
    let mut t0 = 0;
    while t0 < m {
        let t1 = (t0 + tile).min(m);
        c += tern_hdl::host::ideal_cycles(&p, k, n, t1 - t0) as u64;
        t0 = t1;
    }
    c
}

/// Useful MACs ÷ PE-cycles.
pub fn utilization(cfg: &ArrayConfig, macs: u64, cycles: u64) -> f64 {
    macs as f64 / (cfg.macs_per_cycle() as f64 * cycles.max(1) as f64)
}
