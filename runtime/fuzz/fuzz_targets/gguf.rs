//! GGUF: the reader on arbitrary bytes, then the model loader on whatever the reader accepts.
//! Any panic, abort, or allocation past libFuzzer's RSS limit is a bug: every malformed input
//! must be a `GgufError`/`LoadError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = tern_runtime::gguf::GgufFile::from_vec(data.to_vec()) else {
        return;
    };
    // every tensor the reader accepted must lie inside the file
    for t in &f.tensors {
        let _ = f.data(t);
    }
    // the loader opens files by path (memory-mapped)
    let dir = std::env::temp_dir().join(format!("tern-fuzz-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("m.gguf");
    std::fs::File::create(&path)
        .and_then(|mut w| w.write_all(data))
        .expect("write temp file");
    let _ = tern_runtime::model::load(&path);
});
