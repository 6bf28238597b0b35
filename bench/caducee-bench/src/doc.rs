//! The rows with their limits and targets, and docs/benchmarks.md.

use std::fmt::Write as _;
use std::time::Duration;

use crate::caducee::Logins;
use crate::report::{self, Row, Target, fmt_num};
use crate::run::{Bench, Protocol};
use crate::stats::Summary;

/// Ratio of the whole limit a response may use: 0.85, as the issue asks.
const SHARE: f64 = 0.85;
/// The same on PostgreSQL + Redis, whose round trips are the response's too.
const PRODUCTION_SHARE: f64 = 0.7;

impl Bench {
    pub fn build_rows(
        &mut self,
        hello: &Summary,
        ours: &Protocol,
        logins: &Logins,
        peer: &Protocol,
        redis: &Protocol,
        redis_logins: &Logins,
    ) {
        let rs = self.limit(|r| r.rs256);
        let es = self.limit(|r| r.es256);
        let ed = self.limit(|r| r.eddsa);
        let argon = self.limit(|r| r.argon2id);
        let mut rows = Vec::new();
        let g = "Raw limits (one core)";
        rows.push(Row::new(g, "RS256 signatures (aws-lc-rs, RSA-2048)", "/s", rs.clone()));
        rows.push(Row::new(g, "ES256 signatures (aws-lc-rs, P-256)", "/s", es.clone()));
        rows.push(Row::new(g, "EdDSA signatures (aws-lc-rs, Ed25519)", "/s", ed));
        rows.push(Row::new(g, "argon2id hashes (m=19 MiB, t=2, p=1)", "/s", argon.clone()));
        rows.push(Row::new(g, "axum hello-world GET", "/s", hello.clone()));

        let g = "Token endpoint";
        let mut r = Row::new(g, "client_credentials, ES256 access token", "/s", ours.cc_es.clone());
        r.peer = Some(peer.cc_es.clone());
        r.limit = Some(("ES256 signatures/s".into(), es.median));
        let t = 40_000f64.max(5.0 * peer.cc_es.median);
        r.target = Some(Target::at_least(format!("≥ {} (40,000 and 5× peer)", fmt_num(t)), t, "See «Why» below."));
        rows.push(r);
        let mut r = Row::new(g, "client_credentials, RS256 access token", "/s", ours.cc_rs.clone());
        r.peer = Some(peer.cc_rs.clone());
        r.limit = Some(("RS256 signatures/s, 1 per response".into(), rs.median));
        r.target = Some(Target::at_least(
            format!("≥ {} (0.85 × limit)", fmt_num(SHARE * rs.median)),
            SHARE * rs.median,
            "See «Why» below.",
        ));
        rows.push(r);
        let mut r = Row::new(g, "authorization_code, ES256 ID + access token", "/s", ours.code_es.clone());
        r.peer = Some(peer.code_es.clone());
        r.limit = Some(("ES256 signatures/s ÷ 2".into(), es.median / 2.0));
        let t = 40_000f64.max(5.0 * peer.code_es.median);
        r.target = Some(Target::at_least(format!("≥ {} (40,000 and 5× peer)", fmt_num(t)), t, "See «Why» below."));
        rows.push(r);
        let mut r = Row::new(g, "authorization_code, RS256 ID token + ES256 access token", "/s", ours.code_rs.clone());
        r.peer = Some(peer.code_rs.clone());
        let both = 1.0 / (1.0 / rs.median + 1.0 / es.median);
        r.limit = Some(("1 RS256 + 1 ES256 signature per response".into(), both));
        r.target = Some(Target::at_least(
            format!("≥ {} (0.85 × limit)", fmt_num(SHARE * both)),
            SHARE * both,
            "See «Why» below.",
        ));
        rows.push(r);
        for (name, p50, p99, pp50, pp99) in [
            ("client_credentials ES256", &ours.cc_es_p50, &ours.cc_es_p99, &peer.cc_es_p50, &peer.cc_es_p99),
            ("client_credentials RS256", &ours.cc_rs_p50, &ours.cc_rs_p99, &peer.cc_rs_p50, &peer.cc_rs_p99),
        ] {
            let mut r = Row::new(g, &format!("{name}: p50 at half of peak"), "ms", p50.clone());
            r.peer = Some(pp50.clone());
            rows.push(r);
            let mut r = Row::new(g, &format!("{name}: p99 at half of peak"), "ms", p99.clone());
            r.peer = Some(pp99.clone());
            r.target = Some(Target::at_most("< 5 ms", 5.0, "See «Why» below."));
            rows.push(r);
        }

        let g = "Relying parties with refresh tokens (the default client)";
        let refresh_target = 5.0 * peer.refresh.peak.median;
        let refresh_rows = |rows: &mut Vec<Row>, g: &str, ours: &Protocol, share: f64, shown: Option<&Protocol>| {
            let mut r = Row::new(
                g,
                "authorization_code + refresh token, RS256 ID token + ES256 access token",
                "/s",
                ours.code_rs_refresh.peak.clone(),
            );
            r.peer = shown.map(|p| p.code_rs_refresh.peak.clone());
            r.limit = Some(("1 RS256 + 1 ES256 signature per response".into(), both));
            r.target = Some(Target::at_least(
                format!("≥ {} ({share} × limit)", fmt_num(share * both)),
                share * both,
                "See «Why» below.",
            ));
            rows.push(r);
            let mut r = Row::new(
                g,
                "authorization_code + refresh token, RS256: p50 at half of peak",
                "ms",
                ours.code_rs_refresh.p50(),
            );
            r.peer = shown.map(|p| p.code_rs_refresh.p50());
            rows.push(r);
            let mut r = Row::new(
                g,
                "authorization_code + refresh token, RS256: p99 at half of peak",
                "ms",
                ours.code_rs_refresh.p99(),
            );
            r.peer = shown.map(|p| p.code_rs_refresh.p99());
            r.target = Some(Target::at_most("< 5 ms", 5.0, "See «Why» below."));
            rows.push(r);
            let mut r = Row::new(
                g,
                "authorization_code + refresh token, ES256 ID + access token",
                "/s",
                ours.code_es_refresh.peak.clone(),
            );
            r.peer = shown.map(|p| p.code_es_refresh.peak.clone());
            r.limit = Some(("ES256 signatures/s ÷ 2".into(), es.median / 2.0));
            rows.push(r);
            let mut r =
                Row::new(g, "refresh_token grant (rotation), ES256 ID + access token", "/s", ours.refresh.peak.clone());
            r.limit = Some(("ES256 signatures/s ÷ 2".into(), es.median / 2.0));
            r.peer = shown.map(|p| p.refresh.peak.clone());
            r.target = Some(Target::at_least(
                format!("≥ {} (5× peer)", fmt_num(refresh_target)),
                refresh_target,
                "See «Why» below.",
            ));
            rows.push(r);
            let mut r = Row::new(g, "refresh_token grant: p50 at half of peak", "ms", ours.refresh.p50());
            r.peer = shown.map(|p| p.refresh.p50());
            rows.push(r);
            let mut r = Row::new(g, "refresh_token grant: p99 at half of peak", "ms", ours.refresh.p99());
            r.peer = shown.map(|p| p.refresh.p99());
            r.target = Some(Target::at_most("< 5 ms", 5.0, "See «Why» below."));
            rows.push(r);
        };
        refresh_rows(&mut rows, g, ours, SHARE, Some(peer));
        refresh_rows(
            &mut rows,
            "Relying parties with refresh tokens, production shape (PostgreSQL + Redis)",
            redis,
            PRODUCTION_SHARE,
            None,
        );

        let g = "Discovery and keys";
        let mut r = Row::new(g, "discovery GET", "/s", ours.discovery.clone());
        r.peer = Some(peer.discovery.clone());
        r.limit = Some(("hello-world".into(), hello.median));
        r.target = Some(Target::at_least(
            format!("≥ {} (0.8 × hello-world)", fmt_num(0.8 * hello.median)),
            0.8 * hello.median,
            "See «Why» below.",
        ));
        rows.push(r);
        let mut r = Row::new(g, "JWKS GET", "/s", ours.jwks.clone());
        r.peer = Some(peer.jwks.clone());
        r.limit = Some(("hello-world".into(), hello.median));
        rows.push(r);

        let g = "Resource endpoints";
        for (name, ours, peer) in [
            ("userinfo (bearer)", &ours.userinfo, &peer.userinfo),
            ("introspection", &ours.introspection, &peer.introspection),
        ] {
            let mut r = Row::new(g, name, "/s", ours.clone());
            r.peer = Some(peer.clone());
            r.limit = Some(("hello-world".into(), hello.median));
            r.target = Some(Target::at_least("≥ 40,000", 40_000.0, "See «Why» below."));
            rows.push(r);
        }

        let g = "Logins";
        let mut r =
            Row::new(g, "full login: authorize, password + TOTP, code, token, userinfo", "/s", logins.full.clone());
        r.limit = Some(("argon2id hashes/s".into(), argon.median));
        r.target = Some(Target::at_least(
            format!("≥ {} (0.9 × argon2id)", fmt_num(0.9 * argon.median)),
            0.9 * argon.median,
            "See «Why» below.",
        ));
        rows.push(r);
        rows.push(Row::new(
            g,
            "SSO login to a second client: authorize, code, token, userinfo",
            "/s",
            logins.sso.clone(),
        ));

        let g = "Back-channel logout";
        let mut r = Row::new(g, "fan-out to 99 healthy relying parties, 1 hung", "ms", logins.fanout.clone());
        r.target = Some(Target::at_most("< 250 ms", 250.0, "See «Why» below."));
        rows.push(r);

        let g = "Production shape (same measures, PostgreSQL + Redis)";
        let es_limit = es.median;
        for (name, v, limit) in [
            ("client_credentials, ES256 access token", &redis.cc_es, Some(("ES256 signatures/s".to_owned(), es_limit))),
            (
                "authorization_code, ES256 ID + access token",
                &redis.code_es,
                Some(("ES256 signatures/s ÷ 2".to_owned(), es_limit / 2.0)),
            ),
            (
                "authorization_code, RS256 ID token + ES256 access token",
                &redis.code_rs,
                Some(("1 RS256 + 1 ES256 signature per response".to_owned(), both)),
            ),
            ("userinfo (bearer)", &redis.userinfo, None),
            ("introspection", &redis.introspection, None),
        ] {
            let mut r = Row::new(g, name, "/s", v.clone());
            r.limit = limit;
            rows.push(r);
        }
        let mut r = Row::new(
            g,
            "full login: authorize, password + TOTP, code, token, userinfo",
            "/s",
            redis_logins.full.clone(),
        );
        r.limit = Some(("argon2id hashes/s".into(), argon.median));
        rows.push(r);
        rows.push(Row::new(g, "SSO login to a second client", "/s", redis_logins.sso.clone()));
        let per = redis_logins.redis_bytes_per_session.unwrap_or(f64::NAN);
        let mut r = Row::new(g, "Redis memory per SSO session (record + subject index)", "bytes", Summary::of(&[per]));
        r.target = Some(Target::at_most("< 1,024", 1024.0, "See «Why» below."));
        rows.push(r);

        let g = "Memory";
        rows.push(Row::new(g, "RSS idle (embedded default)", "MiB", logins.rss_idle.clone()));
        let mut r =
            Row::new(g, &format!("RSS with {} live SSO sessions", logins.sessions), "MiB", logins.rss_sessions.clone());
        r.note = "after the login measures; see «Memory» below".into();
        rows.push(r);
        // 100,000 sessions cannot be opened through real logins in the time allowed (each costs
        // an argon2id hash: see «Memory»); estimated from the measured per-session size.
        if per.is_finite() {
            let est = logins.rss_idle.median + 100_000.0 * per / 1_048_576.0;
            let mut r = Row::new(g, "RSS with 100,000 SSO sessions in process (estimate)", "MiB", Summary::of(&[est]));
            r.note = "idle RSS + 100,000 × the per-session bytes Redis measured; not measured, see «Memory»".into();
            rows.push(r);
        }

        for (what, note) in ours.notes.iter().chain(logins.notes.iter()) {
            if !note.is_empty()
                && let Some(row) = rows.iter_mut().find(|r| r.name.starts_with(what.as_str()))
            {
                row.note = note.clone();
            }
        }
        self.rows = rows;
    }

