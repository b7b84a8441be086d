//! Steps run through the runner on real redb stores.
