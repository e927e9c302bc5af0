//! Emits one config's Verilog: `cargo run -p tern-hdl --example emit_one -- CONFIG OUT_DIR`
//! (CONFIG: a built-in name or a TOML path).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: emit_one CONFIG OUT_DIR");
        std::process::exit(2);
    }
    let cfg = match tern_spec::ArrayConfig::builtin_or_load(&args[1]) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    match tern_hdl::emit::emit(&cfg, std::path::Path::new(&args[2])) {
        Ok(r) => println!(
            "{}: {} modules, {} lines in {}",
            r.top,
            r.modules,
            r.lines,
            r.dir.display()
        ),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
