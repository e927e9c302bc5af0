//! The committed Verilog of the built-in configs (hdl/generated/NAME/) is what the
//! generator emits today. `TERN_BLESS=1 cargo test -p tern-hdl --test generated` rewrites it.

use tern_hdl::emit::generate;
use tern_hdl::HdlOptions;
use tern_spec::ArrayConfig;

#[test]
fn committed_verilog_is_up_to_date() {
    let bless = std::env::var("TERN_BLESS")
        .map(|v| v == "1")
        .unwrap_or(false);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("generated");
    let mut stale = Vec::new();
    for (name, _) in tern_spec::config::BUILTIN {
        let cfg = ArrayConfig::builtin(name).unwrap();
        let g = generate(&cfg, HdlOptions::default()).unwrap();
        let dir = root.join(name);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
        }
        for (file, text) in &g.files {
            let path = dir.join(file);
            if bless {
                std::fs::write(&path, text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated Verilog differs from the committed files (rerun with TERN_BLESS=1 and review the diff): {stale:?}"
    );
}

#[test]
fn generation_is_deterministic() {
    let cfg = ArrayConfig::builtin("small").unwrap();
    let a = generate(&cfg, HdlOptions::default()).unwrap();
    let b = generate(&cfg, HdlOptions::default()).unwrap();
    assert_eq!(a.files, b.files);
}
