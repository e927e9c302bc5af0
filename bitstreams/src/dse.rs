//! Design-space exploration: sweep array shapes on a board, estimate every point with yosys,
//! place and route the Pareto front, project tokens/s with [`crate::perf`].
//!
//! 1. Points: every combination of `rows`, `cols`, `block.k` and `tree_reg_every` that is a
//!    legal config (block.k a multiple of cols; psum width raised to what block.k needs),
//!    the other fields from the base config.
//! 2. Estimate: yosys synthesizes each bare array for the board's family (cached in
//!    `<out>/points/NAME/` by a hash of the generated Verilog, so a changed RTL re-runs).
//!    A point fits when its LUTs and flip-flops are within the board's capacity.
//! 3. Projection with Fmax = the config's `clock.target_mhz` (no timing yet), Pareto front on
//!    (array LUTs ↓, projected tokens/s ↑) among the points that fit. On a board without
//!    weight memory the front uses the compute-bound tokens/s.
//! 4. Open-flow boards: place and route (with the LED wrapper) up to `pnr_limit` front
//!    points, smallest first; their measured Fmax replaces the target, the projection and the
//!    front are recomputed. Table and SVG mark which Fmax is measured.

use crate::board::{Board, Flow};
use crate::error::{write_file, SynthError};
use crate::flow::{self, Depth, SynthOptions};
use crate::perf::{self, ModelShape, Projection};
use crate::svg;
use crate::tools::Observer;
use crate::yosys::Resources;
use serde::Serialize;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use tern_hdl::{HdlOptions, Params};
use tern_spec::{widths, ArrayConfig, BlockShape};

/// Format tag of `dse.json`.
pub const DSE_FORMAT: &str = "tern-dse-report/1";

/// The swept values.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub rows: Vec<u32>,
    pub cols: Vec<u32>,
    pub block_k: Vec<u32>,
    pub tree_reg_every: Vec<u32>,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            rows: vec![8, 16, 32],
            cols: vec![8, 16, 32],
            block_k: vec![64],
            tree_reg_every: vec![1, 2],
        }
    }
}

/// One point's config and generator options.
#[derive(Debug, Clone)]
pub struct PointSpec {
    pub name: String,
    pub cfg: ArrayConfig,
    pub hdl: HdlOptions,
}

/// The legal points of a sweep around `base`.
pub fn points(base: &ArrayConfig, sweep: &Sweep) -> Vec<PointSpec> {
    let mut out = Vec::new();
    for &r in &sweep.rows {
        for &c in &sweep.cols {
            for &bk in &sweep.block_k {
                for &t in &sweep.tree_reg_every {
                    let name = format!("dse_r{r}_c{c}_k{bk}_t{t}");
                    let mut cfg = base.clone();
                    cfg.name = name.clone();
                    cfg.array.rows = r;
                    cfg.array.cols = c;
                    cfg.block = BlockShape {
                        n: base.block.n,
                        k: bk,
                    };
                    cfg.accumulator.psum_bits = cfg
                        .accumulator
                        .psum_bits
                        .max(widths::required_psum_bits(bk as u64, cfg.activation.bits));
                    let hdl = HdlOptions {
                        tree_reg_every: t,
                        ..HdlOptions::default()
                    };
                    if cfg.validate("<dse>").is_ok() && Params::new(&cfg, hdl).is_ok() {
                        out.push(PointSpec { name, cfg, hdl });
                    }
                }
            }
        }
    }
    out
}

/// Where a point's Fmax comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FmaxSource {
    /// Measured by nextpnr after routing.
    PlaceAndRoute,
    /// Not placed: the config's target clock, assumed.
    Target,
}

/// A placed point.
#[derive(Debug, Clone, Serialize)]
pub struct Placed {
    pub fmax_mhz: f64,
    pub timing_met: bool,
    /// nextpnr logic cells used, % of the device (LUT-like cell kind of the family).
    pub logic_percent: f64,
    pub report: PathBuf,
}

/// One evaluated point.
#[derive(Debug, Clone, Serialize)]
pub struct DsePoint {
    pub name: String,
    pub rows: u32,
    pub cols: u32,
    pub block_k: u32,
    pub tree_reg_every: u32,
    /// The bare array's yosys resources.
    pub resources: Resources,
    /// max(LUT, FF) share of the board's capacity, %.
    pub util_percent: f64,
    pub fits: bool,
    pub fmax_mhz: f64,
    pub fmax_source: FmaxSource,
    pub placed: Option<Placed>,
    pub projection: Projection,
    pub pareto: bool,
}

