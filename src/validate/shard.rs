//! Validation split across workers by table: each of `count` workers walks
//! the same archive with [`validate_shard`](super::validate_shard), plans it
//! in full (so every worker knows every table and number), checks only the
//! tables it is given (a run of them, `assign`), and returns a [`ShardReport`]; [`merge_shards`] then
//! makes the one [`Report`] a single walk would have made.
//!
//! WebAssembly has one thread per instance, so this is how the browser and
//! Node use more than one core. The split is by table because a table's
//! duplicate-id check needs all its ids in one place.
//!
//! Every finding is tagged with the phase of the walk it came from (the
//! plan, then each table, then each stored file, then each component's
//! missing files, then the end), and each phase but the plan and the end
//! belongs to one worker; the end (a stop) is kept once. So the
//! findings in walk order are the workers' findings sorted by phase, stably;
//! and since each worker lists its first `max_errors` in that same order, the
//! first `max_errors` of the merge are among them.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::report::{Finding, Report};

/// One of `count` workers that validate an input together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This worker, `0..count`.
    pub index: u32,
    /// Workers in all.
    pub count: u32,
}

/// The phase of the walk findings come from before the first table (and
/// all of a single-table file's findings, which worker 0 makes).
pub(crate) const PLAN_PHASE: u32 = 0;

/// The phase of findings made after everything else (a stop).
pub(crate) const END_PHASE: u32 = u32::MAX;

/// What one worker found; [`merge_shards`] makes the report of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardReport {
    /// Which worker this is.
    pub shard: Shard,
    /// The report of this worker's walk: every table of the plan (none for
    /// a single-table file but in worker 0), with documents counted only in
    /// its own; the plan's findings and those of its own tables and files,
    /// each list capped at `max_errors`.
    pub report: Report,
    /// The phase of each of `report.errors`.
    pub error_phases: Vec<u32>,
    /// The phase of each of `report.warnings`.
    pub warning_phases: Vec<u32>,
    /// Errors counted in the plan's phase (every worker counts them).
    pub plan_errors: u64,
    /// Warnings counted in the plan's phase (every worker counts them).
    pub plan_warnings: u64,
    /// The cap on listed errors and on listed warnings.
    pub max_errors: usize,
    /// The walk was stopped before the end.
    pub cancelled: bool,
}

/// Why shard reports do not make one report.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShardError {
    /// Not exactly one report from each of the workers, or reports of
    /// different walks.
    #[error("shard reports do not fit together: {0}")]
    Mismatched(String),
}

/// Which worker checks each table: the tables in plan order (the order of
/// their first entries in the archive, then those only `_tables` lists) cut
/// into `count` runs of about equal weight, each table going to the run its
/// middle falls in. A worker
/// then reads one stretch of the archive front to back, as one walk reads
/// all of it: in a browser every read is a call out to the file, and reads
/// that hop between entries would each fetch bytes of the next entry for
/// nothing. Every worker computes this from the same plan, so they agree.
pub(crate) fn assign(weights: &[u64], count: u32) -> Vec<u32> {
    let count = u128::from(count.max(1));
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let mut before = 0u128;
    weights
        .iter()
        .map(|&weight| {
            let weight = u128::from(weight);
            // Twice the middle against twice the total: no rounding.
            let middle = 2 * before + weight;
            before += weight;
            if total == 0 {
                return 0;
            }
            ((middle * count) / (2 * total)).min(count - 1) as u32
        })
        .collect()
}

