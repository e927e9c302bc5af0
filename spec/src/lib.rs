//! # tern-spec: the contract
//!
//! Everything the hardware and the software must agree on, defined once: the trit encoding
//! and packings ([`trit`], [`pack`]), the activation quantizer ([`act`]), the block-scale
//! format ([`scale`]), the datapath widths and their proof ([`widths`]), the array
//! configuration ([`config`]), the operands ([`matrix`]) and the bit-exact reference
//! ([`reference`]). The prose version is docs/arithmetic.md.

pub mod act;
pub mod card;
pub mod config;
pub mod matrix;
pub mod pack;
pub mod random;
pub mod reference;
pub mod scale;
pub mod trit;
pub mod widths;

pub use config::{ArrayConfig, BlockShape};
pub use matrix::{OperandError, QuantizedActs, ScaledTernaryMatrix};
