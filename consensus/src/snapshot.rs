//! Snapshots on disk: a RocksDB checkpoint of the node's store, packed into
//! one archive file that Raft streams to a lagging follower in chunks.
//!
//! Nothing here holds a snapshot in memory: the archive is read and written
//! through buffers of [`SnapshotLimits::io_buffer_bytes`], and the follower
//! unpacks it into a directory it then opens as a read-only store (see
//! `state_machine` for how it is checked and installed).
//!
//! The archive format, version 2 (version 1 was an in-memory bincode dump):
//!
//! ```text
//! "ZSL-SNAPSHOT-v2\n"                      16 bytes
//! per file, in name order:
//!   name length   u16, big-endian           1..=255
//!   name          that many bytes           [A-Za-z0-9._-], not starting with '.'
//!   size          u64, big-endian
//!   content       `size` bytes
//!   SHA-256       32 bytes, of the content
//! end:            u16 zero
//! ```
//!
//! Architecture Invariant: an archive names files only inside the directory
//! it is unpacked into, and unpacking stops at the first byte past a limit.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 16] = b"ZSL-SNAPSHOT-v2\n";
const NAME_BYTES_MAX: usize = 255;

/// What a snapshot build or install may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLimits {
    /// Bytes of memory a snapshot's own buffers and write batches may hold
    /// (RocksDB's block caches and memtables are sized separately).
    pub memory_budget_bytes: usize,
    /// The largest archive a follower accepts, bytes.
    pub archive_bytes_max: u64,
    /// The most files an archive may hold.
    pub files_max: usize,
    /// Fault injection for tests: an install stops, as a crash would, after
    /// writing this many batches. `None` on a node.
    #[doc(hidden)]
    pub interrupt_after_batches: Option<u32>,
}

impl Default for SnapshotLimits {
    fn default() -> Self {
        Self {
            memory_budget_bytes: 16 << 20,
            archive_bytes_max: 1 << 40,
            files_max: 100_000,
            interrupt_after_batches: None,
        }
    }
}

/// The smallest budget a node may be configured with: below it, installs
/// pay an fsync every few rows.
pub const MEMORY_BUDGET_BYTES_MIN: usize = 64 << 10;

impl SnapshotLimits {
    /// One read or write buffer.
    pub fn io_buffer_bytes(&self) -> usize {
        (self.memory_budget_bytes / 8).clamp(4 << 10, 1 << 20)
    }

    /// A write batch is written out once it holds this many bytes.
    pub fn batch_bytes_max(&self) -> usize {
        (self.memory_budget_bytes / 2).max(1)
    }
}

/// Snapshot data as openraft reads and writes it: a file.
///
/// I/O is synchronous, in place: chunks are a few MiB and mostly in the page
/// cache, and the deterministic simulator may not hand work to other threads.
#[derive(Debug)]
pub struct SnapshotFile {
    file: File,
    path: PathBuf,
    /// Writes that would end past this offset fail.
    len_max: u64,
    /// The outcome of the last `start_seek`, for `poll_complete`.
    seek: Option<io::Result<u64>>,
}

impl SnapshotFile {
    /// A new, empty file for a snapshot being received.
    pub fn create(path: &Path, len_max: u64) -> io::Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            len_max,
            seek: None,
        })
    }

    /// An existing archive, for reading.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            path: path.to_path_buf(),
            len_max: 0,
            seek: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file from its first byte, for unpacking.
    pub fn rewound(&mut self) -> io::Result<&mut File> {
        self.file.seek(SeekFrom::Start(0))?;
        Ok(&mut self.file)
    }
}

