//! Helpers for the rust-hdl cycle models: words onto per-bit ports and back.

use rust_hdl::prelude::*;

/// Drives `v`'s low bits onto per-bit signals, bit `i` onto `sigs[i]`.
pub fn drive_bits<D: Direction>(sigs: &mut [Signal<D, Bit>], v: u64) {
    for (i, s) in sigs.iter_mut().enumerate() {
        s.next = (v >> i) & 1 == 1;
    }
}

/// The word on per-bit output signals, `sigs[i]` as bit `i`.
pub fn read_bits(sigs: &[Signal<Out, Bit>]) -> u64 {
    word(sigs.iter().map(|s| s.val()))
}

/// The word on per-bit input signals, `sigs[i]` as bit `i`.
pub fn read_in_bits(sigs: &[Signal<In, Bit>]) -> u64 {
    word(sigs.iter().map(|s| s.val()))
}

fn word(bits: impl Iterator<Item = bool>) -> u64 {
    bits.enumerate()
        .fold(0u64, |a, (i, b)| a | ((b as u64) << i))
}
