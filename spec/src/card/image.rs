//! The card-memory images the host builds and the card reads (docs/card.md): the weight
//! region (header, weight beats, scale vectors), the activation image and the output image.
//!
//! Region header (64 bytes, little-endian, fields packed in this order):
//!
//! | bytes | field | index |
//! |---|---|---|
//! | 0..4 | magic `"TWGT"` | 0 |
//! | 4..6 | version (1) | 1 |
//! | 6..8 | flags (0) | 2 |
//! | 8..12 | K | 3 |
//! | 12..16 | N | 4 |
//! | 16..18 | rows | 5 |
//! | 18..20 | cols | 6 |
//! | 20..22 | array block_k | 7 |
//! | 22..24 | mant_bits | 8 |
//! | 24..28 | weight beats | 9 |
//! | 28..36 | weight bytes | 10 |
//! | 36..44 | scale offset (from the region start) | 11 |
//! | 44..52 | scale bytes | 12 |
//! | 52..64 | reserved, 0 | 13 |
//!
//! The index is what the card reports in `ERROR_INFO` when it refuses a GEMM because of
//! that field (`BAD_FIELD`).
//!
//! Weight beats follow the header in the order the array consumes them (per N tile of
//! `rows` outputs, per array k-block of `block_k` inputs, per beat of `cols` inputs; the
//! last k-block of a layer may have fewer beats), each beat `2·rows·cols` bits of 2-bit trit
//! codes at bit `2·(lane·cols + col)`, beats packed bit-densely from bit 0 of byte 64. Then
//! the scale vectors, one per (N tile, k-block) in the same order: `rows` mantissas of
//! `mant_bits` bits at bit `lane·mant_bits`, each vector padded to a power-of-two number of
//! bytes. Both parts are padded to 64 bytes with zeros. The layer's block exponents are not
//! in the image; the host applies them (docs/arithmetic.md §5–§7).

use crate::config::{ArrayConfig, BlockShape};
use crate::matrix::{div_ceil, OperandError, ScaledTernaryMatrix};
use crate::trit::{code_to_trit, trit_to_code};
use ndarray::{Array1, Array2, ArrayView2};
use thiserror::Error;

/// Card memory word: every part of every image is padded to this.
pub const WORD_BYTES: usize = 64;
/// Size of the region header.
pub const HEADER_BYTES: usize = 64;
/// `"TWGT"` as a little-endian u32.
pub const REGION_MAGIC: u32 = u32::from_le_bytes(*b"TWGT");
/// Region image version.
pub const REGION_VERSION: u16 = 1;

/// Rounds `x` up to a multiple of `to` (`to` ≥ 1).
pub fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// The fields of the region header, with the index the card reports in `ERROR_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    Magic = 0,
    Version = 1,
    Flags = 2,
    K = 3,
    N = 4,
    Rows = 5,
    Cols = 6,
    BlockK = 7,
    MantBits = 8,
    WeightBeats = 9,
    WeightBytes = 10,
    ScaleOffset = 11,
    ScaleBytes = 12,
    Reserved = 13,
}

impl HeaderField {
    /// Every field in index order.
    pub const ALL: [HeaderField; 14] = [
        HeaderField::Magic,
        HeaderField::Version,
        HeaderField::Flags,
        HeaderField::K,
        HeaderField::N,
        HeaderField::Rows,
        HeaderField::Cols,
        HeaderField::BlockK,
        HeaderField::MantBits,
        HeaderField::WeightBeats,
        HeaderField::WeightBytes,
        HeaderField::ScaleOffset,
        HeaderField::ScaleBytes,
        HeaderField::Reserved,
    ];

    /// The index reported in `ERROR_INFO`.
    pub fn index(self) -> u32 {
        self as u32
    }

