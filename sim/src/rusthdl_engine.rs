//! The core in rust-hdl's own simulator (the blocks' `update()` cycle models) as an
//! [`Engine`]: a second opinion next to the emitted Verilog under Verilator.
//!
//! It runs exactly what [`crate::verilator_engine::VerilatorEngine`] runs: the same
//! [`CommandDriver`] with the same RNG seed (so the same beats and the same stalls, cycle by
//! cycle), the same split of M into commands of at most `token_tile` tokens
//! ([`run_tiled`]) and the same cycle count (the start cycle plus one per driven cycle), so
//! both engines report identical outputs *and* identical cycle counts for a case.
//!
//! The core is the const-generic `tern_hdl::core::Core<A, MB>`; the widths are dispatched at
//! run time over [`SUPPORTED_WIDTHS`]. Two ways of stepping it ([`Stepping`]):
//! - [`Stepping::Direct`] (the default) owns the block and steps it by hand: set the inputs'
//!   `next`, settle with `update_all()` until nothing changes, raise the clock and settle,
//!   lower it (settled together with the next inputs). No threads, no channels.
//! - [`Stepping::Simulation`] runs rust-hdl's own `Simulation` (a clock process and a
//!   testbench thread exchanging the boxed circuit over channels), one per command. It is
//!   slower and exists to show that the direct loop computes the same thing.
//!
//! rust-hdl's simulator is slow (thousands of cycles per second): [`RustHdlEngine::max_macs`]
//! refuses cases that would run for minutes.

use crate::case::{Case, Stalls};
use crate::driver::{get_bits, CommandDriver, CycleOutputs, OutVector};
use crate::engine::{Engine, EngineError, RunResult};
use crate::verilator_engine::run_tiled;
use rand_chacha::ChaCha8Rng;
use rust_hdl::prelude::{
    bits, check_all, simulate, Bits, Block, Clock, Logic, Probe, Sim, SimError, Simulation,
};
use std::any::Any;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tern_hdl::core::Core;
use tern_hdl::host::CommandStreams;
use tern_hdl::{HdlOptions, Params};
use tern_spec::ArrayConfig;

const ENGINE: &str = "rusthdl";

/// Delta cycles allowed for the circuit to settle after a change (rust-hdl's `Simulation`
/// uses the same bound).
const MAX_DELTAS: usize = 100;

/// How the block is stepped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stepping {
    /// A hand-written loop over `update_all()` / `has_changed()` (fast).
    #[default]
    Direct,
    /// rust-hdl's `Simulation` with a clock process and a testbench thread, one per command.
    Simulation,
}

fn failed(message: impl Into<String>) -> EngineError {
    EngineError::Failed {
        engine: ENGINE.into(),
        message: message.into(),
    }
}

/// One command's run-time context.
struct Cmd<'a> {
    stalls: Stalls,
    rng: &'a mut ChaCha8Rng,
    seed: u64,
    hang_cycles: u64,
}

/// Access to a core plus the two ways time moves.
trait Harness<const A: usize, const MB: usize> {
    fn core(&mut self) -> Result<&mut Core<A, MB>, EngineError>;
    /// Propagates the inputs set since the last call (no clock edge).
    fn settle(&mut self) -> Result<(), EngineError>;
    /// One full clock cycle: a rising edge, settled, then a falling edge (settled here or,
    /// at the latest, by the next `settle`/`tick`).
    fn tick(&mut self) -> Result<(), EngineError>;
}

/// Stepping by hand.
struct Direct<'a, const A: usize, const MB: usize> {
    core: &'a mut Core<A, MB>,
}

impl<const A: usize, const MB: usize> Direct<'_, A, MB> {
    fn settle_core(&mut self) -> Result<(), EngineError> {
        if simulate(&mut *self.core, MAX_DELTAS) {
            Ok(())
        } else {
            Err(failed(format!(
                "the circuit did not settle within {MAX_DELTAS} delta cycles"
            )))
        }
    }
}

