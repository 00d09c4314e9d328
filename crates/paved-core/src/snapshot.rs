//! A value that a writer replaces whole while readers keep the one they
//! took: a server's watches swap in what they found, and each evaluation
//! reads the snapshot of the moment, without waiting on the next one.

use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub struct Snapshot<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for Snapshot<T> {
    fn clone(&self) -> Snapshot<T> {
        Snapshot(Arc::clone(&self.0))
    }
}

impl<T: Default> Default for Snapshot<T> {
    fn default() -> Snapshot<T> {
        Snapshot::new(T::default())
    }
}

impl<T> Snapshot<T> {
    pub fn new(value: T) -> Snapshot<T> {
        Snapshot(Arc::new(RwLock::new(Arc::new(value))))
    }

    pub fn get(&self) -> Arc<T> {
        match self.0.read() {
            Ok(current) => Arc::clone(&current),
            // A writer only swaps an Arc, so a poisoned lock still holds a whole value.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn set(&self, value: Arc<T>) {
        match self.0.write() {
            Ok(mut current) => *current = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_value_and_readers_keep_what_they_took() {
        let a = Snapshot::new(1);
        let b = a.clone();
        let taken = a.get();
        b.set(Arc::new(2));
        assert_eq!((*taken, *a.get()), (1, 2));
    }
}
