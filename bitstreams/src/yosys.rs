//! yosys: synthesis scripts per family and the resource counts read from `stat -json`.

use crate::board::Family;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Resources of a synthesized netlist, in the family's units.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Logic LUTs: ECP5 LUT4 + 2 per CCU2C (a CCU2C is two LUT4s with their carry logic),
    /// iCE40 SB_LUT4, Xilinx LUT1..LUT6.
    pub lut: u64,
    /// Flip-flops (TRELLIS_FF, SB_DFF*, FD*).
    pub ff: u64,
    /// Multipliers / DSP blocks (MULT18X18D, ALU54B, SB_MAC16, DSP48E1/E2).
    pub dsp: u64,
    /// Block RAMs in the board's unit (ECP5 DP16KD, iCE40 RAM4K, SPRAM; Xilinx RAMB36, a
    /// RAMB18 counting ½).
    pub bram: f64,
    /// Distributed memory cells (TRELLIS_DPR16X4, SRL16E/SRLC32E, RAM32M, RAM64M, …).
    pub lutram: u64,
    /// Carry cells (CCU2C, SB_CARRY, CARRY4/CARRY8).
    pub carry: u64,
    /// Every cell type with its count, as yosys reports it.
    pub cells: BTreeMap<String, u64>,
}

impl Resources {
    /// Classifies yosys cell counts for a family.
    pub fn from_cells(family: Family, cells: BTreeMap<String, u64>) -> Resources {
        let mut r = Resources {
            cells,
            ..Default::default()
        };
        for (ty, &n) in &r.cells {
            let t = ty.as_str();
            match family {
                Family::Ecp5 => match t {
                    "LUT4" => r.lut += n,
                    "CCU2C" => {
                        r.lut += 2 * n;
                        r.carry += n;
                    }
                    "TRELLIS_FF" => r.ff += n,
                    "MULT18X18D" | "ALU54B" => r.dsp += n,
                    "DP16KD" | "PDPW16KD" => r.bram += n as f64,
                    "TRELLIS_DPR16X4" => r.lutram += n,
                    _ => {}
                },
                Family::Ice40 => match t {
                    "SB_LUT4" => r.lut += n,
                    "SB_CARRY" => r.carry += n,
                    "SB_MAC16" => r.dsp += n,
                    "SB_RAM40_4K" | "SB_RAM40_4KNR" | "SB_RAM40_4KNW" | "SB_RAM40_4KNRNW"
                    | "SB_SPRAM256KA" => r.bram += n as f64,
                    _ if t.starts_with("SB_DFF") => r.ff += n,
                    _ => {}
                },
                Family::Xilinx => match t {
                    "LUT1" | "LUT2" | "LUT3" | "LUT4" | "LUT5" | "LUT6" => r.lut += n,
                    "FDRE" | "FDSE" | "FDCE" | "FDPE" | "FDRE_1" | "FDSE_1" | "FDCE_1"
                    | "FDPE_1" | "LDCE" | "LDPE" => r.ff += n,
                    "DSP48E1" | "DSP48E2" => r.dsp += n,
                    "RAMB36E1" | "RAMB36E2" => r.bram += n as f64,
                    "RAMB18E1" | "RAMB18E2" => r.bram += 0.5 * n as f64,
                    "CARRY4" | "CARRY8" => r.carry += n,
                    _ if t.starts_with("SRL")
                        || t.starts_with("RAM32")
                        || t.starts_with("RAM64")
                        || t.starts_with("RAM128")
                        || t.starts_with("RAM256") =>
                    {
                        r.lutram += n
                    }
                    _ => {}
                },
            }
        }
        r
    }

    /// `self − other`, each figure saturating at zero (the array's share of a wrapped design).
    pub fn minus(&self, other: &Resources) -> Resources {
        let mut cells = self.cells.clone();
        for (k, v) in &other.cells {
            if let Some(c) = cells.get_mut(k) {
                *c = c.saturating_sub(*v);
            }
        }
        cells.retain(|_, v| *v > 0);
        Resources {
            lut: self.lut.saturating_sub(other.lut),
            ff: self.ff.saturating_sub(other.ff),
            dsp: self.dsp.saturating_sub(other.dsp),
            bram: (self.bram - other.bram).max(0.0),
            lutram: self.lutram.saturating_sub(other.lutram),
            carry: self.carry.saturating_sub(other.carry),
            cells,
        }
    }
}

