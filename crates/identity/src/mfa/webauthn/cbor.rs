//! Bounded CBOR reading: one item at a time into a [`ciborium::Value`], nesting limited, the
//! caller told how many bytes the item took (so the COSE key inside authenticator data can be
//! delimited) or refused when bytes trail it.

use ciborium::Value;

/// The deepest nesting accepted: attestation objects, COSE keys and extension maps are
/// three or four levels deep.
pub(super) const MAX_DEPTH: usize = 16;

/// Reads one CBOR item from the front of `input` and advances it past the item.
pub(super) fn read_item(input: &mut &[u8]) -> Option<Value> {
    ciborium::de::from_reader_with_recursion_limit::<Value, _>(&mut *input, MAX_DEPTH).ok()
}

/// Reads `bytes` as exactly one CBOR item: trailing bytes are refused.
pub(super) fn read_whole(bytes: &[u8]) -> Option<Value> {
    let mut rest = bytes;
    let value = read_item(&mut rest)?;
    rest.is_empty().then_some(value)
}

/// The entries of a CBOR map with text keys, refusing duplicate and non-text keys.
pub(super) fn text_map(value: Value) -> Option<Vec<(String, Value)>> {
    let Value::Map(entries) = value else {
        return None;
    };
    let mut out: Vec<(String, Value)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Value::Text(key) = key else {
            return None;
        };
        if out.iter().any(|(seen, _)| *seen == key) {
            return None;
        }
        out.push((key, value));
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_item_and_reports_what_it_took() {
        // {1: 2} followed by 0xff.
        let bytes = [0xa1, 0x01, 0x02, 0xff];
        let mut rest = &bytes[..];
        let value = read_item(&mut rest);
        assert!(matches!(value, Some(Value::Map(_))));
        assert_eq!(rest, &[0xff]);
        assert!(read_whole(&bytes).is_none(), "a trailing byte is refused");
        assert!(read_whole(&bytes[..3]).is_some());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = vec![0x81; MAX_DEPTH + 4];
        bytes.push(0x00);
        assert!(read_whole(&bytes).is_none());
        let mut shallow = vec![0x81; 4];
        shallow.push(0x00);
        assert!(read_whole(&shallow).is_some());
    }

    #[test]
    fn truncated_and_oversized_lengths_are_refused() {
        // A byte string claiming 2^32 bytes, with three present.
        assert!(read_whole(&[0x5a, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]).is_none());
        assert!(read_whole(&[]).is_none());
        assert!(read_whole(&[0xa1, 0x01]).is_none());
    }

    #[test]
    fn text_maps_refuse_duplicates_and_other_keys() {
        let map = |entries: Vec<(Value, Value)>| Value::Map(entries);
        let one = Value::Integer(1.into());
        assert!(text_map(map(vec![("a".into(), one.clone())])).is_some());
        assert!(
            text_map(map(vec![
                ("a".into(), one.clone()),
                ("a".into(), one.clone())
            ]))
            .is_none()
        );
        assert!(text_map(map(vec![(one.clone(), one.clone())])).is_none());
        assert!(text_map(one).is_none());
    }
}
