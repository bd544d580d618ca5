//! The in-memory notebook the demo's tools, resources and prompt work on.
//!
//! One notebook is shared by every session, so a note written through one client is
//! visible to all of them — which is what the quickstart wants to show.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// The most notes kept; writing more evicts the oldest so that a load test that writes
/// notes in a loop cannot grow the process without bound.
pub(crate) const MAX_NOTES: usize = 10_000;
/// Longest accepted title, in characters.
pub(crate) const MAX_TITLE_CHARS: usize = 200;
/// Longest accepted body, in characters.
pub(crate) const MAX_BODY_CHARS: usize = 65_536;

/// One note. Ids are decimal strings on the wire and never reused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Note {
    pub(crate) id: u64,
    pub(crate) title: String,
    pub(crate) body: String,
}

/// The shared notebook.
pub(crate) struct NoteStore {
    inner: Mutex<Notebook>,
}

struct Notebook {
    notes: BTreeMap<u64, Note>,
    next_id: u64,
}

impl NoteStore {
    /// A notebook seeded with the two notes the quickstart talks about.
    pub(crate) fn seeded() -> Self {
        let store = Self {
            inner: Mutex::new(Notebook {
                notes: BTreeMap::new(),
                next_id: 1,
            }),
        };
        store.write(
            "Welcome",
            "Welcome to the Warden demo MCP server. Every call you make here went through \
             Warden's gateway, which checked your access token and its scopes first.",
        );
        store.write(
            "Scopes",
            "notes:read lets you list and read notes and call whoami; notes:write lets you \
             add notes; notes:admin lets you reset the notebook.",
        );
        store
    }

    /// All notes, oldest first.
    pub(crate) fn list(&self) -> Vec<Note> {
        self.lock().notes.values().cloned().collect()
    }

    /// The note with `id`, if any.
    pub(crate) fn get(&self, id: u64) -> Option<Note> {
        self.lock().notes.get(&id).cloned()
    }

    /// Adds a note and returns it with its new id. Callers check the length limits.
    pub(crate) fn write(&self, title: &str, body: &str) -> Note {
        let mut book = self.lock();
        while book.notes.len() >= MAX_NOTES {
            if book.notes.pop_first().is_none() {
                break;
            }
        }
        let note = Note {
            id: book.next_id,
            title: title.to_owned(),
            body: body.to_owned(),
        };
        book.next_id += 1;
        book.notes.insert(note.id, note.clone());
        note
    }

    /// Deletes every note and returns how many there were. Ids keep counting up.
    pub(crate) fn clear(&self) -> usize {
        let mut book = self.lock();
        let deleted = book.notes.len();
        book.notes.clear();
        deleted
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Notebook> {
        // Every critical section leaves the notebook valid, so a poisoned lock is safe.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_write_read_clear() {
        let store = NoteStore::seeded();
        let titles: Vec<_> = store.list().into_iter().map(|n| n.title).collect();
        assert_eq!(titles, ["Welcome", "Scopes"]);

        let note = store.write("t", "b");
        assert_eq!(note.id, 3);
        assert_eq!(store.get(3), Some(note));
        assert_eq!(store.clear(), 3);
        assert!(store.list().is_empty());
        assert_eq!(store.write("again", "").id, 4, "ids are never reused");
    }
}
