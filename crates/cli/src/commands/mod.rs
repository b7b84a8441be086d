//! One module per command.

pub mod demo;
pub mod get;
pub mod migrate;
pub mod status;
pub mod sync;
pub mod tier;
pub mod txoutsetinfo;
pub mod verify;
