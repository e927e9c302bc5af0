//! nextpnr: command lines and the placed-design figures (utilisation, Fmax per clock), read
//! from its JSON report (`--report`) or, when that is missing, from its log.

use serde::Serialize;
use std::collections::BTreeMap;

/// Used and available cells of one kind in the placed design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Utilization {
    pub used: u64,
    pub available: u64,
}

impl Utilization {
    pub fn percent(&self) -> f64 {
        if self.available == 0 {
            0.0
        } else {
            100.0 * self.used as f64 / self.available as f64
        }
    }
}

/// Timing of one clock after routing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockTiming {
    /// nextpnr's clock net name.
    pub clock: String,
    pub fmax_mhz: f64,
    /// The constraint it was checked against, MHz.
    pub constraint_mhz: f64,
}

/// The worst path of a clock domain, from the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriticalPath {
    /// `posedge CLOCK` style endpoints of the domain.
    pub from_clock: String,
    pub to_clock: String,
    /// First and last cell on the path.
    pub start: String,
    pub end: String,
    pub delay_ns: f64,
    pub logic_ns: f64,
    pub routing_ns: f64,
}

/// What the report says.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PnrFigures {
    pub utilization: BTreeMap<String, Utilization>,
    pub clocks: Vec<ClockTiming>,
    pub critical_paths: Vec<CriticalPath>,
}

impl PnrFigures {
    /// The slowest clock's Fmax.
    pub fn fmax_mhz(&self) -> Option<f64> {
        self.clocks.iter().map(|c| c.fmax_mhz).reduce(f64::min)
    }
}

/// Parses nextpnr's `--report` JSON: `utilization.{cell: {used, available}}` and
/// `fmax.{clock: {achieved, constraint}}`.
pub fn parse_report_json(text: &str) -> Result<PnrFigures, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut f = PnrFigures::default();
    let util = v
        .get("utilization")
        .and_then(|u| u.as_object())
        .ok_or("no `utilization` in the nextpnr report")?;
    for (k, u) in util {
        let used = u.get("used").and_then(|x| x.as_u64());
        let available = u.get("available").and_then(|x| x.as_u64());
        if let (Some(used), Some(available)) = (used, available) {
            f.utilization
                .insert(k.clone(), Utilization { used, available });
        }
    }
    if let Some(fm) = v.get("fmax").and_then(|x| x.as_object()) {
        for (clk, t) in fm {
            let a = t.get("achieved").and_then(|x| x.as_f64());
            let c = t.get("constraint").and_then(|x| x.as_f64());
            if let (Some(a), Some(c)) = (a, c) {
                f.clocks.push(ClockTiming {
                    clock: clk.clone(),
                    fmax_mhz: (a * 100.0).round() / 100.0,
                    constraint_mhz: c,
                });
            }
        }
    }
    for cp in v
        .get("critical_paths")
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
    {
        let Some(path) = cp.get("path").and_then(|p| p.as_array()) else {
            continue;
        };
        let cell = |seg: Option<&serde_json::Value>, end: &str| {
            seg.and_then(|s| s.get(end))
                .and_then(|e| e.get("cell"))
                .and_then(|c| c.as_str())
                .unwrap_or("")
                .to_string()
        };
        let (mut logic, mut routing) = (0.0, 0.0);
        for seg in path {
            let d = seg.get("delay").and_then(|x| x.as_f64()).unwrap_or(0.0);
            if seg.get("type").and_then(|t| t.as_str()) == Some("routing") {
                routing += d;
            } else {
                logic += d;
            }
        }
        let text = |k: &str| cp.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
        f.critical_paths.push(CriticalPath {
            from_clock: text("from"),
            to_clock: text("to"),
            start: cell(path.first(), "from"),
            end: cell(path.last(), "to"),
            delay_ns: r3(logic + routing),
            logic_ns: r3(logic),
            routing_ns: r3(routing),
        });
    }
    Ok(f)
}

