//! What a polled file looks like now, to tell whether it changed: its modification time,
//! length and inode. The time alone misses a file replaced twice within one tick of the
//! filesystem's clock (a few milliseconds); a file replaced by rename — as ConfigMap volumes
//! and careful operators replace files — always brings a new inode.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    pub modified: SystemTime,
    len: u64,
    inode: u64,
    device: u64,
}

impl FileStamp {
    /// The file's stamp now; None when it cannot be read (whose end is a change too).
    pub fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            len: meta.len(),
            inode: meta.ino(),
            device: meta.dev(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_replaced_by_rename_changes_its_stamp_whatever_its_time() {
        let dir = std::env::temp_dir().join(format!("kubernetai-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, staged) = (dir.join("module.wasm"), dir.join("module.staged"));
        std::fs::write(&file, b"one").unwrap();
        let before = FileStamp::of(&file).unwrap();
        std::fs::write(&staged, b"two").unwrap();
        // The same time, as two writes within one tick of a coarse clock would have.
        std::fs::File::options().write(true).open(&staged).unwrap().set_modified(before.modified).unwrap();
        std::fs::rename(&staged, &file).unwrap();
        let after = FileStamp::of(&file).unwrap();
        assert_eq!(after.modified, before.modified);
        assert_ne!(after, before, "a new inode is a change");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(FileStamp::of(&file), None);
    }
}
