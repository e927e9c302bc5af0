//! Building a Verilated model as a shared library, cached by a hash of its inputs.

use super::shim::{self, Direction, PortSpec};
use super::toolchain::Toolchain;
use super::{Model, SimError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// What to build: a top module, its Verilog sources and the ports the shim exposes.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Top module name.
    pub top: String,
    /// Verilog sources as (file name, text).
    pub sources: Vec<(String, String)>,
    /// Ports of the top (the shim addresses them by index in this list).
    pub ports: Vec<PortSpec>,
    /// Build with VCD tracing support.
    pub trace: bool,
    /// Extra Verilator arguments (e.g. `-DFOO`).
    pub extra_args: Vec<String>,
}

/// A built model library on disk.
#[derive(Debug, Clone)]
pub struct BuiltModel {
    /// Cache directory of this build.
    pub dir: PathBuf,
    /// The shared library.
    pub lib: PathBuf,
    pub top: String,
    pub ports: Arc<Vec<PortSpec>>,
    /// Content hash naming the build.
    pub hash: String,
    /// Whether this call built it (false: found in the cache).
    pub fresh: bool,
    pub trace: bool,
}

/// Root of tern's build cache: `$TERN_CACHE_DIR`, else `$XDG_CACHE_HOME/tern`, else
/// `$HOME/.cache/tern`, else the system temp dir.
pub fn cache_root() -> PathBuf {
    if let Ok(d) = std::env::var("TERN_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Ok(d) = std::env::var("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("tern");
    }
    if let Ok(h) = std::env::var("HOME") {
        return PathBuf::from(h).join(".cache/tern");
    }
    std::env::temp_dir().join("tern-cache")
}

