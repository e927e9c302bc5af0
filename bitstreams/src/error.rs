//! Errors of the synthesis flows.

use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong while describing boards, generating files or running a flow.
#[derive(Debug, Error)]
pub enum SynthError {
    /// A board description is missing, unreadable or inconsistent.
    #[error("board `{board}`: {message}")]
    Board { board: String, message: String },
    /// No board of that name.
    #[error("no board named `{name}`; known boards: {known}")]
    UnknownBoard { name: String, known: String },
    /// The RTL generator refused the config or options.
    #[error("RTL generation: {0}")]
    Hdl(#[from] tern_hdl::HdlError),
    /// The array config is invalid.
    #[error("config: {0}")]
    Config(#[from] tern_spec::config::ConfigError),
    /// A tool a step needs is not installed.
    #[error("step `{step}` needs {tool}, which was not found ({hint})")]
    ToolMissing {
        step: String,
        tool: String,
        hint: String,
    },
    /// A tool ran and failed: the step, the tool, its exit status, its log file and the log
    /// line that explains the failure.
    #[error("step `{step}` ({tool}) failed ({status}); log {}: {line}", log.display())]
    StepFailed {
        step: String,
        tool: String,
        status: String,
        log: PathBuf,
        line: String,
    },
    /// The synthesized design needs more of a resource than the part has (checked before
    /// place and route, which would fail after a long run).
    #[error("does not fit {part}: {used} {resource} needed, {available} available (yosys count; see {})", report.display())]
    DoesNotFit {
        part: String,
        resource: String,
        used: u64,
        available: u64,
        report: PathBuf,
    },
    /// The user cancelled a running step.
    #[error("step `{step}` cancelled")]
    Cancelled { step: String },
    /// A tool's output could not be understood.
    #[error("step `{step}`: cannot read {}: {message}", file.display())]
    Parse {
        step: String,
        file: PathBuf,
        message: String,
    },
    /// The requested operation does not apply to this board or config.
    #[error("{0}")]
    Unsupported(String),
    /// File I/O.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SynthError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SynthError::Io {
            path: path.into(),
            source,
        }
    }

    /// The name of the failing step, for errors that come from one.
    pub fn step(&self) -> Option<&str> {
        match self {
            SynthError::ToolMissing { step, .. }
            | SynthError::StepFailed { step, .. }
            | SynthError::Cancelled { step }
            | SynthError::Parse { step, .. } => Some(step),
            _ => None,
        }
    }
}

/// Writes `text` to `path`, creating parent directories.
pub(crate) fn write_file(path: &std::path::Path, text: &str) -> Result<(), SynthError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| SynthError::io(dir, e))?;
    }
    std::fs::write(path, text).map_err(|e| SynthError::io(path, e))
}