/// The one report of an input that `shards.len()` workers validated
/// together, exactly as one walk would have made it. Fails when the reports
/// are not one from each worker of one plan (as when the input changed
/// while they read it). Workers that were stopped early leave gaps that a
/// stopped single walk would not: such reports are merged, but say less.
pub fn merge_shards(mut shards: Vec<ShardReport>) -> Result<Report, ShardError> {
    let count = shards.len();
    shards.sort_by_key(|s| s.shard.index);
    for (i, s) in shards.iter().enumerate() {
        if s.shard.index as usize != i || s.shard.count as usize != count {
            return Err(ShardError::Mismatched(format!(
                "expected worker {i} of {count}, got worker {} of {}",
                s.shard.index, s.shard.count
            )));
        }
        if s.error_phases.len() != s.report.errors.len()
            || s.warning_phases.len() != s.report.warnings.len()
        {
            return Err(ShardError::Mismatched(format!(
                "worker {i}'s findings and their phases differ in number"
            )));
        }
    }
    let Some(first) = shards.first() else {
        return Err(ShardError::Mismatched("no reports".to_owned()));
    };
    if !shards.iter().all(|s| same_plan(first, s)) {
        return Err(ShardError::Mismatched(
            "the workers did not plan the same import (did the input change while they read it?)"
                .to_owned(),
        ));
    }
    let max_errors = first.max_errors;
    let mut report = first.report.clone();
    report.error_count = first.plan_errors;
    report.warning_count = first.plan_warnings;
    for table in &mut report.tables {
        table.documents = 0;
        table.bytes = 0;
    }
    report.storage = Default::default();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut cancelled = false;
    for (i, s) in shards.iter().enumerate() {
        report.error_count += s.report.error_count.saturating_sub(s.plan_errors);
        report.warning_count += s.report.warning_count.saturating_sub(s.plan_warnings);
        for (total, own) in report.tables.iter_mut().zip(&s.report.tables) {
            total.documents += own.documents;
            total.bytes += own.bytes;
        }
        report.storage.files += s.report.storage.files;
        report.storage.bytes += s.report.storage.bytes;
        cancelled |= s.cancelled;
        let own = |phase: &u32| i == 0 || *phase != PLAN_PHASE;
        errors.extend(
            s.error_phases
                .iter()
                .zip(&s.report.errors)
                .filter(|(phase, _)| own(phase)),
        );
        warnings.extend(
            s.warning_phases
                .iter()
                .zip(&s.report.warnings)
                .filter(|(phase, _)| own(phase)),
        );
    }
    report.errors = in_walk_order(errors, max_errors);
    report.warnings = in_walk_order(warnings, max_errors);
    if let Some(too_many) = super::too_many_errors(report.error_count, report.errors.len()) {
        report.warnings.push(too_many);
        report.warning_count += 1;
    }
    report.documents = report.tables.iter().map(|t| t.documents).sum();
    report.bytes = report.tables.iter().map(|t| t.bytes).sum::<u64>() + report.storage.bytes;
    report.valid = report.error_count == 0 && !cancelled;
    Ok(report)
}

/// Whether worker `s` planned what worker 0 (`first`) planned: the same
/// tables with the same numbers and entries, and the same findings before
/// the first table. Workers other than 0 do not read a single-table file, so
/// they plan no table.
fn same_plan(first: &ShardReport, s: &ShardReport) -> bool {
    if s.report.format != first.report.format || s.max_errors != first.max_errors {
        return false;
    }
    if first.report.format != "zip" {
        return s.shard.index == 0 || s.report.tables.is_empty();
    }
    s.plan_errors == first.plan_errors
        && plan_findings(s) == plan_findings(first)
        && s.report.tables.len() == first.report.tables.len()
        && s.report
            .tables
            .iter()
            .zip(&first.report.tables)
            .all(|(a, b)| {
                (&a.component, &a.name, a.number, &a.entries)
                    == (&b.component, &b.name, b.number, &b.entries)
            })
}

/// A worker's findings from before the first table: errors, warnings.
fn plan_findings(r: &ShardReport) -> (&[Finding], &[Finding]) {
    let errors = r
        .error_phases
        .iter()
        .take_while(|&&p| p == PLAN_PHASE)
        .count();
    let warnings = r
        .warning_phases
        .iter()
        .take_while(|&&p| p == PLAN_PHASE)
        .count();
    (&r.report.errors[..errors], &r.report.warnings[..warnings])
}

/// Findings sorted by phase (stably: workers in order, each in its order),
/// those of the end phase once each, the first `max` of them. (The end
/// phase's only error is a failed sink's, and workers have no sink, so no
/// error is counted twice.)
fn in_walk_order(mut findings: Vec<(&u32, &Finding)>, max: usize) -> Vec<Finding> {
    findings.sort_by_key(|(phase, _)| **phase);
    let mut merged: Vec<Finding> = Vec::new();
    let mut end = 0;
    for (phase, finding) in findings {
        if *phase == END_PHASE {
            if merged[merged.len() - end..].contains(finding) {
                continue;
            }
            end += 1;
        }
        if merged.len() == max {
            break;
        }
        merged.push(finding.clone());
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_cut_into_runs_of_about_equal_weight() {
        assert_eq!(assign(&[5, 5, 5, 5], 2), vec![0, 0, 1, 1]);
        assert_eq!(assign(&[1; 15], 2), [vec![0; 7], vec![1; 8]].concat());
        // A heavy table is a run of its own; the rest share the other.
        assert_eq!(assign(&[80, 5, 5, 5, 5], 2), vec![0, 1, 1, 1, 1]);
        assert_eq!(assign(&[5, 5, 80, 5, 5], 3), vec![0, 0, 1, 2, 2]);
        assert_eq!(assign(&[1, 1, 1], 1), vec![0, 0, 0]);
        assert_eq!(assign(&[], 3), Vec::<u32>::new());
        // More workers than tables: some have none.
        assert_eq!(assign(&[3, 3], 4), vec![1, 3]);
        assert_eq!(assign(&[0, 0], 2), vec![0, 0]);
    }
}
