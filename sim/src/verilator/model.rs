//! A loaded Verilated model instance, driven through the shim's C ABI.

use super::builder::BuiltModel;
use super::shim::{Direction, PortSpec};
use super::SimError;
use libloading::{Library, Symbol};
use std::ffi::{c_char, c_int, c_void, CString};
use std::path::Path;
use std::sync::Arc;

type NewFn = unsafe extern "C" fn() -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type EvalFn = unsafe extern "C" fn(*mut c_void);
type SetFn = unsafe extern "C" fn(*mut c_void, c_int, *const u32);
type GetFn = unsafe extern "C" fn(*mut c_void, c_int, *mut u32);
type TraceOpenFn = unsafe extern "C" fn(*mut c_void, *const c_char, c_int) -> c_int;
type TraceDumpFn = unsafe extern "C" fn(*mut c_void, u64);
type TraceFn = unsafe extern "C" fn(*mut c_void);
type TickFn = unsafe extern "C" fn(*mut c_void, c_int, u64, *mut u64);

/// Function pointers resolved once per library.
struct Api {
    new: NewFn,
    free: FreeFn,
    eval: EvalFn,
    set: SetFn,
    get: GetFn,
    trace_open: TraceOpenFn,
    trace_dump: TraceDumpFn,
    trace_flush: TraceFn,
    trace_close: TraceFn,
    tick: TickFn,
}

/// One instance of a Verilated top. Ports are addressed by index (see [`Model::port`]).
pub struct Model {
    api: Api,
    handle: *mut c_void,
    ports: Arc<Vec<PortSpec>>,
    top: String,
    time: u64,
    tracing: bool,
    trace_built: bool,
    // keeps the library loaded while the function pointers live; dropped last
    _lib: Arc<Library>,
}

// A model instance is only touched through `&mut self`; the Verilated model is
// thread-compatible (may move between threads, not shared).
unsafe impl Send for Model {}

fn sym<T: Copy>(lib: &Library, name: &[u8], path: &Path) -> Result<T, SimError> {
    // SAFETY: the symbol types match the shim's generated C signatures (shim.rs).
    unsafe {
        let s: Symbol<T> = lib.get(name).map_err(|e| SimError::Load {
            path: path.to_path_buf(),
            message: format!("symbol {}: {e}", String::from_utf8_lossy(name)),
        })?;
        Ok(*s)
    }
}

impl Model {
    pub(crate) fn load(built: &BuiltModel) -> Result<Self, SimError> {
        // SAFETY: loading a library tern built from its own generated shim.
        let lib = unsafe { Library::new(&built.lib) }.map_err(|e| SimError::Load {
            path: built.lib.clone(),
            message: e.to_string(),
        })?;
        let p = &built.lib;
        let api = Api {
            new: sym(&lib, b"tern_model_new", p)?,
            free: sym(&lib, b"tern_model_free", p)?,
            eval: sym(&lib, b"tern_model_eval", p)?,
            set: sym(&lib, b"tern_model_set", p)?,
            get: sym(&lib, b"tern_model_get", p)?,
            trace_open: sym(&lib, b"tern_model_trace_open", p)?,
            trace_dump: sym(&lib, b"tern_model_trace_dump", p)?,
            trace_flush: sym(&lib, b"tern_model_trace_flush", p)?,
            trace_close: sym(&lib, b"tern_model_trace_close", p)?,
            tick: sym(&lib, b"tern_model_tick", p)?,
        };
        // SAFETY: tern_model_new has no preconditions.
        let handle = unsafe { (api.new)() };
        Ok(Self {
            api,
            handle,
            ports: built.ports.clone(),
            top: built.top.clone(),
            time: 0,
            tracing: false,
            trace_built: built.trace,
            _lib: Arc::new(lib),
        })
    }