    /// The two-nodes rows, before the memory rows, and the stores' costs counted beside them.
    pub fn add_scale(&mut self, scale: &crate::scale::Scale) {
        let at = self.rows.iter().position(|r| r.group == "Memory").unwrap_or(self.rows.len());
        self.rows.splice(at..at, crate::scale::rows(scale));
        self.costs = scale.costs.clone();
    }
}

pub(crate) fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned()))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1_048_576.0))
        .unwrap_or_default();
    format!("{cpu}, {} cores, {mem} RAM, Linux {}", crate::procs::cores(), command_line("uname", &["-r"]))
}

pub fn write(b: &Bench, measured: Duration) -> anyhow::Result<()> {
    let table = report::table(&b.rows);
    println!("\n{table}");
    let mut d = String::new();
    let _ = writeln!(d, "# Benchmarks\n");
    let _ = writeln!(
        d,
        "Written by `make bench` (bench/caducee-bench), {}. Do not edit by hand: run `make bench` again.\n",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(d, "## Setup\n");
    let _ = writeln!(d, "- Machine: {}.", machine());
    let _ = writeln!(
        d,
        "- Versions: Caducée {} (`{}`), {}, Node {} with oidc-provider {}, {}.",
        command_line(&b.s.caducee.to_string_lossy(), &["--version"]),
        command_line("git", &["rev-parse", "--short", "HEAD"]),
        command_line("rustc", &["--version"]),
        command_line("node", &["--version"]),
        peer_version(b),
        command_line("redis-server", &["--version"]).split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    );
    let _ = writeln!(d, "- Command: `{}`; measured part took {:.0} s.", b.s.command, measured.as_secs_f64());
    let _ = writeln!(
        d,
        "- Each measure: {} run(s) of {:.0} s after a {:.0} s warm-up, {} keep-alive connections; the median, the range (min–max) over the runs. Only correct answers count (status and a marker in the body).",
        b.s.runs,
        b.s.duration.as_secs_f64(),
        b.s.warmup.as_secs_f64(),
        b.s.connections
    );
    let _ = writeln!(
        d,
        "- {}",
        if crate::procs::pinning() {
            "Pinning: every server (Caducée, the peer, the hello-world, the raw-limit process, Redis) on core 0 (`taskset -c 0`), the load generator on core 1. Figures are per core."
        } else {
            "Pinning: not available on this machine (one core or no `taskset`); servers and load generator share the cores."
        }
    );
    d.push_str(SETUP_TEXT);
    let _ = writeln!(d, "\n## Results\n\n{table}");
    let _ = writeln!(d, "## Targets missed\n\n{}", report::missed(&b.rows));
    if !b.costs.is_empty() {
        let _ = writeln!(
            d,
            "## What a response costs the stores (production shape)\n\nCounted by the stores \
             themselves on one node over PostgreSQL + Redis: PostgreSQL's `pg_stat_statements` \
             (statements, each a round trip, `BEGIN` and `COMMIT` included; those that insert, \
             update or delete, whatever the rows), first over a second of requests one at a \
             time («alone»), then over a few hundred with 8 connections, where group commits \
             share their `BEGIN` and `COMMIT`; Redis's `INFO stats` and `INFO commandstats` over \
             the requests one at a time: commands (`total_commands_processed`), round trips \
             (`total_reads_processed`, one read event per request the node sends, however many \
             commands a pipeline or a script carries), and the calls of each command as \
             `INFO commandstats` counts them. Whole flows (a full login, a logout) are counted one \
             after the other, per flow. The embedded default writes the same rows on SQLite, \
             in the group transactions of its writer thread, where a write is a call into the \
             library, not a round trip.\n"
        );
        for (what, c) in &b.costs {
            let _ = writeln!(d, "- {what}: {}", c.text());
        }
        d.push('\n');
    }
    let notes = report::notes(&b.rows);
    if !notes.is_empty() {
        let _ = writeln!(d, "## Notes from this run\n\n{notes}");
    }
    d.push_str(WHY_TEXT);
    // The soak's section is written by `make soak`, not by this run: carried over as it was.
    if let Some(block) = crate::soak::existing_block(&b.s.out) {
        d.push('\n');
        d.push_str(&block);
    }
    std::fs::write(&b.s.out, d)?;
    eprintln!("[bench] wrote {}", b.s.out.display());
    Ok(())
}

fn peer_version(b: &Bench) -> String {
    std::fs::read_to_string(b.s.peer_dir.join("node_modules/oidc-provider/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

const SETUP_TEXT: &str = include_str!("../doc-setup.md");
const WHY_TEXT: &str = include_str!("../doc-why.md");
