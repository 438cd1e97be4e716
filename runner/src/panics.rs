//! What a caught panic said: a panic boundary (a stage, one metric, a benchmark, a third-party
//! decoder) turns it into an error message.

/// The message of a caught panic, cut like a libtorch error (its C++ backtrace dropped).
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into());
    without_backtrace(&msg)
}

/// The message of a libtorch error without its C++ backtrace: the frames name this machine's
/// library paths and addresses, which do not belong in a score record.
pub fn without_backtrace(msg: &str) -> String {
    let cut = msg.find("Exception raised from").unwrap_or(msg.len());
    let head = msg[..cut].trim_end();
    let head = head.strip_suffix("\\n").unwrap_or(head);
    head.lines().next().unwrap_or("").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::without_backtrace;

    #[test]
    fn libtorch_backtraces_are_cut() {
        // As a panic prints a tch error (Debug, newlines escaped) and as Display gives it.
        let debug = "called `Result::unwrap()` on an `Err` value: Torch(\"Expected a proper \
                     Tensor\\nException raised from checked_cast at /a/b.cpp:66\\nframe #0\")";
        assert_eq!(
            without_backtrace(debug),
            "called `Result::unwrap()` on an `Err` value: Torch(\"Expected a proper Tensor"
        );
        let display = "Internal torch error: shape mismatch\nException raised from x at /a.cpp\n";
        assert_eq!(
            without_backtrace(display),
            "Internal torch error: shape mismatch"
        );
        assert_eq!(without_backtrace("plain"), "plain");
    }
}