    /// The field with this index.
    pub fn from_index(i: u32) -> Option<Self> {
        Self::ALL.get(i as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            HeaderField::Magic => "magic",
            HeaderField::Version => "version",
            HeaderField::Flags => "flags",
            HeaderField::K => "K",
            HeaderField::N => "N",
            HeaderField::Rows => "rows",
            HeaderField::Cols => "cols",
            HeaderField::BlockK => "block_k",
            HeaderField::MantBits => "mant_bits",
            HeaderField::WeightBeats => "weight beats",
            HeaderField::WeightBytes => "weight bytes",
            HeaderField::ScaleOffset => "scale offset",
            HeaderField::ScaleBytes => "scale bytes",
            HeaderField::Reserved => "reserved",
        }
    }
}

impl std::fmt::Display for HeaderField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (header field {})", self.name(), self.index())
    }
}

/// What building or reading an image can fail with.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ImageError {
    #[error("region header: {field} = {value:#x}, expected {expected}")]
    Header {
        field: HeaderField,
        value: u64,
        expected: String,
    },
    #[error("{what}: {got} bytes, expected {expected}")]
    Length {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("weight region: beat {beat}, lane {lane}, col {col}: reserved trit code 0b10")]
    ReservedCode {
        beat: usize,
        lane: usize,
        col: usize,
    },
    #[error("{what} = {value} is out of range: {legal}")]
    Range {
        what: &'static str,
        value: String,
        legal: String,
    },
    #[error("weights do not fit the array: {0}")]
    Operand(#[from] OperandError),
}

/// The 64-byte region header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionHeader {
    pub k: u32,
    pub n: u32,
    pub rows: u16,
    pub cols: u16,
    pub block_k: u16,
    pub mant_bits: u16,
    pub weight_beats: u32,
    pub weight_bytes: u64,
    pub scale_offset: u64,
    pub scale_bytes: u64,
}

fn rd(b: &[u8], at: usize, len: usize) -> u64 {
    let mut x = [0u8; 8];
    x[..len].copy_from_slice(&b[at..at + len]);
    u64::from_le_bytes(x)
}

impl RegionHeader {
    /// The header of a `k × n` layer on an array of geometry `cfg`.
    pub fn for_layer(cfg: &ArrayConfig, k: usize, n: usize) -> Result<Self, ImageError> {
        let l = region_layout(cfg, k, n)?;
        Ok(Self {
            k: k as u32,
            n: n as u32,
            rows: cfg.array.rows as u16,
            cols: cfg.array.cols as u16,
            block_k: cfg.block.k as u16,
            mant_bits: cfg.scale.mantissa_bits as u16,
            weight_beats: l.weight_beats as u32,
            weight_bytes: l.weight_bytes as u64,
            scale_offset: l.scale_offset as u64,
            scale_bytes: l.scale_bytes as u64,
        })
    }

