//! Cross-checks tern's TQ1_0 / TQ2_0 packing against gguf-py, the upstream reference
//! implementation (PyPI `gguf`, `gguf.quants.TQ1_0` / `TQ2_0`), in both directions:
//!
//! 1. gguf-py quantizes the weights (trit · d) that tern packed → must give tern's bytes.
//! 2. gguf-py dequantizes tern's bytes → must give the weights back exactly.
//! 3. tern unpacks gguf-py's bytes → must give the trits and scales back.
//!
//! Python: `$TERN_PYTHON`, else `<workspace>/.venv/bin/python` (made by `make setup`).
//! Without a Python that imports `gguf` and `numpy` the test prints "skipped: …" and passes,
//! except when `CI=true`, where it fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tern_spec::pack::{pack, unpack, Layout, Scales, Shape};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gguf_py_crosscheck.py");
const LAYOUTS: [(Layout, &str); 2] = [(Layout::Tq1_0, "TQ1_0"), (Layout::Tq2_0, "TQ2_0")];

/// The Python to use, if it can import gguf and numpy; else why not.
fn python() -> Result<PathBuf, String> {
    let path = match std::env::var_os("TERN_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    };
    let out = Command::new(&path)
        .args(["-c", "import gguf.quants, numpy"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if out.status.success() {
        Ok(path)
    } else {
        Err(format!(
            "{} cannot import gguf and numpy ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One test matrix: trits, one scale per 256-group, and the weights trit · d.
struct Case {
    name: String,
    shape: Shape,
    trits: Vec<i8>,
    scales: Vec<f32>,
}

impl Case {
    /// Random trits and f16 scales. gguf-py derives d = max|w| of each block, so every block
    /// with d ≠ 0 gets at least one non-zero trit and an all-zero block gets d = 0.
    fn random(name: &str, rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Case {
        let groups = cols / 256;
        let mut trits = Vec::with_capacity(rows * cols);
        let mut scales = Vec::with_capacity(rows * groups);
        for _ in 0..rows * groups {
            if rng.gen_bool(0.1) {
                trits.extend([0i8; 256]);
                scales.push(0.0);
                continue;
            }
            let mut block: Vec<i8> = (0..256).map(|_| rng.gen_range(-1i8..=1)).collect();
            let forced = rng.gen_range(0..256);
            block[forced] = if rng.gen_bool(0.5) { 1 } else { -1 };
            trits.extend(block);
            // Any positive finite f16: normal and subnormal, 2^-24 ..= 65504.
            scales.push(f16::from_bits(rng.gen_range(1u16..0x7c00)).to_f32());
        }
        Case {
            name: name.to_string(),
            shape: Shape::new(rows, cols),
            trits,
            scales,
        }
    }

    fn weights(&self) -> Vec<f32> {
        let cols = self.shape.cols;
        (0..self.trits.len())
            .map(|i| self.trits[i] as f32 * self.scales[i / cols * (cols / 256) + i % cols / 256])
            .collect()
    }

    fn scales(&self) -> Scales {
        Scales::PerRowGroup {
            group: 256,
            values: self.scales.clone(),
        }
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn tq_layouts_match_gguf_py() {
    let py = match python() {
        Ok(p) => p,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("gguf-py cross-check cannot run in CI: {why}. Run `make setup` to create .venv with gguf and numpy.")
        }
        Err(why) => {
            println!("skipped: gguf-py cross-check: {why} (run `make setup`, or set TERN_PYTHON)");
            return;
        }
    };

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gguf_py_crosscheck_{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0x7e4e_2026);
    let mut cases = vec![
        Case::random("one_row", 1, 256, &mut rng),
        Case::random("odd_rows", 3, 512, &mut rng),
        Case::random("wide", 2, 2048, &mut rng),
        Case::random("many_rows", 33, 256, &mut rng),
    ];
    // Edge scales: smallest subnormal, largest normal, 1.0; and an all-zero block with d = 0.
    let mut edge = Case::random("edge_scales", 1, 1024, &mut rng);
    edge.scales = vec![f16::from_bits(1).to_f32(), 65504.0, 1.0, 0.0];
    edge.trits[768..].fill(0);
    edge.trits[0] = 1;
    edge.trits[256] = -1;
    edge.trits[512] = 1;
    cases.push(edge);

    let manifest = serde_json::json!({
        "types": LAYOUTS.iter().map(|(_, n)| n).collect::<Vec<_>>(),
        "cases": cases.iter().map(|c| serde_json::json!({
            "name": c.name, "rows": c.shape.rows, "cols": c.shape.cols,
        })).collect::<Vec<_>>(),
    });
    fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    let mut packed = Vec::new();
    for c in &cases {
        fs::write(dir.join(format!("{}.f32", c.name)), f32_bytes(&c.weights())).unwrap();
        for (layout, _) in LAYOUTS {
            let bytes = pack(layout, c.shape, &c.trits, Some(&c.scales())).unwrap();
            fs::write(dir.join(format!("{}.{}", c.name, layout)), &bytes).unwrap();
            packed.push(bytes);
        }
    }

    let out = Command::new(&py).arg(SCRIPT).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{} {SCRIPT} failed:\n{}\n{}",
        py.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());

    let mut packed = packed.into_iter();
    for c in &cases {
        let weights = c.weights();
        for (layout, type_name) in LAYOUTS {
            let ours = packed.next().unwrap();
            let what = format!("case {} ({}), {type_name}", c.name, c.shape);

            // 1. gguf-py's quantizer writes tern's bytes.
            let theirs = fs::read(dir.join(format!("{}.{type_name}.py.bin", c.name))).unwrap();
            assert_eq!(theirs.len(), ours.len(), "{what}: byte length");
            if let Some(i) = theirs.iter().zip(&ours).position(|(a, b)| a != b) {
                panic!(
                    "{what}: byte {i} is {:#04x} in gguf-py, {:#04x} in tern",
                    theirs[i], ours[i]
                );
            }

            // 2. gguf-py's dequantizer reads tern's bytes as the weights.
            let back = f32_from_bytes(
                &fs::read(dir.join(format!("{}.{type_name}.py.f32", c.name))).unwrap(),
            );
            assert_eq!(back.len(), weights.len(), "{what}: element count");
            if let Some(i) = back.iter().zip(&weights).position(|(a, b)| a != b) {
                panic!(
                    "{what}: element {i} dequantizes to {} in gguf-py, tern wrote {}",
                    back[i], weights[i]
                );
            }

            // 3. tern reads gguf-py's bytes as the trits and scales.
            let u = unpack(layout, c.shape, &theirs).unwrap();
            assert_eq!(u.trits, c.trits, "{what}: trits of gguf-py's bytes");
            assert_eq!(
                u.scales,
                Some(c.scales()),
                "{what}: scales of gguf-py's bytes"
            );
        }
    }
    fs::remove_dir_all(&dir).ok();
}
