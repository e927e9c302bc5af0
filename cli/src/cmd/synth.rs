//! `tern synth`, `tern boards`, `tern dse`: the array on FPGA boards (crate tern-bitstreams).

use crate::progress;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Duration;
use tern_bitstreams::board::{Board, Boards, Flow};
use tern_bitstreams::dse::{self, DseOptions, Sweep};
use tern_bitstreams::flow::{Depth, SynthOptions, SynthReport};
use tern_bitstreams::perf;
use tern_bitstreams::tools::Observer;
use tern_bitstreams::SynthError;
use tern_spec::ArrayConfig;

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Board name (`tern boards` lists them).
    #[arg(long)]
    pub board: String,
    /// Config: a built-in name (small, default, large) or a TOML file.
    #[arg(long, default_value = "default")]
    pub config: String,
    /// Output directory (default build/synth/BOARD/CONFIG).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop after the yosys estimate (no place and route, no bitstream, no Vivado project).
    #[arg(long)]
    pub estimate: bool,
    /// Register the adder tree every N levels (HdlOptions.tree_reg_every).
    #[arg(long, default_value_t = 1)]
    pub tree_reg_every: u32,
    /// nextpnr seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A folder of extra board folders (each with board.toml), added to the built-in boards.
    #[arg(long)]
    pub boards_dir: Option<PathBuf>,
    /// When the config does not fit: do not look for a smaller one that does.
    #[arg(long)]
    pub no_fit_search: bool,
    /// Print report.json instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BoardsArgs {
    /// A folder of extra board folders, added to the built-in boards.
    #[arg(long)]
    pub boards_dir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DseArgs {
    /// Board name.
    #[arg(long)]
    pub board: String,
    /// Model whose matrices the projection runs (bitnet-2b).
    #[arg(long, default_value = "bitnet-2b")]
    pub model_shape: String,
    /// Base config: every field not swept comes from it.
    #[arg(long, default_value = "default")]
    pub config: String,
    /// Lanes to sweep.
    #[arg(long, value_delimiter = ',', default_values_t = vec![8u32, 16, 32])]
    pub rows: Vec<u32>,
    /// Columns to sweep.
    #[arg(long, value_delimiter = ',', default_values_t = vec![8u32, 16, 32])]
    pub cols: Vec<u32>,
    /// Block K values to sweep (each a multiple of cols).
    #[arg(long, value_delimiter = ',', default_values_t = vec![64u32])]
    pub block_k: Vec<u32>,
    /// tree_reg_every values to sweep.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1u32, 2])]
    pub tree_reg_every: Vec<u32>,
    /// Pareto-front points to place and route (open-flow boards); 0 = estimates only.
    #[arg(long, default_value_t = 3)]
    pub pnr: usize,
    /// nextpnr seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (default build/dse/BOARD).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub boards_dir: Option<PathBuf>,
    /// Print dse.json instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Progress on stderr: one spinner for the running step (elapsed time and the log's last
/// line) and, in `tern dse`, one bar over the points.
struct Progress {
    quiet: bool,
    multi: MultiProgress,
    step: ProgressBar,
    points: Option<ProgressBar>,
}

impl Progress {
    fn new(quiet: bool, with_points: bool) -> Progress {
        let multi = MultiProgress::new();
        if quiet {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let points = with_points.then(|| {
            let pb = multi.add(ProgressBar::new(0));
            pb.set_style(
                ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            pb
        });
        let step = multi.add(ProgressBar::new_spinner());
        step.set_style(
            ProgressStyle::with_template("{spinner} {prefix:>16} {elapsed:>4} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        step.enable_steady_tick(Duration::from_millis(150));
        Progress {
            quiet,
            multi,
            step,
            points,
        }
    }

    fn finish(&self) {
        self.step.finish_and_clear();
        if let Some(p) = &self.points {
            p.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

impl Observer for Progress {
    fn step_started(&self, name: &str, index: usize, total: usize) {
        self.step.reset_elapsed();
        self.step.set_prefix(format!("[{index}/{total}] {name}"));
        self.step.set_message("");
    }
    fn tick(&self, _name: &str, _elapsed: Duration, last_line: &str) {
        let line: String = last_line.chars().take(100).collect();
        self.step.set_message(line);
    }
    fn step_finished(&self, name: &str, elapsed: Duration, ok: bool) {
        let line = format!(
            "  {} {name} ({:.1} s)",
            if ok { "done" } else { "FAILED" },
            elapsed.as_secs_f64()
        );
        if self.multi.is_hidden() {
            // not a terminal (a log file, `make synth`): plain lines on stderr
            if !self.quiet {
                eprintln!("{line}");
            }
        } else {
            let _ = self.multi.println(line);
        }
    }
    fn point(&self, index: usize, total: usize, name: &str, phase: &str) {
        if let Some(p) = &self.points {
            p.set_prefix(phase.to_string());
            p.set_length(total as u64);
            p.set_position(index.saturating_sub(1) as u64);
            p.set_message(name.to_string());
        }
    }
    fn cancelled(&self) -> bool {
        progress::interrupted()
    }
}

fn boards(dir: Option<&PathBuf>) -> Result<Boards> {
    Ok(Boards::with_extra(dir.map(|d| d.as_path()))?)
}

pub fn run_synth(a: SynthArgs) -> Result<()> {
    let all = boards(a.boards_dir.as_ref())?;
    let board = all.get(&a.board)?;
    let cfg = ArrayConfig::builtin_or_load(&a.config)?;
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("build/synth")
            .join(board.name())
            .join(&cfg.name)
    });
    let mut opts = SynthOptions::new(&out);
    opts.hdl.tree_reg_every = a.tree_reg_every;
    opts.seed = a.seed;
    opts.depth = if a.estimate {
        Depth::Estimate
    } else {
        Depth::Full
    };
    let prog = Progress::new(a.json, false);
    let r = tern_bitstreams::synth(board, &cfg, &opts, &prog);
    let r = match r {
        Err(e @ SynthError::DoesNotFit { .. }) if !a.no_fit_search => {
            let hint = fit_hint(board, &cfg, &opts, &prog);
            prog.finish();
            return Err(anyhow::anyhow!("{e}; {hint}")).with_context(|| {
                format!("tern synth --board {} --config {}", board.name(), a.config)
            });
        }
        r => {
            prog.finish();
            r
        }
    };
    let r =
        r.with_context(|| format!("tern synth --board {} --config {}", board.name(), a.config))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_summary(&r);
    }
    Ok(())
}

/// Looks for the largest smaller variant of `cfg` that fits (synthesis and fit check, no place
/// and route); writes it to `OUT/fits.toml`, records it in `OUT/report.json` under
/// `fits_instead`, and returns the sentence to show.
fn fit_hint(board: &Board, cfg: &ArrayConfig, opts: &SynthOptions, prog: &Progress) -> String {
    match tern_bitstreams::flow::find_fitting(board, cfg, opts.hdl, &opts.out_dir, 6, prog) {
        Ok(Some((v, rep))) => {
            let toml_path = opts.out_dir.join("fits.toml");
            let text = format!(
                "# {} with a {} × {} array: the largest variant that fits {} (tern synth's fit search)\n{}",
                cfg.name,
                v.array.rows,
                v.array.cols,
                board.name(),
                v.to_toml()
            );
            let written = std::fs::write(&toml_path, text).is_ok();
            let report = opts.out_dir.join("report.json");
            if let Ok(mut j) = std::fs::read_to_string(&report)
                .map_err(|_| ())
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|_| ()))
            {
                j["fits_instead"] = serde_json::json!({
                    "config": v.name, "rows": v.array.rows, "cols": v.array.cols,
                    "toml": toml_path, "lut": rep.resources.total.lut,
                    "lut_unit": rep.resources.lut_unit, "report": rep.out_dir.join("report.json"),
                });
                let _ = std::fs::write(&report, format!("{j:#}\n"));
            }
            format!(
                "a {} × {} array of the same config fits ({} {} by the same synthesis, not placed and routed yet){}",
                v.array.rows,
                v.array.cols,
                rep.resources.total.lut,
                rep.resources.lut_unit,
                if written {
                    format!(
                        ": tern synth --board {} --config {}",
                        board.name(),
                        toml_path.display()
                    )
                } else {
                    String::new()
                }
            )
        }
        Ok(None) => "none of the smaller arrays tried fits either".to_string(),
        Err(e) => format!("the search for a smaller array that fits stopped: {e}"),
    }
}

fn print_summary(r: &SynthReport) {
    let res = &r.resources;
    println!(
        "{} on {} ({}, {} flow): top {}",
        r.config,
        r.board,
        r.part,
        match r.flow {
            Flow::Open => "open",
            Flow::Vivado => "vivado",
        },
        r.top
    );
    let t = &res.total;
    println!(
        "  synthesized ({}): {} {}, {} FF, {} DSP, {} BRAM, {} LUT-RAM, {} carry",
        if res.includes_wrapper {
            "array + wrapper"
        } else {
            "array only"
        },
        t.lut,
        res.lut_unit,
        t.ff,
        t.dsp,
        t.bram,
        t.lutram,
        t.carry
    );
    if let Some(w) = &res.wrapper {
        println!("  wrapper alone:     {} LUT, {} FF", w.lut, w.ff);
    }
    println!(
        "  array alone:       {} LUT, {} FF, {} DSP = {:.1} LUT/PE, {:.1} FF/PE ({} PEs)",
        res.array.lut, res.array.ff, res.array.dsp, res.lut_per_pe, res.ff_per_pe, r.pes
    );
    if let Some(a) = &res.array_in_wrapper {
        println!(
            "  array in wrapper:  {} LUT, {} FF (total − wrapper)",
            a.lut, a.ff
        );
    }
    println!("  utilization ({}):", r.utilization_source);
    for (k, u) in &r.utilization {
        if u.used > 0.0 {
            println!(
                "    {k:<16} {:>9} / {:>9} {:>6.1}%",
                u.used, u.available, u.percent
            );
        }
    }
    for c in &r.clocks {
        println!(
            "  Fmax {:.2} MHz on {} (target {} MHz): {}",
            c.fmax_mhz,
            c.clock,
            r.target_mhz,
            if c.fmax_mhz >= r.target_mhz {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    for p in &r.critical_paths {
        println!(
            "  critical path {:.2} ns ({:.2} logic, {:.2} routing): {} -> {}",
            p.delay_ns, p.logic_ns, p.routing_ns, p.start, p.end
        );
    }
    if let Some(b) = &r.bitstream {
        println!(
            "  bitstream: {} (runs from the {} MHz board clock)",
            b.display(),
            r.board_clock_mhz
        );
    }
    if let Some(v) = &r.vivado {
        println!(
            "  Vivado project: {} (run `vivado -mode batch -source {}`; not tested on a real Vivado)",
            v.dir.display(),
            v.build_tcl.display()
        );
    }
    println!("  report: {}", r.out_dir.join("report.json").display());
    let fmax = match (r.fmax_mhz, r.timing_met) {
        (Some(f), Some(met)) => format!(
            "Fmax {f:.2} MHz (target {}: {})",
            r.target_mhz,
            if met { "met" } else { "not met" }
        ),
        _ => "no timing (not placed)".to_string(),
    };
    println!(
        "summary: {} {}: total {} {} {} FF {} DSP ({}); array {:.1} LUT/PE {:.1} FF/PE; {fmax}",
        r.board,
        r.config,
        res.total.lut,
        res.lut_unit,
        res.total.ff,
        res.total.dsp,
        if res.includes_wrapper {
            "with wrapper"
        } else {
            "array only"
        },
        res.lut_per_pe,
        res.ff_per_pe
    );
}

pub fn run_boards(a: BoardsArgs) -> Result<()> {
    let all = boards(a.boards_dir.as_ref())?;
    if a.json {
        let v: Vec<_> = all.boards.iter().map(|b| &b.spec).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<14} {:<7} {:<6} {:<22} {:>9} {:>5} {:>6} {:>9}  description",
        "board", "family", "flow", "part", "LUT", "DSP", "PCIe", "mem GB/s"
    );
    for b in &all.boards {
        let s = &b.spec;
        println!(
            "{:<14} {:<7} {:<6} {:<22} {:>9} {:>5} {:>6} {:>9}  {}",
            s.name,
            s.family.as_str(),
            match s.flow {
                Flow::Open => "open",
                Flow::Vivado => "vivado",
            },
            s.part.device,
            s.resources.lut,
            s.resources.dsp,
            s.pcie
                .as_ref()
                .map(|p| format!("g{}x{}", p.gen, p.lanes))
                .unwrap_or_else(|| "-".into()),
            s.memory.bandwidth_gbs,
            s.description
        );
    }
    Ok(())
}

pub fn run_dse(a: DseArgs) -> Result<()> {
    let all = boards(a.boards_dir.as_ref())?;
    let board = all.get(&a.board)?;
    let Some(model) = perf::model_shape(&a.model_shape) else {
        bail!(
            "unknown --model-shape `{}`; known: {}",
            a.model_shape,
            perf::MODEL_SHAPES.join(", ")
        );
    };
    let base = ArrayConfig::builtin_or_load(&a.config)?;
    let sweep = Sweep {
        rows: a.rows.clone(),
        cols: a.cols.clone(),
        block_k: a.block_k.clone(),
        tree_reg_every: a.tree_reg_every.clone(),
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("build/dse").join(board.name()));
    let opts = DseOptions {
        out_dir: out,
        pnr_limit: a.pnr,
        seed: a.seed,
    };
    let prog = Progress::new(a.json, true);
    let r = dse::run(board, &base, &model, &sweep, &opts, &prog);
    prog.finish();
    let r = r.with_context(|| format!("tern dse --board {}", board.name()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", dse::table(&r));
        println!("plot: {}", r.svg.display());
        println!("report: {}", r.out_dir.join("dse.json").display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Dse {
        #[command(flatten)]
        a: DseArgs,
    }

    #[derive(Parser, Debug)]
    struct Synth {
        #[command(flatten)]
        a: SynthArgs,
    }

    #[test]
    fn dse_lists_parse() {
        let d = Dse::try_parse_from([
            "dse",
            "--board",
            "ecp5-85f",
            "--rows",
            "4,8",
            "--tree-reg-every",
            "2",
        ])
        .unwrap()
        .a;
        assert_eq!(d.rows, [4, 8]);
        assert_eq!(d.cols, [8, 16, 32], "default");
        assert_eq!(d.tree_reg_every, [2]);
        assert_eq!(d.model_shape, "bitnet-2b");
        assert_eq!(d.pnr, 3);
    }

    #[test]
    fn unknown_board_and_model_are_named() {
        let s = Synth::try_parse_from(["synth", "--board", "nope", "--config", "small"])
            .unwrap()
            .a;
        let e = run_synth(s).unwrap_err().to_string();
        assert!(
            e.contains("no board named `nope`") && e.contains("ecp5-85f"),
            "{e}"
        );
        let d = Dse::try_parse_from(["dse", "--board", "kv260", "--model-shape", "gpt"])
            .unwrap()
            .a;
        let e = run_dse(d).unwrap_err().to_string();
        assert!(
            e.contains("unknown --model-shape `gpt`") && e.contains("bitnet-2b"),
            "{e}"
        );
        let e = boards(Some(&PathBuf::from("/nonexistent/boards")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/boards"), "{e}");
    }
}
