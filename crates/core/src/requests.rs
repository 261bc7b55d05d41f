//! Homepages that calls leave to the queue worker (`recommender.rerank_budget`, 0.27.0): a table
//! of fixed size, kept by the extension in shared memory under a lock, so a call asks the worker
//! without writing anything in its own transaction (no row lock another transaction could wait
//! for, no subtransaction). Pure logic here; the extension holds the lock.

/// Requests outstanding at once, over every database of the server. A call that finds the table
/// full leaves its user unqueued (its next call asks again).
pub const ENTRIES: usize = 128;

/// The longest user id, in bytes, a request holds; a longer one is not queued this way.
pub const ID_BYTES: usize = 64;

/// The requests: a slot is free while its length is 0.
#[derive(Clone, Copy)]
pub struct Requests {
    db: [u32; ENTRIES],
    len: [u8; ENTRIES],
    id: [[u8; ID_BYTES]; ENTRIES],
}

impl Default for Requests {
    fn default() -> Self {
        Requests {
            db: [0; ENTRIES],
            len: [0; ENTRIES],
            id: [[0; ID_BYTES]; ENTRIES],
        }
    }
}

/// What [`Requests::ask`] did.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Asked {
    /// The request was added.
    Added,
    /// The same user of the same database is asked for already.
    Already,
    /// No free slot.
    Full,
    /// An empty id, or one longer than `ID_BYTES`.
    Unfit,
}

impl Requests {
    /// Asks for `user`'s homepage in database `db`.
    pub fn ask(&mut self, db: u32, user: &str) -> Asked {
        let b = user.as_bytes();
        if b.is_empty() || b.len() > ID_BYTES {
            return Asked::Unfit;
        }
        let mut free = None;
        for i in 0..ENTRIES {
            let n = self.len[i] as usize;
            if n == 0 {
                free.get_or_insert(i);
            } else if self.db[i] == db && &self.id[i][..n] == b {
                return Asked::Already;
            }
        }
        let Some(i) = free else {
            return Asked::Full;
        };
        self.db[i] = db;
        self.len[i] = b.len() as u8;
        self.id[i][..b.len()].copy_from_slice(b);
        Asked::Added
    }

    /// Takes every request of database `db` off the table, in the order of their slots.
    pub fn take(&mut self, db: u32) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..ENTRIES {
            let n = self.len[i] as usize;
            if n > 0 && self.db[i] == db {
                out.push(String::from_utf8_lossy(&self.id[i][..n]).into_owned());
                self.len[i] = 0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_asked_for_once_per_database_and_taken_once() {
        let mut r = Requests::default();
        assert_eq!(r.ask(1, "u1"), Asked::Added);
        assert_eq!(r.ask(1, "u1"), Asked::Already);
        assert_eq!(r.ask(2, "u1"), Asked::Added);
        assert_eq!(r.ask(1, "u2"), Asked::Added);
        assert_eq!(r.take(1), vec!["u1".to_string(), "u2".to_string()]);
        assert!(r.take(1).is_empty());
        assert_eq!(r.take(2), vec!["u1".to_string()]);
        assert_eq!(r.ask(1, "u1"), Asked::Added, "asked again once taken");
    }

    #[test]
    fn unfit_ids_and_a_full_table_are_refused() {
        let mut r = Requests::default();
        assert_eq!(r.ask(1, ""), Asked::Unfit);
        assert_eq!(r.ask(1, &"x".repeat(ID_BYTES + 1)), Asked::Unfit);
        let longest = "é".repeat(ID_BYTES / 2);
        assert_eq!(r.ask(1, &longest), Asked::Added);
        for i in 1..ENTRIES {
            assert_eq!(r.ask(1, &format!("u{i}")), Asked::Added);
        }
        assert_eq!(r.ask(1, "one more"), Asked::Full);
        assert_eq!(r.ask(1, "u7"), Asked::Already);
        let taken = r.take(1);
        assert_eq!(taken.len(), ENTRIES);
        assert_eq!(taken[0], longest);
        assert_eq!(r.ask(1, "one more"), Asked::Added);
    }
}
