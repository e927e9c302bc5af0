//! One module per subcommand.

pub mod bench;
pub mod card;
pub mod config;
pub mod demo;
pub mod gemm;
pub mod hdl;
pub mod model;
pub mod pack;
pub mod run;
pub mod sim;
pub mod synth;
