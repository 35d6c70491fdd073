//! What Palisade tells its caller about a host or a sandbox: the enforcement layers, what
//! `palisade check` found, and what `palisade cleanup` did.

/// One enforcement layer and whether this sandbox uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub name: String,
    pub active: bool,
    pub detail: String,
}

impl Layer {
    pub(crate) fn new(name: &str, active: bool, detail: &str) -> Layer {
        Layer { name: name.into(), active, detail: detail.into() }
    }
}

/// What a sandbox enforces with, layer by layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enforcement {
    pub layers: Vec<Layer>,
}

impl Enforcement {
    pub(crate) fn push(&mut self, l: Layer) {
        self.layers.push(l);
    }
}

/// What `palisade check` found this host can do.
#[derive(Clone, Debug, Default)]
pub struct HostReport {
    pub facts: Vec<(String, String)>,
    pub mechanisms: Vec<Layer>,
    pub notes: Vec<String>,
    pub namespaces: bool,
    pub landlock_abi: u32,
}

impl HostReport {
    pub(crate) fn push(&mut self, name: &str, ok: bool, detail: String) {
        self.mechanisms.push(Layer { name: name.into(), active: ok, detail });
    }
}

/// What [`cleanup`] did.
#[derive(Clone, Debug, Default)]
pub struct CleanupReport {
    /// Permission entries removed.
    pub removed: usize,
    /// Recorded entries that were already gone (or whose path no longer exists).
    pub already_gone: usize,
    /// Entries that could not be removed (they stay recorded; run cleanup again), one line each.
    pub failed: Vec<String>,
    pub notes: Vec<String>,
    /// Linux: the private temporary folders of killed runs that were removed, with the bytes
    /// their files used (also counted in `removed`).
    pub temp_folders: Vec<(std::path::PathBuf, u64)>,
}
