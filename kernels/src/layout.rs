//! The prepared weight layout every kernel reads, and the prepared activations.
//!
//! **Weights.** Rows are taken in *groups* of [`ROWS`] = 16 and inputs in *tiles* of
//! [`TILE_K`] = 16, one 64-byte, 64-byte-aligned [`Tile`] per (group, tile). Inside a tile the
//! 32-bit lane `r` (bytes `4r..4r+4`) belongs to row `16g + r`; byte `b` of the lane holds four
//! 2-bit codes, the one in bits `[2p+1 : 2p]` for input `k = k0 + 4p + b`. The code is
//! `c = w + 1 ∈ {0, 1, 2}` (an unsigned byte once masked out). Masking plane `p`
//! (`tile & (3 << 2p)`) yields, in every lane, the four codes of inputs `4p..4p+4` scaled by
//! `4^p`: exactly the operand of one `vpdpbusd` against the broadcast activation dword
//! `a[4p..4p+4]`. The 16 lanes are 16 rows, so the dot products land per row with no
//! horizontal reduction.
//!
//! **Segments.** K is cut at every scale-block boundary, and a block longer than
//! [`SEG_MAX_TILES`] tiles is cut again; each piece (a [`Segment`]) is padded to whole tiles.
//! Padding codes are 0 and padded activations 0, so padding adds nothing. Each segment has
//! one mantissa per row, and its i32 partial sums cannot overflow (see `SEG_MAX_TILES`).
//!
//! **Exactness.** With `c = w + 1`, `Σ c·a = Σ w·a + Σ a`: the kernels compute `Σ c·a` (codes
//! unsigned, activations signed, so `a = -128` is an ordinary operand) and subtract the
//! segment's activation sum, computed once per token in [`PreparedActs`]. Then
//! `acc += p · mant` in i64, exactly as `tern_spec::reference::gemm_acc`.

use ndarray::{Array1, Array2};
use tern_spec::matrix::{OperandError, QuantizedActs, ScaledTernaryMatrix};
use tern_spec::BlockShape;

/// Rows per group (lanes of one 64-byte tile).
pub const ROWS: usize = 16;
/// Inputs per tile.
pub const TILE_K: usize = 16;
/// Bytes per tile.
pub const TILE_BYTES: usize = 64;
/// Longest segment, in tiles. A tile adds at most `4 · 128 · 128 = 2^16` to a plane
/// accumulator lane (plane 3 codes are `c · 64 ≤ 128`), so `2^14` tiles keep every i32
/// accumulator below `2^30`.
pub const SEG_MAX_TILES: usize = 1 << 14;

/// One 64-byte tile of 16 rows × 16 inputs of 2-bit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Tile(pub [u8; TILE_BYTES]);

/// A run of inputs inside one scale block, padded to whole tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Block column of the scale.
    pub kb: usize,
    /// First input.
    pub k0: usize,
    /// Inputs (before padding).
    pub len: usize,
    /// Index of its first tile (same for every group and for the activations).
    pub tile0: usize,
    /// Tiles.
    pub tiles: usize,
}

/// How the mantissas are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MantMode {
    /// All rows of a group share one block row: one mantissa per (group, segment).
    PerGroup,
    /// One mantissa per (group, segment, row): 16 consecutive u32.
    PerRow,
}

/// A [`ScaledTernaryMatrix`] in the kernels' layout (built once, at load time).
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedMatrix {
    n: usize,
    k: usize,
    block: BlockShape,
    mant_bits: u32,
    exps: Array1<i16>,
    groups: usize,
    tiles: usize,
    segs: Vec<Segment>,
    codes: Vec<Tile>,
    mant_mode: MantMode,
    mants: Vec<u32>,
}

/// Splits `0..k` into segments at block boundaries and every `max_tiles` tiles.
pub fn segments(k: usize, bk: usize, max_tiles: usize) -> Vec<Segment> {
    let max_len = max_tiles * TILE_K;
    let mut segs = Vec::new();
    let mut tile0 = 0;
    let mut k0 = 0;
    while k0 < k {
        let kb = k0 / bk;
        let block_end = ((kb + 1) * bk).min(k);
        let len = (block_end - k0).min(max_len);
        let tiles = len.div_ceil(TILE_K);
        segs.push(Segment {
            kb,
            k0,
            len,
            tile0,
            tiles,
        });
        tile0 += tiles;
        k0 += len;
    }
    segs
}

impl PreparedMatrix {
    /// Lays out `w` for the kernels.
    pub fn new(w: &ScaledTernaryMatrix) -> Self {
        Self::with_max_segment(w, SEG_MAX_TILES)
    }

