//! What a bulk embedding helper is asked to do. `CALL refresh_embeddings()` and
//! `CALL process_queue()` start helpers (dynamic background workers, `recommender.embedding_workers`)
//! that run the same batches as the calling session; the job travels in the worker's `bgw_extra`,
//! 128 bytes of text, so it is encoded here as one short line and checked when read back.
use crate::limits::BadArg;

/// `bgw_extra`'s size, its NUL included.
pub const EXTRA_BYTES: usize = 128;

/// The batches a helper runs until none is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `recommender._refresh_batch`: stale products (with `force` also every product embedded
    /// before `since_us`, the call's start as a Postgres timestamptz: microseconds since
    /// 2000-01-01 UTC).
    Refresh {
        batch_size: i32,
        force: bool,
        since_us: i64,
    },
    /// `recommender._process_queue_batch`; `None` is `recommender.queue_batch_size`.
    Queue { batch_size: Option<i32> },
}

/// A helper's whole job: where to connect, as whom, the models it must load, and the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    /// The caller's database (oid).
    pub database: u32,
    /// The caller's role (oid): the helper has exactly its rights.
    pub role: u32,
    /// `fingerprint` of the caller's model settings; a helper whose own differ does nothing.
    pub models: u64,
    pub work: Work,
}

impl Job {
    /// One line of ASCII, shorter than `EXTRA_BYTES`.
    pub fn encode(&self) -> String {
        let work = match self.work {
            Work::Refresh {
                batch_size,
                force,
                since_us,
            } => format!("refresh {batch_size} {} {since_us}", u8::from(force)),
            Work::Queue { batch_size } => format!("queue {}", batch_size.unwrap_or(0)),
        };
        format!(
            "{} {} {:016x} {work}",
            self.database, self.role, self.models
        )
    }

    /// The job `encode` wrote, or None for anything else.
    pub fn decode(line: &str) -> Option<Job> {
        let f: Vec<&str> = line.split(' ').collect();
        let work = match f.get(3..)? {
            ["refresh", b, force, since] => Work::Refresh {
                batch_size: positive(b)?,
                force: match *force {
                    "0" => false,
                    "1" => true,
                    _ => return None,
                },
                since_us: since.parse().ok()?,
            },
            ["queue", b] => Work::Queue {
                batch_size: match b.parse::<i32>().ok()? {
                    0 => None,
                    n if n > 0 => Some(n),
                    _ => return None,
                },
            },
            _ => return None,
        };
        Some(Job {
            database: f[0].parse().ok()?,
            role: f[1].parse().ok()?,
            models: u64::from_str_radix(f[2], 16).ok()?,
            work,
        })
    }
}

impl Work {
    /// The work `kind` names ('refresh' or 'queue'), as the procedures ask for it: a batch size of
    /// at least 1, and for 'refresh' the call's start.
    pub fn new(
        kind: &str,
        batch_size: Option<i32>,
        force: bool,
        since_us: Option<i64>,
    ) -> Result<Work, BadArg> {
        let batch_size = batch_size.filter(|b| *b > 0).ok_or_else(|| BadArg {
            message: format!("batch_size must be at least 1, got {batch_size:?}"),
            hint: "The procedures pass the batch size they use themselves.".into(),
        })?;
        match (kind, since_us) {
            ("refresh", Some(since_us)) => Ok(Work::Refresh {
                batch_size,
                force,
                since_us,
            }),
            ("refresh", None) => Err(BadArg {
                message: "a refresh job needs the call's start (since)".into(),
                hint: "refresh_embeddings() passes now().".into(),
            }),
            ("queue", _) => Ok(Work::Queue {
                batch_size: Some(batch_size),
            }),
            _ => Err(BadArg {
                message: format!("unknown helper job \"{kind}\""),
                hint: "The job is 'refresh' or 'queue'.".into(),
            }),
        }
    }
}

fn positive(s: &str) -> Option<i32> {
    s.parse::<i32>().ok().filter(|n| *n > 0)
}

/// FNV-1a over the settings that choose the models (each followed by a 0 byte): the same in every
/// process, unlike std's seeded hasher.
pub fn fingerprint(settings: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in settings {
        for b in s.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn work() -> impl Strategy<Value = Work> {
        prop_oneof![
            (1..=i32::MAX, any::<bool>(), any::<i64>()).prop_map(
                |(batch_size, force, since_us)| {
                    Work::Refresh {
                        batch_size,
                        force,
                        since_us,
                    }
                }
            ),
            proptest::option::of(1..=i32::MAX).prop_map(|batch_size| Work::Queue { batch_size }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip_fits_bgw_extra(database in any::<u32>(), role in any::<u32>(), models in any::<u64>(), work in work()) {
            let job = Job { database, role, models, work };
            let line = job.encode();
            prop_assert!(line.len() < EXTRA_BYTES, "{} bytes: {line}", line.len());
            prop_assert_eq!(Job::decode(&line), Some(job));
        }

        #[test]
        fn never_panics_on_garbage(line in ".{0,140}") {
            let _ = Job::decode(&line);
        }
    }

    #[test]
    fn refuses_malformed_lines() {
        for bad in [
            "",
            "1 2 ff",
            "1 2 ff refresh 0 0 5",
            "1 2 ff refresh 10 2 5",
            "1 2 ff refresh 10 1",
            "1 2 ff queue -1",
            "1 2 ff queue 1 2",
            "x 2 ff queue 1",
            "1 2 zz queue 1",
            "1 2 ff other 1",
        ] {
            assert_eq!(Job::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn work_from_the_procedures_arguments() {
        assert_eq!(
            Work::new("refresh", Some(256), true, Some(7)),
            Ok(Work::Refresh {
                batch_size: 256,
                force: true,
                since_us: 7
            })
        );
        assert_eq!(
            Work::new("queue", Some(64), false, None),
            Ok(Work::Queue {
                batch_size: Some(64)
            })
        );
        for (kind, b, since) in [
            ("refresh", Some(0), Some(1)),
            ("refresh", None, Some(1)),
            ("refresh", Some(5), None),
            ("queue", Some(-1), None),
            ("other", Some(5), Some(1)),
        ] {
            let e = Work::new(kind, b, false, since).unwrap_err();
            assert!(!e.message.is_empty() && !e.hint.is_empty());
        }
    }

    #[test]
    fn fingerprint_separates_settings() {
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["ab", ""]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["a", "on"]), fingerprint(&["a", "off"]));
    }
}
