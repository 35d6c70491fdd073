//! `palisade-win32`: Palisade's one layer of Win32 calls, shared by the library (both Windows
//! modes and `palisade check`), `palisade-runner` and `palisade-setup`. Thin wrappers only: every
//! `unsafe` block says why it is sound, and every decision is made by the platform-free crates
//! (`palisade-windows-plan`, `palisade-windows-elevated`) whose types these functions take and
//! return. On other systems the crate is empty, so that the workspace builds everywhere.
//!
//! * [`ffi`]: wide strings, error codes, memory the system allocates, the system RNG, Wine;
//! * [`sid`]: owned binary SIDs and account lookups;
//! * [`system`]: known folders, registry values, environment expansion, SHA-256;
//! * [`acl`]: reading and changing DACLs (additively), security descriptors from SDDL;
//! * [`object`]: opening a file or folder itself (not a link's target) and what its handle says;
//! * [`token`]: the caller's token and restricted tokens;
//! * [`accounts`]: local accounts, groups and LSA account rights (NetApi, LSA);
//! * [`firewall`], [`wfp`], [`fence`]: Windows Firewall rules and WFP objects;
//! * [`gather`]: the elevated mode's facts about the machine (`palisade-setup` and
//!   `palisade check`).
#![cfg(windows)]

pub mod accounts;
pub mod acl;
pub mod fence;
pub mod ffi;
pub mod firewall;
pub mod gather;
pub mod object;
pub mod sid;
pub mod system;
pub mod token;
pub mod wfp;