    /// Encodes to the 64-byte record.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        b[0..4].copy_from_slice(&REGION_MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&REGION_VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&self.k.to_le_bytes());
        b[12..16].copy_from_slice(&self.n.to_le_bytes());
        b[16..18].copy_from_slice(&self.rows.to_le_bytes());
        b[18..20].copy_from_slice(&self.cols.to_le_bytes());
        b[20..22].copy_from_slice(&self.block_k.to_le_bytes());
        b[22..24].copy_from_slice(&self.mant_bits.to_le_bytes());
        b[24..28].copy_from_slice(&self.weight_beats.to_le_bytes());
        b[28..36].copy_from_slice(&self.weight_bytes.to_le_bytes());
        b[36..44].copy_from_slice(&self.scale_offset.to_le_bytes());
        b[44..52].copy_from_slice(&self.scale_bytes.to_le_bytes());
        b
    }

    /// Decodes strictly: magic, version, flags and reserved bytes must be exact, the
    /// geometry must be legal and the sizes consistent with it. Errors name the field.
    pub fn decode(b: &[u8]) -> Result<Self, ImageError> {
        if b.len() < HEADER_BYTES {
            return Err(ImageError::Length {
                what: "region header",
                got: b.len(),
                expected: HEADER_BYTES,
            });
        }
        let bad = |field, value: u64, expected: String| ImageError::Header {
            field,
            value,
            expected,
        };
        let magic = rd(b, 0, 4);
        if magic != REGION_MAGIC as u64 {
            return Err(bad(
                HeaderField::Magic,
                magic,
                format!("{REGION_MAGIC:#x} (\"TWGT\")"),
            ));
        }
        let version = rd(b, 4, 2);
        if version != REGION_VERSION as u64 {
            return Err(bad(
                HeaderField::Version,
                version,
                REGION_VERSION.to_string(),
            ));
        }
        let flags = rd(b, 6, 2);
        if flags != 0 {
            return Err(bad(HeaderField::Flags, flags, "0".into()));
        }
        if let Some(i) = (52..64).find(|&i| b[i] != 0) {
            return Err(bad(
                HeaderField::Reserved,
                b[i] as u64,
                format!("0 (byte {i})"),
            ));
        }
        let h = Self {
            k: rd(b, 8, 4) as u32,
            n: rd(b, 12, 4) as u32,
            rows: rd(b, 16, 2) as u16,
            cols: rd(b, 18, 2) as u16,
            block_k: rd(b, 20, 2) as u16,
            mant_bits: rd(b, 22, 2) as u16,
            weight_beats: rd(b, 24, 4) as u32,
            weight_bytes: rd(b, 28, 8),
            scale_offset: rd(b, 36, 8),
            scale_bytes: rd(b, 44, 8),
        };
        if h.k == 0 {
            return Err(bad(HeaderField::K, 0, "≥ 1".into()));
        }
        if h.n == 0 {
            return Err(bad(HeaderField::N, 0, "≥ 1".into()));
        }
        if h.rows == 0 {
            return Err(bad(HeaderField::Rows, 0, "≥ 1".into()));
        }
        if h.cols == 0 {
            return Err(bad(HeaderField::Cols, 0, "≥ 1".into()));
        }
        if h.block_k == 0 || !h.block_k.is_multiple_of(h.cols) {
            return Err(bad(
                HeaderField::BlockK,
                h.block_k as u64,
                format!("a non-zero multiple of cols = {}", h.cols),
            ));
        }
        if !(1..=31).contains(&h.mant_bits) {
            return Err(bad(
                HeaderField::MantBits,
                h.mant_bits as u64,
                "1..=31".into(),
            ));
        }
        let l = Layout::compute(
            h.k as usize,
            h.n as usize,
            h.rows as usize,
            h.cols as usize,
            h.block_k as usize,
            h.mant_bits as usize,
        );
        let checks = [
            (
                HeaderField::WeightBeats,
                h.weight_beats as u64,
                l.weight_beats as u64,
            ),
            (
                HeaderField::WeightBytes,
                h.weight_bytes,
                l.weight_bytes as u64,
            ),
            (
                HeaderField::ScaleOffset,
                h.scale_offset,
                l.scale_offset as u64,
            ),
            (HeaderField::ScaleBytes, h.scale_bytes, l.scale_bytes as u64),
        ];
        for (field, got, want) in checks {
            if got != want {
                return Err(bad(
                    field,
                    got,
                    format!("{want} for K = {}, N = {} on this geometry", h.k, h.n),
                ));
            }
        }
        Ok(h)
    }

    /// Checks that the header was built for the array `cfg` (the card's check before a
    /// GEMM); the error names the first field that differs.
    pub fn check_geometry(&self, cfg: &ArrayConfig) -> Result<(), ImageError> {
        let pairs = [
            (HeaderField::Rows, self.rows as u64, cfg.array.rows as u64),
            (HeaderField::Cols, self.cols as u64, cfg.array.cols as u64),
            (HeaderField::BlockK, self.block_k as u64, cfg.block.k as u64),
            (
                HeaderField::MantBits,
                self.mant_bits as u64,
                cfg.scale.mantissa_bits as u64,
            ),
        ];
        for (field, got, want) in pairs {
            if got != want {
                return Err(ImageError::Header {
                    field,
                    value: got,
                    expected: format!("{want} (the array of config {})", cfg.name),
                });
            }
        }
        Ok(())
    }

    /// The sizes of this region.
    pub fn layout(&self) -> Layout {
        Layout::compute(
            self.k as usize,
            self.n as usize,
            self.rows as usize,
            self.cols as usize,
            self.block_k as usize,
            self.mant_bits as usize,
        )
    }
}

