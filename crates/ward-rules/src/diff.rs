//! Differences between two versions of a rule, as a unified diff (what a
//! reviewer reads, and what `git diff` users expect).

/// A unified diff from `old` to `new` with three lines of context; empty when
/// the texts are equal.
pub fn unified_diff(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_are_marked() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n", "v1", "v2");
        assert!(d.starts_with("--- v1\n+++ v2\n"), "{d}");
        assert!(d.contains("-b\n+B\n"), "{d}");
        assert_eq!(unified_diff("x\n", "x\n", "v1", "v2"), "");
    }
}
