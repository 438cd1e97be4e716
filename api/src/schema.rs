//! The CustomResourceDefinition as the cluster receives it: the derived schema, with every
//! integer given the `minimum` and `maximum` of its Rust type. The API server ignores
//! `format: uint32` and `uint64`, so without them it stores values the operator cannot read
//! (`candidates: 5000000000`).
use std::sync::OnceLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;
use serde_json::Value;

use crate::crd::NASSearch;

/// The `NASSearch` CRD, every integer field bounded by its type.
pub fn definition() -> CustomResourceDefinition {
    let mut crd = NASSearch::crd();
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        let mut value = serde_json::to_value(&*schema).unwrap_or(Value::Null);
        bound_integers(&mut value);
        if let Ok(bounded) = serde_json::from_value::<JSONSchemaProps>(value) {
            *schema = bounded;
        }
    }
    crd
}

/// The schema of `spec` (with its defaults), computed once.
pub fn spec_schema() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let crd = definition();
        crd.spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|s| s.get("properties")?.get("spec").cloned())
            .unwrap_or(Value::Null)
    })
}

/// The range of an integer of `format` (`uint64` is stored as an int64 by the API server).
/// 64-bit integers are bounded by ±(2^53 - 1), the integers a float64 holds exactly: bounds
/// are JSON numbers read as float64, the API server refuses a CRD whose integer default it
/// compares with a bound beyond int64 (`i64::MAX as f64` rounds up to 2^63), and larger
/// values would not survive a float64 JSON reader anyway.
pub fn integer_range(format: Option<&str>) -> (f64, f64) {
    const EXACT: f64 = 9_007_199_254_740_991.0; // 2^53 - 1
    match format {
        Some("int32") => (f64::from(i32::MIN), f64::from(i32::MAX)),
        Some("uint32") => (0.0, f64::from(u32::MAX)),
        Some("uint64") | Some("uint") => (0.0, EXACT),
        _ => (-EXACT, EXACT),
    }
}

/// Gives every `type: integer` a `minimum` and a `maximum` (tighter ones already there stay).
fn bound_integers(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.get("type").and_then(Value::as_str) == Some("integer") {
        let (lo, hi) = integer_range(obj.get("format").and_then(Value::as_str));
        let tighter = |v: Option<&Value>, pick: fn(f64, f64) -> f64, bound: f64| {
            v.and_then(Value::as_f64).map_or(bound, |x| pick(x, bound))
        };
        let min = tighter(obj.get("minimum"), f64::max, lo);
        let max = tighter(obj.get("maximum"), f64::min, hi);
        obj.insert("minimum".into(), min.into());
        obj.insert("maximum".into(), max.into());
    }
    for key in ["properties", "patternProperties"] {
        if let Some(props) = obj.get_mut(key).and_then(Value::as_object_mut) {
            props.values_mut().for_each(bound_integers);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = obj.get_mut(key) {
            match sub {
                Value::Array(items) => items.iter_mut().for_each(bound_integers),
                other => bound_integers(other),
            }
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(items)) = obj.get_mut(key) {
            items.iter_mut().for_each(bound_integers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_get_the_bounds_of_their_type_and_keep_tighter_ones() {
        let mut s = json!({"properties": {
            "a": {"type": "integer", "format": "uint32"},
            "b": {"type": "integer", "format": "uint32", "minimum": 1.0, "maximum": 50.0},
            "c": {"type": "array", "items": {"type": "integer", "format": "int32"}},
            "d": {"type": "string"},
        }});
        bound_integers(&mut s);
        let p = &s["properties"];
        assert_eq!(p["a"]["minimum"], json!(0.0));
        assert_eq!(p["a"]["maximum"], json!(4294967295.0));
        assert_eq!(p["b"]["minimum"], json!(1.0));
        assert_eq!(p["b"]["maximum"], json!(50.0));
        assert_eq!(p["c"]["items"]["maximum"], json!(2147483647.0));
        assert!(p["d"].get("maximum").is_none());
    }

    #[test]
    fn every_bound_is_an_int64() {
        for format in [
            None,
            Some("int32"),
            Some("uint32"),
            Some("int64"),
            Some("uint64"),
        ] {
            let (lo, hi) = integer_range(format);
            for b in [lo, hi] {
                assert_eq!(b.fract(), 0.0);
                // Exactly an int64: no rounding on the way there and back.
                assert_eq!((b as i64) as f64, b, "{format:?}: {b}");
                assert!(b < 9_223_372_036_854_775_808.0, "{format:?}: {b}");
            }
        }
    }
}