impl tokio::io::AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.file.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let at = this.file.stream_position()?;
        if at.saturating_add(buf.len() as u64) > this.len_max {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a snapshot larger than {} bytes is refused", this.len_max),
            )));
        }
        Poll::Ready(this.file.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().file.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        this.seek = Some(this.file.seek(position));
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        Poll::Ready(match this.seek.take() {
            Some(done) => done,
            None => this.file.stream_position(),
        })
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// A name an archive may carry: a plain file name, nothing that climbs out
/// of the directory or hides in it.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name[0] != b'.'
        && name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Packs every file of `dir` (a RocksDB checkpoint: plain files, no
/// subdirectories) into `out`, in name order. Returns the archive's length.
pub fn pack(dir: &Path, out: &mut impl Write, limits: &SnapshotLimits) -> io::Result<u64> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a plain file",
                entry.path().display()
            )));
        }
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| io::Error::other(format!("file name {n:?} is not UTF-8")))?;
        if !valid_name(name.as_bytes()) {
            return Err(io::Error::other(format!(
                "file name {name:?} cannot be archived"
            )));
        }
        names.push(name);
    }
    names.sort();
    let mut buf = vec![0u8; limits.io_buffer_bytes()];
    out.write_all(MAGIC)?;
    let mut written = MAGIC.len() as u64;
    for name in &names {
        let mut file = File::open(dir.join(name))?;
        let size = file.metadata()?.len();
        let name_len = u16::try_from(name.len()).map_err(io::Error::other)?;
        out.write_all(&name_len.to_be_bytes())?;
        out.write_all(name.as_bytes())?;
        out.write_all(&size.to_be_bytes())?;
        let mut hasher = Sha256::new();
        let mut left = size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            file.read_exact(&mut buf[..want])?;
            hasher.update(&buf[..want]);
            out.write_all(&buf[..want])?;
            left -= want as u64;
        }
        out.write_all(&hasher.finalize())?;
        written += 2 + name.len() as u64 + 8 + size + 32;
    }
    out.write_all(&0u16.to_be_bytes())?;
    Ok(written + 2)
}

/// Unpacks an archive into `dir` (which must exist and be empty). Format
/// violations and limits come back as `InvalidData`; other kinds are this
/// node's own I/O failing.
pub fn unpack(input: &mut impl Read, dir: &Path, limits: &SnapshotLimits) -> io::Result<()> {
    let mut magic = [0u8; 16];
    read_archive(input, &mut magic)?;
    if &magic != MAGIC {
        return Err(invalid("not a ZSL snapshot archive of version 2".into()));
    }
    let mut buf = vec![0u8; limits.io_buffer_bytes()];
    let mut total = MAGIC.len() as u64;
    let mut files = 0usize;
    let mut last_name: Option<Vec<u8>> = None;
    loop {
        let mut len = [0u8; 2];
        read_archive(input, &mut len)?;
        let name_len = usize::from(u16::from_be_bytes(len));
        if name_len == 0 {
            break;
        }
        files += 1;
        if files > limits.files_max {
            return Err(invalid(format!(
                "the archive holds more than {} files",
                limits.files_max
            )));
        }
        let mut name = vec![0u8; name_len];
        read_archive(input, &mut name)?;
        if !valid_name(&name) {
            return Err(invalid(format!(
                "the archive names a file {:?}",
                String::from_utf8_lossy(&name)
            )));
        }
        // Strictly increasing names: no file twice, one order per archive.
        if last_name.as_ref().is_some_and(|last| *last >= name) {
            return Err(invalid("the archive's files are not in name order".into()));
        }
        let mut size = [0u8; 8];
        read_archive(input, &mut size)?;
        let size = u64::from_be_bytes(size);
        total = total
            .saturating_add(2 + name_len as u64 + 8 + 32)
            .saturating_add(size);
        if total > limits.archive_bytes_max {
            return Err(invalid(format!(
                "the archive is larger than {} bytes",
                limits.archive_bytes_max
            )));
        }
        let shown = String::from_utf8_lossy(&name).into_owned();
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .open(dir.join(&shown))?;
        let mut hasher = Sha256::new();
        let mut left = size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            read_archive(input, &mut buf[..want])?;
            hasher.update(&buf[..want]);
            out.write_all(&buf[..want])?;
            left -= want as u64;
        }
        out.sync_all()?;
        let mut digest = [0u8; 32];
        read_archive(input, &mut digest)?;
        if hasher.finalize().as_slice() != digest {
            return Err(invalid(format!(
                "the archive's file {shown} does not match its SHA-256"
            )));
        }
        last_name = Some(name);
    }
    let mut extra = [0u8; 1];
    if input.read(&mut extra)? != 0 {
        return Err(invalid("the archive goes on after its end".into()));
    }
    File::open(dir)?.sync_all()
}

