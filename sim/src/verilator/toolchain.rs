//! Finding Verilator and the C++ compiler.

use super::SimError;
use std::path::PathBuf;
use std::process::Command;

/// A parsed `verilator --version`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VerilatorVersion {
    pub major: u32,
    pub minor: u32,
    /// The whole version line, e.g. "Verilator 5.006 2023-01-22 rev (Debian 5.006-3)".
    pub line: String,
}

impl VerilatorVersion {
    /// Parses "Verilator 5.006 2023-01-22 ...".
    pub fn parse(line: &str) -> Option<Self> {
        let v = line.split_whitespace().nth(1)?;
        let (a, b) = v.split_once('.')?;
        Some(Self {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
            line: line.trim().to_string(),
        })
    }
}

/// The tools a build needs.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// `verilator` executable.
    pub verilator: PathBuf,
    pub version: VerilatorVersion,
    /// `$VERILATOR_ROOT` (holds include/).
    pub root: PathBuf,
    /// C++ compiler (`$CXX`, else `c++`).
    pub cxx: PathBuf,
}

const HINT: &str = "install verilator (make setup, or apt-get install verilator)";

impl Toolchain {
    /// Finds Verilator (`$VERILATOR`, else `verilator` on PATH) and a C++ compiler.
    pub fn find() -> Result<Self, SimError> {
        let verilator =
            PathBuf::from(std::env::var("VERILATOR").unwrap_or_else(|_| "verilator".into()));
        let out = Command::new(&verilator)
            .arg("--version")
            .output()
            .map_err(|e| SimError::NotAvailable {
                tool: "verilator",
                hint: format!("running `{} --version`: {e}; {HINT}", verilator.display()),
            })?;
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        let version = VerilatorVersion::parse(&line).ok_or_else(|| SimError::NotAvailable {
            tool: "verilator",
            hint: format!("cannot parse `verilator --version` output {line:?}; {HINT}"),
        })?;
        if version.major < 5 {
            return Err(SimError::NotAvailable {
                tool: "verilator",
                hint: format!("{} is too old (tern needs 5.x); {HINT}", version.line),
            });
        }
        let out = Command::new(&verilator)
            .args(["--getenv", "VERILATOR_ROOT"])
            .output()
            .map_err(|e| SimError::NotAvailable {
                tool: "verilator",
                hint: e.to_string(),
            })?;
        let root = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if !root.join("include/verilated.cpp").exists() {
            return Err(SimError::NotAvailable {
                tool: "verilator",
                hint: format!(
                    "VERILATOR_ROOT {} has no include/verilated.cpp; {HINT}",
                    root.display()
                ),
            });
        }
        let cxx = PathBuf::from(std::env::var("CXX").unwrap_or_else(|_| "c++".into()));
        Command::new(&cxx)
            .arg("--version")
            .output()
            .map_err(|e| SimError::NotAvailable {
                tool: "c++",
                hint: format!("running `{} --version`: {e}; install g++", cxx.display()),
            })?;
        Ok(Self {
            verilator,
            version,
            root,
            cxx,
        })
    }

    /// Like [`Toolchain::find`], but under CI (`CI=true`) a missing Verilator is a failure
    /// the caller must not skip: returns `Ok(None)` only outside CI.
    pub fn find_or_skip() -> Result<Option<Self>, SimError> {
        match Self::find() {
            Ok(t) => Ok(Some(t)),
            Err(e) if !is_ci() => {
                eprintln!("skipped: {e}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// True when running under CI (`CI=true` or `CI=1`).
pub fn is_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        let v =
            VerilatorVersion::parse("Verilator 5.006 2023-01-22 rev (Debian 5.006-3)\n").unwrap();
        assert_eq!((v.major, v.minor), (5, 6));
        assert!(VerilatorVersion::parse("Verilator 5.048 2025").unwrap() > v);
        assert!(VerilatorVersion::parse("garbage").is_none());
    }
}
