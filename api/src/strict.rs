//! Unknown fields in a document read outside a cluster. An API server refuses them (kubectl's
//! default strict field validation: "unknown field"); serde would drop them silently, so a
//! misspelt override (`learningrate`) or one the API does not have would train with the
//! preset's value in `nas-runner local` while the same file fails `kubectl apply`.
use crate::validate::FieldError;
use serde_json::Value;

/// The fields of `input` (the document as parsed, untyped) that `typed` (the same document
/// after a round trip through its Rust type) lost: the ones its schema does not have. Nulls
/// and empty lists or maps are not reported (a type may skip serialising an empty or absent
/// value; neither carries a setting).
pub fn unknown_fields(input: &Value, typed: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    walk(input, typed, "", &mut out);
    out
}

fn walk(input: &Value, typed: &Value, path: &str, out: &mut Vec<FieldError>) {
    match (input, typed) {
        (Value::Object(given), Value::Object(kept)) => {
            for (key, value) in given {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match kept.get(key) {
                    Some(k) => walk(value, k, &at, out),
                    None if carries_nothing(value) => {}
                    None => out.push(FieldError::new(
                        at,
                        "unknown field (not in the NASSearch schema; a cluster refuses it too)",
                    )),
                }
            }
        }
        (Value::Array(given), Value::Array(kept)) if given.len() == kept.len() => {
            for (i, (g, k)) in given.iter().zip(kept).enumerate() {
                walk(g, k, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn carries_nothing(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_dropped_keys_with_their_paths_and_ignores_empty_ones() {
        let input = json!({"spec": {"a": 1, "typo": 2, "list": [{"x": 1, "y": 2}],
                            "gone_null": null, "gone_empty": [], "nested": {"z": 3}}});
        let typed = json!({"spec": {"a": 1, "list": [{"x": 1}], "nested": {}}});
        let mut paths: Vec<String> = unknown_fields(&input, &typed)
            .into_iter()
            .map(|e| e.path)
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            ["spec.list[0].y", "spec.nested.z", "spec.typo"],
            "{paths:?}"
        );
    }
}
