//! The files modules, signatures, keys and tokens are read from and kept in: every read bounded
//! in bytes and refused when it is not a regular file, every write whole or not at all.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest module read from anywhere (a file, a registry, a request body).
pub const MAX_MODULE: u64 = 64 << 20;

/// Reads a file the operator named, refusing what is not a regular file (a FIFO, a device
/// such as /dev/zero) or is larger than `max` bytes. Opened without blocking, so a FIFO cannot
/// hold the reader.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > max {
        return Err(std::io::Error::other(format!("{} bytes, more than the {max} allowed", meta.len())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!("more than the {max} bytes allowed")));
    }
    Ok(bytes)
}

/// Writes `path` whole or not at all (a temporary file renamed into place), making its folder.
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let staged = path.with_extension(format!("{}.staged", std::process::id()));
    std::fs::write(&staged, bytes)?;
    std::fs::rename(&staged, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        assert!(read_bounded(Path::new("/dev/zero"), MAX_MODULE).is_err(), "a device");
        let dir = std::env::temp_dir().join(format!("kubernetai-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("m");
        std::fs::write(&file, [0u8; 100]).expect("write");
        assert_eq!(read_bounded(&file, 100).expect("read").len(), 100);
        assert!(read_bounded(&file, 99).is_err(), "too large");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read_bounded(&fifo, MAX_MODULE).is_err(), "a FIFO, refused without blocking");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
