//! # tern-hdl: the ternary add/sub lane array in rust-hdl
//!
//! Generates the array's Verilog from an [`tern_spec::ArrayConfig`]: processing elements
//! ([`pe`]), adder trees ([`tree`]), scalers ([`scaler`]), lanes ([`lane`]), the controller
//! ([`ctrl`]) and the core ([`core`]), all rust-hdl blocks whose bodies are width-exact
//! Verilog written by this crate, plus a clean top-level wrapper and a JSON manifest
//! ([`emit`]). Every block has a cycle model (its rust-hdl `update()`), tested against
//! tern-spec's reference.

pub mod card;
pub mod core;
pub mod ctrl;
pub mod emit;
pub mod error;
pub mod host;
pub mod lane;
pub mod params;
pub mod pe;
pub mod scaler;
pub mod sig;
pub mod tree;
pub mod vlog;
pub mod vtb;

pub use error::HdlError;
pub use params::{HdlOptions, Params};
