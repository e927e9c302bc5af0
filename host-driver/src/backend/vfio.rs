//! Real PCIe through VFIO (feature `vfio`, Linux): user space, no kernel module, DMA behind
//! the IOMMU. Raw ioctls through `libc`; numbers and struct layouts from
//! `<linux/vfio.h>` (`_IO(';', 100 + n)`), checked by the tests below.
//!
//! Bring-up (see docs/driver.md): bind the board to `vfio-pci`, make `/dev/vfio/<group>`
//! accessible, then `tern card info --backend vfio:0000:01:00.0`.
//!
//! Everything past the ioctl boundary (that the kernel accepts these calls for a real
//! board, that BAR0 reads reach the card's register file, that the card's DMA reaches the
//! mapped IOVAs) is untested here: no board is attached to CI.

use super::Bdf;
use crate::transport::{DmaBuf, Transport, TransportError};
use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tern_spec::card::regs;

/// ioctl numbers of `<linux/vfio.h>`: `_IO(VFIO_TYPE = ';', VFIO_BASE = 100 + n)`.
pub mod nr {
    const fn io(n: u64) -> u64 {
        ((b';' as u64) << 8) | (100 + n)
    }
    pub const GET_API_VERSION: u64 = io(0);
    pub const CHECK_EXTENSION: u64 = io(1);
    pub const SET_IOMMU: u64 = io(2);
    pub const GROUP_GET_STATUS: u64 = io(3);
    pub const GROUP_SET_CONTAINER: u64 = io(4);
    pub const GROUP_GET_DEVICE_FD: u64 = io(6);
    pub const DEVICE_GET_INFO: u64 = io(7);
    pub const DEVICE_GET_REGION_INFO: u64 = io(8);
    pub const DEVICE_RESET: u64 = io(11);
    pub const IOMMU_MAP_DMA: u64 = io(13);
    pub const IOMMU_UNMAP_DMA: u64 = io(14);
    /// `VFIO_API_VERSION`.
    pub const API_VERSION: i32 = 0;
    /// `VFIO_TYPE1v2_IOMMU`, `VFIO_TYPE1_IOMMU`.
    pub const TYPE1V2_IOMMU: u64 = 3;
    pub const TYPE1_IOMMU: u64 = 1;
    pub const GROUP_FLAGS_VIABLE: u32 = 1 << 0;
    pub const DEVICE_FLAGS_RESET: u32 = 1 << 0;
    pub const REGION_INFO_FLAG_MMAP: u32 = 1 << 2;
    pub const DMA_MAP_FLAG_READ: u32 = 1 << 0;
    pub const DMA_MAP_FLAG_WRITE: u32 = 1 << 1;
    /// `VFIO_PCI_BAR0_REGION_INDEX`.
    pub const PCI_BAR0_REGION_INDEX: u32 = 0;
}

/// `struct vfio_group_status`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GroupStatus {
    pub argsz: u32,
    pub flags: u32,
}

/// `struct vfio_device_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DeviceInfo {
    pub argsz: u32,
    pub flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
    pub cap_offset: u32,
}

/// `struct vfio_region_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RegionInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub cap_offset: u32,
    pub size: u64,
    pub offset: u64,
}

/// `struct vfio_iommu_type1_dma_map`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DmaMap {
    pub argsz: u32,
    pub flags: u32,
    pub vaddr: u64,
    pub iova: u64,
    pub size: u64,
}

/// `struct vfio_iommu_type1_dma_unmap` (without the flexible `data[]`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DmaUnmap {
    pub argsz: u32,
    pub flags: u32,
    pub iova: u64,
    pub size: u64,
}

const BACKEND: &str = "vfio";
const PAGE: u64 = 4096;

fn io_err(what: impl Into<String>, source: std::io::Error) -> TransportError {
    TransportError::Io {
        backend: BACKEND.into(),
        what: what.into(),
        source,
    }
}

fn other(msg: impl Into<String>) -> TransportError {
    TransportError::Other {
        backend: BACKEND.into(),
        msg: msg.into(),
    }
}

/// `<root>/bus/pci/devices/<bdf>` (root is `/sys` on a real system).
pub fn sysfs_device_dir(root: &Path, bdf: Bdf) -> PathBuf {
    root.join("bus/pci/devices").join(bdf.to_string())
}

