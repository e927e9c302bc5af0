//! safetensors: the reader on arbitrary bytes, then the Hugging Face directory loader with the
//! fuzzed bytes as `model.safetensors` beside a fixed, valid config.json and tokenizer.json
//! (taken from the seed directory named by TERN_FUZZ_HF_DIR, written by `make fuzz`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fn scratch() -> Option<PathBuf> {
    let src = PathBuf::from(std::env::var_os("TERN_FUZZ_HF_DIR")?);
    let dir = std::env::temp_dir().join(format!("tern-fuzz-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    for f in ["config.json", "tokenizer.json"] {
        if !dir.join(f).exists() {
            std::fs::copy(src.join(f), dir.join(f)).ok()?;
        }
    }
    Some(dir)
}

fuzz_target!(|data: &[u8]| {
    let Ok(f) = tern_runtime::safetensors::StFile::from_vec(data.to_vec()) else {
        return;
    };
    for t in &f.tensors {
        let _ = f.data(t);
    }
    if let Some(dir) = scratch() {
        std::fs::write(dir.join("model.safetensors"), data).expect("write temp file");
        let _ = tern_runtime::model::load(&dir);
    }
});
