//! The compressed index-set text of Job status (`completedIndexes`, `failedIndexes`):
//! ascending, comma-separated numbers and inclusive ranges, e.g. `1,3-5,7`.
use std::collections::BTreeSet;

/// Formats a set of indexes as Kubernetes writes it.
pub fn format(set: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// Parses the compressed form; malformed parts are skipped (the controller only reads its own).
pub fn parse(s: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    out.insert(i);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ranges() {
        let set: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into_iter().collect();
        assert_eq!(format(&set), "0-2,4,6-7");
        assert_eq!(parse("0-2,4,6-7"), set);
        assert_eq!(format(&BTreeSet::new()), "");
        assert!(parse("").is_empty());
    }
}
