//! The Prometheus text exposition format, version 0.0.4.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::family::{Cell, Family, HistogramCell};
use super::BUCKET_LABELS;

pub(super) fn nanos_to_seconds(nanos: u64) -> f64 {
    Duration::from_nanos(nanos).as_secs_f64()
}

pub(super) fn u64_text(value: u64) -> String {
    value.to_string()
}

pub(super) fn i64_text(value: i64) -> String {
    value.to_string()
}

pub(super) fn render_scalar<C: Cell>(
    out: &mut String,
    family: &Family<C>,
    value: impl Fn(&C) -> String,
) {
    write_header(out, &family.name, &family.help, C::TYPE);
    for (values, cell) in family.snapshot() {
        out.push_str(&family.name);
        write_labels(out, &family.label_names, &values, None);
        out.push(' ');
        out.push_str(&value(&cell));
        out.push('\n');
    }
}

pub(super) fn render_histogram(out: &mut String, family: &Family<HistogramCell>) {
    let name = &family.name;
    write_header(out, name, &family.help, HistogramCell::TYPE);
    for (values, cell) in family.snapshot() {
        // `_count` is the `+Inf` bucket as read here, so the two always agree even while
        // other threads observe.
        let mut cumulative = 0;
        let bounds = BUCKET_LABELS.iter().copied().chain(["+Inf"]);
        for (bound, count) in bounds.zip(&cell.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = write!(out, "{name}_bucket");
            write_labels(out, &family.label_names, &values, Some(bound));
            let _ = writeln!(out, " {cumulative}");
        }
        let _ = write!(out, "{name}_sum");
        write_labels(out, &family.label_names, &values, None);
        let sum = nanos_to_seconds(cell.sum_nanos.load(Ordering::Relaxed));
        let _ = writeln!(out, " {sum}");
        let _ = write!(out, "{name}_count");
        write_labels(out, &family.label_names, &values, None);
        let _ = writeln!(out, " {cumulative}");
    }
}

pub(super) fn write_header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = write!(out, "# HELP {name} ");
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    let _ = writeln!(out, "\n# TYPE {name} {kind}");
}

/// `{a="x",b="y"}` (or nothing when there are no labels), with `le` appended for
/// histogram buckets.
pub(super) fn write_labels(
    out: &mut String,
    names: &[String],
    values: &[String],
    le: Option<&str>,
) {
    if names.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let pairs = names
        .iter()
        .map(String::as_str)
        .zip(values.iter().map(String::as_str))
        .chain(le.map(|bound| ("le", bound)));
    for (name, value) in pairs {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}
