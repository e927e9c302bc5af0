//! Models on the card: the same prompt gives identical token ids and bit-identical logits on
//! the CPU back ends and on the card through tern-driver, whether the card is the software
//! model (`model`) or the Verilator-simulated RTL (`sim`).

use std::path::{Path, PathBuf};

use tern_runtime::backend::{backend_by_name, CpuBackend, TernaryBackend};
use tern_runtime::card_backend::CardBackend;
use tern_runtime::generate::{generate, Generation};
use tern_runtime::model;
use tern_runtime::model::bitnet::Session;
use tern_runtime::sample::Sampler;
use tern_runtime::synth::{self, Format, Preset, SynthOptions, Variant};

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runtime_card_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn make(variant: Variant, seed: u64, out: &Path) {
    let opts = SynthOptions {
        preset: Preset::Tiny,
        variant,
        format: Format::Gguf,
        seed,
        gguf_type: None,
    };
    synth::synth(&opts, out, &mut |_, _| true)
        .unwrap_or_else(|e| panic!("seed {seed}: synth {opts:?}: {e}"));
}

fn run<B: TernaryBackend>(path: &Path, backend: B, ids: &[u32]) -> Generation {
    let (mut s, _) = Session::from_model(model::load(path).unwrap(), backend).unwrap();
    generate(&mut s, ids, 5, &mut Sampler::greedy(), None, |_| true).unwrap()
}

fn have_verilator() -> bool {
    let ok = std::process::Command::new("verilator")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "verilator is required under CI (make setup installs it)"
        );
        eprintln!("skipped: verilator not found (make setup installs it)");
    }
    ok
}

#[test]
fn card_backends_give_the_cpu_tokens_and_logits() {
    let d = tmp("tokens");
    let mut specs = vec!["model", "model:small"];
    if have_verilator() {
        specs.push("sim:small");
    }
    for (i, variant) in [
        Variant::BitNet,
        Variant::LlamaStb(tern_spec::BlockShape { n: 64, k: 64 }),
    ]
    .into_iter()
    .enumerate()
    {
        let g = d.join(format!("m{i}.gguf"));
        make(variant, 31 + i as u64, &g);
        let ids: Vec<u32> = (0..7).map(|j| (j * 53 + 11) % 500).collect();
        let want = run(&g, CpuBackend::new(), &ids);
        let fast = run(&g, backend_by_name("cpu:1").unwrap(), &ids);
        assert_eq!(fast.generated_ids, want.generated_ids);
        for spec in &specs {
            let card = CardBackend::open(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            let got = run(&g, card, &ids);
            assert_eq!(
                got.generated_ids, want.generated_ids,
                "variant {i} on {spec}: token ids"
            );
            assert_eq!(
                got.prompt_logits, want.prompt_logits,
                "variant {i} on {spec}: prompt logits"
            );
        }
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn card_backend_names_are_checked() {
    for bad in ["model:nope", "vfio:zz", "sim?latency=x"] {
        let e = backend_by_name(bad).err().expect(bad).to_string();
        assert!(
            e.contains(bad.split('?').next().unwrap()) || e.contains(bad),
            "{bad}: {e}"
        );
    }
}
