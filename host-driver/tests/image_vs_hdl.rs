//! The weight-region image holds exactly the bits `tern_hdl::host::command_streams` feeds
//! the array: every weight beat and every scale vector, in order.

use tern_hdl::host::command_streams;
use tern_hdl::{HdlOptions, Params};
use tern_spec::card::image::{build_region, RegionHeader, HEADER_BYTES};
use tern_spec::random::{self, ScaleDist};
use tern_spec::reference::gemm_acc;
use tern_spec::{ArrayConfig, BlockShape};

fn bit(bytes: &[u8], i: usize) -> u64 {
    ((bytes[i / 8] >> (i % 8)) & 1) as u64
}

fn word_bit(words: &[u64], i: usize) -> u64 {
    (words[i / 64] >> (i % 64)) & 1
}

#[test]
fn image_bits_equal_the_array_streams() {
    for (name, n, k, block) in [
        ("small", 20, 200, BlockShape { n: 64, k: 64 }),
        ("small", 17, 256, BlockShape { n: 4, k: 128 }), // layer block spans 2 array k-blocks
        ("default", 40, 100, BlockShape { n: 64, k: 64 }),
        ("large", 33, 130, BlockShape { n: 16, k: 64 }),
    ] {
        let cfg = ArrayConfig::builtin(name).unwrap();
        let p = Params::new(&cfg, HdlOptions::default()).unwrap();
        let (w, _) = random::layer(11, n, k, block, 16, ScaleDist::Extreme).unwrap();
        let a = random::act_codes(12, 1, k, 8);
        let acc = gemm_acc(&w, a.q.view()).unwrap();
        let cs = command_streams(&p, &w, a.q.view(), &acc);
        let img = build_region(&cfg, &w).unwrap();
        let h = RegionHeader::decode(&img).unwrap();
        let l = h.layout();
        assert_eq!(cs.weights.len(), h.weight_beats as usize, "{name}");
        assert_eq!(cs.scales.len(), l.scale_vectors, "{name}");
        let beat_bits = 2 * p.rows as usize * p.cols as usize;
        let wpart = &img[HEADER_BYTES..];
        for (b, beat) in cs.weights.iter().enumerate() {
            for i in 0..beat_bits {
                assert_eq!(
                    bit(wpart, b * beat_bits + i),
                    word_bit(beat, i),
                    "{name}: weight beat {b} bit {i}"
                );
            }
        }
        // the rest of the weight part is zero padding
        for i in cs.weights.len() * beat_bits..l.weight_bytes * 8 {
            assert_eq!(bit(wpart, i), 0, "{name}: padding bit {i}");
        }
        let spart = &img[l.scale_offset..];
        let vbits = p.rows as usize * p.mant_bits as usize;
        for (v, sv) in cs.scales.iter().enumerate() {
            for i in 0..vbits {
                assert_eq!(
                    bit(spart, v * l.scale_vec_bytes * 8 + i),
                    word_bit(sv, i),
                    "{name}: scale vector {v} bit {i}"
                );
            }
        }
    }
}

/// The simulated card's harness builds its images on its own (from the same streams): both
/// builders must produce the same bytes, or the driver and the card RTL disagree.
#[test]
fn spec_image_equals_the_sim_harness_image() {
    for (name, n, k, block) in [
        ("small", 20, 200, BlockShape { n: 64, k: 64 }),
        ("default", 40, 100, BlockShape { n: 8, k: 128 }),
        ("large", 33, 130, BlockShape { n: 16, k: 64 }),
    ] {
        let cfg = ArrayConfig::builtin(name).unwrap();
        let p = Params::new(&cfg, HdlOptions::default()).unwrap();
        let (w, _) = random::layer(13, n, k, block, 16, ScaleDist::Typical).unwrap();
        let ours = build_region(&cfg, &w).unwrap();
        let theirs = tern_sim::card_image::region(&p, &w).unwrap();
        assert_eq!(ours.len(), theirs.len(), "{name}: region length");
        if let Some(i) = (0..ours.len()).find(|&i| ours[i] != theirs[i]) {
            panic!("{name}: images differ first at byte {i}");
        }
        let a = random::act_codes(14, 3, k, 8);
        assert_eq!(
            tern_spec::card::image::acts_image(a.q.view()),
            tern_sim::card_image::acts(a.q.view()),
            "{name}: activation image"
        );
    }
}
