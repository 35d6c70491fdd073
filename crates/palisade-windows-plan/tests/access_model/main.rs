//! A platform-free check of the Windows ACL design: an access-check model written from
//! Microsoft's published algorithm ([`model`]), its own unit tests against hand-worked examples
//! ([`model_tests`]), a small adapter from the plan's output to the model's plain types
//! ([`adapter`]), and scenarios over generated trees and policies that ask the model what the
//! token the unelevated mode builds may do with the ACEs the plan applies ([`scenarios`]);
//! and the elevated mode's per-command identity: commands of one account against each other's
//! processes and temporary folders and the account's `HKCU` and profile ([`elevated_identity`]).

mod adapter;
mod elevated_identity;
mod model;
mod model_tests;
mod processes;
mod scenarios;