/// The IOMMU group of a device: the name of the `iommu_group` symlink's target.
pub fn iommu_group(root: &Path, bdf: Bdf) -> Result<u32, TransportError> {
    let link = sysfs_device_dir(root, bdf).join("iommu_group");
    let target = std::fs::read_link(&link).map_err(|e| {
        io_err(
            format!(
                "{}: no IOMMU group (is the IOMMU enabled: intel_iommu=on / amd_iommu=on?)",
                link.display()
            ),
            e,
        )
    })?;
    target
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            other(format!(
                "{} points to {}, not an iommu_groups/<number> directory",
                link.display(),
                target.display()
            ))
        })
}

/// The kernel driver a device is bound to, if any.
pub fn bound_driver(root: &Path, bdf: Bdf) -> Option<String> {
    let t = std::fs::read_link(sysfs_device_dir(root, bdf).join("driver")).ok()?;
    t.file_name()?.to_str().map(str::to_string)
}

/// A first-fit IOVA allocator with an unmapped guard page after every mapping.
#[derive(Debug, Clone)]
pub struct IovaAlloc {
    free: BTreeMap<u64, u64>,
    used: HashMap<u64, u64>,
}

impl IovaAlloc {
    /// IOVAs in `[base, base + size)`.
    pub fn new(base: u64, size: u64) -> Self {
        let mut free = BTreeMap::new();
        free.insert(base, size);
        Self {
            free,
            used: HashMap::new(),
        }
    }

    /// A page-aligned range of `len` bytes (plus a guard page).
    pub fn alloc(&mut self, len: u64) -> Option<u64> {
        let need = len.div_ceil(PAGE) * PAGE + PAGE;
        let (&a, &l) = self.free.iter().find(|(_, &l)| l >= need)?;
        self.free.remove(&a);
        if l > need {
            self.free.insert(a + need, l - need);
        }
        self.used.insert(a, need);
        Some(a)
    }

    /// Returns a range; false if `iova` was not allocated.
    pub fn free(&mut self, iova: u64) -> bool {
        let Some(mut l) = self.used.remove(&iova) else {
            return false;
        };
        let mut a = iova;
        if let Some((&pa, &pl)) = self.free.range(..a).next_back() {
            if pa + pl == a {
                self.free.remove(&pa);
                a = pa;
                l += pl;
            }
        }
        if let Some(nl) = self.free.remove(&(a + l)) {
            l += nl;
        }
        self.free.insert(a, l);
        true
    }
}

struct Mapping {
    id: u64,
    ptr: *mut u8,
    size: usize,
}

/// A card on PCIe through VFIO.
pub struct VfioCard {
    bdf: Bdf,
    container: OwnedFd,
    _group: OwnedFd,
    device: OwnedFd,
    bar: *mut u8,
    bar_len: usize,
    maps: HashMap<u64, Mapping>,
    iova: IovaAlloc,
    next_id: u64,
}

// SAFETY: the BAR and DMA mappings are owned exclusively by this value; moving it to another
// thread moves that ownership. No aliasing pointer escapes.
unsafe impl Send for VfioCard {}

fn ioctl_ptr<T>(fd: &OwnedFd, req: u64, arg: *mut T, what: &str) -> Result<i32, TransportError> {
    // SAFETY: `arg` points to a live, properly sized #[repr(C)] value of the struct the
    // ioctl expects (layouts checked by the tests against <linux/vfio.h>).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as libc::Ioctl, arg) };
    if r < 0 {
        return Err(io_err(what, std::io::Error::last_os_error()));
    }
    Ok(r)
}

fn ioctl_val(
    fd: &OwnedFd,
    req: u64,
    arg: libc::c_ulong,
    what: &str,
) -> Result<i32, TransportError> {
    // SAFETY: these ioctls take an integer argument, no memory is passed.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as libc::Ioctl, arg) };
    if r < 0 {
        return Err(io_err(what, std::io::Error::last_os_error()));
    }
    Ok(r)
}

fn open_rw(path: &str) -> Result<OwnedFd, TransportError> {
    let f = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_err(format!("open {path}"), e))?;
    Ok(OwnedFd::from(f))
}

