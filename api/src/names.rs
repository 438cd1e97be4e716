//! The Kubernetes name and format rules that spec fields and the search's own name must meet,
//! because the operator copies them into Jobs and pods: each written once here, as the pattern
//! the CRD schema carries and as the check the operator runs.

/// A label value: at most [`LABEL_VALUE_MAX`] characters (the search's name and
/// `queueName` become label values of its Jobs and pods).
pub const LABEL_VALUE_PATTERN: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";
/// Longest label value.
pub const LABEL_VALUE_MAX: usize = 63;
/// A DNS subdomain (RFC 1123), as the names of ServiceAccounts and PriorityClasses are.
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// Longest DNS subdomain.
pub const DNS_SUBDOMAIN_MAX: usize = 253;

/// What a search's name must be: it becomes a label value on its Jobs and pods. The CRD's root
/// CEL rule and the operator's check both say this.
pub const SEARCH_NAME_MESSAGE: &str =
    "metadata.name must be at most 63 characters: it is a label value on the search's Jobs and pods";
/// What a field that must be a label value is told.
pub const LABEL_VALUE_MESSAGE: &str = "must be a label value (letters, digits, '-', '_' and '.', alphanumeric at both ends; at most 63 characters)";
/// What a field that must be a DNS subdomain is told.
pub const DNS_SUBDOMAIN_MESSAGE: &str =
    "must be a DNS subdomain (lower-case letters, digits, '-' and '.'; at most 253 characters)";

/// Whether `s` is a valid label value ([`LABEL_VALUE_PATTERN`]).
pub fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: u8| c.is_ascii_alphanumeric();
    s.len() <= LABEL_VALUE_MAX
        && (b.is_empty()
            || (edge(b[0])
                && edge(b[b.len() - 1])
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))))
}

/// Whether `s` is a DNS subdomain ([`DNS_SUBDOMAIN_PATTERN`]).
pub fn is_dns_subdomain(s: &str) -> bool {
    let label = |l: &str| {
        let b = l.as_bytes();
        let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        !b.is_empty() && ok(b[0]) && ok(b[b.len() - 1]) && b.iter().all(|&c| ok(c) || c == b'-')
    };
    !s.is_empty() && s.len() <= DNS_SUBDOMAIN_MAX && s.split('.').all(label)
}

/// Whether `s` is a qualified name, as label and node-selector keys are: an optional DNS
/// subdomain prefix and `/`, then up to 63 characters of `[-A-Za-z0-9_.]`, alphanumeric at both
/// ends.
pub fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

/// Whether `s` is a resource quantity (`4`, `3500m`, `16Gi`, `1e3`), as the API server parses
/// them.
pub fn is_quantity(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(split);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let number_ok = digits > 0 && number.matches('.').count() <= 1;
    const SUFFIXES: [&str; 16] = [
        "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    let exponent_ok = |e: &str| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    };
    number_ok
        && (SUFFIXES.contains(&suffix) || suffix.strip_prefix(['e', 'E']).is_some_and(exponent_ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_qualified_names() {
        for ok in ["4", "3500m", "16Gi", "0.5", "1e3", "+2", "100M"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "four", "16GB", "1..2", "m", "1e", "2 Gi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
        for ok in ["gpu", "nvidia.com/gpu.product", "kubernetes.io/arch"] {
            assert!(is_qualified_name(ok), "{ok}");
        }
        for bad in ["", "/gpu", "Bad_Prefix/x", "a b", "x/"] {
            assert!(!is_qualified_name(bad), "{bad}");
        }
    }

    #[test]
    fn label_values() {
        for ok in ["", "a", "team-queue", "A.b_c-1", &"x".repeat(63)] {
            assert!(is_label_value(ok), "{ok}");
        }
        for bad in ["-a", "a-", "a b", "queue!", &"x".repeat(64)] {
            assert!(!is_label_value(bad), "{bad}");
        }
    }

    #[test]
    fn dns_subdomains() {
        for ok in ["default", "nas-runner", "a.b-c.d"] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        for bad in ["", "Default", "a_b", "-a", "a..b", &"a".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }
}