/// 64-bit FNV-1a over a sequence of byte strings (length-prefixed, so boundaries count).
fn hash_parts(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in (p.len() as u64).to_le_bytes().iter().chain(p.iter()) {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Runs a command, logging to `log`; on failure returns the last lines of the log.
fn run_logged(step: &str, cmd: &mut Command, log: &Path) -> Result<(), SimError> {
    let out = cmd.output().map_err(|e| SimError::StepFailed {
        step: step.to_string(),
        code: None,
        log: log.to_path_buf(),
        tail: format!("cannot start {:?}: {e}", cmd.get_program()),
    })?;
    let mut text = format!("$ {cmd:?}\n").into_bytes();
    text.extend_from_slice(&out.stdout);
    text.extend_from_slice(&out.stderr);
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| SimError::io(log, e))?;
    f.write_all(&text).map_err(|e| SimError::io(log, e))?;
    if out.status.success() {
        return Ok(());
    }
    let all = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = all.lines().collect();
    let tail = lines[lines.len().saturating_sub(25)..].join("\n");
    Err(SimError::StepFailed {
        step: step.to_string(),
        code: out.status.code(),
        log: log.to_path_buf(),
        tail,
    })
}

/// Moves a finished temp dir into place; if another process won the race, keeps theirs.
fn publish(tmp: &Path, dest: &Path) -> Result<(), SimError> {
    match std::fs::rename(tmp, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.exists() => {
            let _ = std::fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => Err(SimError::io(dest, e)),
    }
}

fn tmp_dir(root: &Path, name: &str) -> Result<PathBuf, SimError> {
    let d = root.join(format!(
        "{name}.tmp.{}.{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).map_err(|e| SimError::io(&d, e))?;
    Ok(d)
}

const RUNTIME_SOURCES: [&str; 3] = ["verilated", "verilated_vcd_c", "verilated_threads"];
const CXXFLAGS: [&str; 4] = ["-O2", "-fPIC", "-std=c++17", "-DVM_TRACE=1"];

/// Builds (or finds) the PIC Verilator runtime archive for this toolchain.
fn runtime_lib(tc: &Toolchain, root: &Path) -> Result<PathBuf, SimError> {
    let h = hash_parts(&[
        tc.version.line.as_bytes(),
        tc.root.to_string_lossy().as_bytes(),
        tc.cxx.to_string_lossy().as_bytes(),
        CXXFLAGS.join(" ").as_bytes(),
    ]);
    let dest = root.join(format!("vlrt-{h}"));
    let lib = dest.join("libvlrt.a");
    if lib.exists() {
        return Ok(lib);
    }
    let tmp = tmp_dir(root, &format!("vlrt-{h}"))?;
    let log = tmp.join("build.log");
    let inc = tc.root.join("include");
    // compile the three runtime files in parallel
    let mut children = Vec::new();
    for f in RUNTIME_SOURCES {
        let mut c = Command::new(&tc.cxx);
        c.args(CXXFLAGS)
            .arg(format!("-I{}", inc.display()))
            .arg(format!("-I{}", inc.join("vltstd").display()))
            .arg("-c")
            .arg(inc.join(format!("{f}.cpp")))
            .arg("-o")
            .arg(tmp.join(format!("{f}.o")));
        children.push((f, c));
    }
    let handles: Vec<_> = children
        .into_iter()
        .map(|(f, mut c)| {
            let log = tmp.join(format!("{f}.log"));
            std::thread::spawn(move || {
                run_logged(
                    &format!("compiling Verilator runtime {f}.cpp"),
                    &mut c,
                    &log,
                )
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| SimError::StepFailed {
            step: "compiling the Verilator runtime".into(),
            code: None,
            log: log.clone(),
            tail: "a compile thread panicked".into(),
        })??;
    }
    let mut ar = Command::new("ar");
    ar.arg("rcs").arg(tmp.join("libvlrt.a"));
    for f in RUNTIME_SOURCES {
        ar.arg(tmp.join(format!("{f}.o")));
    }
    run_logged("archiving the Verilator runtime", &mut ar, &log)?;
    publish(&tmp, &dest)?;
    Ok(lib)
}

impl BuildSpec {
    /// The content hash of this build on this toolchain.
    pub fn hash(&self, tc: &Toolchain) -> String {
        let ports = serde_json::to_string(&self.ports).unwrap_or_default();
        let cxx = tc.cxx.to_string_lossy().into_owned();
        let mut parts: Vec<&[u8]> = vec![
            env!("CARGO_PKG_VERSION").as_bytes(),
            tc.version.line.as_bytes(),
            cxx.as_bytes(),
            self.top.as_bytes(),
            ports.as_bytes(),
            if self.trace { b"trace" } else { b"notrace" },
        ];
        for (n, t) in &self.sources {
            parts.push(n.as_bytes());
            parts.push(t.as_bytes());
        }
        for a in &self.extra_args {
            parts.push(a.as_bytes());
        }
        let shim_src = shim::generate(&self.top, &self.ports, self.trace);
        parts.push(shim_src.as_bytes());
        hash_parts(&parts)
    }

    /// Builds the model library, or returns the cached one.
    pub fn build(&self, tc: &Toolchain) -> Result<BuiltModel, SimError> {
        for p in &self.ports {
            p.check()?;
        }
        if !self
            .top
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || self.top.is_empty()
        {
            return Err(SimError::BadPortSpec {
                name: self.top.clone(),
                problem: "top module name is not a plain identifier".into(),
            });
        }
        let root = cache_root();
        std::fs::create_dir_all(&root).map_err(|e| SimError::io(&root, e))?;
        let hash = self.hash(tc);
        let dest = root.join(format!("model-{}-{hash}", self.top));
        let lib = dest.join("libtern_model.so");
        let done = |fresh| BuiltModel {
            dir: dest.clone(),
            lib: lib.clone(),
            top: self.top.clone(),
            ports: Arc::new(self.ports.clone()),
            hash: hash.clone(),
            fresh,
            trace: self.trace,
        };
        if lib.exists() {
            tracing::debug!(top = %self.top, %hash, "verilator model found in cache");
            return Ok(done(false));
        }
        let rt = runtime_lib(tc, &root)?;
        let tmp = tmp_dir(&root, &format!("model-{}-{hash}", self.top))?;
        let log = tmp.join("build.log");
        let src = tmp.join("src");
        std::fs::create_dir_all(&src).map_err(|e| SimError::io(&src, e))?;
        let mut files = Vec::new();
        for (name, text) in &self.sources {
            let p = src.join(name);
            std::fs::write(&p, text).map_err(|e| SimError::io(&p, e))?;
            files.push(p);
        }
        let obj = tmp.join("obj");
        let mut v = Command::new(&tc.verilator);
        v.args([
            "--cc",
            "--build",
            "-j",
            "2",
            "-O3",
            "-Wno-fatal",
            "--top-module",
            &self.top,
        ])
        .args(["-CFLAGS", "-fPIC", "-CFLAGS", "-O2"])
        .arg("-Mdir")
        .arg(&obj);
        if self.trace {
            v.arg("--trace");
        }
        v.args(&self.extra_args).args(&files);
        tracing::info!(top = %self.top, %hash, "verilating");
        run_logged(&format!("verilator on top `{}`", self.top), &mut v, &log)?;
        let shim_path = tmp.join("tern_shim.cpp");
        std::fs::write(
            &shim_path,
            shim::generate(&self.top, &self.ports, self.trace),
        )
        .map_err(|e| SimError::io(&shim_path, e))?;
        let inc = tc.root.join("include");
        let mut c = Command::new(&tc.cxx);
        c.args(CXXFLAGS)
            .arg("-shared")
            .arg(format!("-I{}", obj.display()))
            .arg(format!("-I{}", inc.display()))
            .arg(format!("-I{}", inc.join("vltstd").display()))
            .arg(&shim_path)
            .arg(obj.join(format!("V{}__ALL.a", self.top)))
            .arg(&rt)
            .arg("-lpthread")
            .arg("-o")
            .arg(tmp.join("libtern_model.so"));
        run_logged("compiling and linking the C++ shim", &mut c, &log)?;
        // keep the cache small: the object dir is not needed once linked
        let _ = std::fs::remove_dir_all(&obj);
        publish(&tmp, &dest)?;
        Ok(done(true))
    }
}

impl BuiltModel {
    /// A fresh instance of the model (each has its own Verilator context).
    pub fn instantiate(&self) -> Result<Model, SimError> {
        Model::load(self)
    }

    /// Index of a port by name.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    /// Names of the input ports.
    pub fn inputs(&self) -> impl Iterator<Item = &PortSpec> {
        self.ports.iter().filter(|p| p.dir == Direction::Input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_separates_parts() {
        assert_ne!(hash_parts(&[b"ab", b"c"]), hash_parts(&[b"a", b"bc"]));
        assert_eq!(hash_parts(&[b"x"]), hash_parts(&[b"x"]));
    }
}
