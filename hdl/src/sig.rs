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
    sigs.iter()
        .enumerate()
        .fold(0u64, |a, (i, s)| a | ((s.val() as u64) << i))
}