impl VfioCard {
    /// Opens the device at `bdf`: container, group, device fd, BAR0 mapping.
    pub fn open(bdf: Bdf) -> Result<Self, TransportError> {
        let sys = Path::new("/sys");
        match bound_driver(sys, bdf) {
            Some(d) if d == "vfio-pci" => {}
            other_driver => {
                return Err(other(format!(
                "{bdf} is bound to {} — bind it to vfio-pci first (docs/driver.md, VFIO bring-up)",
                other_driver.unwrap_or_else(|| "no driver".into())
            )))
            }
        }
        let group_no = iommu_group(sys, bdf)?;
        let container = open_rw("/dev/vfio/vfio")?;
        let v = ioctl_val(&container, nr::GET_API_VERSION, 0, "VFIO_GET_API_VERSION")?;
        if v != nr::API_VERSION {
            return Err(other(format!(
                "VFIO API version {v}, expected {}",
                nr::API_VERSION
            )));
        }
        let iommu = if ioctl_val(
            &container,
            nr::CHECK_EXTENSION,
            nr::TYPE1V2_IOMMU as _,
            "VFIO_CHECK_EXTENSION",
        )? == 1
        {
            nr::TYPE1V2_IOMMU
        } else if ioctl_val(
            &container,
            nr::CHECK_EXTENSION,
            nr::TYPE1_IOMMU as _,
            "VFIO_CHECK_EXTENSION",
        )? == 1
        {
            nr::TYPE1_IOMMU
        } else {
            return Err(other("the VFIO container supports no type-1 IOMMU"));
        };
        let group = open_rw(&format!("/dev/vfio/{group_no}"))?;
        let mut st = GroupStatus {
            argsz: std::mem::size_of::<GroupStatus>() as u32,
            flags: 0,
        };
        ioctl_ptr(
            &group,
            nr::GROUP_GET_STATUS,
            &mut st,
            "VFIO_GROUP_GET_STATUS",
        )?;
        if st.flags & nr::GROUP_FLAGS_VIABLE == 0 {
            return Err(other(format!(
                "IOMMU group {group_no} is not viable: bind every device in /sys/kernel/iommu_groups/{group_no}/devices to vfio-pci"
            )));
        }
        let mut cfd: libc::c_int = container.as_raw_fd();
        ioctl_ptr(
            &group,
            nr::GROUP_SET_CONTAINER,
            &mut cfd,
            "VFIO_GROUP_SET_CONTAINER",
        )?;
        ioctl_val(&container, nr::SET_IOMMU, iommu as _, "VFIO_SET_IOMMU")?;
        let name = CString::new(bdf.to_string()).map_err(|_| other("BDF has a NUL"))?;
        let dfd = ioctl_ptr(
            &group,
            nr::GROUP_GET_DEVICE_FD,
            name.as_ptr() as *mut libc::c_char,
            "VFIO_GROUP_GET_DEVICE_FD",
        )?;
        // SAFETY: the ioctl returned a new file descriptor that we now own.
        let device = unsafe { OwnedFd::from_raw_fd(dfd) };
        let mut ri = RegionInfo {
            argsz: std::mem::size_of::<RegionInfo>() as u32,
            index: nr::PCI_BAR0_REGION_INDEX,
            ..Default::default()
        };
        ioctl_ptr(
            &device,
            nr::DEVICE_GET_REGION_INFO,
            &mut ri,
            "VFIO_DEVICE_GET_REGION_INFO(BAR0)",
        )?;
        if ri.size < regs::BAR0_BYTES as u64 || ri.flags & nr::REGION_INFO_FLAG_MMAP == 0 {
            return Err(other(format!(
                "BAR0 is {} bytes (flags {:#x}); the card needs {} mappable bytes",
                ri.size,
                ri.flags,
                regs::BAR0_BYTES
            )));
        }
        let bar_len = regs::BAR0_BYTES as usize;
        // SAFETY: mapping a device region the kernel described; checked for MAP_FAILED.
        let bar = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bar_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                device.as_raw_fd(),
                ri.offset as libc::off_t,
            )
        };
        if bar == libc::MAP_FAILED {
            return Err(io_err("mmap BAR0", std::io::Error::last_os_error()));
        }
        Ok(Self {
            bdf,
            container,
            _group: group,
            device,
            bar: bar as *mut u8,
            bar_len,
            maps: HashMap::new(),
            // 1 GiB .. 1 TiB of IOVA space, clear of low addresses
            iova: IovaAlloc::new(1 << 30, 1 << 40),
            next_id: 1,
        })
    }

    fn check_off(&self, offset: u32) -> Result<(), TransportError> {
        if !offset.is_multiple_of(4) || offset as usize + 4 > self.bar_len {
            return Err(TransportError::BadOffset {
                backend: BACKEND.into(),
                offset,
            });
        }
        Ok(())
    }

    fn mapping(&self, buf: &DmaBuf, offset: usize, len: usize) -> Result<&Mapping, TransportError> {
        let m = self
            .maps
            .get(&buf.iova)
            .filter(|m| m.id == buf.id)
            .ok_or_else(|| TransportError::UnknownBuf {
                backend: BACKEND.into(),
                id: buf.id,
            })?;
        match offset.checked_add(len) {
            Some(end) if end <= buf.len => Ok(m),
            _ => Err(TransportError::BufRange {
                backend: BACKEND.into(),
                id: buf.id,
                offset,
                len,
                size: buf.len,
            }),
        }
    }

    fn unmap(&mut self, iova: u64) -> Result<(), TransportError> {
        if let Some(m) = self.maps.remove(&iova) {
            let mut u = DmaUnmap {
                argsz: std::mem::size_of::<DmaUnmap>() as u32,
                flags: 0,
                iova,
                size: m.size as u64,
            };
            let r = ioctl_ptr(
                &self.container,
                nr::IOMMU_UNMAP_DMA,
                &mut u,
                "VFIO_IOMMU_UNMAP_DMA",
            );
            // SAFETY: unmapping memory this value mapped with mmap, of the same size.
            unsafe { libc::munmap(m.ptr as *mut libc::c_void, m.size) };
            self.iova.free(iova);
            r?;
        }
        Ok(())
    }
}

