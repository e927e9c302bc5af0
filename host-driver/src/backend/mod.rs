//! Back ends: how to reach a card. [`open`] turns a spec string into a [`Transport`]:
//!
//! | spec | back end |
//! |---|---|
//! | `model`, `model:<config name or TOML path>` | the software model ([`model::ModelCard`]) |
//! | `model…?inject=<fault>&after=<n>&mem=<bytes>` | the model with an injected fault |
//! | `sim` | the Verilator-simulated card RTL |
//! | `vfio:DDDD:BB:DD.F` | a real board through VFIO (feature `vfio`, Linux) |

pub mod model;
pub mod sim;
#[cfg(all(feature = "vfio", target_os = "linux"))]
pub mod vfio;

use crate::error::DriverError;
use crate::transport::Transport;
use model::{Fault, ModelCard, ModelOptions};
use tern_spec::config::ArrayConfig;

/// One back end, for help text.
#[derive(Debug, Clone, Copy)]
pub struct Backend {
    pub syntax: &'static str,
    pub about: &'static str,
}

/// Every back end and its spec syntax.
pub const BACKENDS: &[Backend] = &[
    Backend {
        syntax: "model[:<config>][?inject=timeout|crc|dma|stuck|dropped[&after=N]][&mem=BYTES]",
        about: "bit-exact software model of the card (default config: default)",
    },
    Backend {
        syntax: "sim[:<config>][?mem=BYTES][&latency=CYCLES][&bw=WORDS_PER_CYCLE]",
        about: "the card RTL under Verilator (needs verilator; card memory default 1G, latency 40, bw 1)",
    },
    Backend {
        syntax: "vfio:DDDD:BB:DD.F",
        about: "a real board on PCIe through VFIO (build with --features vfio; Linux)",
    },
];

/// The help text listing the back ends.
pub fn help() -> String {
    BACKENDS
        .iter()
        .map(|b| format!("  {}\n      {}\n", b.syntax, b.about))
        .collect()
}

fn bad(spec: &str, reason: impl Into<String>) -> DriverError {
    DriverError::BadSpec {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

/// Parses a byte count with an optional K/M/G/T suffix (powers of 1024).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        't' | 'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// The model options a `model…` spec asks for.
pub fn model_options(spec: &str) -> Result<ModelOptions, DriverError> {
    let (head, query) = match spec.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (spec, None),
    };
    let cfg = match head.strip_prefix("model") {
        Some("") => ArrayConfig::default(),
        Some(rest) => match rest.strip_prefix(':') {
            Some(c) if !c.is_empty() => ArrayConfig::builtin_or_load(c)?,
            _ => return Err(bad(spec, "expected `model` or `model:<config>`")),
        },
        None => return Err(bad(spec, "not a model spec")),
    };
    let mut o = ModelOptions::new(cfg);
    for kv in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| bad(spec, format!("`{kv}`: expected key=value")))?;
        match k {
            "inject" => {
                let f = Fault::parse(v).ok_or_else(|| {
                    bad(
                        spec,
                        format!("unknown fault `{v}` (timeout, crc, dma, stuck, dropped)"),
                    )
                })?;
                o = o.fault(f);
            }
            "after" => {
                o = o.fault_after(
                    v.parse()
                        .map_err(|_| bad(spec, format!("after = `{v}` is not a count")))?,
                )
            }
            "mem" => {
                let b = parse_bytes(v)
                    .filter(|b| *b >= 64 * 1024 && b % 64 == 0)
                    .ok_or_else(|| {
                        bad(spec, format!("mem = `{v}`: a multiple of 64 bytes, ≥ 64K"))
                    })?;
                o = o.mem_bytes(b);
            }
            _ => {
                return Err(bad(
                    spec,
                    format!("unknown option `{k}` (inject, after, mem)"),
                ))
            }
        }
    }
    Ok(o)
}

/// A PCI address `DDDD:BB:DD.F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bdf {
    pub domain: u16,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl Bdf {
    /// Parses `DDDD:BB:DD.F` (hex; the domain may be omitted: `BB:DD.F`).
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let (dom, bus, df) = match parts.as_slice() {
            [d, b, df] => (*d, *b, *df),
            [b, df] => ("0000", *b, *df),
            _ => return None,
        };
        let (dev, func) = df.split_once('.')?;
        let hex = |x: &str, max_len: usize| {
            if x.is_empty() || x.len() > max_len || !x.chars().all(|c| c.is_ascii_hexdigit()) {
                None
            } else {
                u32::from_str_radix(x, 16).ok()
            }
        };
        let (domain, bus, device, function) =
            (hex(dom, 4)?, hex(bus, 2)?, hex(dev, 2)?, hex(func, 1)?);
        if device > 0x1f || function > 7 {
            return None;
        }
        Some(Self {
            domain: domain as u16,
            bus: bus as u8,
            device: device as u8,
            function: function as u8,
        })
    }
}

impl std::fmt::Display for Bdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// The back end a spec names, before its options: `model`, `sim`, `vfio` (or anything else).
pub fn kind(spec: &str) -> &str {
    spec.split([':', '?']).next().unwrap_or("")
}

/// Whether a spec names one of the card back ends (`model`, `sim`, `vfio`).
pub fn is_card_spec(spec: &str) -> bool {
    matches!(kind(spec), "model" | "sim" | "vfio")
}