/// Sizes and offsets of a weight region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// N tiles of `rows` outputs.
    pub tiles: usize,
    /// Array k-blocks per tile.
    pub kblocks: usize,
    /// Bits per weight beat (`2·rows·cols`).
    pub beat_bits: usize,
    /// Weight beats in the image.
    pub weight_beats: usize,
    /// Bytes of the weight part (padded to 64).
    pub weight_bytes: usize,
    /// Bytes of one scale vector (a power of two).
    pub scale_vec_bytes: usize,
    /// Scale vectors (`tiles · kblocks`).
    pub scale_vectors: usize,
    /// Offset of the scale part from the region start.
    pub scale_offset: usize,
    /// Bytes of the scale part (padded to 64).
    pub scale_bytes: usize,
    /// Bytes of the whole region.
    pub total_bytes: usize,
}

impl Layout {
    fn compute(k: usize, n: usize, rows: usize, cols: usize, bk: usize, mb: usize) -> Self {
        let tiles = div_ceil(n, rows);
        let kblocks = div_ceil(k, bk);
        let full = bk / cols;
        let last = div_ceil(k - (kblocks - 1) * bk, cols);
        let beats_per_tile = (kblocks - 1) * full + last;
        let weight_beats = tiles * beats_per_tile;
        let beat_bits = 2 * rows * cols;
        let weight_bytes = round_up(div_ceil(weight_beats * beat_bits, 8), WORD_BYTES);
        let scale_vec_bytes = div_ceil(rows * mb, 8).next_power_of_two();
        let scale_vectors = tiles * kblocks;
        let scale_bytes = round_up(scale_vectors * scale_vec_bytes, WORD_BYTES);
        let scale_offset = HEADER_BYTES + weight_bytes;
        Self {
            tiles,
            kblocks,
            beat_bits,
            weight_beats,
            weight_bytes,
            scale_vec_bytes,
            scale_vectors,
            scale_offset,
            scale_bytes,
            total_bytes: scale_offset + scale_bytes,
        }
    }

    /// Beats of array k-block `kb` (the last may be short).
    pub fn beats_in_kblock(&self, k: usize, cols: usize, bk: usize, kb: usize) -> usize {
        div_ceil((k - kb * bk).min(bk), cols)
    }
}

/// The layout of a `k × n` layer's region on the array `cfg`.
pub fn region_layout(cfg: &ArrayConfig, k: usize, n: usize) -> Result<Layout, ImageError> {
    if k == 0 || k > u32::MAX as usize {
        return Err(ImageError::Range {
            what: "K",
            value: k.to_string(),
            legal: "1..=2^32-1".into(),
        });
    }
    if n == 0 || n > u32::MAX as usize {
        return Err(ImageError::Range {
            what: "N",
            value: n.to_string(),
            legal: "1..=2^32-1".into(),
        });
    }
    if cfg.array.cols == 0 || cfg.block.k == 0 || !cfg.block.k.is_multiple_of(cfg.array.cols) {
        return Err(ImageError::Range {
            what: "block.k",
            value: cfg.block.k.to_string(),
            legal: format!("a non-zero multiple of array.cols = {}", cfg.array.cols),
        });
    }
    if cfg.array.rows == 0
        || cfg.array.rows > u16::MAX as u32
        || cfg.array.cols > u16::MAX as u32
        || cfg.block.k > u16::MAX as u32
    {
        return Err(ImageError::Range {
            what: "array geometry",
            value: format!(
                "{}×{}, block_k {}",
                cfg.array.rows, cfg.array.cols, cfg.block.k
            ),
            legal: "rows, cols, block_k in 1..=65535".into(),
        });
    }
    Ok(Layout::compute(
        k,
        n,
        cfg.array.rows as usize,
        cfg.array.cols as usize,
        cfg.block.k as usize,
        cfg.scale.mantissa_bits as usize,
    ))
}

