//! Round trips and malformed-input tests of the GGUF reader and writer.

use proptest::prelude::*;

use super::writer::{i32_array, str_array};
use super::*;

/// A file with every metadata type, nested arrays, and tensors of several types.
pub(crate) fn sample_file(alignment: Option<u32>) -> (GgufBuilder, Vec<(String, Vec<u8>)>) {
    let mut b = GgufBuilder::new();
    b.meta("general.architecture", Value::Str("bitnet".into()))
        .meta("t.u8", Value::U8(200))
        .meta("t.i8", Value::I8(-5))
        .meta("t.u16", Value::U16(65000))
        .meta("t.i16", Value::I16(-30000))
        .meta("t.u32", Value::U32(4_000_000_000))
        .meta("t.i32", Value::I32(-2_000_000_000))
        .meta("t.f32", Value::F32(1.5))
        .meta("t.bool", Value::Bool(true))
        .meta("t.str", Value::Str("héllo ✓".into()))
        .meta("t.u64", Value::U64(u64::MAX))
        .meta("t.i64", Value::I64(i64::MIN))
        .meta("t.f64", Value::F64(-2.25e300))
        .meta("t.strs", str_array(&["a", "", "Ġthe"]))
        .meta("t.i32s", i32_array(&[1, -2, 3]))
        .meta(
            "t.nested",
            Value::Array(
                ValueType::Array,
                vec![
                    Value::Array(ValueType::U8, vec![Value::U8(1), Value::U8(2)]),
                    Value::Array(ValueType::U8, vec![]),
                ],
            ),
        );
    if let Some(a) = alignment {
        b.alignment(a);
    }
    let f32s: Vec<u8> = (0..6)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let tq2: Vec<u8> = tern_spec::pack::pack(
        tern_spec::pack::Layout::Tq2_0,
        tern_spec::pack::Shape::new(2, 256),
        &(0..512).map(|i| (i % 3) as i8 - 1).collect::<Vec<_>>(),
        None,
    )
    .unwrap();
    b.tensor("a.f32", &[3, 2], GgmlType::F32)
        .tensor("b.tq2", &[256, 2], GgmlType::Tq2_0)
        .tensor("c.f16", &[5], GgmlType::F16);
    let data = vec![
        ("a.f32".to_string(), f32s),
        ("b.tq2".to_string(), tq2),
        ("c.f16".to_string(), [0x00, 0x3c].repeat(5)),
    ];
    (b, data)
}