impl Drop for VfioCard {
    fn drop(&mut self) {
        let iovas: Vec<u64> = self.maps.keys().copied().collect();
        for i in iovas {
            let _ = self.unmap(i);
        }
        // SAFETY: the BAR mapping was created in `open` with this length.
        unsafe { libc::munmap(self.bar as *mut libc::c_void, self.bar_len) };
    }
}

impl Transport for VfioCard {
    fn describe(&self) -> String {
        format!("vfio:{}", self.bdf)
    }

    fn read32(&mut self, offset: u32) -> Result<u32, TransportError> {
        self.check_off(offset)?;
        // SAFETY: in bounds of the BAR mapping (checked), 4-byte aligned; MMIO needs volatile.
        Ok(unsafe { std::ptr::read_volatile(self.bar.add(offset as usize) as *const u32) })
    }

    fn write32(&mut self, offset: u32, value: u32) -> Result<(), TransportError> {
        self.check_off(offset)?;
        // SAFETY: as in read32.
        unsafe { std::ptr::write_volatile(self.bar.add(offset as usize) as *mut u32, value) };
        Ok(())
    }

    fn alloc(&mut self, len: usize) -> Result<DmaBuf, TransportError> {
        let size = (len.max(1) as u64).div_ceil(PAGE) * PAGE;
        let iova = self.iova.alloc(size).ok_or_else(|| TransportError::Alloc {
            backend: BACKEND.into(),
            len,
            reason: "IOVA space exhausted".into(),
        })?;
        // SAFETY: anonymous private mapping, checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            self.iova.free(iova);
            return Err(io_err("mmap a DMA buffer", std::io::Error::last_os_error()));
        }
        let mut m = DmaMap {
            argsz: std::mem::size_of::<DmaMap>() as u32,
            flags: nr::DMA_MAP_FLAG_READ | nr::DMA_MAP_FLAG_WRITE,
            vaddr: ptr as u64,
            iova,
            size,
        };
        if let Err(e) = ioctl_ptr(
            &self.container,
            nr::IOMMU_MAP_DMA,
            &mut m,
            "VFIO_IOMMU_MAP_DMA",
        ) {
            // SAFETY: the mapping just created above.
            unsafe { libc::munmap(ptr, size as usize) };
            self.iova.free(iova);
            return Err(e);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.maps.insert(
            iova,
            Mapping {
                id,
                ptr: ptr as *mut u8,
                size: size as usize,
            },
        );
        Ok(DmaBuf { id, iova, len })
    }

    fn free(&mut self, buf: &DmaBuf) -> Result<(), TransportError> {
        self.mapping(buf, 0, 0)?;
        self.unmap(buf.iova)
    }

