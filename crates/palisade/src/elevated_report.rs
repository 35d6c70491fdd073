//! The elevated Windows mode's state as `palisade check` shows it, in the library's own type:
//! the report itself is made by the platform-free `palisade-windows-elevated` crate, which only
//! Windows builds depend on. Elsewhere there is no elevated mode, and no value of this type.

/// What [`crate::check_elevated`] found: one line per part of `palisade setup --elevated`.
pub struct ElevatedCheck {
    inner: Inner,
}

#[cfg(windows)]
type Inner = palisade_windows_elevated::CheckReport;
#[cfg(not(windows))]
type Inner = std::convert::Infallible;

impl ElevatedCheck {
    #[cfg(windows)]
    pub(crate) fn new(inner: Inner) -> ElevatedCheck {
        ElevatedCheck { inner }
    }

    /// No line failed: the mode can be trusted to enforce.
    pub fn usable(&self) -> bool {
        #[cfg(windows)]
        return self.inner.usable();
        #[cfg(not(windows))]
        match self.inner {}
    }

    /// The first failed line's item and detail.
    pub fn first_failure(&self) -> Option<(String, String)> {
        #[cfg(windows)]
        return self.inner.first_failure().map(|l| (l.item.clone(), l.detail.clone()));
        #[cfg(not(windows))]
        match self.inner {}
    }

    /// Each line as shown (status, item, detail).
    pub fn lines(&self) -> Vec<String> {
        #[cfg(windows)]
        return self.inner.lines.iter().map(|l| l.to_string()).collect();
        #[cfg(not(windows))]
        match self.inner {}
    }

    /// The lines as JSON objects (`status`, `item`, `detail`).
    pub fn lines_json(&self) -> serde_json::Value {
        #[cfg(windows)]
        return serde_json::to_value(&self.inner.lines).unwrap_or_default();
        #[cfg(not(windows))]
        match self.inner {}
    }
}
