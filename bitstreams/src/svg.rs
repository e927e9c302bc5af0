//! The design-space plot: two panels, array LUTs against Fmax and against projected
//! tokens/s; the Pareto front in red and joined by a line; placed points filled, estimated
//! points hollow; points that do not fit in grey.

use crate::dse::{DsePoint, FmaxSource};
use std::fmt::Write;

const W: f64 = 1000.0;
const H: f64 = 440.0;
const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 300.0;
const TOP: f64 = 70.0;

/// A "nice" axis: ticks at 1, 2 or 5 × 10^k covering [lo, hi].
pub fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    };
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let mut t = Vec::new();
    let mut x = start;
    while x <= hi + step * 1e-9 {
        t.push(x);
        x += step;
    }
    if t.last().is_some_and(|&l| l < hi) {
        t.push(x);
    }
    t
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

struct Panel {
    x0: f64,
    xt: Vec<f64>,
    yt: Vec<f64>,
}

impl Panel {
    fn sx(&self, v: f64) -> f64 {
        let (a, b) = (self.xt[0], *self.xt.last().unwrap());
        self.x0 + (v - a) / (b - a) * PANEL_W
    }
    fn sy(&self, v: f64) -> f64 {
        let (a, b) = (self.yt[0], *self.yt.last().unwrap());
        TOP + PANEL_H - (v - a) / (b - a) * PANEL_H
    }
}

fn panel(s: &mut String, points: &[DsePoint], x0: f64, ylabel: &str, y: &dyn Fn(&DsePoint) -> f64) {
    let xs: Vec<f64> = points.iter().map(|p| p.resources.lut as f64).collect();
    let ys: Vec<f64> = points.iter().map(y).collect();
    let xmax = xs.iter().cloned().fold(0.0, f64::max);
    let ymax = ys.iter().cloned().fold(0.0, f64::max);
    let p = Panel {
        x0,
        xt: nice_ticks(0.0, xmax.max(1.0)),
        yt: nice_ticks(0.0, if ymax > 0.0 { ymax } else { 1.0 }),
    };
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#444"/>"##
    );
    for &t in &p.xt {
        let x = p.sx(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"##,
            TOP,
            TOP + PANEL_H,
            TOP + PANEL_H + 15.0,
            fmt_tick(t)
        );
    }
    for &t in &p.yt {
        let yy = p.sy(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            x0 + PANEL_W,
            x0 - 5.0,
            yy + 4.0,
            fmt_tick(t)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" font-size="13" text-anchor="middle">array LUTs (yosys estimate)</text>"##,
        x0 + PANEL_W / 2.0,
        TOP + PANEL_H + 35.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" font-size="13" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"##,
        x0 - 45.0,
        TOP + PANEL_H / 2.0,
        x0 - 45.0,
        TOP + PANEL_H / 2.0,
        esc(ylabel)
    );
    // the front, joined left to right
    let mut front: Vec<&DsePoint> = points.iter().filter(|q| q.pareto).collect();
    front.sort_by_key(|q| q.resources.lut);
    if front.len() > 1 {
        let pts: Vec<String> = front
            .iter()
            .map(|q| format!("{:.1},{:.1}", p.sx(q.resources.lut as f64), p.sy(y(q))))
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#c00" stroke-width="1.5"/>"##,
            pts.join(" ")
        );
    }
    for q in points {
        let (cx, cy) = (p.sx(q.resources.lut as f64), p.sy(y(q)));
        let color = if !q.fits {
            "#999"
        } else if q.pareto {
            "#c00"
        } else {
            "#1f5fbf"
        };
        let fill = if q.fmax_source == FmaxSource::PlaceAndRoute {
            color
        } else {
            "white"
        };
        let _ = writeln!(
            s,
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="4.5" fill="{fill}" stroke="{color}" stroke-width="1.5"><title>{}: {} LUT, {:.1} MHz, {:.2} tok/s</title></circle>"##,
            esc(&q.name),
            q.resources.lut,
            q.fmax_mhz,
            q.projection.tokens_per_s
        );
        if q.pareto {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#c00">{}x{} t{}</text>"##,
                cx + 6.0,
                cy - 6.0,
                q.rows,
                q.cols,
                q.tree_reg_every
            );
        }
    }
}

/// The SVG document.
pub fn dse_plot(points: &[DsePoint], title: &str, no_memory: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif">"##
    );
    let _ = writeln!(s, r##"<rect width="{W}" height="{H}" fill="white"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="{}" y="28" font-size="16" text-anchor="middle">{}</text>"##,
        W / 2.0,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="48" font-size="11" text-anchor="middle" fill="#555">red: Pareto front (fewest LUTs, most tokens/s); filled: Fmax from place and route; hollow: Fmax = target (not placed); grey: does not fit</text>"##,
        W / 2.0
    );
    panel(&mut s, points, 70.0, "Fmax (MHz)", &|p| p.fmax_mhz);
    if no_memory {
        panel(
            &mut s,
            points,
            560.0,
            "compute-bound tokens/s (no weight memory)",
            &|p| p.projection.compute_tokens_per_s,
        );
    } else {
        panel(&mut s, points, 560.0, "projected tokens/s", &|p| {
            p.projection.tokens_per_s
        });
    }
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range() {
        assert_eq!(nice_ticks(0.0, 9.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = nice_ticks(0.0, 23_456.0);
        assert_eq!(t[0], 0.0);
        assert!(*t.last().unwrap() >= 23_456.0);
        assert!(t.len() <= 8, "{t:?}");
        let z = nice_ticks(0.0, 0.0);
        assert!(z[0] < 0.0 && *z.last().unwrap() > 0.0, "{z:?}");
    }
}