/// Opens the back end a spec names.
pub fn open(spec: &str) -> Result<Box<dyn Transport>, DriverError> {
    let kind = kind(spec);
    match kind {
        "model" => Ok(Box::new(ModelCard::new(model_options(spec)?)?)),
        "sim" => open_sim(spec),
        "vfio" => {
            let bdf = spec
                .strip_prefix("vfio:")
                .and_then(Bdf::parse)
                .ok_or_else(|| bad(spec, "expected vfio:DDDD:BB:DD.F"))?;
            open_vfio(spec, bdf)
        }
        _ => Err(bad(
            spec,
            format!("unknown back end `{kind}`; back ends:\n{}", help()),
        )),
    }
}

/// The config and memory model a `sim…` spec asks for.
pub fn sim_options(
    spec: &str,
) -> Result<(ArrayConfig, tern_sim::card::CardSimOptions), DriverError> {
    let (head, query) = match spec.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (spec, None),
    };
    let cfg = match head.strip_prefix("sim") {
        Some("") => ArrayConfig::default(),
        Some(rest) => match rest.strip_prefix(':') {
            Some(c) if !c.is_empty() => ArrayConfig::builtin_or_load(c)?,
            _ => return Err(bad(spec, "expected `sim` or `sim:<config>`")),
        },
        None => return Err(bad(spec, "not a sim spec")),
    };
    let (mut mem, mut latency, mut bw) = (None, None, None);
    for kv in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| bad(spec, format!("`{kv}`: expected key=value")))?;
        match k {
            "mem" => {
                mem = Some(
                    parse_bytes(v)
                        .filter(|b| *b >= 64 * 1024 && b % 64 == 0)
                        .ok_or_else(|| {
                            bad(spec, format!("mem = `{v}`: a multiple of 64 bytes, ≥ 64K"))
                        })?,
                )
            }
            "latency" => {
                latency = Some(
                    v.parse()
                        .map_err(|_| bad(spec, format!("latency = `{v}` is not a cycle count")))?,
                )
            }
            "bw" => {
                bw = Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|b| *b > 0.0 && *b <= 1.0)
                        .ok_or_else(|| {
                            bad(spec, format!("bw = `{v}`: words per cycle in (0, 1]"))
                        })?,
                )
            }
            _ => {
                return Err(bad(
                    spec,
                    format!("unknown option `{k}` (mem, latency, bw)"),
                ))
            }
        }
    }
    Ok((cfg, sim::SimCard::options_for(mem, latency, bw)))
}

fn open_sim(spec: &str) -> Result<Box<dyn Transport>, DriverError> {
    let (cfg, opts) = sim_options(spec)?;
    Ok(Box::new(sim::SimCard::open(&cfg, opts)?))
}

#[cfg(all(feature = "vfio", target_os = "linux"))]
fn open_vfio(_spec: &str, bdf: Bdf) -> Result<Box<dyn Transport>, DriverError> {
    Ok(Box::new(vfio::VfioCard::open(bdf)?))
}

#[cfg(not(all(feature = "vfio", target_os = "linux")))]
fn open_vfio(spec: &str, _bdf: Bdf) -> Result<Box<dyn Transport>, DriverError> {
    Err(DriverError::BackendUnavailable {
        backend: spec.to_string(),
        reason: "this tern was built without the `vfio` feature (Linux only): \
                 cargo build --features tern-driver/vfio"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let o = model_options("model").unwrap();
        assert_eq!(o.cfg.name, "default");
        assert_eq!(o.fault, None);
        let o = model_options("model:small?inject=crc&after=2&mem=1G").unwrap();
        assert_eq!(o.cfg.name, "small");
        assert_eq!(o.fault, Some(Fault::Crc));
        assert_eq!(o.fault_after, 2);
        assert_eq!(o.mem_bytes, 1 << 30);
        assert_eq!(
            model_options("model?inject=stuck").unwrap().fault,
            Some(Fault::Stuck)
        );
        for bad_spec in [
            "model?inject=gremlins",
            "model:",
            "model?x=1",
            "model?after=z",
            "model?mem=12",
            "model:no_such_config",
        ] {
            assert!(model_options(bad_spec).is_err(), "{bad_spec}");
        }
        assert!(matches!(open("pcie"), Err(DriverError::BadSpec { .. })));
        assert!(matches!(open("vfio:zz"), Err(DriverError::BadSpec { .. })));
        assert!(open("model:small").is_ok());
        assert!(help().contains("vfio:DDDD:BB:DD.F"));
    }

    #[test]
    fn bdfs_parse() {
        let b = Bdf::parse("0000:01:00.0").unwrap();
        assert_eq!((b.domain, b.bus, b.device, b.function), (0, 1, 0, 0));
        assert_eq!(Bdf::parse("3b:1f.7").unwrap().to_string(), "0000:3b:1f.7");
        assert_eq!(Bdf::parse("10000:01:00.0"), None);
        assert_eq!(Bdf::parse("0000:01:20.0"), None);
        assert_eq!(Bdf::parse("0000:01:00.8"), None);
        assert_eq!(Bdf::parse("0000:01:00"), None);
        assert_eq!(Bdf::parse("0000:g1:00.0"), None);
        assert_eq!(parse_bytes("4G"), Some(4 << 30));
        assert_eq!(parse_bytes("x"), None);
    }
}
