//! API-level tests of `pack`: round trips and conversions (proptest), shape refusals, every
//! error variant with its message, and no-panic checks on arbitrary bytes. Golden bytes
//! per layout live next to each layout's code.

use half::f16;
use proptest::prelude::*;

use super::*;

/// A shape the layout accepts: N ≥ 1 (multiples of 4 for hf), K ≥ 1 including odd K where
/// the layout allows it, K a multiple of the block length for tq*/i2_s.
fn shape_for(layout: Layout) -> impl Strategy<Value = Shape> {
    let rows = match layout {
        Layout::Hf => (1usize..=4).prop_map(|m| 4 * m).boxed(),
        _ => (1usize..=9).boxed(),
    };
    let cols = match layout {
        Layout::Tq1_0 | Layout::Tq2_0 => (1usize..=2).prop_map(|m| 256 * m).boxed(),
        Layout::I2S => (1usize..=3).prop_map(|m| 128 * m).boxed(),
        _ => (1usize..=40).boxed(),
    };
    (rows, cols).prop_map(|(r, c)| Shape::new(r, c))
}

/// A finite, non-negative f32 that is exactly an f16 (f16 bit patterns below +∞).
fn f16_scale() -> impl Strategy<Value = f32> {
    (0u16..0x7c00).prop_map(|b| f16::from_bits(b).to_f32())
}

/// Random scales of the layout's granularity for `shape`.
fn scales_for(layout: Layout, shape: Shape) -> BoxedStrategy<Option<Scales>> {
    match layout.scale_kind() {
        ScaleKind::None => Just(None).boxed(),
        ScaleKind::PerRowGroup { group } => {
            prop::collection::vec(f16_scale(), shape.rows * (shape.cols / group))
                .prop_map(move |values| Some(Scales::PerRowGroup { group, values }))
                .boxed()
        }
        ScaleKind::PerTensor => (0u32..0x7f80_0000)
            .prop_map(|b| Some(Scales::PerTensor(f32::from_bits(b))))
            .boxed(),
    }
}

fn trits(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop::collection::vec(-1i8..=1, n)
}

/// (layout, shape, trits, scales) for any layout.
fn case() -> impl Strategy<Value = (Layout, Shape, Vec<i8>, Option<Scales>)> {
    prop::sample::select(Layout::ALL.to_vec())
        .prop_flat_map(|l| (Just(l), shape_for(l)))
        .prop_flat_map(|(l, s)| (Just(l), Just(s), trits(s.rows * s.cols), scales_for(l, s)))
}

/// The scales `unpack` reports for bytes packed with `scales` (None → 1.0).
fn expected_scales(layout: Layout, shape: Shape, scales: Option<&Scales>) -> Option<Scales> {
    match (layout.scale_kind(), scales) {
        (ScaleKind::None, _) => None,
        (ScaleKind::PerRowGroup { group }, s) => {
            let n = shape.rows * (shape.cols / group);
            let v = match s {
                None => 1.0,
                Some(Scales::PerTensor(v)) => *v,
                Some(s) => return Some(s.clone()),
            };
            Some(Scales::PerRowGroup {
                group,
                values: vec![v; n],
            })
        }
        (ScaleKind::PerTensor, s) => Some(s.cloned().unwrap_or(Scales::PerTensor(1.0))),
    }
}