/// `dse.json`.
#[derive(Debug, Clone, Serialize)]
pub struct DseReport {
    pub format: &'static str,
    pub board: String,
    pub model: ModelShape,
    pub base_config: String,
    pub target_mhz: f64,
    pub sweep: Sweep,
    /// What the front maximizes: `tokens_per_s` or `compute_tokens_per_s` (no memory).
    pub front_metric: &'static str,
    pub points: Vec<DsePoint>,
    /// Names of the Pareto-front points, smallest first.
    pub pareto: Vec<String>,
    /// Points whose estimate failed, with the error.
    pub failed: Vec<(String, String)>,
    pub svg: PathBuf,
    pub out_dir: PathBuf,
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct DseOptions {
    pub out_dir: PathBuf,
    /// Front points to place and route (open flows).
    pub pnr_limit: usize,
    pub seed: u64,
}

fn fnv(text: &str, mut h: u64) -> u64 {
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Cache key of an estimate: the generated files, the family and the yosys arguments.
fn cache_key(board: &Board, spec: &PointSpec) -> Result<String, SynthError> {
    let g = tern_hdl::emit::generate(&spec.cfg, spec.hdl)?;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (name, text) in &g.files {
        h = fnv(name, h);
        h = fnv(text, h);
    }
    h = fnv(board.family().as_str(), h);
    h = fnv(&board.spec.synth.yosys_args.join(" "), h);
    h = fnv(board.spec.part.xilinx_family.as_deref().unwrap_or(""), h);
    Ok(format!("{h:016x}"))
}

fn cached_estimate(dir: &Path, key: &str) -> Option<Resources> {
    let k = std::fs::read_to_string(dir.join("estimate.key")).ok()?;
    if k.trim() != key {
        return None;
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).ok()?).ok()?;
    serde_json::from_value(v.get("resources")?.get("array")?.clone()).ok()
}

/// The value a front maximizes.
fn merit(p: &DsePoint, no_memory: bool) -> f64 {
    if no_memory {
        p.projection.compute_tokens_per_s
    } else {
        p.projection.tokens_per_s
    }
}

/// Marks the Pareto front (fewest LUTs, most tokens/s) among the points that fit; returns
/// the front's indices, smallest first.
pub fn mark_pareto(points: &mut [DsePoint], no_memory: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len()).filter(|&i| points[i].fits).collect();
    idx.sort_by(|&a, &b| {
        points[a]
            .resources
            .lut
            .cmp(&points[b].resources.lut)
            .then(merit(&points[b], no_memory).total_cmp(&merit(&points[a], no_memory)))
    });
    for p in points.iter_mut() {
        p.pareto = false;
    }
    let mut best = f64::NEG_INFINITY;
    let mut front = Vec::new();
    for i in idx {
        let m = merit(&points[i], no_memory);
        if m > best {
            best = m;
            points[i].pareto = true;
            front.push(i);
        }
    }
    front
}

