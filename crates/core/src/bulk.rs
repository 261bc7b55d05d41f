//! What a bulk embedding helper is asked to do. `CALL refresh_embeddings()` and
//! `CALL process_queue()` start helpers (dynamic background workers, `recommender.embedding_workers`)
//! that run the same batches as the calling session; the job travels in the worker's `bgw_extra`,
//! 128 bytes of text, so it is encoded here as one short line and checked when read back.

/// `bgw_extra`'s size, its NUL included.
pub const EXTRA_BYTES: usize = 128;

/// The batches a helper runs until none is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `recommender._refresh_batch`: stale products (with `force` also every product embedded
    /// before `since_us`, microseconds since 1970-01-01 UTC: the call's start).
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
    fn fingerprint_separates_settings() {
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["ab", ""]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["a", "on"]), fingerprint(&["a", "off"]));
    }
}