proptest! {
    /// Every layout round-trips trits and scales, and unpack → pack is byte-identical.
    #[test]
    fn every_layout_round_trips((layout, shape, t, scales) in case()) {
        let bytes = pack(layout, shape, &t, scales.as_ref()).unwrap();
        prop_assert_eq!(bytes.len(), packed_len(layout, shape).unwrap());
        let u = unpack(layout, shape, &bytes).unwrap();
        prop_assert_eq!(&u.trits, &t);
        prop_assert_eq!(u.shape, shape);
        prop_assert_eq!(&u.scales, &expected_scales(layout, shape, scales.as_ref()));
        let again = pack(layout, shape, &u.trits, u.scales.as_ref()).unwrap();
        prop_assert_eq!(again, bytes);
    }

    /// Scaled layouts packed without scales store 1.0.
    #[test]
    fn missing_scales_mean_one((layout, shape, t, _s) in case()) {
        let u = unpack(layout, shape, &pack(layout, shape, &t, None).unwrap()).unwrap();
        prop_assert_eq!(u.scales, expected_scales(layout, shape, None));
    }

    /// Shapes a layout refuses give the specific error, from packed_len, pack and unpack.
    #[test]
    fn refused_shapes_give_the_specific_error(rows in 1usize..=12, cols in 1usize..=600) {
        for layout in Layout::ALL {
            let s = Shape::new(rows, cols);
            let expected = if cols % layout.cols_multiple() != 0 {
                Some(PackError::ColsNotMultiple { layout, cols, multiple: layout.cols_multiple() })
            } else if rows % layout.rows_multiple() != 0 {
                Some(PackError::RowsNotMultiple { layout, rows, multiple: layout.rows_multiple() })
            } else {
                None
            };
            match expected {
                None => prop_assert!(packed_len(layout, s).is_ok()),
                Some(e) => {
                    prop_assert_eq!(packed_len(layout, s).unwrap_err(), e.clone());
                    prop_assert_eq!(pack(layout, s, &vec![0; rows * cols], None).unwrap_err(), e.clone());
                    prop_assert_eq!(unpack(layout, s, &[]).unwrap_err(), e.clone());
                    prop_assert_eq!(layout.check_shape(s).unwrap_err(), e);
                }
            }
        }
    }

    /// Conversions between every pair of layouts preserve every trit (shape legal for all:
    /// N % 4 == 0, K % 256 == 0), and carry a uniform scale between scaled layouts.
    #[test]
    fn conversions_between_every_pair_preserve_trits(
        (shape, t, d) in ((1usize..=2), (1usize..=2))
            .prop_map(|(r, c)| Shape::new(4 * r, 256 * c))
            .prop_flat_map(|s| (Just(s), trits(s.rows * s.cols), f16_scale()))
    ) {
        for from in Layout::ALL {
            let src_scales = match from.scale_kind() {
                ScaleKind::None => None,
                _ => Some(Scales::PerTensor(d)),
            };
            let src = pack(from, shape, &t, src_scales.as_ref()).unwrap();
            for to in Layout::ALL {
                let out = convert(from, to, shape, &src).unwrap();
                let u = unpack(to, shape, &out).unwrap();
                prop_assert_eq!(&u.trits, &t, "{} -> {}", from, to);
                let carried = src_scales.as_ref().and_then(|_| expected_scales(to, shape, src_scales.as_ref()));
                let want = carried.or_else(|| expected_scales(to, shape, None));
                prop_assert_eq!(&u.scales, &want, "{} -> {}", from, to);
                // Direct pack of the same trits gives the same bytes.
                prop_assert_eq!(out, pack(to, shape, &t, want.as_ref()).unwrap());
            }
        }
    }

    /// Arbitrary bytes never panic unpack or convert, whatever their length.
    #[test]
    fn arbitrary_bytes_never_panic(
        layout in prop::sample::select(Layout::ALL.to_vec()),
        rows in 0usize..=9,
        cols in prop::sample::select(vec![0usize, 1, 3, 4, 5, 7, 128, 256, 512]),
        bytes in prop::collection::vec(any::<u8>(), 0..1200),
        exact in any::<bool>(),
    ) {
        let s = Shape::new(rows, cols);
        let bytes = match (exact, packed_len(layout, s)) {
            (true, Ok(n)) => bytes.iter().copied().cycle().take(if bytes.is_empty() { 0 } else { n }).collect(),
            _ => bytes,
        };
        let _ = unpack(layout, s, &bytes);
        for to in Layout::ALL {
            let _ = convert(layout, to, s, &bytes);
        }
    }

    /// Arbitrary i8 input never panics pack; non-trits are named.
    #[test]
    fn arbitrary_trits_never_panic(
        (layout, shape, _t, scales) in case(),
        raw in prop::collection::vec(any::<i8>(), 0..1100),
    ) {
        match pack(layout, shape, &raw, scales.as_ref()) {
            Ok(_) => prop_assert!(raw.iter().all(|v| (-1..=1).contains(v))),
            Err(PackError::TritCount { .. }) => prop_assert_ne!(raw.len(), shape.rows * shape.cols),
            Err(PackError::NotATrit { index, value, .. }) => prop_assert_eq!(raw[index], value),
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}

#[test]
fn names_parse_and_print() {
    for l in Layout::ALL {
        assert_eq!(l.to_string().parse::<Layout>().unwrap(), l);
        assert_eq!(l.name().to_ascii_uppercase().parse::<Layout>().unwrap(), l);
    }
    let names: Vec<String> = Layout::ALL.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        names,
        ["i8", "tern2", "tern5", "tq2_0", "tq1_0", "i2_s", "hf"]
    );
    let e = "tq3_0".parse::<Layout>().unwrap_err();
    assert_eq!(
        e,
        PackError::UnknownLayout {
            name: "tq3_0".into()
        }
    );
    let m = e.to_string();
    assert!(
        m.contains("\"tq3_0\"") && m.contains("i8, tern2, tern5, tq2_0, tq1_0, i2_s, hf"),
        "{m}"
    );
}

#[test]
fn layout_facts() {
    assert_eq!(Layout::Tq1_0.gguf_type_id(), Some(34));
    assert_eq!(Layout::Tq2_0.gguf_type_id(), Some(35));
    assert_eq!(Layout::I2S.gguf_type_id(), Some(36));
    assert_eq!(Layout::Tern2.gguf_type_id(), None);
    // Sizes for the 2B-4T FFN up-projection, N = 6912, K = 2560.
    let s = Shape::new(6912, 2560);
    assert_eq!(packed_len(Layout::I8, s).unwrap(), 6912 * 2560);
    assert_eq!(packed_len(Layout::Tern2, s).unwrap(), 6912 * 640);
    assert_eq!(packed_len(Layout::Tern5, s).unwrap(), 6912 * 512);
    assert_eq!(packed_len(Layout::Tq2_0, s).unwrap(), 6912 * 10 * 66);
    assert_eq!(packed_len(Layout::Tq1_0, s).unwrap(), 6912 * 10 * 54);
    assert_eq!(packed_len(Layout::I2S, s).unwrap(), 6912 * 2560 / 4 + 32);
    assert_eq!(packed_len(Layout::Hf, s).unwrap(), 6912 / 4 * 2560);
    // Row padding: K = 7 → tern2 2 bytes/row, tern5 2 bytes/row.
    assert_eq!(packed_len(Layout::Tern2, Shape::new(3, 7)).unwrap(), 6);
    assert_eq!(packed_len(Layout::Tern5, Shape::new(3, 11)).unwrap(), 9);
}

#[test]
fn i8_layout_is_identity() {
    let s = Shape::new(2, 3);
    let t = [1, 0, -1, -1, 1, 0];
    let b = pack(Layout::I8, s, &t, None).unwrap();
    assert_eq!(b, [0x01, 0x00, 0xff, 0xff, 0x01, 0x00]);
    assert_eq!(unpack(Layout::I8, s, &b).unwrap().trits, t);
}

#[test]
fn empty_shapes_are_fine() {
    for layout in Layout::ALL {
        for s in [
            Shape::new(0, 0),
            Shape::new(0, 256),
            Shape::new(4, 0),
            Shape::new(usize::MAX - 3, 0),
        ] {
            let b = pack(layout, s, &[], None).unwrap();
            assert_eq!(
                b.len(),
                if layout == Layout::I2S { 32 } else { 0 },
                "{layout} {s}"
            );
            let u = unpack(layout, s, &b).unwrap();
            assert!(u.trits.is_empty());
        }
    }
}

#[test]
fn scales_round_to_f16_on_request() {
    let s = Scales::PerRowGroup {
        group: 256,
        values: vec![0.1, 1.0],
    };
    let Scales::PerRowGroup { values, .. } = s.round_to_f16() else {
        unreachable!()
    };
    assert_eq!(values, [f16::from_f32(0.1).to_f32(), 1.0]);
    assert_eq!(
        Scales::PerTensor(0.1).round_to_f16(),
        Scales::PerTensor(0.099975586)
    );
}

/// Every error variant, with the field and value named in its message.
#[test]
fn error_messages_name_field_and_value() {
    fn msg(e: PackError, needles: &[&str]) {
        let m = e.to_string();
        for n in needles {
            assert!(m.contains(n), "{m:?} lacks {n:?}");
        }
    }
    use Layout::*;

    // ShapeOverflow
    let e = packed_len(Tern5, Shape::new(usize::MAX / 2, 3)).unwrap_err();
    assert!(matches!(e, PackError::ShapeOverflow { .. }));
    msg(
        e,
        &[
            "tern5",
            &format!("rows = {}", usize::MAX / 2),
            "cols = 3",
            "overflows",
        ],
    );

    // ColsNotMultiple (also in unpack and convert-to)
    let e = unpack(Tq1_0, Shape::new(1, 300), &[0; 54]).unwrap_err();
    assert_eq!(
        e,
        PackError::ColsNotMultiple {
            layout: Tq1_0,
            cols: 300,
            multiple: 256
        }
    );
    msg(e, &["tq1_0", "cols (K) = 300", "multiple of 256"]);
    let e = convert(I8, I2S, Shape::new(1, 100), &[0; 100]).unwrap_err();
    msg(e, &["i2_s", "cols (K) = 100", "multiple of 128"]);

    // RowsNotMultiple via convert: the target shape is refused before decoding.
    let e = convert(Tern2, Hf, Shape::new(3, 4), &[0xff; 2]).unwrap_err();
    assert_eq!(
        e,
        PackError::RowsNotMultiple {
            layout: Hf,
            rows: 3,
            multiple: 4
        }
    );

    // ByteLength
    let e = unpack(Tq2_0, Shape::new(2, 256), &[0; 131]).unwrap_err();
    assert_eq!(
        e,
        PackError::ByteLength {
            layout: Tq2_0,
            rows: 2,
            cols: 256,
            expected: 132,
            actual: 131
        }
    );
    msg(
        e,
        &[
            "tq2_0",
            "byte length 131",
            "rows = 2",
            "cols = 256",
            "exactly 132 bytes",
        ],
    );

    // TritCount
    let e = pack(Tern2, Shape::new(2, 3), &[0; 5], None).unwrap_err();
    assert_eq!(
        e,
        PackError::TritCount {
            layout: Tern2,
            rows: 2,
            cols: 3,
            expected: 6,
            actual: 5
        }
    );
    msg(e, &["tern2", "5 elements", "exactly 6"]);

    // NotATrit, in pack and in i8 unpack
    let e = pack(Tern5, Shape::new(2, 3), &[0, 0, 0, 0, 2, 0], None).unwrap_err();
    assert_eq!(
        e,
        PackError::NotATrit {
            layout: Tern5,
            index: 4,
            row: 1,
            col: 1,
            value: 2
        }
    );
    msg(
        e,
        &["tern5", "element 4", "row 1, col 1", "value 2", "-1, 0, +1"],
    );
    let e = unpack(I8, Shape::new(1, 3), &[0, 0x80, 0]).unwrap_err();
    msg(e, &["i8", "element 1", "value -128"]);

    // InvalidBase3, ReservedCode, NonZeroPadding: see tern5.rs, tq1_0.rs, tern2.rs, tq2_0.rs,
    // i2s.rs, hf.rs. BadScale on unpack: tq2_0.rs, tq1_0.rs, i2s.rs. Here: BadScale on pack.
    let s = Shape::new(1, 512);
    let scales = |values: Vec<f32>| Scales::PerRowGroup { group: 256, values };
    let e = pack(Tq2_0, s, &[0; 512], Some(&scales(vec![1.0, 0.1]))).unwrap_err();
    assert!(matches!(
        e,
        PackError::BadScale {
            problem: ScaleProblem::NotF16 { .. },
            ..
        }
    ));
    msg(
        e,
        &[
            "tq2_0",
            "scale 1",
            "byte offset 130",
            "0.1",
            "not exactly representable in f16",
            "0.099975586",
        ],
    );
    let e = pack(Tq1_0, s, &[0; 512], Some(&scales(vec![f32::NAN, 1.0]))).unwrap_err();
    msg(
        e,
        &[
            "tq1_0",
            "scale 0",
            "byte offset 52",
            "NaN",
            "finite, ≥ 0, exactly an f16",
        ],
    );
    let e = pack(Tq1_0, s, &[0; 512], Some(&scales(vec![1.0, -1.0]))).unwrap_err();
    msg(e, &["scale 1", "byte offset 106", "-1", "negative"]);
    let e = pack(
        I2S,
        Shape::new(1, 128),
        &[0; 128],
        Some(&Scales::PerTensor(f32::INFINITY)),
    )
    .unwrap_err();
    msg(
        e,
        &[
            "i2_s",
            "scale 0",
            "byte offset 32",
            "inf",
            "infinite",
            "(legal: finite, ≥ 0)",
        ],
    );
    // -0.0 is accepted and kept bit-exactly.
    let b = pack(Tq2_0, s, &[0; 512], Some(&scales(vec![-0.0, 0.0]))).unwrap();
    assert_eq!((b[64], b[65], b[130], b[131]), (0x00, 0x80, 0x00, 0x00));

    // ScaleKind
    let e = pack(
        Tern2,
        Shape::new(1, 4),
        &[0; 4],
        Some(&Scales::PerTensor(1.0)),
    )
    .unwrap_err();
    assert_eq!(
        e,
        PackError::ScaleKind {
            layout: Tern2,
            expected: ScaleKind::None,
            given: "per tensor".into()
        }
    );
    msg(
        e,
        &["tern2", "scales given per tensor", "carries no scales"],
    );
    let e = pack(I2S, Shape::new(1, 128), &[0; 128], Some(&scales(vec![1.0]))).unwrap_err();
    msg(
        e,
        &[
            "i2_s",
            "per 256-weight group of each row",
            "stores scales per tensor",
        ],
    );
    let e = pack(
        Tq2_0,
        s,
        &[0; 512],
        Some(&Scales::PerRowGroup {
            group: 64,
            values: vec![1.0; 8],
        }),
    )
    .unwrap_err();
    msg(e, &["tq2_0", "per 64-weight group", "per 256-weight group"]);

    // ScaleCount
    let e = pack(Tq2_0, s, &[0; 512], Some(&scales(vec![1.0]))).unwrap_err();
    assert_eq!(
        e,
        PackError::ScaleCount {
            layout: Tq2_0,
            rows: 1,
            cols: 512,
            group: 256,
            expected: 2,
            actual: 1
        }
    );
    msg(e, &["tq2_0", "1 scales given", "exactly 2"]);

    // ScalesNotConvertible: differing group scales cannot become one tensor scale...
    let src = pack(Tq2_0, s, &[0; 512], Some(&scales(vec![1.0, 2.0]))).unwrap();
    let e = convert(Tq2_0, I2S, s, &src).unwrap_err();
    assert!(matches!(
        e,
        PackError::ScalesNotConvertible {
            from: Tq2_0,
            to: I2S,
            ..
        }
    ));
    msg(
        e,
        &["cannot convert tq2_0 to i2_s", "scale 0 = 1", "scale 1 = 2"],
    );
    // ... and a tensor scale that is no f16 cannot become group scales.
    let src = pack(
        I2S,
        Shape::new(1, 256),
        &[0; 256],
        Some(&Scales::PerTensor(0.1)),
    )
    .unwrap();
    let e = convert(I2S, Tq1_0, Shape::new(1, 256), &src).unwrap_err();
    msg(
        e,
        &["cannot convert i2_s to tq1_0", "0.1", "not exactly an f16"],
    );
    // Dropping scales into an unscaled layout is allowed and documented.
    assert!(convert(
        Tq2_0,
        Tern2,
        s,
        &pack(Tq2_0, s, &[1; 512], Some(&scales(vec![1.0, 2.0]))).unwrap()
    )
    .is_ok());
}

/// Conversions carry per-group scales between tq1_0 and tq2_0 unchanged.
#[test]
fn tq_conversions_keep_group_scales() {
    let s = Shape::new(2, 512);
    let t: Vec<i8> = (0..1024).map(|i| ((i * 7) % 3) as i8 - 1).collect();
    let sc = Scales::PerRowGroup {
        group: 256,
        values: vec![0.5, 0.0, 1.5, 65504.0],
    };
    let a = pack(Layout::Tq2_0, s, &t, Some(&sc)).unwrap();
    let b = convert(Layout::Tq2_0, Layout::Tq1_0, s, &a).unwrap();
    let u = unpack(Layout::Tq1_0, s, &b).unwrap();
    assert_eq!(u.trits, t);
    assert_eq!(u.scales, Some(sc));
    assert_eq!(convert(Layout::Tq1_0, Layout::Tq2_0, s, &b).unwrap(), a);
}
