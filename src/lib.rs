//! The whole AnonChat system in one process, for the quickstart and the end-to-end tests.

pub mod quickstart;
