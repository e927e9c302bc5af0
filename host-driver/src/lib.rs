//! tern's host driver: one [`Card`](card) API over one [`Transport`] trait, whatever the
//! card is: the bit-exact software model (`model`), the Verilator-simulated RTL (`sim`) or a
//! real board on PCIe through VFIO (`vfio:0000:01:00.0`). See docs/driver.md.

pub mod backend;
pub mod card;
pub mod error;
pub mod transport;

pub use backend::model::{Fault, ModelCard, ModelOptions};
pub use backend::open;
pub use card::{Card, CardInfo, CardOptions, GemmRun, PerfCounters, RegionHandle};
pub use error::{CardState, DriverError};
pub use transport::{DmaBuf, Transport, TransportError};
