//! `tern`: the command-line front end of the tern toolkit.

mod cmd;
mod npy;
mod progress;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// tern: co-design ternary-LLM accelerators for FPGAs.
#[derive(Parser, Debug)]
#[command(name = "tern", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing syntax), e.g. `info` or `tern=debug`; also TERN_LOG.
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check, show and list array configurations.
    #[command(subcommand)]
    Config(cmd::config::ConfigCmd),
    /// Convert a trit matrix between packed layouts (files in, files out).
    Pack(cmd::pack::PackArgs),
    /// Unpack a packed trit matrix to one trit per byte (i8 or .npy).
    Unpack(cmd::pack::UnpackArgs),
    /// Run the bit-exact reference GEMM on a random Scaled-Ternary-Block layer.
    Gemm(cmd::gemm::GemmArgs),
    /// The main job on the embedded default config, with a short readable report.
    Demo(cmd::demo::DemoArgs),
    /// Model files: inspect, synthesize, quantize.
    #[command(subcommand)]
    Model(cmd::model::ModelCmd),
    /// Generate text with a model (GGUF or safetensors) on a ternary backend.
    Run(cmd::run::RunArgs),
    /// Performance: CPU kernels vs memory bandwidth, model tokens/s.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCmd),
    /// Emit the array's Verilog for a config.
    #[command(subcommand)]
    Hdl(cmd::hdl::HdlCmd),
    /// Co-simulate the array: reference, Verilator and rust-hdl engines, bit for bit.
    #[command(subcommand)]
    Sim(cmd::sim::SimCmd),
    /// Synthesize the array for an FPGA board: bitstream (open flows) or Vivado project, report.json.
    Synth(cmd::synth::SynthArgs),
    /// List the FPGA boards (bitstreams/boards/).
    Boards(cmd::synth::BoardsArgs),
    /// Talk to a card through the host driver: info, selftest, bench (docs/driver.md).
    #[command(subcommand)]
    Card(cmd::card::CardCmd),
    /// Design-space exploration on a board: sweep array shapes, Pareto front, table and SVG.
    Dse(cmd::synth::DseArgs),
}

fn main() {
    // Behave like a Unix filter when stdout is closed early (`tern … | head`).
    // SAFETY: restoring the default SIGPIPE disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    init_tracing(cli.log.as_deref());
    progress::install_interrupt_handler();
    if let Err(e) = run(cli.cmd) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Config(c) => cmd::config::run(c),
        Command::Pack(a) => cmd::pack::run_pack(a),
        Command::Unpack(a) => cmd::pack::run_unpack(a),
        Command::Gemm(a) => cmd::gemm::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Model(c) => cmd::model::run(c),
        Command::Run(a) => cmd::run::run(a),
        Command::Bench(c) => cmd::bench::run(c),
        Command::Hdl(c) => cmd::hdl::run(c),
        Command::Sim(c) => cmd::sim::run(c),
        Command::Synth(a) => cmd::synth::run_synth(a),
        Command::Boards(a) => cmd::synth::run_boards(a),
        Command::Dse(a) => cmd::synth::run_dse(a),
        Command::Card(c) => cmd::card::run(c),
    }
}

fn init_tracing(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("TERN_LOG").ok())
        .unwrap_or_else(|| "warn".to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
