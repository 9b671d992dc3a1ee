//! Guard kinds: labels such as `"http"` or `"job"` so a report can say what was aborted.
//! A labelled guard costs one more relaxed `fetch_add` on its own counter; the
//! unlabelled path never touches this table.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How many distinct kinds one `Shutdown` can label.
pub const MAX_KINDS: usize = 64;

/// An interned guard label; get one with [`Shutdown::kind`](crate::Shutdown::kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kind(pub(crate) u8);

/// [`Shutdown::kind`](crate::Shutdown::kind) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindError {
    /// More than [`MAX_KINDS`] distinct kinds.
    TooMany,
    /// Empty, or longer than 64 bytes.
    BadName,
}

impl fmt::Display for KindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KindError::TooMany => write!(f, "at most {MAX_KINDS} guard kinds"),
            KindError::BadName => f.write_str("a guard kind is 1 to 64 bytes"),
        }
    }
}

impl std::error::Error for KindError {}

pub(crate) struct Kinds {
    names: Mutex<Vec<String>>,
    counts: [AtomicU64; MAX_KINDS],
}

impl Kinds {
    pub(crate) fn new() -> Self {
        Kinds {
            names: Mutex::new(Vec::new()),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub(crate) fn intern(&self, name: &str) -> Result<Kind, KindError> {
        if name.is_empty() || name.len() > 64 {
            return Err(KindError::BadName);
        }
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = names.iter().position(|n| n == name) {
            return Ok(Kind(i as u8));
        }
        if names.len() == MAX_KINDS {
            return Err(KindError::TooMany);
        }
        names.push(name.to_string());
        Ok(Kind((names.len() - 1) as u8))
    }

    pub(crate) fn name(&self, kind: Kind) -> String {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names.get(kind.0 as usize).cloned().unwrap_or_default()
    }

    #[inline]
    pub(crate) fn enter(&self, kind: Kind) {
        self.counts[kind.0 as usize].fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn leave(&self, kind: Kind) {
        self.counts[kind.0 as usize].fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let c = self.counts[i].load(Ordering::Relaxed);
                (c > 0).then(|| (n.clone(), c))
            })
            .collect()
    }
}
