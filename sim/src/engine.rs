//! Engines: anything that computes a ternary GEMM under the contract. One stimulus
//! ([`Case`]) goes to every engine; results are compared bit for bit.

use crate::case::{Case, CaseSpec};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tern_spec::{reference, ArrayConfig};
use thiserror::Error;

/// Engine failures (a mismatch is not an error: it is a result, see [`compare`]).
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("operands: {0}")]
    Operand(#[from] tern_spec::OperandError),
    #[error(transparent)]
    Sim(#[from] crate::verilator::SimError),
    #[error("engine {engine}: {message}")]
    Failed { engine: String, message: String },
    #[error("engine {engine} is not available: {why}")]
    Unavailable { engine: String, why: String },
    #[error("engine {engine}: no output after {cycles} cycles (deadlock or lost value); case seed {seed}")]
    Hang {
        engine: String,
        cycles: u64,
        seed: u64,
    },
}

/// What one engine produced for one case.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Exact integer outputs [M, N].
    pub acc: Array2<i64>,
    /// Clock cycles from start to the last output accepted (cycle-level engines only).
    pub cycles: Option<u64>,
}

/// Anything that runs a case.
pub trait Engine {
    /// Short name: `reference`, `verilator`, `rusthdl`.
    fn name(&self) -> &'static str;
    /// Runs one case.
    fn run(&mut self, case: &Case) -> Result<RunResult, EngineError>;
}

/// The bit-exact reference (tern_spec::reference) as an engine.
pub struct ReferenceEngine {
    cfg: ArrayConfig,
}

impl ReferenceEngine {
    pub fn new(cfg: &ArrayConfig) -> Self {
        Self { cfg: cfg.clone() }
    }
}

impl Engine for ReferenceEngine {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn run(&mut self, case: &Case) -> Result<RunResult, EngineError> {
        let r = reference::gemm(&self.cfg, &case.w, &case.acts)?;
        Ok(RunResult {
            acc: r.acc,
            cycles: None,
        })
    }
}

/// The first output where two engines disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    pub engine: String,
    pub token: usize,
    /// Output row n.
    pub row: usize,
    /// Block row n / block_n of the layer.
    pub block_row: usize,
    /// Array tile (n / rows) and lane (n % rows) that computed it.
    pub tile: usize,
    pub lane: usize,
    pub expected: i64,
    pub got: i64,
    /// Outputs that differ in total.
    pub count: usize,
}

/// Compares an engine's result with the reference's; `None` when identical.
pub fn compare(
    cfg: &ArrayConfig,
    case: &Case,
    engine: &str,
    expected: &RunResult,
    got: &RunResult,
) -> Option<Mismatch> {
    if expected.acc.dim() != got.acc.dim() {
        return Some(Mismatch {
            engine: engine.to_string(),
            token: 0,
            row: 0,
            block_row: 0,
            tile: 0,
            lane: 0,
            expected: expected.acc.len() as i64,
            got: got.acc.len() as i64,
            count: usize::MAX,
        });
    }
    let mut first = None;
    let mut count = 0;
    for ((t, n), &e) in expected.acc.indexed_iter() {
        let g = got.acc[(t, n)];
        if e != g {
            count += 1;
            if first.is_none() {
                first = Some((t, n, e, g));
            }
        }
    }
    first.map(|(token, row, expected, got)| Mismatch {
        engine: engine.to_string(),
        token,
        row,
        block_row: row / case.w.block.n as usize,
        tile: row / cfg.array.rows as usize,
        lane: row % cfg.array.rows as usize,
        expected,
        got,
        count,
    })
}

/// A self-contained reproducer: the config and the case spec regenerate the exact stimulus
/// (`tern sim gemm --repro FILE` replays it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reproducer {
    pub tern_version: String,
    /// The array config as TOML text.
    pub config_toml: String,
    pub case: CaseSpec,
    pub mismatch: Option<Mismatch>,
    /// Waveform written for the failing run, if any.
    pub waveform: Option<PathBuf>,
}

impl Reproducer {
    pub fn new(cfg: &ArrayConfig, case: &CaseSpec, mismatch: Option<Mismatch>) -> Self {
        Self {
            tern_version: env!("CARGO_PKG_VERSION").to_string(),
            config_toml: cfg.to_toml(),
            case: case.clone(),
            mismatch,
            waveform: None,
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(
            path,
            serde_json::to_string_pretty(self).map_err(std::io::Error::other)?,
        )
    }

    /// Reads a reproducer and validates its config.
    pub fn read(path: &Path) -> Result<(Self, ArrayConfig), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let r: Reproducer = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a tern reproducer: {e}", path.display()))?;
        let cfg = ArrayConfig::from_toml_str(
            &r.config_toml,
            &format!("{} (config_toml)", path.display()),
        )
        .map_err(|e| e.to_string())?;
        Ok((r, cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_finds_first_difference() {
        let cfg = ArrayConfig::default();
        let case = CaseSpec::simple(&cfg, 3, 2, 40, 64).build(&cfg).unwrap();
        let mut eng = ReferenceEngine::new(&cfg);
        let a = eng.run(&case).unwrap();
        assert_eq!(compare(&cfg, &case, "x", &a, &a), None);
        let mut b = a.clone();
        b.acc[(1, 37)] += 1;
        b.acc[(1, 39)] -= 1;
        let m = compare(&cfg, &case, "x", &a, &b).unwrap();
        assert_eq!((m.token, m.row, m.tile, m.lane, m.count), (1, 37, 2, 5, 2));
        assert_eq!(m.got, m.expected + 1);
    }

    #[test]
    fn reproducer_round_trips() {
        let cfg = ArrayConfig::builtin("small").unwrap();
        let spec = CaseSpec::random(&cfg, 77, 10_000);
        let dir = std::env::temp_dir().join(format!("tern-repro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.json");
        Reproducer::new(&cfg, &spec, None).write(&p).unwrap();
        let (r, cfg2) = Reproducer::read(&p).unwrap();
        assert_eq!(cfg2, cfg);
        assert_eq!(r.case, spec);
        std::fs::write(&p, "{}").unwrap();
        assert!(Reproducer::read(&p)
            .unwrap_err()
            .contains("not a tern reproducer"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