/// Writes the low `w` bits of `v` at bit `at` of a little-endian byte buffer.
fn put_bits(buf: &mut [u8], at: usize, w: usize, v: u64) {
    for b in 0..w {
        if (v >> b) & 1 == 1 {
            buf[(at + b) / 8] |= 1 << ((at + b) % 8);
        }
    }
}

fn get_bits(buf: &[u8], at: usize, w: usize) -> u64 {
    let mut v = 0u64;
    for b in 0..w {
        v |= (((buf[(at + b) / 8] >> ((at + b) % 8)) & 1) as u64) << b;
    }
    v
}

/// Builds the weight-region image of `w` for the array `cfg` (docs/card.md).
pub fn build_region(cfg: &ArrayConfig, w: &ScaledTernaryMatrix) -> Result<Vec<u8>, ImageError> {
    w.check_fits(cfg)?;
    let (k, n) = (w.k(), w.n());
    let h = RegionHeader::for_layer(cfg, k, n)?;
    let l = h.layout();
    let (r, c, bk) = (
        cfg.array.rows as usize,
        cfg.array.cols as usize,
        cfg.block.k as usize,
    );
    let mb = cfg.scale.mantissa_bits as usize;
    let (bn, lbk) = (w.block.n as usize, w.block.k as usize);
    let mut img = vec![0u8; l.total_bytes];
    img[..HEADER_BYTES].copy_from_slice(&h.encode());
    let (wpart, spart) = img[HEADER_BYTES..].split_at_mut(l.weight_bytes);
    let mut beat = 0usize;
    let mut vec_i = 0usize;
    for nt in 0..l.tiles {
        for kb in 0..l.kblocks {
            let k0 = kb * bk;
            for j in 0..l.beats_in_kblock(k, c, bk, kb) {
                let base = beat * l.beat_bits;
                for lane in 0..r {
                    let nn = nt * r + lane;
                    if nn >= n {
                        break;
                    }
                    for col in 0..c {
                        let kk = k0 + j * c + col;
                        if kk >= k {
                            break;
                        }
                        let code = trit_to_code(w.trits[(nn, kk)]) as u64;
                        put_bits(wpart, base + 2 * (lane * c + col), 2, code);
                    }
                }
                beat += 1;
            }
            // the layer's block may span several of the array's k-blocks
            let layer_kb = k0 / lbk;
            let vbase = vec_i * l.scale_vec_bytes * 8;
            for lane in 0..r {
                let nn = nt * r + lane;
                if nn < n {
                    put_bits(
                        spart,
                        vbase + lane * mb,
                        mb,
                        w.mants[(nn / bn, layer_kb)] as u64,
                    );
                }
            }
            vec_i += 1;
        }
    }
    Ok(img)
}

