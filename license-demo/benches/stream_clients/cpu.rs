//! CPU time of a process from `/proc/<pid>/stat`.

/// CPU seconds (user + system) of a process so far; `proc` is a pid or `self`.
fn cpu_seconds(proc: &str) -> f64 {
    let (user, system) = cpu_split(proc);
    user + system
}

/// CPU seconds of a process so far, user and system (kernel: mostly socket writes) apart.
fn cpu_split(proc: &str) -> (f64, f64) {
    let path = format!("/proc/{proc}/stat");
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    // The command name (field 2) is in parentheses and may hold spaces: fields 3.. follow the
    // last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("/proc stat has (comm)") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |field: usize| -> u64 {
        fields[field - 3]
            .parse()
            .unwrap_or_else(|e| panic!("field {field} of {path}: {e}"))
    };
    // SAFETY: sysconf only reads a configuration value.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(per_sec > 0, "sysconf(_SC_CLK_TCK) failed");
    (
        ticks(14) as f64 / per_sec as f64,
        ticks(15) as f64 / per_sec as f64,
    )
}

/// CPU seconds of the server, this process and the load generator, read together.
#[derive(Clone, Copy)]
pub(crate) struct CpuTimes {
    pub(crate) server: f64,
    pub(crate) server_system: f64,
    pub(crate) bench: f64,
    pub(crate) load: f64,
}

impl CpuTimes {
    pub(crate) fn now(server: u32, load: u32) -> CpuTimes {
        let (user, system) = cpu_split(&server.to_string());
        CpuTimes {
            server: user + system,
            server_system: system,
            bench: cpu_seconds("self"),
            load: cpu_seconds(&load.to_string()),
        }
    }
}
