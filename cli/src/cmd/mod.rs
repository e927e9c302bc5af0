//! One module per subcommand.

pub mod config;
pub mod demo;
pub mod gemm;
pub mod model;
pub mod pack;
pub mod run;