/// Reads a region image back into a matrix the reference can run: trits [N, K] and, since
/// the image holds one mantissa per (output, array k-block), block shape `1 × block_k`
/// with every exponent 0. `gemm_acc` of it equals `gemm_acc` of the original layer.
pub fn decode_region(bytes: &[u8]) -> Result<(RegionHeader, ScaledTernaryMatrix), ImageError> {
    let h = RegionHeader::decode(bytes)?;
    let l = h.layout();
    if bytes.len() < l.total_bytes {
        return Err(ImageError::Length {
            what: "weight region",
            got: bytes.len(),
            expected: l.total_bytes,
        });
    }
    let (k, n) = (h.k as usize, h.n as usize);
    let (r, c, bk) = (h.rows as usize, h.cols as usize, h.block_k as usize);
    let mb = h.mant_bits as usize;
    let wpart = &bytes[HEADER_BYTES..HEADER_BYTES + l.weight_bytes];
    let spart = &bytes[l.scale_offset..l.scale_offset + l.scale_bytes];
    let mut trits = Array2::<i8>::zeros((n, k));
    let mut mants = Array2::<u32>::zeros((n, l.kblocks));
    let mut beat = 0usize;
    let mut vec_i = 0usize;
    for nt in 0..l.tiles {
        for kb in 0..l.kblocks {
            let k0 = kb * bk;
            for j in 0..l.beats_in_kblock(k, c, bk, kb) {
                let base = beat * l.beat_bits;
                for lane in 0..r {
                    let nn = nt * r + lane;
                    for col in 0..c {
                        let kk = k0 + j * c + col;
                        let code = get_bits(wpart, base + 2 * (lane * c + col), 2) as u8;
                        let t = code_to_trit(code).map_err(|_| ImageError::ReservedCode {
                            beat,
                            lane,
                            col,
                        })?;
                        if nn < n && kk < k {
                            trits[(nn, kk)] = t;
                        }
                    }
                }
                beat += 1;
            }
            let vbase = vec_i * l.scale_vec_bytes * 8;
            for lane in 0..r {
                let nn = nt * r + lane;
                if nn < n {
                    mants[(nn, kb)] = get_bits(spart, vbase + lane * mb, mb) as u32;
                }
            }
            vec_i += 1;
        }
    }
    let w = ScaledTernaryMatrix::new(
        trits,
        BlockShape {
            n: 1,
            k: h.block_k as u32,
        },
        mants,
        Array1::zeros(n),
        h.mant_bits as u32,
    )?;
    Ok((h, w))
}

/// Row stride of the activation image: `round_up(K, 64)` bytes.
pub fn acts_stride(k: usize) -> usize {
    round_up(k, WORD_BYTES)
}

/// Bytes of the activation image of M tokens.
pub fn acts_bytes(m: usize, k: usize) -> usize {
    m * acts_stride(k)
}

/// The activation image: M rows of i8 codes, row stride `round_up(K, 64)`, zero-padded.
pub fn acts_image(acts: ArrayView2<i8>) -> Vec<u8> {
    let (m, k) = acts.dim();
    let stride = acts_stride(k);
    let mut img = vec![0u8; m * stride];
    for (t, row) in acts.rows().into_iter().enumerate() {
        for (i, &a) in row.iter().enumerate() {
            img[t * stride + i] = a as u8;
        }
    }
    img
}

/// Reads an activation image back (the card's view).
pub fn decode_acts(bytes: &[u8], m: usize, k: usize) -> Result<Array2<i8>, ImageError> {
    let stride = acts_stride(k);
    if bytes.len() < m * stride {
        return Err(ImageError::Length {
            what: "activation image",
            got: bytes.len(),
            expected: m * stride,
        });
    }
    Ok(Array2::from_shape_fn((m, k), |(t, i)| {
        bytes[t * stride + i] as i8
    }))
}

/// Sizes of the output image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputsLayout {
    /// Values per row: `round_up(N, rows)`.
    pub row_values: usize,
    /// Row stride in bytes: `row_values · 8`.
    pub stride: usize,
    /// Bytes of M rows.
    pub bytes: usize,
    /// `bytes` rounded up to 64 (what a DMA of the outputs moves).
    pub dma_bytes: usize,
}

/// The output image of M tokens of an N-output layer on an array of `rows` lanes.
pub fn outputs_layout(m: usize, n: usize, rows: usize) -> OutputsLayout {
    let row_values = round_up(n, rows.max(1));
    let stride = row_values * 8;
    OutputsLayout {
        row_values,
        stride,
        bytes: m * stride,
        dma_bytes: round_up(m * stride, WORD_BYTES),
    }
}

