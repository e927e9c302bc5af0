//! GGUF written by llama.cpp's own writer (PyPI `gguf`) is read correctly by tern: every
//! metadata type, arrays, the alignment, and F32/F16/BF16/TQ1_0/TQ2_0 tensors (values
//! compared with what gguf-py dequantizes).
//!
//! Python: `$TERN_PYTHON`, else `<workspace>/.venv/bin/python`. Without a Python that imports
//! gguf and numpy the test prints "skipped: …" and passes, except when `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use tern_runtime::decode::{self, Dtype};
use tern_runtime::gguf::{GgmlType, GgufFile, Value};
use tern_spec::pack::{Layout, Scales, Shape};

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
            "{} cannot import gguf and numpy: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn values(f: &GgufFile, name: &str) -> Vec<f64> {
    let t = f
        .tensor(name)
        .unwrap_or_else(|| panic!("tensor {name} missing"));
    let b = f.data(t);
    let n = t.elems() as usize;
    let shape = || Shape::new(t.ne[1] as usize, t.ne[0] as usize);
    let scaled = |layout| {
        let u = tern_spec::pack::unpack(layout, shape(), b).unwrap();
        let Some(Scales::PerRowGroup { values, .. }) = u.scales else {
            panic!("no scales")
        };
        u.trits
            .iter()
            .enumerate()
            .map(|(i, &x)| x as f64 * values[i / 256] as f64)
            .collect()
    };
    match t.ty {
        GgmlType::F32 => decode::to_f32(Dtype::F32, b, n)
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect(),
        GgmlType::F16 => decode::to_f32(Dtype::F16, b, n)
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect(),
        GgmlType::BF16 => decode::to_f32(Dtype::BF16, b, n)
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect(),
        GgmlType::Tq2_0 => scaled(Layout::Tq2_0),
        GgmlType::Tq1_0 => scaled(Layout::Tq1_0),
        t => panic!("unexpected type {t}"),
    }
}

fn check_meta(f: &GgufFile, m: &Json) {
    let key = m["key"].as_str().unwrap();
    let v = f.get(key).unwrap_or_else(|| panic!("key {key} missing"));
    let want = &m["value"];
    let ok = match (m["type"].as_str().unwrap(), v) {
        ("U8", Value::U8(x)) => want.as_u64() == Some(*x as u64),
        ("I8", Value::I8(x)) => want.as_i64() == Some(*x as i64),
        ("U16", Value::U16(x)) => want.as_u64() == Some(*x as u64),
        ("I16", Value::I16(x)) => want.as_i64() == Some(*x as i64),
        ("U32", Value::U32(x)) => want.as_u64() == Some(*x as u64),
        ("I32", Value::I32(x)) => want.as_i64() == Some(*x as i64),
        ("U64", Value::U64(x)) => want.as_u64() == Some(*x),
        ("I64", Value::I64(x)) => want.as_i64() == Some(*x),
        ("F32", Value::F32(x)) => want.as_f64().map(|w| w as f32) == Some(*x),
        ("F64", Value::F64(x)) => want.as_f64() == Some(*x),
        ("Bool", Value::Bool(x)) => want.as_bool() == Some(*x),
        ("Str", Value::Str(x)) => want.as_str() == Some(x),
        ("Array", Value::Array(_, items)) => match m["elem"].as_str().unwrap() {
            "Str" => {
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    == want
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|j| j.as_str().map(str::to_string))
                        .collect()
            }
            _ => {
                items.iter().map(|i| i.as_f64()).collect::<Vec<_>>()
                    == want
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|j| j.as_f64())
                        .collect::<Vec<_>>()
            }
        },
        _ => false,
    };
    assert!(ok, "metadata {key}: tern read {v:?}, gguf-py wrote {m}");
}

#[test]
fn files_written_by_gguf_py_are_read_correctly() {
    let py = match python() {
        Ok(p) => p,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("gguf-py cross-check cannot run in CI: {why}. Run `make setup`.")
        }
        Err(why) => {
            println!("skipped: gguf-py cross-check: {why} (run `make setup`, or set TERN_PYTHON)");
            return;
        }
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runtime_gguf_py_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for seed in [1u64, 2] {
        let (file, manifest) = (
            dir.join(format!("py{seed}.gguf")),
            dir.join(format!("py{seed}.json")),
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gguf_py_write.py");
        let out = Command::new(&py)
            .arg(&script)
            .arg(&file)
            .arg(&manifest)
            .arg(seed.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "seed {seed}: gguf-py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let m: Json = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        let f = GgufFile::open(&file).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(f.version, 3);
        assert_eq!(f.alignment, 64);
        for e in m["metadata"].as_array().unwrap() {
            check_meta(&f, e);
        }
        let want = m["tensors"].as_array().unwrap();
        assert_eq!(f.tensors.len(), want.len());
        for t in want {
            let name = t["name"].as_str().unwrap();
            let info = f.tensor(name).unwrap();
            assert_eq!(
                info.ty.name(),
                t["type"].as_str().unwrap(),
                "seed {seed}: {name}"
            );
            if let Some(shape) = t["shape"].as_array() {
                let s: Vec<u64> = shape.iter().map(|x| x.as_u64().unwrap()).collect();
                assert_eq!(info.torch_shape(), s, "seed {seed}: {name}");
            }
            // Every value is an f32 (or narrower): compare as f32, which serde_json's float
            // parsing (not always correctly rounded in f64) cannot disturb.
            let want_v: Vec<f32> = t["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let got: Vec<f32> = values(&f, name).iter().map(|&x| x as f32).collect();
            assert_eq!(got, want_v, "seed {seed}: tensor {name}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