/// Parses `stat -json` (yosys 0.23 … 0.70): the `design` section's cell counts, else the
/// sum over modules. Cells named in `exclude` (black boxes) and `$scopeinfo` are dropped.
pub fn parse_stat_json(text: &str, exclude: &[&str]) -> Result<BTreeMap<String, u64>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let by_type = |m: &serde_json::Value| -> Option<BTreeMap<String, u64>> {
        let obj = m.get("num_cells_by_type")?.as_object()?;
        Some(
            obj.iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                .collect(),
        )
    };
    let mut cells = if let Some(d) = v.get("design").and_then(by_type) {
        d
    } else {
        let mods = v
            .get("modules")
            .and_then(|m| m.as_object())
            .ok_or("no `design` or `modules` in the stat JSON")?;
        let mut sum = BTreeMap::new();
        for m in mods.values() {
            for (k, n) in by_type(m).unwrap_or_default() {
                *sum.entry(k).or_insert(0) += n;
            }
        }
        sum
    };
    cells.retain(|k, _| {
        let bare = k.trim_start_matches('\\');
        !k.starts_with('$') && !exclude.contains(&bare)
    });
    Ok(cells
        .into_iter()
        .map(|(k, v)| (k.trim_start_matches('\\').to_string(), v))
        .collect())
}

/// A yosys synthesis job.
#[derive(Debug, Clone)]
pub struct SynthScript {
    pub family: Family,
    /// `synth_xilinx -family` value (Xilinx only).
    pub xilinx_family: Option<String>,
    pub top: String,
    /// Verilog files read normally.
    pub files: Vec<String>,
    /// Verilog files read as black boxes (`read_verilog -lib`).
    pub blackbox_files: Vec<String>,
    /// Netlist to write for place and route (open flows).
    pub json_out: Option<String>,
    /// Where `stat -json` goes.
    pub stat_out: String,
    /// Extra `synth_*` arguments (board.toml `[synth] yosys_args`).
    pub extra: Vec<String>,
}