    /// As [`PreparedMatrix::new`] with a smaller segment limit (tests use it to exercise
    /// the splitting of long blocks on small matrices).
    pub fn with_max_segment(w: &ScaledTernaryMatrix, max_tiles: usize) -> Self {
        let max_tiles = max_tiles.clamp(1, SEG_MAX_TILES);
        let (n, k) = (w.n(), w.k());
        let (bn, bk) = (w.block.n as usize, w.block.k as usize);
        let segs = segments(k, bk, max_tiles);
        let tiles: usize = segs.iter().map(|s| s.tiles).sum();
        let groups = n.div_ceil(ROWS);
        let mut codes = vec![Tile([0; TILE_BYTES]); groups * tiles];
        for (row, trits) in w.trits.rows().into_iter().enumerate() {
            let (g, r) = (row / ROWS, row % ROWS);
            let base = g * tiles;
            for seg in &segs {
                for i in 0..seg.len {
                    let c = (trits[seg.k0 + i] + 1) as u8;
                    let (j, kk) = (i / TILE_K, i % TILE_K);
                    let (p, b) = (kk / 4, kk % 4);
                    codes[base + seg.tile0 + j].0[4 * r + b] |= c << (2 * p);
                }
            }
        }
        let mant_mode = if bn % ROWS == 0 || n <= bn {
            MantMode::PerGroup
        } else {
            MantMode::PerRow
        };
        let nseg = segs.len();
        let mants = match mant_mode {
            MantMode::PerGroup => {
                let mut v = vec![0u32; groups * nseg];
                for g in 0..groups {
                    for (s, seg) in segs.iter().enumerate() {
                        v[g * nseg + s] = w.mants[((g * ROWS) / bn, seg.kb)];
                    }
                }
                v
            }
            MantMode::PerRow => {
                let mut v = vec![0u32; groups * nseg * ROWS];
                for g in 0..groups {
                    for (s, seg) in segs.iter().enumerate() {
                        for r in 0..ROWS.min(n - g * ROWS) {
                            v[(g * nseg + s) * ROWS + r] = w.mants[((g * ROWS + r) / bn, seg.kb)];
                        }
                    }
                }
                v
            }
        };
        Self {
            n,
            k,
            block: w.block,
            mant_bits: w.mant_bits,
            exps: w.exps.clone(),
            groups,
            tiles,
            segs,
            codes,
            mant_mode,
            mants,
        }
    }

    /// N (outputs).
    pub fn n(&self) -> usize {
        self.n
    }

    /// K (inputs).
    pub fn k(&self) -> usize {
        self.k
    }

    /// The scale block shape.
    pub fn block(&self) -> BlockShape {
        self.block
    }

    /// Mantissa width.
    pub fn mant_bits(&self) -> u32 {
        self.mant_bits
    }

    /// Exponents per block row (the host applies them, docs/arithmetic.md §6).
    pub fn exps(&self) -> &Array1<i16> {
        &self.exps
    }

    /// Row groups (⌈N/16⌉).
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Tiles per group (padded K / 16).
    pub fn tiles(&self) -> usize {
        self.tiles
    }

    /// The segments of K.
    pub fn segs(&self) -> &[Segment] {
        &self.segs
    }

    /// How mantissas are stored.
    pub fn mant_mode(&self) -> MantMode {
        self.mant_mode
    }

    /// All tiles, group-major: group `g` owns `codes()[g·tiles() .. (g+1)·tiles()]`.
    pub fn codes(&self) -> &[Tile] {
        &self.codes
    }

    /// The tiles of group `g`.
    pub fn group_codes(&self, g: usize) -> &[Tile] {
        &self.codes[g * self.tiles..(g + 1) * self.tiles]
    }

    /// The mantissa table (see [`MantMode`]).
    pub fn mants(&self) -> &[u32] {
        &self.mants
    }

    /// Mantissas of group `g`: `segs().len()` values (per group) or `16 · segs().len()`.
    pub fn group_mants(&self, g: usize) -> &[u32] {
        let per = match self.mant_mode {
            MantMode::PerGroup => self.segs.len(),
            MantMode::PerRow => self.segs.len() * ROWS,
        };
        &self.mants[g * per..(g + 1) * per]
    }

    /// Mantissa of row `r` of group `g` for segment `s`.
    #[inline]
    pub fn mant(&self, g: usize, s: usize, r: usize) -> u32 {
        let nseg = self.segs.len();
        match self.mant_mode {
            MantMode::PerGroup => self.mants[g * nseg + s],
            MantMode::PerRow => self.mants[(g * nseg + s) * ROWS + r],
        }
    }

    /// Bytes a GEMV reads from this matrix (codes + mantissas).
    pub fn bytes(&self) -> usize {
        self.codes.len() * TILE_BYTES + self.mants.len() * 4
    }