/// Parses the log: the last `Device utilisation:` block (`Info:  CELL:  used/  avail  pct%`)
/// and the last `Max frequency for clock 'C': F MHz (PASS|FAIL at T MHz)` line per clock
/// (nextpnr prints one after placement and one after routing).
pub fn parse_log(text: &str) -> PnrFigures {
    let mut f = PnrFigures::default();
    let mut in_util = false;
    let mut clocks: Vec<ClockTiming> = Vec::new();
    for raw in text.lines() {
        let line = raw.strip_prefix("Info:").unwrap_or(raw).trim();
        if line.starts_with("Device utilisation") {
            in_util = true;
            f.utilization.clear();
            continue;
        }
        if in_util {
            if let Some((name, rest)) = line.split_once(':') {
                let nums: Vec<&str> = rest.split('/').map(str::trim).collect();
                if nums.len() == 2 {
                    let used = nums[0].parse::<u64>().ok();
                    let avail = nums[1]
                        .split_whitespace()
                        .next()
                        .and_then(|a| a.parse::<u64>().ok());
                    if let (Some(used), Some(available)) = (used, avail) {
                        f.utilization
                            .insert(name.trim().to_string(), Utilization { used, available });
                        continue;
                    }
                }
            }
            if !line.is_empty() {
                in_util = false;
            }
        }
        if let Some(rest) = line.strip_prefix("Max frequency for clock") {
            // " 'clk': 122.20 MHz (PASS at 12.00 MHz)"
            let rest = rest.trim();
            let Some(q1) = rest.find('\'') else { continue };
            let Some(q2) = rest[q1 + 1..].find('\'') else {
                continue;
            };
            let clock = rest[q1 + 1..q1 + 1 + q2].to_string();
            let after = &rest[q1 + 2 + q2..];
            let fmax = after
                .trim_start_matches(':')
                .split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok());
            let constraint = after
                .split(" at ")
                .nth(1)
                .and_then(|x| x.split_whitespace().next())
                .and_then(|x| x.parse::<f64>().ok());
            if let (Some(fmax_mhz), Some(constraint_mhz)) = (fmax, constraint) {
                clocks.retain(|c| c.clock != clock);
                clocks.push(ClockTiming {
                    clock,
                    fmax_mhz,
                    constraint_mhz,
                });
            }
        }
    }
    f.clocks = clocks;
    f
}

/// Reads the figures: the JSON report when it parses, with clocks from the log if the report
/// has none; the log alone otherwise.
pub fn figures(report_json: Option<&str>, log: &str) -> PnrFigures {
    let from_log = parse_log(log);
    match report_json.map(parse_report_json) {
        Some(Ok(mut r)) => {
            if r.clocks.is_empty() {
                r.clocks = from_log.clocks;
            }
            if r.utilization.is_empty() {
                r.utilization = from_log.utilization;
            }
            r
        }
        _ => from_log,
    }
}

