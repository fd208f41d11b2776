//! A `metrics` key's counter name: the metric's name, then its allowed labels.

use metrics::Key;

use crate::options::Options;

/// The counter name for `key` (`name`, or `name:k=v,k2=v2` with its allowed labels in
/// key order) and whether a label was dropped on the way.
pub(crate) fn counter_name(key: &Key, options: &Options) -> (String, bool) {
    let mut kept: Vec<(&str, &str)> = Vec::new();
    let mut dropped = false;
    for label in key.labels() {
        if options.allows(label.key(), label.value()) {
            kept.push((label.key(), label.value()));
        } else {
            dropped = true;
        }
    }
    kept.sort_unstable();
    kept.dedup_by_key(|(k, _)| *k);
    let mut name = key.name().to_owned();
    for (i, (k, v)) in kept.iter().enumerate() {
        name.push(if i == 0 { ':' } else { ',' });
        name.push_str(k);
        name.push('=');
        name.push_str(v);
    }
    (name, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::Label;

    fn key(labels: &[(&'static str, &'static str)]) -> Key {
        let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
        Key::from_parts("tool/fetch", labels)
    }

    #[test]
    fn only_allowed_keys_with_allowed_values_enter_the_name() {
        let options = Options::default()
            .allow_label("kind", &["disk", "net"])
            .allow_label("tier", &["hot"]);
        assert_eq!(
            counter_name(&key(&[]), &options),
            ("tool/fetch".into(), false)
        );
        assert_eq!(
            counter_name(&key(&[("tier", "hot"), ("kind", "disk")]), &options),
            ("tool/fetch:kind=disk,tier=hot".into(), false)
        );
        assert_eq!(
            counter_name(&key(&[("kind", "/home/alice"), ("tier", "hot")]), &options),
            ("tool/fetch:tier=hot".into(), true)
        );
        assert_eq!(
            counter_name(&key(&[("user", "alice")]), &options),
            ("tool/fetch".into(), true)
        );
    }
}