    /// Converts integer outputs [M, N] to f32 with the host's rule (docs/arithmetic.md §6).
    pub fn dequantize(&self, acc: &Array2<i64>, acts: &QuantizedActs) -> Array2<f32> {
        let bn = self.block.n as usize;
        Array2::from_shape_fn(acc.dim(), |(t, o)| {
            tern_spec::reference::output_to_f32(acc[(t, o)], self.exps[o / bn], acts.scales[t])
        })
    }
}

/// Activations laid out to match a [`PreparedMatrix`]: per token, the codes padded segment by
/// segment to whole tiles (zeros in the padding), and each segment's code sum.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedActs {
    m: usize,
    kp: usize,
    nseg: usize,
    q: Vec<i8>,
    asum: Vec<i32>,
}

impl PreparedActs {
    /// Lays out `acts` for `pm`; refuses a K mismatch.
    pub fn new(pm: &PreparedMatrix, acts: &QuantizedActs) -> Result<Self, OperandError> {
        if acts.k() != pm.k() {
            return Err(OperandError::Shape {
                what: "activations",
                got: acts.q.shape().to_vec(),
                expected: vec![acts.m(), pm.k()],
            });
        }
        let (m, kp, nseg) = (acts.m(), pm.tiles() * TILE_K, pm.segs().len());
        let mut q = vec![0i8; m * kp];
        let mut asum = vec![0i32; m * nseg];
        let codes = acts.q.as_standard_layout();
        let codes = codes.as_slice().expect("standard layout");
        let k = pm.k();
        for (t, (dst, asum)) in q
            .chunks_exact_mut(kp.max(1))
            .zip(asum.chunks_exact_mut(nseg.max(1)))
            .enumerate()
        {
            let row = &codes[t * k..(t + 1) * k];
            for (seg, sum) in pm.segs().iter().zip(asum.iter_mut()) {
                let src = &row[seg.k0..seg.k0 + seg.len];
                dst[seg.tile0 * TILE_K..][..seg.len].copy_from_slice(src);
                *sum = src.iter().map(|&a| a as i32).sum();
            }
        }
        Ok(Self {
            m,
            kp,
            nseg,
            q,
            asum,
        })
    }

    /// Tokens.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Padded K (bytes per token).
    pub fn kp(&self) -> usize {
        self.kp
    }

    /// Codes of token `t`, padded (`kp()` bytes).
    pub fn token(&self, t: usize) -> &[i8] {
        &self.q[t * self.kp..(t + 1) * self.kp]
    }

    /// Segment code sums of token `t`.
    pub fn asums(&self, t: usize) -> &[i32] {
        &self.asum[t * self.nseg..(t + 1) * self.nseg]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1};

    #[test]
    fn segments_cut_at_blocks_and_limit() {
        let s = segments(100, 40, 2);
        let spans: Vec<_> = s
            .iter()
            .map(|s| (s.kb, s.k0, s.len, s.tile0, s.tiles))
            .collect();
        // blocks [0,40) [40,80) [80,100); limit 2 tiles = 32 inputs
        assert_eq!(
            spans,
            vec![
                (0, 0, 32, 0, 2),
                (0, 32, 8, 2, 1),
                (1, 40, 32, 3, 2),
                (1, 72, 8, 5, 1),
                (2, 80, 20, 6, 2)
            ]
        );
    }

    #[test]
    fn tile_bits_match_the_documented_layout() {
        // one row, 17 inputs: k = 0..17; trit +1 at k = 6 → code 2 at tile 0, p = 1, b = 2.
        let mut trits = ndarray::Array2::<i8>::from_elem((2, 17), -1);
        trits[(0, 6)] = 1;
        trits[(1, 16)] = 0;
        let w = ScaledTernaryMatrix::new(
            trits,
            BlockShape { n: 2, k: 17 },
            array![[5u32]],
            Array1::from(vec![0i16]),
            16,
        )
        .unwrap();
        let pm = PreparedMatrix::new(&w);
        assert_eq!(
            (pm.groups(), pm.tiles(), pm.mant_mode()),
            (1, 2, MantMode::PerGroup)
        );
        let t0 = &pm.codes()[0].0;
        assert_eq!(t0[2], 2 << 2); // row 0, byte 2: plane 1 holds code 2, the rest code 0
        assert_eq!(t0[4..8], [0, 0, 0, 0]); // row 1 all -1 → code 0
        assert_eq!(pm.codes()[1].0[4], 1); // row 1, k = 16: code 1 (w = 0)
        assert_eq!(pm.codes()[1].0[8..], [0; 56]); // padding rows and inputs: code 0
        assert_eq!(pm.mant(0, 0, 0), 5);
        assert_eq!(pm.bytes(), 2 * 64 + 4);
    }
}