impl SynthScript {
    /// The yosys command script.
    pub fn script(&self) -> String {
        let mut s = String::new();
        if self.family == Family::Ecp5 {
            // the vendor cells as black boxes before `hierarchy -check`: the scaler
            // instantiates MULT18X18D (HdlOptions::ecp5_dsp); synth_ecp5 reads them only later
            s.push_str("read_verilog -lib +/ecp5/cells_bb.v\n");
        }
        for f in &self.blackbox_files {
            s.push_str(&format!("read_verilog -lib {f}\n"));
        }
        if !self.files.is_empty() {
            s.push_str(&format!("read_verilog {}\n", self.files.join(" ")));
        }
        s.push_str(&format!("hierarchy -check -top {}\n", self.top));
        let mut synth = match self.family {
            Family::Ecp5 => format!("synth_ecp5 -top {}", self.top),
            Family::Ice40 => format!("synth_ice40 -top {}", self.top),
            Family::Xilinx => format!(
                "synth_xilinx -family {} -flatten -noiopad -top {}",
                self.xilinx_family.as_deref().unwrap_or("xc7"),
                self.top
            ),
        };
        if let Some(j) = &self.json_out {
            synth.push_str(&format!(" -json {j}"));
        }
        for a in &self.extra {
            synth.push(' ');
            synth.push_str(a);
        }
        s.push_str(&synth);
        s.push('\n');
        s.push_str(&format!("tee -q -o {} stat -json\n", self.stat_out));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stat -json` of yosys 0.70 (captured from `synth_ecp5` of the 8×8 array).
    const STAT_070: &str = r#"{
   "creator": "Yosys 0.70 (git sha1 28ba3cb92)",
   "invocation": "stat -json ",
   "modules": {
      "\\tern_small": {
         "num_wires":         4637,
         "num_cells":         5241,
         "num_submodules":       0,
         "num_cells_by_type": {
            "$scopeinfo": 82,
            "CCU2C": 611,
            "L6MUX21": 44,
            "LUT4": 1495,
            "MULT18X18D": 8,
            "PFUMX": 103,
            "TRELLIS_DPR16X4": 80,
            "TRELLIS_FF": 2818
         }
      }
   },
      "design": {
         "num_wires":         4637,
         "num_cells":         5241,
         "num_cells_by_type": {
            "$scopeinfo": 82,
            "CCU2C": 611,
            "L6MUX21": 44,
            "LUT4": 1495,
            "MULT18X18D": 8,
            "PFUMX": 103,
            "TRELLIS_DPR16X4": 80,
            "TRELLIS_FF": 2818
         }
      }
}"#;

    /// `stat -json` of yosys 0.23 with two modules and no `design` section.
    const STAT_023: &str = r#"{
   "creator": "Yosys 0.23 (git sha1 7ce5011c24b)",
   "invocation": "stat -json ",
   "modules": {
      "\\a": { "num_cells": 3, "num_cells_by_type": { "SB_LUT4": 2, "SB_DFFE": 1 } },
      "\\b": { "num_cells": 4, "num_cells_by_type": { "SB_LUT4": 1, "SB_CARRY": 2, "tern_small": 1 } }
   }
}"#;

    #[test]
    fn stat_json_070_ecp5() {
        let cells = parse_stat_json(STAT_070, &[]).unwrap();
        assert!(!cells.contains_key("$scopeinfo"));
        let r = Resources::from_cells(Family::Ecp5, cells);
        assert_eq!(r.lut, 1495 + 2 * 611);
        assert_eq!(r.carry, 611);
        assert_eq!(r.ff, 2818);
        assert_eq!(r.dsp, 8);
        assert_eq!(r.lutram, 80);
        assert_eq!(r.bram, 0.0);
    }

    #[test]
    fn stat_json_023_sums_modules_and_drops_black_boxes() {
        let cells = parse_stat_json(STAT_023, &["tern_small"]).unwrap();
        assert_eq!(cells.get("tern_small"), None);
        let r = Resources::from_cells(Family::Ice40, cells);
        assert_eq!((r.lut, r.ff, r.carry), (3, 1, 2));
        assert!(parse_stat_json("{}", &[]).is_err());
        assert!(parse_stat_json("not json", &[]).is_err());
    }

    #[test]
    fn xilinx_classification_and_subtraction() {
        let cells: BTreeMap<String, u64> = [
            ("LUT6", 10),
            ("LUT2", 5),
            ("FDRE", 7),
            ("SRL16E", 3),
            ("RAM32M", 1),
            ("RAMB18E1", 3),
            ("RAMB36E1", 1),
            ("DSP48E1", 2),
            ("CARRY4", 4),
            ("MUXF7", 9),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let r = Resources::from_cells(Family::Xilinx, cells);
        assert_eq!((r.lut, r.ff, r.dsp, r.lutram, r.carry), (15, 7, 2, 4, 4));
        assert_eq!(r.bram, 2.5);
        let w = Resources::from_cells(
            Family::Xilinx,
            [("LUT6".to_string(), 4), ("FDRE".to_string(), 9)].into(),
        );
        let a = r.minus(&w);
        assert_eq!((a.lut, a.ff), (11, 0));
        assert_eq!(a.cells.get("LUT6"), Some(&6));
        assert_eq!(a.cells.get("FDRE"), None);
    }

    #[test]
    fn scripts() {
        let s = SynthScript {
            family: Family::Xilinx,
            xilinx_family: Some("xcup".into()),
            top: "tern_small_axi".into(),
            files: vec!["a.v".into(), "b.v".into()],
            blackbox_files: vec!["tern_small.v".into()],
            json_out: None,
            stat_out: "stat.json".into(),
            extra: vec![],
        };
        let t = s.script();
        assert!(t.contains("read_verilog -lib tern_small.v\nread_verilog a.v b.v\n"));
        assert!(t.contains("synth_xilinx -family xcup -flatten -noiopad -top tern_small_axi\n"));
        assert!(t.ends_with("tee -q -o stat.json stat -json\n"));
        let e = SynthScript {
            family: Family::Ice40,
            xilinx_family: None,
            json_out: Some("synth.json".into()),
            extra: vec!["-dsp".into()],
            ..s
        };
        assert!(e
            .script()
            .contains("synth_ice40 -top tern_small_axi -json synth.json -dsp\n"));
        assert!(!e.script().contains("cells_bb"));
        // ECP5: the vendor cells are known before `hierarchy -check` (the DSP instances)
        let c = SynthScript {
            family: Family::Ecp5,
            ..e
        };
        assert!(c
            .script()
            .starts_with("read_verilog -lib +/ecp5/cells_bb.v\nread_verilog -lib tern_small.v\n"));
    }
}