/// The logic cells nextpnr counts in the placed design, per family: (LUT-like, FF-like).
pub fn logic_cells(family: crate::board::Family) -> (&'static str, &'static str) {
    match family {
        crate::board::Family::Ecp5 => ("TRELLIS_COMB", "TRELLIS_FF"),
        crate::board::Family::Ice40 => ("ICESTORM_LC", "ICESTORM_LC"),
        crate::board::Family::Xilinx => ("", ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nextpnr-ecp5 0.11 log excerpt (placement, then routing).
    const ECP5_LOG: &str = "\
Info: Device utilisation:
Info: \t          TRELLIS_IO:       9/    365     2%
Info: \t                DCCA:       1/     56     1%
Info: \t              DP16KD:       0/    208     0%
Info: \t          MULT18X18D:       8/    156     5%
Info: \t          TRELLIS_FF:    3210/  83640     3%
Info: \t        TRELLIS_COMB:    4867/  83640     5%
Info: \t        TRELLIS_RAMW:      40/  10455     0%
Info: 
Info: Placed 9 cells based on constraints.
Info: Max frequency for clock '$glbnet$clk_25mhz$TRELLIS_IO_IN': 101.00 MHz (FAIL at 150.00 MHz)
Info: Routing..
Info: Max frequency for clock '$glbnet$clk_25mhz$TRELLIS_IO_IN': 118.53 MHz (FAIL at 150.00 MHz)
Info: Max delay <async>                                   -> posedge $glbnet$clk_25mhz$TRELLIS_IO_IN: 2.10 ns
";

    /// nextpnr-ice40 0.4 (Debian) log excerpt.
    const ICE40_LOG: &str = "\
Info: Device utilisation:
Info: \t         ICESTORM_LC:  5120/  7680    66%
Info: \t        ICESTORM_RAM:     0/    32     0%
Info: \t               SB_IO:     9/   256     3%
Info: \t               SB_GB:     8/     8   100%
Info: 
Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 70.12 MHz (FAIL at 150.00 MHz)
";

    #[test]
    fn ecp5_log() {
        let f = parse_log(ECP5_LOG);
        assert_eq!(
            f.utilization["TRELLIS_COMB"],
            Utilization {
                used: 4867,
                available: 83640
            }
        );
        assert_eq!(f.utilization["MULT18X18D"].used, 8);
        assert_eq!(f.clocks.len(), 1);
        assert_eq!(f.clocks[0].fmax_mhz, 118.53, "the post-route figure");
        assert_eq!(f.clocks[0].constraint_mhz, 150.0);
        assert_eq!(f.fmax_mhz(), Some(118.53));
    }

    #[test]
    fn ice40_log() {
        let f = parse_log(ICE40_LOG);
        assert_eq!(f.utilization["ICESTORM_LC"].used, 5120);
        assert!((f.utilization["ICESTORM_LC"].percent() - 66.666).abs() < 0.01);
        assert_eq!(f.clocks[0].clock, "clk$SB_IO_IN_$glb_clk");
        assert_eq!(f.clocks[0].fmax_mhz, 70.12);
        assert_eq!(parse_log("nothing here").fmax_mhz(), None);
    }

    #[test]
    fn report_json() {
        let j = r#"{"utilization": {"TRELLIS_COMB": {"used": 10, "available": 20}},
                    "fmax": {"clk": {"achieved": 201.49912414550781, "constraint": 150.0}},
                    "critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": [
                      {"delay": 0.52, "type": "clk-to-q", "from": {"cell": "a.q", "port": "Q"}, "to": {"cell": "a.q", "port": "Q"}},
                      {"delay": 1.35, "type": "routing", "from": {"cell": "a.q", "port": "Q"}, "to": {"cell": "b", "port": "A"}},
                      {"delay": 0.45, "type": "logic", "from": {"cell": "b", "port": "A"}, "to": {"cell": "b", "port": "F"}},
                      {"delay": 0.0, "type": "setup", "from": {"cell": "c.d", "port": "M"}, "to": {"cell": "c.d", "port": "M"}}]}]}"#;
        let f = figures(Some(j), ECP5_LOG);
        assert_eq!(f.utilization.len(), 1);
        assert_eq!(f.clocks[0].fmax_mhz, 201.5);
        let cp = &f.critical_paths[0];
        assert_eq!((cp.start.as_str(), cp.end.as_str()), ("a.q", "c.d"));
        assert_eq!(
            (cp.delay_ns, cp.logic_ns, cp.routing_ns),
            (2.32, 0.97, 1.35)
        );
        // a report without fmax takes the clocks from the log
        let j2 = r#"{"utilization": {"X": {"used": 1, "available": 2}}}"#;
        assert_eq!(figures(Some(j2), ECP5_LOG).fmax_mhz(), Some(118.53));
        // an unreadable report falls back to the log
        assert_eq!(figures(Some("{"), ECP5_LOG).utilization.len(), 7);
        assert!(parse_report_json("{}").is_err());
    }
}