    fn write_buf(
        &mut self,
        buf: &DmaBuf,
        offset: usize,
        data: &[u8],
    ) -> Result<(), TransportError> {
        let m = self.mapping(buf, offset, data.len())?;
        // SAFETY: in bounds (checked); the buffer is ours; x86 DMA is cache-coherent, the
        // fence orders the copy before the doorbell write that follows.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), m.ptr.add(offset), data.len()) };
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn read_buf(
        &mut self,
        buf: &DmaBuf,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), TransportError> {
        let m = self.mapping(buf, offset, out.len())?;
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: in bounds (checked); volatile reads because the device writes this memory.
        for (i, o) in out.iter_mut().enumerate() {
            *o = unsafe { std::ptr::read_volatile(m.ptr.add(offset + i)) };
        }
        Ok(())
    }

    fn wait(&mut self, until: Instant) -> Result<(), TransportError> {
        let now = Instant::now();
        if until > now {
            std::thread::sleep((until - now).min(Duration::from_micros(20)));
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        ioctl_val(&self.device, nr::DEVICE_RESET, 0, "VFIO_DEVICE_RESET")?;
        Ok(())
    }

    fn alive(&mut self) -> Result<(), TransportError> {
        if self.read32(regs::off::MAGIC)? == u32::MAX {
            return Err(TransportError::PeerDied {
                backend: self.describe(),
                reason: "BAR0 reads return all ones: the device fell off the bus".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn ioctl_numbers_match_linux_vfio_h() {
        assert_eq!(nr::GET_API_VERSION, 0x3b64);
        assert_eq!(nr::GROUP_GET_STATUS, 0x3b67);
        assert_eq!(nr::GROUP_SET_CONTAINER, 0x3b68);
        assert_eq!(nr::GROUP_GET_DEVICE_FD, 0x3b6a);
        assert_eq!(nr::DEVICE_GET_REGION_INFO, 0x3b6c);
        assert_eq!(nr::DEVICE_RESET, 0x3b6f);
        assert_eq!(nr::IOMMU_MAP_DMA, 0x3b71);
        assert_eq!(nr::IOMMU_UNMAP_DMA, 0x3b72);
    }

    #[test]
    fn struct_layouts_match_linux_vfio_h() {
        assert_eq!(size_of::<GroupStatus>(), 8);
        assert_eq!(size_of::<DeviceInfo>(), 20);
        assert_eq!(size_of::<RegionInfo>(), 32);
        assert_eq!(std::mem::offset_of!(RegionInfo, size), 16);
        assert_eq!(std::mem::offset_of!(RegionInfo, offset), 24);
        assert_eq!(size_of::<DmaMap>(), 32);
        assert_eq!(std::mem::offset_of!(DmaMap, vaddr), 8);
        assert_eq!(size_of::<DmaUnmap>(), 24);
    }

    fn fake_sysfs(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("tern-vfio-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("kernel/iommu_groups/17")).unwrap();
        std::fs::create_dir_all(root.join("bus/pci/drivers/vfio-pci")).unwrap();
        let dev = root.join("bus/pci/devices/0000:01:00.0");
        std::fs::create_dir_all(&dev).unwrap();
        std::os::unix::fs::symlink(
            "../../../../kernel/iommu_groups/17",
            dev.join("iommu_group"),
        )
        .unwrap();
        std::os::unix::fs::symlink("../../../../bus/pci/drivers/vfio-pci", dev.join("driver"))
            .unwrap();
        let bad = root.join("bus/pci/devices/0000:02:00.0");
        std::fs::create_dir_all(&bad).unwrap();
        std::os::unix::fs::symlink("../../../../kernel/iommu_groups/x", bad.join("iommu_group"))
            .unwrap();
        root
    }

    #[test]
    fn sysfs_paths_and_iommu_groups_resolve() {
        let root = fake_sysfs("groups");
        let bdf = Bdf::parse("0000:01:00.0").unwrap();
        assert_eq!(
            sysfs_device_dir(Path::new("/sys"), bdf),
            PathBuf::from("/sys/bus/pci/devices/0000:01:00.0")
        );
        assert_eq!(iommu_group(&root, bdf).unwrap(), 17);
        assert_eq!(bound_driver(&root, bdf).as_deref(), Some("vfio-pci"));
        let bad = Bdf::parse("0000:02:00.0").unwrap();
        assert!(iommu_group(&root, bad)
            .unwrap_err()
            .to_string()
            .contains("not an iommu_groups"));
        assert_eq!(bound_driver(&root, bad), None);
        let none = Bdf::parse("0000:03:00.0").unwrap();
        assert!(iommu_group(&root, none)
            .unwrap_err()
            .to_string()
            .contains("IOMMU enabled"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn iova_allocator_leaves_guard_pages_and_coalesces() {
        let mut a = IovaAlloc::new(1 << 30, 64 * PAGE);
        let x = a.alloc(100).unwrap();
        let y = a.alloc(PAGE).unwrap();
        assert_eq!(x, 1 << 30);
        assert_eq!(y, x + 2 * PAGE, "one page plus a guard page");
        assert!(a.free(x));
        assert!(!a.free(x));
        assert!(a.free(y));
        assert_eq!(a.alloc(63 * PAGE), Some(1 << 30));
        assert_eq!(a.alloc(1), None);
    }

    #[test]
    fn opening_a_missing_device_explains_itself() {
        let e = VfioCard::open(Bdf::parse("ffff:ff:1f.7").unwrap())
            .err()
            .unwrap();
        assert!(e.to_string().contains("vfio-pci"), "{e}");
    }
}
