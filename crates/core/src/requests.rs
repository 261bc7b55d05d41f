//! Homepages that calls leave to the queue worker (`recommender.rerank_budget`, 0.27.0): a table
//! of fixed size, kept by the extension in shared memory under a lock, so a call asks the worker
//! without writing anything in its own transaction (no row lock another transaction could wait
//! for, no subtransaction). Pure logic here; the extension holds the lock.

/// Requests outstanding at once, over every database of the server. A call that finds the table
/// full leaves its user unqueued.
pub const ENTRIES: usize = 128;

/// Requests outstanding at once for one database, so a database whose worker is behind (or
/// absent) leaves room for the others.
pub const PER_DATABASE: usize = 32;

/// The longest user id, in bytes, a request holds; a longer one is not queued this way.
pub const ID_BYTES: usize = 256;

/// Whether `user` can be asked for ([`Requests::ask`] refuses it otherwise).
pub fn fits(user: &str) -> bool {
    !user.is_empty() && user.len() <= ID_BYTES
}

/// The requests: a slot is free while its length is 0.
#[derive(Clone, Copy)]
pub struct Requests {
    db: [u32; ENTRIES],
    len: [u16; ENTRIES],
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
    /// No free slot, or `PER_DATABASE` requests of the database outstanding.
    Full,
    /// An empty id, or one longer than `ID_BYTES` (see [`fits`]).
    Unfit,
}

impl Requests {
    /// Asks for `user`'s homepage in database `db`.
    pub fn ask(&mut self, db: u32, user: &str) -> Asked {
        if !fits(user) {
            return Asked::Unfit;
        }
        let b = user.as_bytes();
        let (mut free, mut of_db) = (None, 0);
        for i in 0..ENTRIES {
            let n = self.len[i] as usize;
            if n == 0 {
                free.get_or_insert(i);
            } else if self.db[i] == db {
                if &self.id[i][..n] == b {
                    return Asked::Already;
                }
                of_db += 1;
            }
        }
        let Some(i) = free.filter(|_| of_db < PER_DATABASE) else {
            return Asked::Full;
        };
        self.db[i] = db;
        self.len[i] = b.len() as u16;
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
        assert!(!fits("") && !fits(&"x".repeat(ID_BYTES + 1)) && fits("x"));
        let longest = "é".repeat(ID_BYTES / 2);
        assert_eq!(r.ask(1, &longest), Asked::Added);
        // one database takes at most PER_DATABASE slots ...
        for i in 1..PER_DATABASE {
            assert_eq!(r.ask(1, &format!("u{i}")), Asked::Added);
        }
        assert_eq!(r.ask(1, "one more"), Asked::Full);
        assert_eq!(r.ask(1, "u7"), Asked::Already);
        // ... the others the rest, until the table is full
        let mut db = 2;
        'fill: loop {
            for i in 0..PER_DATABASE {
                match r.ask(db, &format!("u{i}")) {
                    Asked::Added => {}
                    Asked::Full => break 'fill,
                    other => panic!("{other:?}"),
                }
            }
            db += 1;
        }
        assert_eq!(r.ask(db + 1, "elsewhere"), Asked::Full, "the table is full");
        let taken = r.take(1);
        assert_eq!(taken.len(), PER_DATABASE);
        assert_eq!(taken[0], longest);
        assert_eq!(r.ask(1, "one more"), Asked::Added);
    }
}
