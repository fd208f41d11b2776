//! `chart:{a,b}` brace expansion of counter names in the upload config, charged to a
//! budget so that a hostile config fails fast.

use crate::config::MAX_EXPANDED_NAMES;

/// The most bytes those expanded names may take together.
pub(crate) const MAX_EXPANDED_BYTES: usize = 16 << 20;

/// What is left of the limits on expanded names.
pub(crate) struct Budget {
    pub(crate) names: usize,
    pub(crate) bytes: usize,
}

/// `chart:{a,b}` names the counters `chart:a` and `chart:b`; a name without braces
/// names itself. The cost is charged to `budget` before anything is allocated, so a
/// hostile config fails fast instead of expanding into gigabytes.
pub(crate) fn expand(name: &str, budget: &mut Budget) -> Result<Vec<String>, String> {
    let (prefix, buckets) = match name.split_once('{') {
        Some((prefix, rest)) => (prefix, rest.strip_suffix('}').unwrap_or(rest)),
        None => ("", name),
    };
    let count = if name.contains('{') {
        buckets.matches(',').count() + 1
    } else {
        1
    };
    let bytes = prefix
        .len()
        .saturating_mul(count)
        .saturating_add(buckets.len());
    if count > budget.names || bytes > budget.bytes {
        return Err(format!(
            "it names more than {MAX_EXPANDED_NAMES} counters (or {MAX_EXPANDED_BYTES} \
             bytes of names) once {{…}} is expanded"
        ));
    }
    budget.names -= count;
    budget.bytes -= bytes;
    Ok(if name.contains('{') {
        buckets.split(',').map(|b| format!("{prefix}{b}")).collect()
    } else {
        vec![name.to_owned()]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_buckets() {
        let mut budget = Budget {
            names: 3,
            bytes: 100,
        };
        assert_eq!(expand("a:{x,y}", &mut budget).unwrap(), ["a:x", "a:y"]);
        assert_eq!(expand("plain", &mut budget).unwrap(), ["plain"]);
        assert!(expand("one-too-many", &mut budget).is_err());
    }
}