    /// Index of a port by name, with an error listing the ports when it does not exist.
    pub fn port(&self, name: &str) -> Result<usize, SimError> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| SimError::UnknownPort {
                top: self.top.clone(),
                name: name.to_string(),
                known: self
                    .ports
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The port list.
    pub fn ports(&self) -> &[PortSpec] {
        &self.ports
    }

    /// Sets an input port from little-endian 32-bit words (exactly `ceil(width/32)` of them).
    pub fn set(&mut self, port: usize, words: &[u32]) -> Result<(), SimError> {
        let p = self.spec(port)?;
        if p.dir != Direction::Input {
            return Err(SimError::PortDirection {
                name: p.name.clone(),
                dir: p.dir,
                what: "set",
            });
        }
        if words.len() != p.words() {
            return Err(SimError::PortWidth {
                name: p.name.clone(),
                width: p.width,
                need: p.words(),
                got: words.len(),
            });
        }
        // SAFETY: `words` holds exactly the words the shim reads for this port.
        unsafe { (self.api.set)(self.handle, port as c_int, words.as_ptr()) };
        Ok(())
    }

    /// Sets an input port of at most 64 bits (higher bits of `v` beyond the width are dropped).
    pub fn set_u64(&mut self, port: usize, v: u64) -> Result<(), SimError> {
        let n = self.spec(port)?.words();
        let w = [v as u32, (v >> 32) as u32];
        if n <= 2 {
            self.set(port, &w[..n])
        } else {
            let mut words = vec![0u32; n];
            words[..2].copy_from_slice(&w);
            self.set(port, &words)
        }
    }

    /// Reads any port into `out` (`ceil(width/32)` words).
    pub fn get_into(&mut self, port: usize, out: &mut [u32]) -> Result<(), SimError> {
        let p = self.spec(port)?;
        if out.len() != p.words() {
            return Err(SimError::PortWidth {
                name: p.name.clone(),
                width: p.width,
                need: p.words(),
                got: out.len(),
            });
        }
        // SAFETY: `out` has room for exactly the words the shim writes for this port.
        unsafe { (self.api.get)(self.handle, port as c_int, out.as_mut_ptr()) };
        Ok(())
    }

    /// Reads any port as words.
    pub fn get(&mut self, port: usize) -> Result<Vec<u32>, SimError> {
        let mut w = vec![0u32; self.spec(port)?.words()];
        self.get_into(port, &mut w)?;
        Ok(w)
    }

    /// Reads the low 64 bits of a port.
    pub fn get_u64(&mut self, port: usize) -> Result<u64, SimError> {
        let w = self.get(port)?;
        Ok(w[0] as u64 | (w.get(1).copied().unwrap_or(0) as u64) << 32)
    }

    /// Evaluates the model (settles combinational logic after input changes).
    pub fn eval(&mut self) {
        // SAFETY: valid handle.
        unsafe { (self.api.eval)(self.handle) };
    }

    /// `n` full cycles of clock `clk` (rising then falling edge), dumping trace if open.
    pub fn tick(&mut self, clk: usize, n: u64) -> Result<(), SimError> {
        let p = self.spec(clk)?;
        if p.dir != Direction::Input || p.width != 1 {
            return Err(SimError::PortDirection {
                name: p.name.clone(),
                dir: p.dir,
                what: "used as a 1-bit clock",
            });
        }
        // SAFETY: valid handle, clk is a 1-bit input, time is a valid u64.
        unsafe { (self.api.tick)(self.handle, clk as c_int, n, &mut self.time) };
        Ok(())
    }

    /// Simulation time in half cycles.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// Starts a VCD trace of all signals (the model must be built with `trace: true`).
    pub fn trace_open(&mut self, path: &Path) -> Result<(), SimError> {
        if !self.trace_built {
            return Err(SimError::Load {
                path: path.to_path_buf(),
                message: "this model was built without tracing (BuildSpec::trace = false)".into(),
            });
        }
        let c = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| SimError::io(path, std::io::Error::other("path contains NUL")))?;
        // SAFETY: valid handle and NUL-terminated path.
        let r = unsafe { (self.api.trace_open)(self.handle, c.as_ptr(), 99) };
        if r != 0 {
            return Err(SimError::io(
                path,
                std::io::Error::other(format!("cannot open VCD (code {r})")),
            ));
        }
        // the next tick (or trace_dump) writes the first sample
        self.tracing = true;
        Ok(())
    }

    /// Dumps the current values at the current time (after manual `eval`s).
    pub fn trace_dump(&mut self) {
        if self.tracing {
            // SAFETY: valid handle.
            unsafe { (self.api.trace_dump)(self.handle, self.time) };
        }
    }

    /// Flushes and closes the trace.
    pub fn trace_close(&mut self) {
        if self.tracing {
            // SAFETY: valid handle.
            unsafe {
                (self.api.trace_flush)(self.handle);
                (self.api.trace_close)(self.handle);
            }
            self.tracing = false;
        }
    }

    fn spec(&self, port: usize) -> Result<&PortSpec, SimError> {
        self.ports.get(port).ok_or_else(|| SimError::UnknownPort {
            top: self.top.clone(),
            name: format!("#{port}"),
            known: format!("{} ports", self.ports.len()),
        })
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: handle came from tern_model_new and is freed once.
        unsafe { (self.api.free)(self.handle) };
    }
}