/// `read_exact`, where running out of bytes means a truncated archive.
fn read_archive(input: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => invalid("the archive ends early".into()),
        _ => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SnapshotLimits {
        SnapshotLimits {
            memory_budget_bytes: 64 << 10,
            archive_bytes_max: 1 << 20,
            files_max: 8,
            interrupt_after_batches: None,
        }
    }

    fn packed(files: &[(&str, &[u8])]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("dir");
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).expect("write");
        }
        let mut out = Vec::new();
        let len = pack(dir.path(), &mut out, &limits()).expect("packs");
        assert_eq!(len, out.len() as u64);
        out
    }

    fn unpacked(archive: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
        let dir = tempfile::tempdir().expect("dir");
        unpack(&mut &archive[..], dir.path(), &limits())?;
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| {
                let e = e.expect("entry");
                let name = e.file_name().into_string().expect("utf-8");
                (name, std::fs::read(e.path()).expect("read"))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    #[test]
    fn an_archive_unpacks_to_the_files_it_packed() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let archive = packed(&[
            ("CURRENT", b"MANIFEST-000001\n"),
            ("000009.sst", &big),
            ("empty", b""),
        ]);
        let files = unpacked(&archive).expect("unpacks");
        let names: Vec<_> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["000009.sst", "CURRENT", "empty"]);
        assert_eq!(files[0].1, big);
        assert!(files[2].1.is_empty());
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let archive = packed(&[("a", b"first file"), ("b", b"second")]);
        for cut in 0..archive.len() {
            let err = unpacked(&archive[..cut]).expect_err("a truncated archive is refused");
            assert_eq!(
                err.kind(),
                io::ErrorKind::InvalidData,
                "cut at {cut}: {err}"
            );
        }
        for at in 0..archive.len() {
            let mut bad = archive.clone();
            bad[at] ^= 0x01;
            // A flip may still leave a valid archive only by renaming a file
            // to another valid name in order; that changes what unpacks.
            match unpacked(&bad) {
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "flip at {at}: {e}"),
                Ok(files) => assert_ne!(files, unpacked(&archive).expect("good")),
            }
        }
        let mut longer = archive.clone();
        longer.push(0);
        assert!(unpacked(&longer).is_err(), "trailing bytes are refused");
    }

    #[test]
    fn names_that_leave_the_directory_and_oversized_archives_are_refused() {
        let entry = |name: &[u8], content: &[u8]| {
            let mut a = MAGIC.to_vec();
            a.extend_from_slice(&(name.len() as u16).to_be_bytes());
            a.extend_from_slice(name);
            a.extend_from_slice(&(content.len() as u64).to_be_bytes());
            a.extend_from_slice(content);
            a.extend_from_slice(&Sha256::digest(content));
            a.extend_from_slice(&0u16.to_be_bytes());
            a
        };
        assert!(unpacked(&entry(b"ok.sst", b"x")).is_ok());
        for name in [&b"../escape"[..], b"a/b", b".hidden", b"/abs", b"nul\0"] {
            let err = unpacked(&entry(name, b"x")).expect_err("refused");
            assert!(err.to_string().contains("names a file"), "{err}");
        }
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&1u16.to_be_bytes());
        huge.push(b'h');
        huge.extend_from_slice(&(2u64 << 20).to_be_bytes());
        let err = unpacked(&huge).expect_err("refused");
        assert!(err.to_string().contains("larger than"), "{err}");
        let many: Vec<(String, &[u8])> = (0..9).map(|i| (format!("f{i}"), &b"x"[..])).collect();
        let many: Vec<(&str, &[u8])> = many.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let err = unpacked(&packed(&many)).expect_err("refused");
        assert!(err.to_string().contains("more than 8 files"), "{err}");
    }
}