/// Encodes outputs acc [M, N] (the card's side).
pub fn encode_outputs(acc: &Array2<i64>, rows: usize) -> Vec<u8> {
    let (m, n) = acc.dim();
    let l = outputs_layout(m, n, rows);
    let mut img = vec![0u8; l.dma_bytes];
    for ((t, o), v) in acc.indexed_iter() {
        let at = t * l.stride + o * 8;
        img[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    img
}

/// Decodes the output image into acc [M, N].
pub fn decode_outputs(
    bytes: &[u8],
    m: usize,
    n: usize,
    rows: usize,
) -> Result<Array2<i64>, ImageError> {
    let l = outputs_layout(m, n, rows);
    if bytes.len() < l.bytes {
        return Err(ImageError::Length {
            what: "output image",
            got: bytes.len(),
            expected: l.bytes,
        });
    }
    Ok(Array2::from_shape_fn((m, n), |(t, o)| {
        let at = t * l.stride + o * 8;
        i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{self, ScaleDist};
    use crate::reference::gemm_acc;

    fn cfg(name: &str) -> ArrayConfig {
        ArrayConfig::builtin(name).unwrap()
    }

    #[test]
    fn header_round_trips_and_lays_out_as_documented() {
        let c = cfg("small");
        let h = RegionHeader::for_layer(&c, 200, 20).unwrap();
        let b = h.encode();
        assert_eq!(&b[0..4], b"TWGT");
        assert_eq!(rd(&b, 8, 4), 200);
        assert_eq!(rd(&b, 12, 4), 20);
        assert_eq!(rd(&b, 16, 2), 8);
        assert_eq!(rd(&b, 20, 2), 64);
        // 3 tiles × (3 full blocks of 8 beats + 1 block of ceil(8/8) = 1 beat)
        assert_eq!(h.weight_beats, 3 * (3 * 8 + 1));
        // 8×8 beats are 16 bytes, four per word
        assert_eq!(h.weight_bytes, round_up(75 * 16, 64) as u64);
        assert_eq!(h.scale_offset, 64 + h.weight_bytes);
        // 8 lanes × 16 bits = 16 bytes per vector, 12 vectors
        assert_eq!(h.scale_bytes, round_up(12 * 16, 64) as u64);
        assert_eq!(rd(&b, 44, 8), h.scale_bytes);
        assert_eq!(RegionHeader::decode(&b).unwrap(), h);
    }

    #[test]
    fn strict_decode_names_the_field() {
        let c = cfg("default");
        let good = RegionHeader::for_layer(&c, 128, 32).unwrap().encode();
        let cases: [(usize, u8, HeaderField); 7] = [
            (0, b'X', HeaderField::Magic),
            (4, 2, HeaderField::Version),
            (6, 1, HeaderField::Flags),
            (60, 1, HeaderField::Reserved),
            (24, 99, HeaderField::WeightBeats),
            (36, 0, HeaderField::ScaleOffset),
            (20, 3, HeaderField::BlockK),
        ];
        for (byte, value, field) in cases {
            let mut b = good;
            b[byte] = value;
            match RegionHeader::decode(&b) {
                Err(ImageError::Header { field: f, .. }) => assert_eq!(f, field, "byte {byte}"),
                other => panic!("byte {byte}: {other:?}"),
            }
        }
        let e = RegionHeader::decode(&good[..10]).unwrap_err();
        assert!(e.to_string().contains("10 bytes"), "{e}");
        let mut b = good;
        b[0] = 0;
        assert!(RegionHeader::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("magic (header field 0)"));
    }

    #[test]
    fn geometry_check_names_the_differing_field() {
        let h = RegionHeader::for_layer(&cfg("small"), 64, 8).unwrap();
        assert!(h.check_geometry(&cfg("small")).is_ok());
        match h.check_geometry(&cfg("default")) {
            Err(ImageError::Header { field, .. }) => assert_eq!(field, HeaderField::Rows),
            other => panic!("{other:?}"),
        }
        assert_eq!(HeaderField::from_index(7), Some(HeaderField::BlockK));
        assert_eq!(HeaderField::from_index(14), None);
    }

    #[test]
    fn region_round_trips_through_the_reference() {
        for (name, k, n, block) in [
            ("small", 200, 20, BlockShape { n: 64, k: 64 }),
            ("small", 256, 24, BlockShape { n: 4, k: 128 }),
            ("default", 100, 33, BlockShape { n: 64, k: 64 }),
            ("large", 96, 40, BlockShape { n: 8, k: 64 }),
        ] {
            let c = cfg(name);
            let (w, _) = random::layer(7, n, k, block, 16, ScaleDist::Typical).unwrap();
            let img = build_region(&c, &w).unwrap();
            let l = region_layout(&c, k, n).unwrap();
            assert_eq!(img.len(), l.total_bytes);
            assert_eq!(img.len() % 64, 0);
            let (h, back) = decode_region(&img).unwrap();
            assert_eq!(h.k as usize, k);
            assert_eq!(back.trits, w.trits, "{name}");
            let a = random::act_codes(3, 3, k, 8);
            assert_eq!(
                gemm_acc(&back, a.q.view()).unwrap(),
                gemm_acc(&w, a.q.view()).unwrap(),
                "{name} {block}"
            );
        }
    }

    #[test]
    fn image_bits_follow_the_documented_positions() {
        // small: 8×8, one beat = 128 bits; trit (n=1, k=3) is lane 1, col 3 of beat 0
        let c = cfg("small");
        let mut trits = Array2::<i8>::zeros((8, 64));
        trits[(1, 3)] = -1;
        trits[(0, 9)] = 1; // beat 1, lane 0, col 1
        let mut mants = Array2::<u32>::zeros((1, 1));
        mants[(0, 0)] = 0xabcd;
        let w = ScaledTernaryMatrix::new(
            trits,
            BlockShape { n: 64, k: 64 },
            mants,
            Array1::zeros(1),
            16,
        )
        .unwrap();
        let img = build_region(&c, &w).unwrap();
        let bit = 64 * 8 + 2 * (8 + 3);
        assert_eq!(get_bits(&img, bit, 2), 0b11);
        let bit = 64 * 8 + 128 + 2;
        assert_eq!(get_bits(&img, bit, 2), 0b01);
        let so = RegionHeader::decode(&img).unwrap().scale_offset as usize;
        for lane in 0..8 {
            assert_eq!(get_bits(&img, so * 8 + lane * 16, 16), 0xabcd);
        }
        // a reserved code is refused with its position
        let mut bad = img.clone();
        bad[64] |= 0b10;
        bad[64] &= !0b01;
        assert!(matches!(
            decode_region(&bad),
            Err(ImageError::ReservedCode {
                beat: 0,
                lane: 0,
                col: 0
            })
        ));
    }

    #[test]
    fn build_refuses_layers_the_array_cannot_run() {
        let c = cfg("small");
        let (w, _) =
            random::layer(1, 8, 64, BlockShape { n: 8, k: 32 }, 16, ScaleDist::Typical).unwrap();
        assert!(matches!(
            build_region(&c, &w),
            Err(ImageError::Operand(OperandError::Range {
                what: "block.k",
                ..
            }))
        ));
    }

    #[test]
    fn acts_and_outputs_round_trip() {
        let a = random::act_codes(5, 3, 70, 8);
        let img = acts_image(a.q.view());
        assert_eq!(img.len(), 3 * 128);
        assert_eq!(img[128] as i8, a.q[(1, 0)]);
        assert_eq!(img[127], 0);
        assert_eq!(decode_acts(&img, 3, 70).unwrap(), a.q);
        let acc =
            Array2::from_shape_fn((3, 10), |(t, o)| (t as i64 - 1) * 1_000_000_007 + o as i64);
        let l = outputs_layout(3, 10, 8);
        assert_eq!(
            (l.row_values, l.stride, l.bytes, l.dma_bytes),
            (16, 128, 384, 384)
        );
        let img = encode_outputs(&acc, 8);
        assert_eq!(decode_outputs(&img, 3, 10, 8).unwrap(), acc);
        assert!(decode_outputs(&img[..100], 3, 10, 8).is_err());
    }
}
