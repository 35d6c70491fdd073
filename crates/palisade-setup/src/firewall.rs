//! Windows Firewall rules (INetFwPolicy2 / INetFwRule3).
