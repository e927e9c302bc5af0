//! The processing element: one ternary product, no multiplier.
//!
//! A trit code (bit 0 = non-zero, bit 1 = negative; `10` is reserved and acts as 0) selects
//! add, subtract or hold of the activation `a`. The PE emits the product in one's complement,
//! `prod = nz & (a ^ {A{neg}})`, which is `a`, `-a - 1` or `0`, and the correction bit
//! `corr = nz & neg`; `prod + corr` is the exact product. The lane's adder tree folds every
//! correction into an adder carry-in, so negation costs no adder of its own.

use crate::vlog::{to_pattern, wrap_signed, Text};
use rust_hdl::prelude::*;

/// The PE block (combinational). `A` is the activation width.
#[derive(LogicBlock)]
pub struct Pe<const A: usize> {
    /// 2-bit trit code.
    pub trit: Signal<In, Bits<2>>,
    /// Activation code, `A`-bit two's complement.
    pub act: Signal<In, Bits<A>>,
    /// One's-complement product, `A`-bit two's complement.
    pub prod: Signal<Out, Bits<A>>,
    /// +1 correction (the product is negative).
    pub corr: Signal<Out, Bit>,
}

impl<const A: usize> Default for Pe<A> {
    fn default() -> Self {
        Pe {
            trit: Default::default(),
            act: Default::default(),
            prod: Default::default(),
            corr: Default::default(),
        }
    }
}

/// The PE's function on bit patterns: `(prod pattern, corr)` for a trit code and an
/// `a_bits`-bit activation pattern.
pub fn pe_model(code: u64, act: u64, a_bits: u32) -> (u64, bool) {
    let nz = code & 1 == 1;
    let neg = code & 2 == 2;
    let mask = (1u64 << a_bits) - 1;
    let prod = if nz {
        (act ^ if neg { mask } else { 0 }) & mask
    } else {
        0
    };
    (prod, nz && neg)
}

/// The exact signed product the PE stands for (`prod + corr`).
pub fn pe_value(code: u64, act: u64, a_bits: u32) -> i64 {
    let (p, c) = pe_model(code, act, a_bits);
    wrap_signed(p as i128, a_bits) + c as i64
}

/// The PE's Verilog body for activation width `a`.
pub fn pe_verilog(a: u32) -> String {
    let mut t = Text::default();
    t.comment(
        "ternary product in one's complement: nz & (act ^ {A{neg}}); +1 correction = nz & neg",
    );
    t.open("always @(*) begin");
    t.line(format!(
        "prod = {{{a}{{trit[0]}}}} & (act ^ {{{a}{{trit[1]}}}});"
    ));
    t.line("corr = trit[0] & trit[1];");
    t.close("end");
    t.finish()
}

impl<const A: usize> Logic for Pe<A> {
    fn update(&mut self) {
        let (p, c) = pe_model(self.trit.val().to_u64(), self.act.val().to_u64(), A as u32);
        self.prod.next = bits::<A>(p);
        self.corr.next = c;
    }
    fn connect(&mut self) {
        self.prod.connect();
        self.corr.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(pe_verilog(A as u32))
    }
}

/// Bit pattern of an activation value.
pub fn act_pattern(a: i64, a_bits: u32) -> u64 {
    to_pattern(a, a_bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_spec::reference::pe;
    use tern_spec::trit::trit_to_code;

    /// Exhaustive: every code (including the reserved one) × every activation, A = 4..=8.
    #[test]
    fn model_matches_reference_pe() {
        for a_bits in 4..=8u32 {
            let lo = -(1i64 << (a_bits - 1));
            let hi = (1i64 << (a_bits - 1)) - 1;
            for a in lo..=hi {
                for w in -1i8..=1 {
                    let code = trit_to_code(w) as u64;
                    let got = pe_value(code, act_pattern(a, a_bits), a_bits);
                    assert_eq!(got, pe(0, w, a as i8), "w={w} a={a} bits={a_bits}");
                }
                assert_eq!(
                    pe_value(0b10, act_pattern(a, a_bits), a_bits),
                    0,
                    "reserved"
                );
            }
        }
    }

    /// The rust-hdl block, run in rust-hdl's simulator, against the reference PE.
    #[test]
    fn block_in_rust_hdl_sim_matches_reference() {
        let mut uut = Pe::<8>::default();
        uut.trit.connect();
        uut.act.connect();
        uut.connect_all();
        let mut sim = Simulation::new();
        sim.add_testbench(move |mut sim: Sim<Pe<8>>| {
            let mut x = sim.init()?;
            for a in -128i64..=127 {
                for w in -1i8..=1 {
                    x.trit.next = bits::<2>(trit_to_code(w) as u64);
                    x.act.next = bits::<8>(act_pattern(a, 8));
                    x = sim.wait(1, x)?;
                    let v = wrap_signed(x.prod.val().to_u64() as i128, 8) + x.corr.val() as i64;
                    sim_assert_eq!(sim, v, pe(0, w, a as i8), x);
                }
                x.trit.next = bits::<2>(0b10);
                x = sim.wait(1, x)?;
                sim_assert_eq!(sim, x.prod.val().to_u64(), 0, x);
                sim_assert!(sim, !x.corr.val(), x);
            }
            sim.done(x)
        });
        sim.run(Box::new(uut), 10_000).unwrap();
    }

    #[test]
    fn verilog_body() {
        let v = pe_verilog(8);
        assert!(
            v.contains("prod = {8{trit[0]}} & (act ^ {8{trit[1]}});"),
            "{v}"
        );
        assert!(!v.contains(" * "), "no multiplier in the PE");
    }
}
