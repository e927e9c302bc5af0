//! # tern-bitstreams: the tern array on FPGA boards
//!
//! - [`board`]: boards as data (`boards/<board>/board.toml` + constraints), validated;
//! - [`wrapper`]: the LED board wrapper that keeps the whole array and fits a package;
//! - [`yosys`], [`nextpnr`]: scripts, command lines and report parsers;
//! - [`tools`]: finding the tools, running a step with its log and progress;
//! - [`axi`]: the AXI adapter (registers + streams) a Vivado block design connects to;
//! - [`vivado`]: Vivado projects (TCL, XDC, XDMA or Zynq block designs) generated from data;
//! - [`flow`]: `synth`: RTL → wrapper → yosys → nextpnr → bitstream, and a `report.json`;
//! - [`perf`]: the cycle-level performance model (cycles, bytes and tokens/s per token);
//! - [`dse`], [`svg`]: design-space exploration, its Pareto front, table and plot.

pub mod axi;
pub mod board;
pub mod dse;
pub mod error;
pub mod flow;
pub mod nextpnr;
pub mod perf;
pub mod svg;
pub mod tools;
pub mod vivado;
pub mod wrapper;
pub mod yosys;

pub use board::{Board, Boards, Family, Flow};
pub use error::SynthError;
pub use flow::{estimate, synth, Depth, SynthOptions, SynthReport};
