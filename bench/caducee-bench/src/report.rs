//! The results table: printed to the terminal and written as docs/benchmarks.md.

use std::fmt::Write as _;

use crate::stats::Summary;

/// A target and how to judge it.
#[derive(Clone, Debug)]
pub struct Target {
    pub text: String,
    pub threshold: f64,
    pub higher_is_better: bool,
    /// Why it is missed and what would fix it, when it is.
    pub if_missed: String,
}

impl Target {
    pub fn at_least(text: impl Into<String>, threshold: f64, if_missed: impl Into<String>) -> Target {
        Target { text: text.into(), threshold, higher_is_better: true, if_missed: if_missed.into() }
    }

    pub fn at_most(text: impl Into<String>, threshold: f64, if_missed: impl Into<String>) -> Target {
        Target { text: text.into(), threshold, higher_is_better: false, if_missed: if_missed.into() }
    }

    pub fn met(&self, value: f64) -> bool {
        if self.higher_is_better { value >= self.threshold } else { value <= self.threshold }
    }
}

/// One measure.
#[derive(Clone, Debug)]
pub struct Row {
    pub group: String,
    pub name: String,
    pub unit: &'static str,
    pub ours: Summary,
    pub peer: Option<Summary>,
    /// The raw limit this measure is bounded by: (what, value in the row's unit).
    pub limit: Option<(String, f64)>,
    pub target: Option<Target>,
    pub note: String,
}

impl Row {
    pub fn new(group: &str, name: &str, unit: &'static str, ours: Summary) -> Row {
        Row {
            group: group.to_owned(),
            name: name.to_owned(),
            unit,
            ours,
            peer: None,
            limit: None,
            target: None,
            note: String::new(),
        }
    }
}

pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v >= 100.0 {
        let n = v.round() as i64;
        let s = n.abs().to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn ratio(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "–".into())
}

/// The table in Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| measure | unit | Caducée median | range (min–max) | peer median | × peer | limit | × limit | target | met |\n|---|---|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    let mut group = "";
    for r in rows {
        if r.group != group {
            group = &r.group;
            let _ = writeln!(out, "| **{}** | | | | | | | | | |", r.group);
        }
        let peer = r.peer.as_ref().map(|p| fmt_num(p.median)).unwrap_or_else(|| "–".into());
        let x_peer = ratio(r.peer.as_ref().and_then(|p| r.ours.ratio_to(p.median)));
        let (limit, x_limit) = match &r.limit {
            Some((what, v)) => (format!("{} ({what})", fmt_num(*v)), ratio(r.ours.ratio_to(*v))),
            None => ("–".into(), "–".into()),
        };
        let (target, met) = match &r.target {
            Some(t) => (
                t.text.clone(),
                if r.ours.runs == 0 {
                    "–"
                } else if t.met(r.ours.median) {
                    "yes"
                } else {
                    "**no**"
                },
            ),
            None => ("".into(), ""),
        };
        let range =
            if r.ours.runs > 1 { format!("{}–{}", fmt_num(r.ours.min), fmt_num(r.ours.max)) } else { "–".into() };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.unit,
            if r.ours.runs == 0 { "–".into() } else { fmt_num(r.ours.median) },
            range,
            peer,
            x_peer,
            limit,
            x_limit,
            target,
            met
        );
    }
    out
}

/// The missed targets, with why and what would fix it.
pub fn missed(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        if let Some(t) = &r.target
            && r.ours.runs > 0
            && !t.met(r.ours.median)
        {
            let _ = writeln!(
                out,
                "- **{} / {}**: {} {} against a target of {}. {}",
                r.group,
                r.name,
                fmt_num(r.ours.median),
                r.unit,
                t.text,
                t.if_missed
            );
        }
    }
    if out.is_empty() {
        out.push_str("Every target was met in this run.\n");
    }
    out
}

/// Notes attached to rows (how each was measured, failures seen).
pub fn notes(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        let _ = writeln!(out, "- {} / {}: {}", r.group, r.name, r.note);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(fmt_num(1234567.4), "1,234,567");
        assert_eq!(fmt_num(999.6), "1,000");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
    }

    #[test]
    fn targets_judge_both_ways() {
        assert!(Target::at_least("≥ 10", 10.0, "").met(10.0));
        assert!(!Target::at_most("< 5 ms", 5.0, "").met(5.1));
    }
}