/// Runs the exploration (see the module docs); writes `dse.json`, `dse.svg` and `dse.txt`.
pub fn run(
    board: &Board,
    base: &ArrayConfig,
    model: &ModelShape,
    sweep: &Sweep,
    opts: &DseOptions,
    obs: &dyn Observer,
) -> Result<DseReport, SynthError> {
    let out = &opts.out_dir;
    std::fs::create_dir_all(out).map_err(|e| SynthError::io(out, e))?;
    let out = &out.canonicalize().map_err(|e| SynthError::io(out, e))?;
    let specs = points(base, sweep);
    if specs.is_empty() {
        return Err(SynthError::Unsupported(
            "the sweep has no legal point (block.k must be a multiple of cols)".into(),
        ));
    }
    let cap = &board.spec.resources;
    let mem = &board.spec.memory;
    let no_memory = mem.bandwidth_gbs <= 0.0;
    let target = base.clock.target_mhz;
    let mut pts = Vec::new();
    let mut failed = Vec::new();
    let mut spec_of = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        obs.point(i + 1, specs.len(), &s.name, "estimate");
        let dir = out.join("points").join(&s.name);
        let key = cache_key(board, s)?;
        let res = match cached_estimate(&dir, &key) {
            Some(r) => r,
            None => match flow::estimate(board, &s.cfg, s.hdl, &dir, obs) {
                Ok(rep) => {
                    write_file(&dir.join("estimate.key"), &key)?;
                    rep.resources.array
                }
                Err(e @ SynthError::Cancelled { .. }) => return Err(e),
                Err(e @ SynthError::ToolMissing { .. }) => return Err(e),
                Err(e) => {
                    failed.push((s.name.clone(), e.to_string()));
                    continue;
                }
            },
        };
        let p = Params::new(&s.cfg, s.hdl)?;
        let util = (res.lut as f64 / cap.lut as f64).max(res.ff as f64 / cap.ff as f64) * 100.0;
        let fits = util <= 100.0 && (cap.dsp == 0 || res.dsp <= cap.dsp);
        pts.push(DsePoint {
            name: s.name.clone(),
            rows: s.cfg.array.rows,
            cols: s.cfg.array.cols,
            block_k: s.cfg.block.k,
            tree_reg_every: s.hdl.tree_reg_every,
            resources: res,
            util_percent: util,
            fits,
            fmax_mhz: target,
            fmax_source: FmaxSource::Target,
            placed: None,
            projection: perf::project(&p, model, target, mem.bandwidth_gbs, mem.size_gb),
            pareto: false,
        });
        spec_of.push(s.clone());
    }
    let front = mark_pareto(&mut pts, no_memory);
    if board.flow() == Flow::Open {
        let (lut_cell, _) = crate::nextpnr::logic_cells(board.family());
        for (n, &i) in front.iter().take(opts.pnr_limit).enumerate() {
            let s = &spec_of[i];
            obs.point(
                n + 1,
                front.len().min(opts.pnr_limit),
                &s.name,
                "place-and-route",
            );
            let dir = out.join("points").join(&s.name).join("pnr");
            let o = SynthOptions {
                hdl: s.hdl,
                out_dir: dir,
                depth: Depth::Full,
                seed: opts.seed,
            };
            match flow::synth(board, &s.cfg, &o, obs) {
                Ok(rep) => {
                    let Some(f) = rep.fmax_mhz else { continue };
                    let p = Params::new(&s.cfg, s.hdl)?;
                    let pt = &mut pts[i];
                    pt.fmax_mhz = f;
                    pt.fmax_source = FmaxSource::PlaceAndRoute;
                    pt.projection = perf::project(&p, model, f, mem.bandwidth_gbs, mem.size_gb);
                    pt.placed = Some(Placed {
                        fmax_mhz: f,
                        timing_met: rep.timing_met.unwrap_or(false),
                        logic_percent: rep
                            .utilization
                            .get(lut_cell)
                            .map(|u| u.percent)
                            .unwrap_or(0.0),
                        report: rep.out_dir.join("report.json"),
                    });
                }
                Err(e @ SynthError::Cancelled { .. }) => return Err(e),
                Err(e) => {
                    // does not place: drop it from the front
                    failed.push((format!("{} (place and route)", s.name), e.to_string()));
                    pts[i].fits = false;
                }
            }
        }
    }
    let front = mark_pareto(&mut pts, no_memory);
    let svg_path = out.join("dse.svg");
    let title = format!(
        "tern DSE: {} on {} ({}), target {} MHz",
        model.name,
        board.name(),
        board.spec.part.device,
        target
    );
    write_file(&svg_path, &svg::dse_plot(&pts, &title, no_memory))?;
    let report = DseReport {
        format: DSE_FORMAT,
        board: board.name().to_string(),
        model: model.clone(),
        base_config: base.name.clone(),
        target_mhz: target,
        sweep: sweep.clone(),
        front_metric: if no_memory {
            "compute_tokens_per_s"
        } else {
            "tokens_per_s"
        },
        pareto: front.iter().map(|&i| pts[i].name.clone()).collect(),
        points: pts,
        failed,
        svg: svg_path,
        out_dir: out.clone(),
    };
    let json = serde_json::to_string_pretty(&report).expect("dse report serializes") + "\n";
    write_file(&out.join("dse.json"), &json)?;
    write_file(&out.join("dse.txt"), &table(&report))?;
    Ok(report)
}

