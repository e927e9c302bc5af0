//! The host's side of the streams: what to send on the weight, activation and scale streams
//! for one command, and what the output stream returns, in the order the array uses them.
//! The Verilator testbench ([`crate::vtb`]) and later the simulator and driver read this.

use crate::params::Params;
use ndarray::{Array2, ArrayView2};
use tern_spec::matrix::div_ceil;
use tern_spec::ScaledTernaryMatrix;

/// One command's stream contents. Beats are little-endian bit vectors packed in `u64` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandStreams {
    pub k: usize,
    pub n: usize,
    pub m: usize,
    /// `2·rows·cols`-bit weight beats.
    pub weights: Vec<Vec<u64>>,
    /// `cols·act_bits`-bit activation beats.
    pub acts: Vec<Vec<u64>>,
    /// `rows·mant_bits`-bit scale vectors.
    pub scales: Vec<Vec<u64>>,
    /// Expected output vectors: (out_n, token, rows values, last).
    pub outputs: Vec<ExpectedOut>,
}

/// One expected output vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedOut {
    pub n: usize,
    pub token: usize,
    pub values: Vec<i64>,
    pub last: bool,
}

/// A little-endian bit vector under construction.
#[derive(Debug, Clone)]
pub struct BitVec {
    pub words: Vec<u64>,
    pub bits: usize,
}

impl BitVec {
    pub fn new(bits: usize) -> Self {
        BitVec {
            words: vec![0; bits.div_ceil(64)],
            bits,
        }
    }
    /// Writes the low `w` bits of `v` at bit `at`.
    pub fn put(&mut self, at: usize, w: usize, v: u64) {
        for b in 0..w {
            if (v >> b) & 1 == 1 {
                self.words[(at + b) / 64] |= 1u64 << ((at + b) % 64);
            }
        }
    }
    /// Hex string, most significant digit first, `ceil(bits/4)` digits.
    pub fn hex(words: &[u64], bits: usize) -> String {
        let digits = bits.div_ceil(4);
        let mut s = String::with_capacity(digits);
        for d in (0..digits).rev() {
            let nib = (words[d * 4 / 64] >> ((d * 4) % 64)) & 0xf;
            s.push(char::from_digit(nib as u32, 16).expect("nibble"));
        }
        s
    }
}

/// Builds the streams and the expected outputs of `y = W · a` for tokens `a` [M, K] (codes),
/// with `acc` the reference's exact outputs [M, N].
pub fn command_streams(
    p: &Params,
    w: &ScaledTernaryMatrix,
    a: ArrayView2<i8>,
    acc: &Array2<i64>,
) -> CommandStreams {
    let (k, n, m) = (w.k(), w.n(), a.nrows());
    let (r, c, bk, bn) = (
        p.rows as usize,
        p.cols as usize,
        p.block_k as usize,
        w.block.n as usize,
    );
    let ab = p.act_bits as usize;
    let mb = p.mant_bits as usize;
    let mut out = CommandStreams {
        k,
        n,
        m,
        weights: vec![],
        acts: vec![],
        scales: vec![],
        outputs: vec![],
    };
    let tiles = div_ceil(n, r);
    let kblocks = div_ceil(k, bk);
    for nt in 0..tiles {
        for kb in 0..kblocks {
            let k0 = kb * bk;
            let nb = div_ceil((k - k0).min(bk), c);
            for j in 0..nb {
                let mut v = BitVec::new(2 * r * c);
                for lane in 0..r {
                    for col in 0..c {
                        let (nn, kk) = (nt * r + lane, k0 + j * c + col);
                        if nn < n && kk < k {
                            let code = tern_spec::trit::trit_to_code(w.trits[(nn, kk)]) as u64;
                            v.put(2 * (lane * c + col), 2, code);
                        }
                    }
                }
                out.weights.push(v.words);
            }
            let mut s = BitVec::new(r * mb);
            for lane in 0..r {
                let nn = nt * r + lane;
                if nn < n {
                    // the layer's block may span several of the array's k-blocks
                    let layer_kb = k0 / w.block.k as usize;
                    s.put(lane * mb, mb, w.mants[(nn / bn, layer_kb)] as u64);
                }
            }
            out.scales.push(s.words);
            for t in 0..m {
                for j in 0..nb {
                    let mut v = BitVec::new(c * ab);
                    for col in 0..c {
                        let kk = k0 + j * c + col;
                        if kk < k {
                            v.put(col * ab, ab, a[(t, kk)] as i64 as u64);
                        }
                    }
                    out.acts.push(v.words);
                }
            }
        }
        for t in 0..m {
            let values = (0..r)
                .map(|lane| {
                    let nn = nt * r + lane;
                    if nn < n {
                        acc[(t, nn)]
                    } else {
                        0
                    }
                })
                .collect();
            out.outputs.push(ExpectedOut {
                n: nt * r,
                token: t,
                values,
                last: nt + 1 == tiles && t + 1 == m,
            });
        }
    }
    out
}

/// Cycles from the edge that samples `start` to the one that raises `done`, when every
/// stream is always valid and ready: one beat per cycle, `tiles · M · beats_per_token`
/// beats, one bubble for every output vector whose last beat directly follows the previous
/// vector's (the registered clock enable cannot know that the first is taken in the cycle the
/// second arrives), then the pipeline drains (`last_beat_to_out_valid` + 1); see
/// docs/array.md.
pub fn ideal_cycles(p: &Params, k: usize, n: usize, m: usize) -> usize {
    let (r, c, bk) = (p.rows as usize, p.cols as usize, p.block_k as usize);
    let tiles = div_ceil(n, r);
    let beats_per_token = if m > 1 {
        div_ceil(k, bk) * p.bpb as usize
    } else {
        div_ceil(k, c)
    };
    tiles * m * beats_per_token + back_to_back_vectors(p, k, n, m) + p.issue_to_out() as usize + 1
}

/// Output vectors whose block's last beat is issued right after the previous vector's (each
/// costs one cycle at full rate): the last block of a token is one beat long.
pub fn back_to_back_vectors(p: &Params, k: usize, n: usize, m: usize) -> usize {
    let (r, c, bk) = (p.rows as usize, p.cols as usize, p.block_k as usize);
    let tiles = div_ceil(n, r);
    if m == 1 {
        // one vector per tile, after ceil(K/cols) beats
        if div_ceil(k, c) == 1 {
            tiles - 1
        } else {
            0
        }
    } else if p.bpb == 1 {
        // the tokens of a tile's last block follow each other; the next tile's first vector
        // follows directly when the tile has one block
        tiles * (m - 1) + if div_ceil(k, bk) == 1 { tiles - 1 } else { 0 }
    } else {
        0
    }
}
