// Standalone check of kernels/src/neon.rs on aarch64, run by ./run.sh (Debian's rustc for
// aarch64, qemu-user): a minimal stand-in for `crate::layout` with the same API, tiles built
// from random trits as docs/kernels.md describes, outputs compared with a scalar sum.
// Not part of the cargo build (cargo does not look in this folder).
#![allow(dead_code)]
mod layout {
    pub const ROWS: usize = 16;
    pub const TILE_K: usize = 16;
    pub const TILE_BYTES: usize = 64;
    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    pub struct Tile(pub [u8; 64]);
    #[derive(Clone, Copy)]
    pub struct Segment {
        pub kb: usize,
        pub k0: usize,
        pub len: usize,
        pub tile0: usize,
        pub tiles: usize,
    }
    #[derive(PartialEq, Clone, Copy)]
    pub enum MantMode {
        PerGroup,
        PerRow,
    }
    pub struct PreparedMatrix {
        pub groups: usize,
        pub tiles: usize,
        pub segs: Vec<Segment>,
        pub codes: Vec<Tile>,
        pub mode: MantMode,
        pub mants: Vec<u32>,
    }
    impl PreparedMatrix {
        pub fn groups(&self) -> usize {
            self.groups
        }
        pub fn tiles(&self) -> usize {
            self.tiles
        }
        pub fn segs(&self) -> &[Segment] {
            &self.segs
        }
        pub fn mant_mode(&self) -> MantMode {
            self.mode
        }
        pub fn group_codes(&self, g: usize) -> &[Tile] {
            &self.codes[g * self.tiles..(g + 1) * self.tiles]
        }
        pub fn group_mants(&self, g: usize) -> &[u32] {
            let per = if self.mode == MantMode::PerRow {
                self.segs.len() * ROWS
            } else {
                self.segs.len()
            };
            &self.mants[g * per..(g + 1) * per]
        }
    }
    pub struct PreparedActs {
        pub m: usize,
        pub kp: usize,
        pub nseg: usize,
        pub q: Vec<i8>,
        pub asum: Vec<i32>,
    }
    impl PreparedActs {
        pub fn m(&self) -> usize {
            self.m
        }
        pub fn kp(&self) -> usize {
            self.kp
        }
        pub fn token(&self, t: usize) -> &[i8] {
            &self.q[t * self.kp..(t + 1) * self.kp]
        }
        pub fn asums(&self, t: usize) -> &[i32] {
            &self.asum[t * self.nseg..(t + 1) * self.nseg]
        }
    }
}
#[path = "neon.rs"]
mod neon;
use layout::*;

fn main() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut checked = 0;
    for case in 0..200 {
        let n = 1 + (rnd() % 40) as usize;
        let k = 1 + (rnd() % 200) as usize;
        let m = 1 + (rnd() % 3) as usize;
        let bk = [1, 16, 64, k, 1 + (rnd() % k as u64) as usize][case % 5];
        let per_row = case % 2 == 0;
        let w: Vec<i8> = (0..n * k).map(|_| (rnd() % 3) as i8 - 1).collect();
        let a: Vec<i8> = (0..m * k)
            .map(|_| match rnd() % 4 {
                0 => -128,
                1 => 127,
                _ => rnd() as i8,
            })
            .collect();
        // segments: one per block
        let mut segs = Vec::new();
        let (mut k0, mut tile0) = (0, 0);
        while k0 < k {
            let len = bk.min(k - k0);
            let tiles = (len + 15) / 16;
            segs.push(Segment {
                kb: k0 / bk,
                k0,
                len,
                tile0,
                tiles,
            });
            k0 += len;
            tile0 += tiles;
        }
        let tiles = tile0;
        let groups = (n + 15) / 16;
        let mut codes = vec![Tile([0; 64]); groups * tiles];
        for row in 0..n {
            for s in &segs {
                for i in 0..s.len {
                    let c = (w[row * k + s.k0 + i] + 1) as u8;
                    let (j, kk) = (i / 16, i % 16);
                    codes[(row / 16) * tiles + s.tile0 + j].0[4 * (row % 16) + kk % 4] |=
                        c << (2 * (kk / 4));
                }
            }
        }
        let nseg = segs.len();
        let mants: Vec<u32> = (0..groups * nseg * if per_row { 16 } else { 1 })
            .map(|_| (rnd() % (1 << 31)) as u32)
            .collect();
        let mant = |row: usize, s: usize| {
            if per_row {
                mants[((row / 16) * nseg + s) * 16 + row % 16]
            } else {
                mants[(row / 16) * nseg + s]
            }
        };
        let kp = tiles * 16;
        let mut q = vec![0i8; m * kp];
        let mut asum = vec![0i32; m * nseg];
        for t in 0..m {
            for (si, s) in segs.iter().enumerate() {
                for i in 0..s.len {
                    let v = a[t * k + s.k0 + i];
                    q[t * kp + s.tile0 * 16 + i] = v;
                    asum[t * nseg + si] += v as i32;
                }
            }
        }
        let pm = PreparedMatrix {
            groups,
            tiles,
            segs: segs.clone(),
            codes,
            mode: if per_row {
                MantMode::PerRow
            } else {
                MantMode::PerGroup
            },
            mants: mants.clone(),
        };
        let pa = PreparedActs {
            m,
            kp,
            nseg,
            q,
            asum,
        };
        let mut out = vec![0i64; groups * 16 * m];
        neon::run(&pm, &pa, 0, groups, &mut out);
        for row in 0..n {
            for t in 0..m {
                let mut want = 0i64;
                for (si, s) in segs.iter().enumerate() {
                    let p: i64 = (0..s.len)
                        .map(|i| w[row * k + s.k0 + i] as i64 * a[t * k + s.k0 + i] as i64)
                        .sum();
                    want += p * mant(row, si) as i64;
                }
                assert_eq!(out[row * m + t], want, "case {case} row {row} token {t}");
                checked += 1;
            }
        }
    }
    println!("neon kernel: {checked} outputs equal the scalar sum");
}
