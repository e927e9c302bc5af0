//! The card contract (issue: the card and its PCIe host driver): the register map. Command
//! layouts and the model image follow in the same module.

pub mod cmd;
pub mod image;
pub mod regs;