impl<const A: usize, const MB: usize> Harness<A, MB> for Direct<'_, A, MB> {
    fn core(&mut self) -> Result<&mut Core<A, MB>, EngineError> {
        Ok(&mut *self.core)
    }

    fn settle(&mut self) -> Result<(), EngineError> {
        self.settle_core()
    }

    /// The falling edge is left pending and settles with the next inputs: no block acts on
    /// it (every register is rising-edge, `pos_edge()`; clocks are only copied down the
    /// hierarchy); that saves a settle per cycle (≈ 18% of the `update_all` passes). The
    /// `Simulation` stepping settles both edges and gives the same results (tested).
    fn tick(&mut self) -> Result<(), EngineError> {
        if self.core.clock.val().clk {
            // the previous tick's falling edge, when no inputs were set since
            self.settle_core()?;
        }
        self.core.clock.next = Clock::from(true);
        self.settle_core()?;
        self.core.clock.next = Clock::from(false);
        Ok(())
    }
}

/// A core of any widths behind one type, so that rust-hdl's `Simulation` (its threads and
/// channels are generic over the circuit) is instantiated once instead of once per width
/// pair: per pair it cost ~5 s of optimized compile time.
trait DynCore: Block + Send {
    fn clock_high(&self) -> bool;
    fn toggle_clock(&mut self);
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<const A: usize, const MB: usize> DynCore for Core<A, MB> {
    fn clock_high(&self) -> bool {
        self.clock.val().clk
    }

    fn toggle_clock(&mut self) {
        self.clock.next = !self.clock.val();
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The circuit rust-hdl's `Simulation` runs: a transparent wrapper of the core.
struct AnyCore(Box<dyn DynCore>);

impl Logic for AnyCore {
    fn update(&mut self) {}
}

impl Block for AnyCore {
    fn connect_all(&mut self) {
        self.0.connect_all()
    }

    fn update_all(&mut self) {
        self.0.update_all()
    }

    fn has_changed(&self) -> bool {
        self.0.has_changed()
    }

    fn accept(&self, name: &str, probe: &mut dyn Probe) {
        self.0.accept(name, probe)
    }
}

/// Stepping inside a rust-hdl `Simulation` (in its testbench thread).
struct InSim {
    sim: Sim<AnyCore>,
    /// The circuit while the testbench holds it (gone after a simulation error).
    x: Option<Box<AnyCore>>,
}

fn sim_failed(e: SimError) -> EngineError {
    failed(format!("rust-hdl simulation: {e:?}"))
}

fn lost() -> EngineError {
    failed("the simulation lost the circuit")
}

impl InSim {
    fn take(&mut self) -> Result<Box<AnyCore>, EngineError> {
        self.x.take().ok_or_else(lost)
    }
}

impl<const A: usize, const MB: usize> Harness<A, MB> for InSim {
    fn core(&mut self) -> Result<&mut Core<A, MB>, EngineError> {
        self.x
            .as_deref_mut()
            .and_then(|c| c.0.as_any_mut().downcast_mut::<Core<A, MB>>())
            .ok_or_else(lost)
    }

    fn settle(&mut self) -> Result<(), EngineError> {
        // the clock toggles every 5 time units and the testbench always resumes right after
        // a clock edge, so one unit later no edge has happened
        let x = self.take()?;
        self.x = Some(self.sim.wait(1, x).map_err(sim_failed)?);
        Ok(())
    }

    fn tick(&mut self) -> Result<(), EngineError> {
        let x = self.take()?;
        let x = self
            .sim
            .watch(|c: &AnyCore| c.0.clock_high(), x)
            .map_err(sim_failed)?;
        let x = self
            .sim
            .watch(|c: &AnyCore| !c.0.clock_high(), x)
            .map_err(sim_failed)?;
        self.x = Some(x);
        Ok(())
    }
}

/// Synchronous reset for two cycles, all valids and `out_ready` low (as the Verilator
/// engine does).
fn reset<const A: usize, const MB: usize, H: Harness<A, MB>>(h: &mut H) -> Result<(), EngineError> {
    let c = h.core()?;
    c.start.next = false;
    c.w_valid.next = false;
    c.act_valid.next = false;
    c.scale_valid.next = false;
    c.out_ready.next = false;
    c.rst.next = true;
    h.tick()?;
    h.tick()?;
    h.core()?.rst.next = false;
    h.settle()
}

fn cmd_field(name: &str, v: usize) -> Result<Bits<32>, EngineError> {
    u32::try_from(v).map(|v| bits::<32>(v as u64)).map_err(|_| {
        failed(format!(
            "{name} = {v} does not fit the 32-bit command field"
        ))
    })
}

/// Runs one command (M ≤ token_tile): the same sequence of port values, cycle by cycle, as
/// `VerilatorEngine::command`. Returns the output vectors and the cycles counted.
fn command<const A: usize, const MB: usize, H: Harness<A, MB>>(
    h: &mut H,
    streams: &CommandStreams,
    cmd: &mut Cmd,
) -> Result<(Vec<OutVector>, u64), EngineError> {
    let c = h.core()?;
    if c.busy.val() {
        return Err(failed("busy before start"));
    }
    c.cmd_k.next = cmd_field("K", streams.k)?;
    c.cmd_n.next = cmd_field("N", streams.n)?;
    c.cmd_m.next = cmd_field("M", streams.m)?;
    c.start.next = true;
    h.settle()?;
    h.tick()?;
    h.core()?.start.next = false;
    let mut drv = CommandDriver::new(streams, cmd.stalls);
    let (mut last_w, mut last_a, mut last_s) = (usize::MAX, usize::MAX, usize::MAX);
    let mut cycles = 1u64;
    while !drv.finished() {
        let i = drv.inputs(cmd.rng);
        let c = h.core()?;
        c.w_valid.next = i.w.is_some();
        if let Some(w) = i.w.filter(|&w| w != last_w) {
            let beat = &streams.weights[w];
            for (j, s) in c.w.iter_mut().enumerate() {
                s.next = bits::<2>(get_bits(beat, 2 * j, 2));
            }
            last_w = w;
        }
        c.act_valid.next = i.act.is_some();
        if let Some(a) = i.act.filter(|&a| a != last_a) {
            let beat = &streams.acts[a];
            for (j, s) in c.act.iter_mut().enumerate() {
                s.next = bits::<A>(get_bits(beat, A * j, A));
            }
            last_a = a;
        }
        c.scale_valid.next = i.scale.is_some();
        if let Some(sc) = i.scale.filter(|&sc| sc != last_s) {
            let beat = &streams.scales[sc];
            for (j, s) in c.scale.iter_mut().enumerate() {
                s.next = bits::<MB>(get_bits(beat, MB * j, MB));
            }
            last_s = sc;
        }
        c.out_ready.next = i.out_ready;
        h.settle()?;
        let c = h.core()?;
        let out_valid = c.out_valid.val();
        let out = (out_valid && i.out_ready).then(|| OutVector {
            // 64-bit words holding the sign-extended accumulators
            values: c.out.iter().map(|o| o.val().to_u64() as i64).collect(),
            token: c.out_token.val().to_u64() as usize,
            n: c.out_n.val().to_u64() as usize,
            last: c.out_last.val(),
        });
        let o = CycleOutputs {
            w_ready: c.w_ready.val(),
            act_ready: c.act_ready.val(),
            scale_ready: c.scale_ready.val(),
            out_valid,
            out,
        };
        h.tick()?;
        cycles += 1;
        drv.observe(o);
        if drv.idle_cycles() > cmd.hang_cycles {
            return Err(EngineError::Hang {
                engine: ENGINE.into(),
                cycles,
                seed: cmd.seed,
            });
        }
    }
    // the command ends with `busy` low; a refused command raises `err`
    let mut guard = 0;
    while h.core()?.busy.val() {
        h.tick()?;
        guard += 1;
        if guard > 64 {
            return Err(EngineError::Hang {
                engine: ENGINE.into(),
                cycles: cycles + guard,
                seed: cmd.seed,
            });
        }
    }
    if h.core()?.err.val() {
        return Err(failed("the array refused the command (err)"));
    }
    let (rw, ra, rs) = drv.remaining();
    if (rw, ra, rs) != (0, 0, 0) {
        return Err(failed(format!(
            "command finished with beats left over: weights {rw}, acts {ra}, scales {rs} (seed {})",
            cmd.seed
        )));
    }
    Ok((drv.outputs, cycles))
}

/// A core of fixed widths behind a width-independent interface.
trait CoreRunner: Send {
    fn reset(&mut self) -> Result<(), EngineError>;
    fn command(
        &mut self,
        streams: &CommandStreams,
        cmd: &mut Cmd,
    ) -> Result<(Vec<OutVector>, u64), EngineError>;
}

/// A core with its inputs claimed, connected and checked (as `Simulation::run` does).
fn new_core<const A: usize, const MB: usize>(p: &Params) -> Result<Box<Core<A, MB>>, EngineError> {
    let mut c = Box::new(Core::<A, MB>::new(p));
    c.clock.connect();
    c.rst.connect();
    c.start.connect();
    c.cmd_k.connect();
    c.cmd_n.connect();
    c.cmd_m.connect();
    c.w_valid.connect();
    c.act_valid.connect();
    c.scale_valid.connect();
    c.out_ready.connect();
    c.w.iter_mut().for_each(|s| s.connect());
    c.act.iter_mut().for_each(|s| s.connect());
    c.scale.iter_mut().for_each(|s| s.connect());
    c.connect_all();
    check_all(&*c).map_err(|e| failed(format!("rust-hdl check of the core: {e:?}")))?;
    Ok(c)
}

struct DirectRunner<const A: usize, const MB: usize> {
    core: Box<Core<A, MB>>,
}

impl<const A: usize, const MB: usize> CoreRunner for DirectRunner<A, MB> {
    fn reset(&mut self) -> Result<(), EngineError> {
        reset(&mut Direct {
            core: &mut *self.core,
        })
    }

    fn command(
        &mut self,
        streams: &CommandStreams,
        cmd: &mut Cmd,
    ) -> Result<(Vec<OutVector>, u64), EngineError> {
        command(
            &mut Direct {
                core: &mut *self.core,
            },
            streams,
            cmd,
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a job run in a `Simulation` returns.
enum JobOut {
    Reset(Result<(), EngineError>),
    /// The command's result and the driver's RNG after it.
    Command(Result<(Vec<OutVector>, u64), EngineError>, Box<ChaCha8Rng>),
}

/// Work for the testbench thread.
type Job = Box<dyn FnOnce(&mut InSim) -> JobOut + Send>;

/// What the testbench hands back: the job's output and the circuit (`None` when lost).
type JobOutput = (JobOut, Option<Box<AnyCore>>);

/// Runs `job` as the testbench of one rust-hdl `Simulation` of `core` (a clock process
/// toggling every 5 time units, and the testbench). `Simulation::run` consumes its circuit:
/// the testbench keeps `core` (with its state, for the next simulation) and hands `spare`
/// back to the simulation instead.
fn in_simulation(
    core: Box<AnyCore>,
    spare: Box<AnyCore>,
    job: Job,
) -> Result<JobOutput, EngineError> {
    let job = Mutex::new(Some(job));
    let spare = Mutex::new(Some(spare));
    let out: Arc<Mutex<Option<JobOutput>>> = Arc::new(Mutex::new(None));
    let out_tb = Arc::clone(&out);
    let mut sim = Simulation::<AnyCore>::new();
    sim.add_clock(5, |x: &mut Box<AnyCore>| x.0.toggle_clock());
    sim.add_testbench(move |sim: Sim<AnyCore>| {
        let x = sim.init()?;
        let Some(job) = lock(&job).take() else {
            return sim.halt(x);
        };
        let mut h = InSim { sim, x: Some(x) };
        let r = job(&mut h);
        let InSim { sim, x } = h;
        match (x, lock(&spare).take()) {
            (Some(x), Some(spare)) => {
                *lock(&out_tb) = Some((r, Some(x)));
                sim.done(spare)
            }
            (x, _) => {
                *lock(&out_tb) = Some((r, None));
                match x {
                    Some(x) => sim.halt(x),
                    None => Err(SimError::SimTerminated),
                }
            }
        }
    });
    let ran = sim.run(core, u64::MAX);
    // when the job ran to its end, its own result says more than the simulation's
    let got = lock(&out).take();
    match got {
        Some(o) => Ok(o),
        None => Err(failed(format!("rust-hdl simulation: {ran:?}"))),
    }
}

struct SimRunner<const A: usize, const MB: usize> {
    params: Params,
    /// The circuit between simulations (`None` after a failed one: rebuilt and reset).
    core: Option<Box<AnyCore>>,
}

impl<const A: usize, const MB: usize> SimRunner<A, MB> {
    fn run_job(&mut self, job: Job) -> Result<JobOut, EngineError> {
        let core = match self.core.take() {
            Some(c) => c,
            None => {
                let mut c = new_core::<A, MB>(&self.params)?;
                reset(&mut Direct { core: &mut *c })?;
                Box::new(AnyCore(c))
            }
        };
        let spare = Box::new(AnyCore(new_core::<A, MB>(&self.params)?));
        let (out, core) = in_simulation(core, spare, job)?;
        self.core = core;
        Ok(out)
    }
}

impl<const A: usize, const MB: usize> CoreRunner for SimRunner<A, MB> {
    fn reset(&mut self) -> Result<(), EngineError> {
        match self.run_job(Box::new(|h| JobOut::Reset(reset::<A, MB, _>(h))))? {
            JobOut::Reset(r) => r,
            JobOut::Command(..) => Err(failed("a reset returned a command's output")),
        }
    }

    fn command(
        &mut self,
        streams: &CommandStreams,
        cmd: &mut Cmd,
    ) -> Result<(Vec<OutVector>, u64), EngineError> {
        let streams = streams.clone();
        let (stalls, seed, hang_cycles) = (cmd.stalls, cmd.seed, cmd.hang_cycles);
        let mut rng = cmd.rng.clone();
        let out = self.run_job(Box::new(move |h| {
            let mut c = Cmd {
                stalls,
                rng: &mut rng,
                seed,
                hang_cycles,
            };
            let r = command::<A, MB, _>(h, &streams, &mut c);
            JobOut::Command(r, Box::new(rng))
        }))?;
        match out {
            JobOut::Command(r, rng) => {
                *cmd.rng = *rng;
                r
            }
            JobOut::Reset(_) => Err(failed("a command returned a reset's output")),
        }
    }
}

fn runner<const A: usize, const MB: usize>(
    p: &Params,
    stepping: Stepping,
) -> Result<Box<dyn CoreRunner>, EngineError> {
    let mut r: Box<dyn CoreRunner> = match stepping {
        Stepping::Direct => Box::new(DirectRunner::<A, MB> { core: new_core(p)? }),
        Stepping::Simulation => Box::new(SimRunner::<A, MB> {
            params: p.clone(),
            core: Some(Box::new(AnyCore(new_core::<A, MB>(p)?))),
        }),
    };
    r.reset()?;
    Ok(r)
}

/// Instantiates the core for each supported (activation.bits, scale.mantissa_bits) pair:
/// every pair is a separate monomorphization of the whole block hierarchy.
macro_rules! supported_widths {
    ($(($a:literal, $mb:literal)),* $(,)?) => {
        /// (activation.bits, scale.mantissa_bits) pairs the engine has a core instance for.
        pub const SUPPORTED_WIDTHS: &[(u32, u32)] = &[$(($a, $mb)),*];

        fn dispatch(
            p: &Params,
            stepping: Stepping,
        ) -> Option<Result<Box<dyn CoreRunner>, EngineError>> {
            match (p.act_bits, p.mant_bits) {
                $(($a, $mb) => Some(runner::<$a, $mb>(p, stepping)),)*
                _ => None,
            }
        }
    };
}

supported_widths!(
    (4, 16),
    (5, 16),
    (6, 16),
    (7, 16),
    (8, 16),
    (8, 8),
    (8, 12),
    (8, 20),
    (8, 24),
);

/// Whether the engine can simulate `cfg`; the error says which widths it can.
pub fn check_supported(cfg: &ArrayConfig) -> Result<(), EngineError> {
    let (a, mb) = (cfg.activation.bits, cfg.scale.mantissa_bits);
    if SUPPORTED_WIDTHS.contains(&(a, mb)) {
        return Ok(());
    }
    let list: Vec<String> = SUPPORTED_WIDTHS
        .iter()
        .map(|(a, mb)| format!("({a}, {mb})"))
        .collect();
    Err(EngineError::Unavailable {
        engine: ENGINE.into(),
        why: format!(
            "activation.bits = {a}, scale.mantissa_bits = {mb}: supported (activation.bits, \
             scale.mantissa_bits) are {} (activation.bits 4..=8 with mantissa_bits 16, \
             activation.bits 8 with mantissa_bits 8, 12, 20, 24); the verilator engine runs \
             every width",
            list.join(", ")
        ),
    })
}

/// The rust-hdl engine for one config.
pub struct RustHdlEngine {
    cfg: ArrayConfig,
    params: Params,
    stepping: Stepping,
    core: Box<dyn CoreRunner>,
    /// Cycles without progress before a run is declared hung.
    pub hang_cycles: u64,
    /// Largest case (M·N·K) a run accepts; larger ones are refused with
    /// [`EngineError::Unavailable`] instead of simulating for minutes. An optimized build
    /// simulates about 1M MACs per second (small and default configs, one loaded core), so
    /// the default allows runs of about 20 s.
    pub max_macs: u64,
    /// Total cycles simulated by this engine (all runs; counted as the Verilator engine
    /// counts them).
    pub total_cycles: u64,
    /// Wall time spent in [`Engine::run`] (all runs).
    pub total_seconds: f64,
}

impl RustHdlEngine {
    /// Default of [`RustHdlEngine::max_macs`].
    pub const DEFAULT_MAX_MACS: u64 = 20_000_000;
    /// Default of [`RustHdlEngine::hang_cycles`].
    pub const DEFAULT_HANG_CYCLES: u64 = 10_000;

    /// The engine for `cfg`, stepping the block directly; the core is reset once here.
    pub fn new(cfg: &ArrayConfig) -> Result<Self, EngineError> {
        Self::with_stepping(cfg, Stepping::Direct)
    }

    /// The engine for `cfg` with the given way of stepping the block.
    pub fn with_stepping(cfg: &ArrayConfig, stepping: Stepping) -> Result<Self, EngineError> {
        check_supported(cfg)?;
        let params = Params::new(cfg, HdlOptions::default()).map_err(|e| failed(e.to_string()))?;
        let core = dispatch(&params, stepping)
            .ok_or_else(|| failed("width dispatch out of sync with SUPPORTED_WIDTHS"))??;
        Ok(Self {
            cfg: cfg.clone(),
            params,
            stepping,
            core,
            hang_cycles: Self::DEFAULT_HANG_CYCLES,
            max_macs: Self::DEFAULT_MAX_MACS,
            total_cycles: 0,
            total_seconds: 0.0,
        })
    }

    /// Sets [`RustHdlEngine::max_macs`].
    pub fn with_max_macs(mut self, max_macs: u64) -> Self {
        self.max_macs = max_macs;
        self
    }

    pub fn stepping(&self) -> Stepping {
        self.stepping
    }

    /// Synchronous reset for two cycles (not counted in any run's cycles).
    pub fn reset(&mut self) -> Result<(), EngineError> {
        self.core.reset()
    }

    /// Simulated cycles per second of wall time over all runs so far.
    pub fn cycles_per_second(&self) -> f64 {
        self.total_cycles as f64 / self.total_seconds.max(1e-9)
    }
}

impl Engine for RustHdlEngine {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn run(&mut self, case: &Case) -> Result<RunResult, EngineError> {
        case.w.check_fits(&self.cfg)?;
        let macs = (case.acts.m() * case.w.n() * case.w.k()) as u64;
        if macs > self.max_macs {
            return Err(EngineError::Unavailable {
                engine: ENGINE.into(),
                why: format!(
                    "the case has {macs} MACs (M {} × N {} × K {}), more than max_macs = {}: \
                     rust-hdl's simulator runs thousands of cycles per second; use the \
                     verilator engine, or raise RustHdlEngine::max_macs",
                    case.acts.m(),
                    case.w.n(),
                    case.w.k(),
                    self.max_macs
                ),
            });
        }
        let t0 = Instant::now();
        let mut rng = tern_spec::random::rng(case.spec.seed ^ 0x57a1_1500);
        let stalls = case.spec.stalls;
        let (seed, hang_cycles) = (case.spec.seed, self.hang_cycles);
        let core = &mut self.core;
        let mut cycles = 0u64;
        let r = run_tiled(&self.cfg, &self.params, case, |st| {
            let mut cmd = Cmd {
                stalls,
                rng: &mut rng,
                seed,
                hang_cycles,
            };
            let r = core.command(st, &mut cmd)?;
            cycles += r.1;
            Ok(r)
        });
        // cycles of completed commands count even when a later one fails, as in the
        // Verilator engine
        self.total_cycles += cycles;
        self.total_seconds += t0.elapsed().as_secs_f64();
        r
    }
}

/// Simulation speed of one run of one engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    pub engine: &'static str,
    /// Cycles the engine reported (`None` for engines without a clock).
    pub cycles: Option<u64>,
    /// Wall time of the run.
    pub seconds: f64,
    /// M·N·K of the case.
    pub macs: u64,
}

impl Throughput {
    /// Simulated cycles per second of wall time.
    pub fn cycles_per_second(&self) -> Option<f64> {
        self.cycles.map(|c| c as f64 / self.seconds.max(1e-9))
    }

    /// Case MACs per second of wall time.
    pub fn macs_per_second(&self) -> f64 {
        self.macs as f64 / self.seconds.max(1e-9)
    }
}

/// Runs `case` once on `engine` and times it (wall clock, the whole `run`).
pub fn throughput(
    engine: &mut dyn Engine,
    case: &Case,
) -> Result<(Throughput, RunResult), EngineError> {
    let t0 = Instant::now();
    let r = engine.run(case)?;
    let seconds = t0.elapsed().as_secs_f64();
    Ok((
        Throughput {
            engine: engine.name(),
            cycles: r.cycles,
            seconds,
            macs: (case.acts.m() * case.w.n() * case.w.k()) as u64,
        },
        r,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::CaseSpec;
    use crate::engine::ReferenceEngine;

    #[test]
    fn unsupported_widths_are_unavailable() {
        let mut cfg = ArrayConfig::builtin("small").unwrap();
        cfg.scale.mantissa_bits = 12;
        cfg.activation.bits = 6;
        match RustHdlEngine::new(&cfg) {
            Err(EngineError::Unavailable { engine, why }) => {
                assert_eq!(engine, "rusthdl");
                assert!(
                    why.contains("activation.bits = 6, scale.mantissa_bits = 12"),
                    "{why}"
                );
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted (6, 12)"),
        }
    }

    #[test]
    fn small_case_matches_reference() {
        let cfg = ArrayConfig::builtin("small").unwrap();
        let case = CaseSpec::simple(&cfg, 5, 3, 10, 70).build(&cfg).unwrap();
        let want = ReferenceEngine::new(&cfg).run(&case).unwrap();
        let mut e = RustHdlEngine::new(&cfg).unwrap();
        let got = e.run(&case).unwrap();
        assert_eq!(got.acc, want.acc);
        assert_eq!(got.cycles, Some(e.total_cycles));
        e.max_macs = 100;
        assert!(matches!(e.run(&case), Err(EngineError::Unavailable { .. })));
    }
}
