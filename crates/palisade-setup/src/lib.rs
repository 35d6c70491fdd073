//! `palisade-setup`: the only part of Palisade that runs elevated. It gathers facts from the
//! machine, takes one validated request, carries out the steps of the platform-free setup or
//! uninstall plan from `palisade-windows-elevated`, records each step ahead of acting, and
//! exits. On other systems it has nothing to do.

#[cfg(windows)]
pub mod firewall;
#[cfg(windows)]
pub mod wfp;