pub(crate) fn write(b: &GgufBuilder, data: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = b.begin(Vec::new()).unwrap();
    for (n, d) in data {
        w.write_tensor(n, d).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn round_trip_is_identical() {
    for align in [None, Some(64), Some(1)] {
        let (b, data) = sample_file(align);
        let bytes = write(&b, &data);
        let f = GgufFile::from_vec(bytes.clone()).unwrap();
        assert_eq!(f.version, 3);
        assert_eq!(f.alignment, align.unwrap_or(32) as u64);
        assert_eq!(f.metadata, b.metadata());
        assert_eq!(f.tensors.len(), 3);
        for (t, (n, d)) in f.tensors.iter().zip(&data) {
            assert_eq!(&t.name, n);
            assert_eq!(f.data(t), &d[..]);
            assert_eq!(t.offset % f.alignment, 0);
        }
        assert_eq!(f.tensor("b.tq2").unwrap().torch_shape(), vec![2, 256]);
        // Writing what was read gives the same bytes.
        let mut b2 = GgufBuilder::new();
        for (k, v) in &f.metadata {
            b2.meta(k, v.clone());
        }
        for t in &f.tensors {
            b2.tensor(&t.name, &t.ne, t.ty);
        }
        let data2: Vec<(String, Vec<u8>)> = f
            .tensors
            .iter()
            .map(|t| (t.name.clone(), f.data(t).to_vec()))
            .collect();
        assert_eq!(write(&b2, &data2), bytes);
    }
}

#[test]
fn writer_refuses_misuse() {
    let (b, data) = sample_file(None);
    let mut w = b.begin(Vec::new()).unwrap();
    let e = w.write_tensor("b.tq2", &data[1].1).unwrap_err().to_string();
    assert!(e.contains("expected \"a.f32\""), "{e}");
    w.write_tensor("a.f32", &data[0].1).unwrap();
    let e = w.finish().unwrap_err().to_string();
    assert!(e.contains("\"b.tq2\""), "{e}");
    let mut b = GgufBuilder::new();
    b.tensor("x", &[100], GgmlType::Tq2_0);
    let e = b.begin(Vec::new()).err().unwrap().to_string();
    assert!(
        e.contains("not a multiple of TQ2_0's block size 256"),
        "{e}"
    );
}

fn err_of(bytes: Vec<u8>) -> String {
    GgufFile::from_vec(bytes).unwrap_err().to_string()
}

#[test]
fn every_truncation_is_a_clear_error() {
    let (b, data) = sample_file(None);
    let bytes = write(&b, &data);
    let f = GgufFile::from_vec(bytes.clone()).unwrap();
    let last = &f.tensors[2];
    let end = (f.data_offset + last.offset + last.nbytes) as usize;
    // Every cut before the end of the last tensor's data is refused with a clear message.
    for cut in 0..end {
        let m = err_of(bytes[..cut].to_vec());
        assert!(
            m.contains("truncated") || m.contains("cannot fit") || m.contains("past the end"),
            "cut {cut}: {m}"
        );
    }
    let m = err_of(bytes[..end - 1].to_vec());
    assert!(m.contains("\"c.f16\"") && m.contains("past the end"), "{m}");
}

/// Byte offset just after the header's fixed 24 bytes.
fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut h = MAGIC.to_le_bytes().to_vec();
    h.extend(3u32.to_le_bytes());
    h.extend(n_tensors.to_le_bytes());
    h.extend(n_kv.to_le_bytes());
    h
}

fn kv_prefix(h: &mut Vec<u8>, key: &str, ty: u32) {
    h.extend((key.len() as u64).to_le_bytes());
    h.extend(key.as_bytes());
    h.extend(ty.to_le_bytes());
}

#[test]
fn absurd_metadata_is_refused_without_allocating() {
    assert!(err_of(b"GGML\x03\0\0\0".to_vec()).contains("magic"));
    assert!(err_of({
        let mut h = header(0, 0);
        h[4] = 9;
        h
    })
    .contains("version 9"));
    // Huge counts.
    let m = err_of(header(0, u64::MAX));
    assert!(
        m.contains("metadata count") && m.contains("cannot fit"),
        "{m}"
    );
    let m = err_of(header(u64::MAX / 2, 0));
    assert!(m.contains("tensor count"), "{m}");
    // A string length past EOF.
    let mut h = header(0, 1);
    kv_prefix(&mut h, "k", 8);
    h.extend((1u64 << 62).to_le_bytes());
    let m = err_of(h);
    assert!(
        m.contains("\"k\"") && m.contains("count 4611686018427387904"),
        "{m}"
    );
    // An array count past EOF.
    let mut h = header(0, 1);
    kv_prefix(&mut h, "arr", 9);
    h.extend(8u32.to_le_bytes());
    h.extend(u64::MAX.to_le_bytes());
    assert!(err_of(h).contains("cannot fit"));
    // Unknown value type, bad bool, deep nesting.
    let mut h = header(0, 1);
    kv_prefix(&mut h, "x", 77);
    assert!(err_of(h).contains("unknown value type 77"));
    let mut h = header(0, 1);
    kv_prefix(&mut h, "b", 7);
    h.push(2);
    assert!(err_of(h).contains("bool byte 2"));
    let mut h = header(0, 1);
    kv_prefix(&mut h, "deep", 9);
    for _ in 0..10 {
        h.extend(9u32.to_le_bytes());
        h.extend(1u64.to_le_bytes());
    }
    h.extend([0u8; 64]);
    assert!(err_of(h).contains("nested deeper"));
    // Bad alignment value.
    let mut h = header(0, 1);
    kv_prefix(&mut h, "general.alignment", 4);
    h.extend(3u32.to_le_bytes());
    assert!(err_of(h).contains("general.alignment"));
}

#[test]
fn bad_tensor_infos_are_refused() {
    let tensor = |ty: u32, dims: &[u64], offset: u64| {
        let mut h = header(1, 0);
        h.extend(1u64.to_le_bytes());
        h.push(b'w');
        h.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            h.extend(d.to_le_bytes());
        }
        h.extend(ty.to_le_bytes());
        h.extend(offset.to_le_bytes());
        h.resize(h.len().div_ceil(32) * 32 + 64, 0);
        err_of(h)
    };
    let m = tensor(99, &[4], 0);
    assert!(
        m.contains("unknown ggml type id 99") && m.contains("TQ2_0=35"),
        "{m}"
    );
    assert!(tensor(35, &[100], 0).contains("not a multiple"));
    assert!(tensor(0, &[1, 1, 1, 1, 1], 0).contains("n_dims = 5"));
    assert!(tensor(0, &[u64::MAX, 4], 0).contains("overflows"));
    assert!(tensor(0, &[4], 3).contains("not a multiple of the alignment"));
    assert!(tensor(0, &[1000], 0).contains("past the end"));
    assert!(tensor(0, &[4], u64::MAX - 31).contains("past the end"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Any mutation of a valid file parses or fails with an error, and never panics; a
    /// successful parse keeps every tensor inside the file. Failures print the seed
    /// (proptest's persisted case).
    #[test]
    fn mutated_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let (b, data) = sample_file(None);
        let mut bytes = write(&b, &data);
        for (i, v) in &edits {
            let i = i.index(bytes.len());
            bytes[i] = *v;
        }
        if do_cut {
            let c = cut.index(bytes.len());
            bytes.truncate(c);
        }
        let len = bytes.len() as u64;
        if let Ok(f) = GgufFile::from_vec(bytes) {
            for t in &f.tensors {
                prop_assert!(f.data_offset + t.offset + t.nbytes <= len);
                prop_assert_eq!(f.data(t).len() as u64, t.nbytes);
            }
        }
    }
}
