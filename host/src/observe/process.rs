//! Process-wide settings made once at start: the open-files limit, the allocator's arenas and
//! the pidfile.

/// Lifts the soft limit on open files to the hard one, as Go programs (CoreDNS among them) do
/// at start: every TCP client holds a descriptor, and the server's connection bound, not the
/// default 1,024 files, is meant to be the limit that bites.
pub fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Caps glibc's malloc arenas at one. By default glibc makes a new arena whenever a
/// thread finds the others locked, up to eight per core, and keeps what each ever held: under
/// query load every module swap (a compile on threads of its own) left a few MiB behind, resident
/// memory going 65 → 134 MiB over 19 swaps in 100 s of tests/e2e/soak.rs. With the cap, and
/// [`trim_heap`] after each swap, the same run stays flat near 40 MiB. One arena in all: a
/// second one kept the module compiler's leftovers (5 MiB on the large cluster), so memory grew
/// with the number of cores; a query's path allocates a handful of small blocks, and the UDP
/// workers measured no slower sharing the one arena.
pub fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before the runtime starts threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        // A fixed threshold (glibc raises its default one up to 32 MiB after each large free):
        // an API server's list pages (~1 MiB of text each) and a read manifest file are mapped
        // and unmapped whole instead of fragmenting the heap the cluster's objects live in.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
}

/// Hands the allocator's free pages back to the system. Called after a module swap, which frees
/// a compile's worth of memory (tens of MiB) that glibc would otherwise keep in its arenas, and
/// after a manifest file is read (the file and its decoded items, many times the objects kept).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The `-pidfile` file: written at start, removed when the server exits normally.
pub struct Pidfile(std::path::PathBuf);

impl Pidfile {
    pub fn write(path: &std::path::Path) -> anyhow::Result<Pidfile> {
        use anyhow::Context;
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing the pidfile {}", path.display()))?;
        Ok(Pidfile(path.to_path_buf()))
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
