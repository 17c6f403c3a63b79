//! Witness cosignatures this node collected for its chain's checkpoints
//! (`[[witnessed_by]]` in its config): kept by checkpoint height, for
//! bundles and the checkpoint answers to show. Local to the node, not
//! ledger state: a witness answers whoever asked it. Bounded (the newest
//! [`HEIGHTS_KEPT`] heights) and kept in an append-only JSON-lines file,
//! fsynced per append and read back at start.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use ledger::checkpoint::NoteSignature;

/// Checkpoint heights whose cosignatures are kept.
pub const HEIGHTS_KEPT: usize = 4_096;
/// Cosignature lines kept per height.
pub const LINES_PER_HEIGHT_MAX: usize = 16;

#[derive(serde::Serialize, serde::Deserialize)]
struct Row {
    height: u64,
    /// The note signature line, as the witness sent it.
    line: String,
}

/// Witness cosignature lines by checkpoint height.
pub struct CosignatureBook {
    path: PathBuf,
    lines: Mutex<BTreeMap<u64, Vec<NoteSignature>>>,
}

impl CosignatureBook {
    /// Opens (or creates) the book at `path`; unreadable rows are skipped.
    pub fn open(path: PathBuf) -> std::io::Result<Self> {
        let mut lines: BTreeMap<u64, Vec<NoteSignature>> = BTreeMap::new();
        match std::fs::File::open(&path) {
            Ok(f) => {
                for row in std::io::BufReader::new(f).lines() {
                    let Ok(r) = serde_json::from_str::<Row>(&row?) else {
                        continue; // a torn last line after a crash
                    };
                    if let Some(s) = decode(&r) {
                        insert(&mut lines, r.height, s);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // Rewritten with what is kept, so the file stays as bounded as memory.
        let tmp = path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            for (height, v) in &lines {
                for s in v {
                    f.write_all((encode(*height, s)? + "\n").as_bytes())?;
                }
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(Self {
            path,
            lines: Mutex::new(lines),
        })
    }

    /// Records `line` for checkpoint `height` (once per key name).
    pub fn add(&self, height: u64, line: NoteSignature) -> std::io::Result<()> {
        let row = encode(height, &line)?;
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines
            .get(&height)
            .is_some_and(|v| v.iter().any(|s| s.name == line.name))
        {
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all((row + "\n").as_bytes())?;
        f.sync_data()?;
        insert(&mut lines, height, line);
        Ok(())
    }

    /// The cosignature lines of checkpoint `height`.
    pub fn at(&self, height: u64) -> Vec<NoteSignature> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.get(&height).cloned().unwrap_or_default()
    }
}

fn encode(height: u64, line: &NoteSignature) -> std::io::Result<String> {
    serde_json::to_string(&Row {
        height,
        line: line.line().trim_end().to_string(),
    })
    .map_err(std::io::Error::other)
}

fn decode(r: &Row) -> Option<NoteSignature> {
    NoteSignature::parse_line(&r.line).ok()
}

fn insert(lines: &mut BTreeMap<u64, Vec<NoteSignature>>, height: u64, s: NoteSignature) {
    let v = lines.entry(height).or_default();
    if v.len() < LINES_PER_HEIGHT_MAX && !v.iter().any(|x| x.name == s.name) {
        v.push(s);
    }
    while lines.len() > HEIGHTS_KEPT {
        lines.pop_first();
    }
}
