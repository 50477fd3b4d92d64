//! The process's descriptor limit (`RLIMIT_NOFILE`): read it, and raise the soft limit.

use std::io;

/// The soft and hard `RLIMIT_NOFILE` of the process (`u64::MAX` for "unlimited").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The limit in force.
    pub soft: u64,
    /// The most the soft limit can be raised to without privileges.
    pub hard: u64,
}

/// The current descriptor limit; `None` where there is none to read (non-Unix) or it cannot be
/// read.
pub fn nofile_limit() -> Option<NofileLimit> {
    #[cfg(unix)]
    {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
        (rc == 0).then(|| NofileLimit {
            soft: as_u64(rl.rlim_cur),
            hard: as_u64(rl.rlim_max),
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(unix)]
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn as_u64(v: libc::rlim_t) -> u64 {
    if v == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        u64::try_from(v).unwrap_or(u64::MAX)
    }
}

/// Raises the soft descriptor limit to the hard limit (the common soft default, 1,024, is
/// reached by a thousand idle connections). Returns the limits before and after; a no-op where
/// there is no such limit.
pub fn raise_nofile_limit() -> io::Result<(Option<NofileLimit>, Option<NofileLimit>)> {
    let before = nofile_limit();
    #[cfg(unix)]
    if let Some(limit) = before {
        if limit.soft < limit.hard {
            // macOS refuses more than OPEN_MAX for the soft limit, even under a higher hard limit.
            #[cfg(target_os = "macos")]
            let target = limit.hard.min(10_240);
            #[cfg(not(target_os = "macos"))]
            let target = limit.hard;
            let rl = libc::rlimit {
                rlim_cur: to_rlim(target),
                rlim_max: to_rlim(limit.hard),
            };
            // SAFETY: setrlimit reads one `rlimit` through a valid pointer.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok((before, nofile_limit()))
}

#[cfg(unix)]
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn to_rlim(v: u64) -> libc::rlim_t {
    if v == u64::MAX {
        libc::RLIM_INFINITY
    } else {
        libc::rlim_t::try_from(v).unwrap_or(libc::RLIM_INFINITY)
    }
}
