//! Verilator from Rust, without the `verilator` crate (which does not support Verilator 5).
//!
//! Flow (one build per distinct input, cached under [`cache_root`]):
//! 1. `verilator --cc` on the sources → `V<top>__ALL.a` (compiled with `-fPIC`);
//! 2. the Verilator runtime (`verilated.cpp`, `verilated_vcd_c.cpp`, `verilated_threads.cpp`)
//!    compiled once per Verilator version into `libvlrt.a`;
//! 3. a generated C++ shim (`extern "C"`: new/free/eval/set/get/trace) linked with both into
//!    `libtern_model.so`, loaded with `libloading`.
//!
//! Tested with Debian's Verilator 5.006; nothing here depends on a newer one.

mod builder;
mod model;
mod shim;
mod toolchain;

pub use builder::{cache_root, BuildSpec, BuiltModel};
pub use model::Model;
pub use shim::{Direction, PortSpec};
pub use toolchain::{Toolchain, VerilatorVersion};

use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong building or running a Verilated model.
#[derive(Debug, Error)]
pub enum SimError {
    #[error("{tool} is not available: {hint}")]
    NotAvailable { tool: &'static str, hint: String },
    #[error("{step} failed (exit {code:?}); log: {}\n{tail}", log.display())]
    StepFailed {
        step: String,
        code: Option<i32>,
        log: PathBuf,
        tail: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("loading the model library {}: {message}", path.display())]
    Load { path: PathBuf, message: String },
    #[error("port `{name}` does not exist on top `{top}` (ports: {known})")]
    UnknownPort {
        top: String,
        name: String,
        known: String,
    },
    #[error("port `{name}` is an {dir:?} port and cannot be {what}")]
    PortDirection {
        name: String,
        dir: Direction,
        what: &'static str,
    },
    #[error("value for port `{name}` ({width} bits) needs {need} words, got {got}")]
    PortWidth {
        name: String,
        width: u32,
        need: usize,
        got: usize,
    },
    #[error("port spec `{name}`: {problem}")]
    BadPortSpec { name: String, problem: String },
}

impl SimError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SimError::Io {
            path: path.into(),
            source,
        }
    }
}
