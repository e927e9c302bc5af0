//! # tern-sim: co-simulation of tern's hardware
//!
//! [`verilator`] builds any Verilog top under Verilator at run time (no build script: a
//! config the user invents is built on demand), wraps it in a generated C++ shim, loads the
//! result as a shared library and drives its ports from Rust. Builds are cached by a hash of
//! everything that goes into them, so nothing is rebuilt when nothing changed.
//!
//! [`case`] defines one stimulus that regenerates from a few numbers, [`engine`] the
//! `Engine` trait every simulator implements and the bit-for-bit comparison.

pub mod card;
pub mod card_image;
pub mod case;
pub mod driver;
pub mod engine;
pub mod rusthdl_engine;
pub mod verilator;
pub mod verilator_engine;
