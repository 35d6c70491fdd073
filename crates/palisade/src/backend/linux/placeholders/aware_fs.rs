//! [`PlaceholderAwareFs`]: the protected-path resolution's view of the disk while placeholders exist.

use super::*;

/// [`RealFs`], except that recorded placeholders still as created are reported missing.
///
/// Resolution asks about the same paths many times (`.git` once per git pattern, each
/// placeholder once per pattern that reaches it): every answer is remembered for the life of
/// the view, which is one command's resolution, so it is a snapshot taken once per command and
/// never goes stale across commands.
pub struct PlaceholderAwareFs<'a> {
    pub(super) known: &'a BTreeMap<PathBuf, (u64, u64)>,
    pub(super) seen: RefCell<Seen>,
}

#[derive(Default)]
pub(super) struct Seen {
    kinds: HashMap<PathBuf, Kind>,
    dirs: HashMap<PathBuf, Vec<String>>,
    texts: HashMap<PathBuf, Option<String>>,
    real: HashMap<PathBuf, Option<PathBuf>>,
    /// Recorded placeholders found still as created.
    intact: BTreeSet<PathBuf>,
}

impl PlaceholderAwareFs<'_> {
    /// The recorded placeholders this view found still as created.
    pub fn intact_placeholders(self) -> BTreeSet<PathBuf> {
        self.seen.into_inner().intact
    }
}

impl FsView for PlaceholderAwareFs<'_> {
    fn kind(&self, path: &Path) -> Kind {
        if let Some(k) = self.seen.borrow().kinds.get(path) {
            return *k;
        }
        let k = if self.known.get(path).is_some_and(|id| still_placeholder(path, *id)) {
            self.seen.borrow_mut().intact.insert(path.to_path_buf());
            Kind::Missing
        } else {
            RealFs.kind(path)
        };
        self.seen.borrow_mut().kinds.insert(path.to_path_buf(), k);
        k
    }
    fn list_dir(&self, path: &Path) -> Vec<String> {
        if let Some(d) = self.seen.borrow().dirs.get(path) {
            return d.clone();
        }
        let d = RealFs.list_dir(path);
        self.seen.borrow_mut().dirs.insert(path.to_path_buf(), d.clone());
        d
    }
    fn read_small(&self, path: &Path) -> Option<String> {
        if let Some(t) = self.seen.borrow().texts.get(path) {
            return t.clone();
        }
        let t = RealFs.read_small(path);
        self.seen.borrow_mut().texts.insert(path.to_path_buf(), t.clone());
        t
    }
    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        if let Some(r) = self.seen.borrow().real.get(path) {
            return r.clone();
        }
        let r = RealFs.canonicalize(path);
        self.seen.borrow_mut().real.insert(path.to_path_buf(), r.clone());
        r
    }
}
