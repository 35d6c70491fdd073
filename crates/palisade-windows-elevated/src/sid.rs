//! Security identifiers in their string form (`S-1-5-21-...`): the one [`Sid`] type of
//! `palisade-windows-plan`, re-exported under the path this crate has always offered. Its
//! [`Sid::parse`] accepts only the canonical spelling, so that a SID placed into an SDDL string
//! or a firewall rule cannot change its meaning.

pub use palisade_windows_plan::sid::{Sid, SidError};
