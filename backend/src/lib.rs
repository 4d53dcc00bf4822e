#![recursion_limit = "512"]
//! THOR: the backend of the field app of Velsen's municipal enforcement team (Toezicht en
//! Handhaving Openbare Ruimte). See `../shared/DESIGN.md` for the architecture.

pub mod access;
pub mod app;
pub mod audit;
pub mod auth;
pub mod briefing;
pub mod cases;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod exports;
pub mod extract;
pub mod geo;
pub mod labels;
pub mod lookup;
pub mod openapi;
pub mod ops;
pub mod perf;
pub mod photos;
pub mod records;
pub mod reference;
pub mod retention;
pub mod rounds;
pub mod sync;
pub mod violations;
pub mod web;
