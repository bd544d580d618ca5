//! Lock guards that survive a poisoned lock.
//!
//! A lock is poisoned when a thread panics while holding it. The standard library then
//! hands every later caller an `Err`, and code that answers it with `if let Ok(..)` or
//! `.ok()` skips its update silently, for the life of the process: a key ring that never
//! reloads, a policy that never refreshes. Warden's locks guard values that are replaced
//! whole or changed by one map operation, so the value behind a poisoned lock is still a
//! consistent value and taking it is safe. Each call site says why that holds for it;
//! these three functions are the one way to take such a lock.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A read guard on `lock`, poisoned or not.
pub fn read_recovering<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// A write guard on `lock`, poisoned or not.
pub fn write_recovering<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// A guard on `lock`, poisoned or not.
pub fn lock_recovering<T: ?Sized>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_poisoned_lock_is_still_read_and_written() {
        let lock = Arc::new(RwLock::new(1));
        let mutex = Arc::new(Mutex::new(1));
        let (l, m) = (Arc::clone(&lock), Arc::clone(&mutex));
        let _ = std::thread::spawn(move || {
            let _w = l.write().unwrap();
            let _g = m.lock().unwrap();
            panic!("poison both");
        })
        .join();
        assert!(lock.is_poisoned() && mutex.is_poisoned());
        *write_recovering(&lock) = 2;
        *lock_recovering(&mutex) = 2;
        assert_eq!(*read_recovering(&lock), 2);
        assert_eq!(*lock_recovering(&mutex), 2);
    }
}
