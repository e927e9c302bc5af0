//! Small helpers that write width-exact Verilog (every extension explicit, so that
//! `verilator -Wall` sees no implicit width change).

use std::fmt::Write;

/// `reg`/`wire` declaration of `width` bits.
pub fn decl(kind: &str, width: u32, name: &str) -> String {
    if width == 1 {
        format!("{kind} {name};")
    } else {
        format!("{kind} [{}:0] {name};", width - 1)
    }
}

/// `wire [w-1:0] name = expr;`
pub fn wire_eq(width: u32, name: &str, expr: &str) -> String {
    let d = decl("wire", width, name);
    format!("{} = {expr};", &d[..d.len() - 1])
}

/// A sized decimal literal.
pub fn lit(width: u32, value: u64) -> String {
    format!("{width}'d{value}")
}

/// All-zero literal of `width` bits.
pub fn zeros(width: u32) -> String {
    format!("{{{width}{{1'b0}}}}")
}

/// Sign-extends the `from`-bit signal `name` (an identifier) to `to` bits.
pub fn sext(name: &str, from: u32, to: u32) -> String {
    assert!(to >= from && from >= 1, "sext {name} {from} -> {to}");
    if to == from {
        name.to_string()
    } else if from == 1 {
        format!("{{{to}{{{name}}}}}")
    } else {
        format!("{{{{{}{{{name}[{}]}}}}, {name}}}", to - from, from - 1)
    }
}

/// Zero-extends the `from`-bit signal `name` to `to` bits.
pub fn zext(name: &str, from: u32, to: u32) -> String {
    assert!(to >= from && from >= 1, "zext {name} {from} -> {to}");
    if to == from {
        name.to_string()
    } else {
        format!("{{{}, {name}}}", zeros(to - from))
    }
}

/// `{names[n-1], …, names[0]}`: packs per-element ports, element 0 in the low bits.
pub fn pack<S: AsRef<str>>(names: &[S]) -> String {
    let mut s = String::from("{");
    for (i, n) in names.iter().rev().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(n.as_ref());
    }
    s.push('}');
    s
}

/// Bit `i` of the `width`-bit signal `name` (the name itself when it is one bit wide).
pub fn bit(name: &str, width: u32, i: u32) -> String {
    if width == 1 {
        name.to_string()
    } else {
        format!("{name}[{i}]")
    }
}

/// Bit range `[lo + w - 1 : lo]` of `name` (or `[lo]` for one bit).
pub fn slice(name: &str, lo: u32, w: u32) -> String {
    if w == 1 {
        format!("{name}[{lo}]")
    } else {
        format!("{name}[{}:{lo}]", lo + w - 1)
    }
}

/// Text builder with indentation.
#[derive(Default)]
pub struct Text {
    out: String,
    indent: usize,
}

impl Text {
    pub fn line(&mut self, s: impl AsRef<str>) {
        let s = s.as_ref();
        if !s.is_empty() {
            for _ in 0..self.indent {
                self.out.push_str("  ");
            }
            self.out.push_str(s);
        }
        self.out.push('\n');
    }
    pub fn open(&mut self, s: impl AsRef<str>) {
        self.line(s);
        self.indent += 1;
    }
    pub fn close(&mut self, s: impl AsRef<str>) {
        self.indent -= 1;
        self.line(s);
    }
    /// Indents the following lines one more level (after a `close("end else begin")`).
    pub fn indent_more(&mut self) {
        self.indent += 1;
    }
    pub fn comment(&mut self, s: impl AsRef<str>) {
        let mut l = String::new();
        let _ = write!(l, "// {}", s.as_ref());
        self.line(l);
    }
    pub fn finish(self) -> String {
        self.out
    }
}

/// Interprets the low `w` bits of `v` as a signed number.
pub fn wrap_signed(v: i128, w: u32) -> i64 {
    let m = (1i128 << w) - 1;
    let u = v & m;
    let r = if w > 0 && (u >> (w - 1)) & 1 == 1 {
        u - (1i128 << w)
    } else {
        u
    };
    r as i64
}

/// The low `w` bits of a signed value, as an unsigned pattern.
pub fn to_pattern(v: i64, w: u32) -> u64 {
    if w >= 64 {
        v as u64
    } else {
        (v as u64) & ((1u64 << w) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(sext("a", 4, 4), "a");
        assert_eq!(sext("a", 4, 6), "{{2{a[3]}}, a}");
        assert_eq!(sext("c", 1, 3), "{3{c}}");
        assert_eq!(zext("c", 1, 3), "{{2{1'b0}}, c}");
        assert_eq!(pack(&["a", "b", "c"]), "{c, b, a}");
        assert_eq!(slice("w", 4, 2), "w[5:4]");
        assert_eq!(slice("w", 4, 1), "w[4]");
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap_signed(0xff, 8), -1);
        assert_eq!(wrap_signed(0x7f, 8), 127);
        assert_eq!(wrap_signed(-129, 8), 127);
        assert_eq!(to_pattern(-1, 4), 0xf);
        assert_eq!(to_pattern(-1, 64), u64::MAX);
        assert_eq!(wrap_signed(to_pattern(-5, 40) as i128, 40), -5);
    }
}