/// The report as a text table.
pub fn table(r: &DseReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<22} {:>7} {:>5} {:>4} {:>8} {:>8} {:>4} {:>6} {:>12} {:>10} {:>9} {:>9} {:>7}  front",
        "point",
        "array",
        "blk.k",
        "tree",
        "LUT",
        "FF",
        "DSP",
        "util%",
        "Fmax MHz",
        "cyc/token",
        "tok/s",
        "compute",
        "bound",
    );
    for p in &r.points {
        let fmax = match p.fmax_source {
            FmaxSource::PlaceAndRoute => format!("{:.1} (P&R)", p.fmax_mhz),
            FmaxSource::Target => format!("{:.0} (tgt)", p.fmax_mhz),
        };
        let bound = match p.projection.bound {
            perf::Bound::Compute => "compute",
            perf::Bound::Memory => "memory",
            perf::Bound::NoMemory => "no-mem",
        };
        let _ = writeln!(
            s,
            "{:<22} {:>7} {:>5} {:>4} {:>8} {:>8} {:>4} {:>6.1} {:>12} {:>10} {:>9.2} {:>9.2} {:>7}  {}",
            p.name,
            format!("{}x{}", p.rows, p.cols),
            p.block_k,
            p.tree_reg_every,
            p.resources.lut,
            p.resources.ff,
            p.resources.dsp,
            p.util_percent,
            fmax,
            p.projection.cycles_per_token,
            p.projection.tokens_per_s,
            p.projection.compute_tokens_per_s,
            bound,
            if p.pareto {
                "*"
            } else if !p.fits {
                "(does not fit)"
            } else {
                ""
            }
        );
    }
    for (n, e) in &r.failed {
        let _ = writeln!(s, "{n}: failed: {e}");
    }
    let _ = writeln!(
        s,
        "front (fewest LUTs, most {}): {}",
        r.front_metric,
        r.pareto.join(", ")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::Bound;

    #[test]
    fn sweep_points_are_legal() {
        let base = ArrayConfig::default();
        let sweep = Sweep {
            rows: vec![8, 16],
            cols: vec![8, 48],
            block_k: vec![64, 128],
            tree_reg_every: vec![1, 2],
        };
        let pts = points(&base, &sweep);
        // cols 48 divides neither 64 nor 128: only cols 8 survives → 2·1·2·2
        assert_eq!(pts.len(), 8);
        for p in &pts {
            p.cfg.validate("t").unwrap();
            assert_eq!(p.cfg.name, p.name);
            assert!(p.cfg.accumulator.psum_bits >= 15);
        }
        let k128 = pts.iter().find(|p| p.cfg.block.k == 128).unwrap();
        assert_eq!(
            k128.cfg.accumulator.psum_bits, 16,
            "8-bit activations × 128 needs 16 bits"
        );
    }

    fn pt(name: &str, lut: u64, tok: f64, fits: bool) -> DsePoint {
        DsePoint {
            name: name.into(),
            rows: 8,
            cols: 8,
            block_k: 64,
            tree_reg_every: 1,
            resources: Resources {
                lut,
                ..Default::default()
            },
            util_percent: 1.0,
            fits,
            fmax_mhz: 100.0,
            fmax_source: FmaxSource::Target,
            placed: None,
            projection: Projection {
                model: "m".into(),
                cycles_per_token: 1,
                weight_bytes_per_token: 1.0,
                fmax_mhz: 100.0,
                bandwidth_gbs: 1.0,
                compute_tokens_per_s: tok * 2.0,
                memory_tokens_per_s: None,
                tokens_per_s: tok,
                bound: Bound::Compute,
                array_utilization: 1.0,
                fits_memory: true,
            },
            pareto: false,
        }
    }

    #[test]
    fn pareto_front() {
        let mut v = vec![
            pt("a", 100, 1.0, true),
            pt("b", 200, 3.0, true),
            pt("c", 150, 0.5, true),  // dominated by a
            pt("d", 300, 3.0, true),  // dominated by b (same speed, more area)
            pt("e", 400, 9.0, false), // does not fit
            pt("f", 350, 4.0, true),
        ];
        let front = mark_pareto(&mut v, false);
        let names: Vec<&str> = front.iter().map(|&i| v[i].name.as_str()).collect();
        assert_eq!(names, ["a", "b", "f"]);
        assert!(v[0].pareto && !v[2].pareto && !v[3].pareto && !v[4].pareto);
    }
}
