//! `tern pack` / `tern unpack`: convert trit matrices between layouts, files in, files out.
//!
//! The unpacked form is one trit per byte: raw `i8` (needs `--shape`) or a 2-D `int8`
//! `.npy` (shape read from the file).

use crate::npy;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};
use tern_spec::pack::{self, Layout, ScaleKind, Scales, Shape};

#[derive(Args, Debug)]
pub struct PackArgs {
    /// Input file: raw bytes of `--from`, or a 2-D int8 .npy of trits.
    pub input: PathBuf,
    /// Output file of layout `--to`.
    pub output: PathBuf,
    /// Target layout: i8, tern2, tern5, tq2_0, tq1_0, i2_s, hf.
    #[arg(long)]
    pub to: Layout,
    /// Input layout (default i8).
    #[arg(long, default_value = "i8")]
    pub from: Layout,
    /// Matrix shape NxK (rows × inputs); optional for .npy input.
    #[arg(long, value_parser = parse_shape)]
    pub shape: Option<Shape>,
    /// Scale written into layouts that carry one (tq2_0, tq1_0: every group; i2_s: the
    /// tensor). Without it, scales of the input carry over, else 1.0.
    #[arg(long)]
    pub scale: Option<f32>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct UnpackArgs {
    /// Packed input file.
    pub input: PathBuf,
    /// Output: raw i8 trits, or .npy (int8, [N, K]).
    pub output: PathBuf,
    /// Layout of the input.
    #[arg(long)]
    pub from: Layout,
    /// Matrix shape NxK.
    #[arg(long, value_parser = parse_shape)]
    pub shape: Shape,
    /// Also write the scales the layout carried (f32: raw little-endian, or .npy).
    #[arg(long)]
    pub scales_out: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// Parses `NxK`.
pub fn parse_shape(s: &str) -> Result<Shape, String> {
    let (a, b) = s
        .split_once(['x', 'X', '×'])
        .ok_or_else(|| format!("shape {s:?}: expected NxK, e.g. 2560x6912"))?;
    let p = |v: &str, what: &str| {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|&x| x >= 1)
            .ok_or_else(|| format!("shape {s:?}: {what} = {v:?} is not an integer ≥ 1"))
    };
    Ok(Shape::new(p(a, "N")?, p(b, "K")?))
}

/// Reads the input as bytes of `layout`, taking the shape from a .npy header when present.
fn read_input(path: &Path, layout: Layout, shape: Option<Shape>) -> Result<(Vec<u8>, Shape)> {
    if npy::is_npy(path) {
        if layout != Layout::I8 {
            bail!(
                "{}: a .npy input holds unpacked int8 trits; --from must be i8, not {layout}",
                path.display()
            );
        }
        let a = npy::read(path)?;
        if !matches!(a.descr.as_str(), "|i1" | "<i1" | "i1" | "|u1") {
            bail!("{}: dtype {:?} is not int8 (|i1)", path.display(), a.descr);
        }
        let file_shape = match a.shape[..] {
            [n, k] => Shape::new(n, k),
            [k] => Shape::new(1, k),
            _ => bail!("{}: shape {:?} is not 1-D or 2-D", path.display(), a.shape),
        };
        if let Some(s) = shape {
            if s != file_shape {
                bail!(
                    "{}: the file's shape {file_shape} differs from --shape {s}",
                    path.display()
                );
            }
        }
        let need = file_shape.elems().unwrap_or(usize::MAX);
        if a.data.len() != need {
            bail!(
                "{}: {} data bytes, but shape {file_shape} needs {need}",
                path.display(),
                a.data.len()
            );
        }
        return Ok((a.data, file_shape));
    }
    let shape =
        shape.ok_or_else(|| anyhow::anyhow!("--shape NxK is required for a raw input file"))?;
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok((bytes, shape))
}

fn trit_counts(trits: &[i8]) -> serde_json::Value {
    let c = |v: i8| trits.iter().filter(|&&t| t == v).count();
    json!({"minus": c(-1), "zero": c(0), "plus": c(1)})
}

pub fn run_pack(a: PackArgs) -> Result<()> {
    let (bytes, shape) = read_input(&a.input, a.from, a.shape)?;
    let u = pack::unpack(a.from, shape, &bytes)
        .with_context(|| format!("{}: reading it as {} {shape}", a.input.display(), a.from))?;
    let scales = match (a.scale, a.to.scale_kind()) {
        (Some(s), ScaleKind::None) => {
            bail!("--scale {s}: layout {} carries no scales", a.to)
        }
        (Some(s), ScaleKind::PerTensor) => Some(Scales::PerTensor(s)),
        (Some(s), ScaleKind::PerRowGroup { .. }) => Some(Scales::PerTensor(s).round_to_f16()),
        (None, _) => None,
    };
    let out = if scales.is_none() && u.scales.is_some() {
        pack::convert(a.from, a.to, shape, &bytes)
    } else {
        pack::pack(a.to, shape, &u.trits, scales.as_ref())
    }
    .with_context(|| format!("packing {} as {} {shape}", a.input.display(), a.to))?;
    std::fs::write(&a.output, &out)
        .with_context(|| format!("{}: cannot write", a.output.display()))?;
    let report = json!({
        "input": a.input.display().to_string(), "output": a.output.display().to_string(),
        "from": a.from.to_string(), "to": a.to.to_string(),
        "shape": [shape.rows, shape.cols], "bytes_in": bytes.len(), "bytes_out": out.len(),
        "bits_per_trit": out.len() as f64 * 8.0 / (shape.rows * shape.cols) as f64,
        "trits": trit_counts(&u.trits),
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "{} ({}, {} bytes) → {} ({}, {} bytes, {:.3} bits/trit), shape {shape}",
            a.input.display(),
            a.from,
            bytes.len(),
            a.output.display(),
            a.to,
            out.len(),
            report["bits_per_trit"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}

pub fn run_unpack(a: UnpackArgs) -> Result<()> {
    let bytes =
        std::fs::read(&a.input).with_context(|| format!("{}: cannot read", a.input.display()))?;
    let u = pack::unpack(a.from, a.shape, &bytes).with_context(|| {
        format!(
            "{}: reading it as {} {}",
            a.input.display(),
            a.from,
            a.shape
        )
    })?;
    let raw: Vec<u8> = u.trits.iter().map(|&t| t as u8).collect();
    if npy::is_npy(&a.output) {
        npy::write(&a.output, "|i1", &[a.shape.rows, a.shape.cols], &raw)?;
    } else {
        std::fs::write(&a.output, &raw)
            .with_context(|| format!("{}: cannot write", a.output.display()))?;
    }
    let scale_values: Vec<f32> = match &u.scales {
        Some(Scales::PerRowGroup { values, .. }) => values.clone(),
        Some(Scales::PerTensor(v)) => vec![*v],
        None => vec![],
    };
    if let Some(p) = &a.scales_out {
        if u.scales.is_none() {
            bail!(
                "--scales-out {}: layout {} carries no scales",
                p.display(),
                a.from
            );
        }
        let data: Vec<u8> = scale_values.iter().flat_map(|v| v.to_le_bytes()).collect();
        if npy::is_npy(p) {
            npy::write(p, "<f4", &[scale_values.len()], &data)?;
        } else {
            std::fs::write(p, &data).with_context(|| format!("{}: cannot write", p.display()))?;
        }
    }
    let report = json!({
        "input": a.input.display().to_string(), "output": a.output.display().to_string(),
        "from": a.from.to_string(), "shape": [a.shape.rows, a.shape.cols],
        "scales": u.scales.as_ref().map(|s| s.kind().to_string()),
        "scale_count": scale_values.len(), "trits": trit_counts(&u.trits),
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "{} ({}) → {} ({} trits, {} scales)",
            a.input.display(),
            a.from,
            a.output.display(),
            u.trits.len(),
            scale_values.len()
        );
    }
    Ok(())
}
