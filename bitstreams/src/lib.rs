//! # tern-bitstreams: the tern array on FPGA boards
//!
//! - [`board`]: boards as data (`boards/<board>/board.toml` + constraints), validated;
//! - [`wrapper`]: the LED board wrapper that keeps the whole array and fits a package;
//! - [`yosys`], [`nextpnr`]: scripts, command lines and report parsers;
//! - [`tools`]: finding the tools, running a step with its log and progress;
//! - [`shell`]: the card top (tern-hdl) with the port names a Vivado block design connects to;
//! - [`vivado`]: Vivado projects (TCL, XDC, XDMA-bridge or Zynq block designs) generated from data;
//! - [`flow`]: `synth`: RTL → wrapper → yosys → nextpnr → bitstream, and a `report.json`;
//! - [`perf`]: the cycle-level performance model (cycles, bytes and tokens/s per token);
//! - [`dse`], [`svg`]: design-space exploration, its Pareto front, table and plot.

pub mod board;
pub mod dse;
pub mod error;
pub mod flow;
pub mod nextpnr;
pub mod perf;
pub mod shell;
pub mod svg;
pub mod tools;
pub mod vivado;
pub mod wrapper;
pub mod yosys;

pub use board::{Board, Boards, Family, Flow};
pub use error::SynthError;
pub use flow::{estimate, synth, Depth, SynthOptions, SynthReport};
