//! Whether a process still runs in a tree a task ran in (its working directory there): a tree
//! such a process could write into is not lent to the next task.
//!
//! Looking at a process costs a `readlink` of `/proc/PID/cwd` (~15 µs here: permission checks
//! and a path the kernel builds), so looking at every process of the host after every task
//! costs milliseconds on a busy host — more than a trivial task itself. A process the task left
//! was created while its tree was lent, so it carries one of the ids handed out since: those
//! after the last id handed out when the tree was lent, up to the last one handed out now
//! (`/proc/loadavg` says which), wrapping around at `pid_max`. Only those are looked at — unless
//! the lease lasted long enough for the ids to go all the way round, which no count of ids can
//! tell: then every process is. Either way a process that started before the lease (its start
//! time, a small read) is passed over before what it holds (its descriptors and mappings, many
//! reads) is looked at, and so is a thread of another process.
//!
//! A process started elsewhere that moves into a tree later is not looked for: the trees'
//! directory is private (0700), so only the agent's own user could, and that user can write into
//! any tree anyway. Nor is one an earlier task of the tree left that held nothing of it when that
//! task ended and opens a file of it later (a server a later task tells the path): no look at
//! what processes hold can see that; not keeping a tree while any process its tasks left lives
//! would, at the price of a new tree whenever a build leaves a daemon (gradle, sccache).

use std::path::Path;
use std::time::{Duration, Instant};

/// Faster than any host creates processes and threads (each takes an id): a lease shorter than
/// `pid_max` ids at this rate cannot have seen the ids go all the way round.
const IDS_PER_SECOND_AT_MOST: u64 = 1_000_000;

/// Ranges of ids up to this long are looked up id by id; longer ones by listing `/proc`.
const LOOKED_UP_ONE_BY_ONE: u64 = 2048;

/// The ids handed out before a tree was lent, and when it was lent (in clock ticks since the
/// host started, as `/proc/PID/stat` says when a process started).
#[derive(Debug, Clone, Copy)]
pub struct PidMark {
    last: u32,
    at: Instant,
    ticks: Option<u64>,
}

impl PidMark {
    /// Now; None where `/proc` does not say (every process is looked at then).
    pub fn now() -> Option<Self> {
        Some(Self { last: last_pid()?, at: Instant::now(), ticks: uptime_ticks() })
    }
}

/// Which ids a process created since a mark may carry.
#[derive(Debug, PartialEq, Eq)]
enum Since {
    /// `after < id <= upto`, or, wrapped, `id > after || id <= upto`.
    Ids { after: u32, upto: u32, wrapped: bool, count: u64 },
    /// Any: the ids may have gone all the way round.
    Any,
}

impl Since {
    fn between(mark: PidMark, last_now: u32, pid_max: u32, elapsed: Duration) -> Self {
        let could_hand_out = elapsed.as_secs_f64() * IDS_PER_SECOND_AT_MOST as f64;
        if pid_max == 0 || could_hand_out >= f64::from(pid_max) / 2.0 {
            return Self::Any;
        }
        let wrapped = last_now < mark.last;
        let count = if wrapped {
            u64::from(pid_max - mark.last) + u64::from(last_now)
        } else {
            u64::from(last_now - mark.last)
        };
        Self::Ids { after: mark.last, upto: last_now, wrapped, count }
    }

    fn contains(&self, pid: u32) -> bool {
        match *self {
            Self::Any => true,
            Self::Ids { after, upto, wrapped: false, .. } => pid > after && pid <= upto,
            Self::Ids { after, upto, wrapped: true, .. } => pid > after || pid <= upto,
        }
    }
}

/// A process whose working directory is in `root` and that was created since `since` (any
/// process of the host without a mark), if there is one.
pub fn process_inside(root: &Path, since: Option<PidMark>) -> Option<u32> {
    let physical = std::fs::canonicalize(root).ok()?;
    // A process that started before the lease is none the task left (looking at that costs a
    // small read; what it holds, many).
    let started_after = since.and_then(|mark| mark.ticks);
    let inside = |pid: u32| {
        started_after.is_none_or(|ticks| start_ticks(pid).is_some_and(|started| started >= ticks))
            && holds_something_in(pid, &physical)
    };
    let (since, pid_max) = match (since, last_pid(), pid_max()) {
        (Some(mark), Some(last_now), Some(pid_max)) => {
            (Since::between(mark, last_now, pid_max, mark.at.elapsed()), pid_max)
        }
        _ => (Since::Any, u32::MAX),
    };
    if let Since::Ids { after, count, .. } = since
        && count <= LOOKED_UP_ONE_BY_ONE
    {
        // The ids after `after`, past `pid_max` from 0 again; `contains` keeps those handed out.
        let ids = (1..=count).map(|step| ((u64::from(after) + step) % u64::from(pid_max)) as u32);
        return ids.filter(|&pid| pid != 0 && since.contains(pid)).find(|&pid| inside(pid));
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        if since.contains(pid) && inside(pid) {
            return Some(pid);
        }
    }
    None
}

/// Whether process `pid` can still reach into the tree at `physical`: its working or root
/// directory there, a descriptor open on something there, or a file there mapped. A daemon
/// opens its log and maps its files, then starts a session of its own and goes to `/`: it
/// writes into the tree all the same, through what it holds.
fn holds_something_in(pid: u32, physical: &Path) -> bool {
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    let there = |link: &Path| std::fs::read_link(link).is_ok_and(|target| target.starts_with(physical));
    if there(&proc.join("cwd")) || there(&proc.join("root")) {
        return true;
    }
    // A thread of another process shares that process's descriptors and mappings: they are
    // looked at with the process, if it is one the task left.
    if thread_of_another(pid) {
        return false;
    }
    if let Ok(fds) = std::fs::read_dir(proc.join("fd"))
        && fds.flatten().any(|fd| there(&fd.path()))
    {
        return true;
    }
    // Mapped files: `/proc/PID/maps` names each one's path last on its line (" (deleted)"
    // after it when it is gone, still under the tree).
    let Ok(maps) = std::fs::read(proc.join("maps")) else { return false };
    let physical = physical.as_os_str().as_encoded_bytes();
    maps.split(|&byte| byte == b'\n').any(|line| {
        // The path is the last field, and the first '/' on the line begins it.
        line.iter().position(|&byte| byte == b'/').is_some_and(|at| {
            let path = &line[at..];
            path.starts_with(physical) && matches!(path.get(physical.len()), None | Some(b'/' | b' '))
        })
    })
}

/// Whether id `pid` is a thread of a process with another id (`Tgid` in its status).
fn thread_of_another(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let tgid = status.lines().find_map(|line| line.strip_prefix("Tgid:")).and_then(|id| id.trim().parse::<u32>().ok());
    tgid.is_some_and(|tgid| tgid != pid)
}

/// When process `pid` started, in clock ticks since the host did (`/proc/PID/stat`'s 22nd
/// field, counted after the command name, which may hold spaces and parentheses).
fn start_ticks(pid: u32) -> Option<u64> {
    // Read into a buffer of its own, without asking its size first (procfs says 0): read for
    // every process when all of them are looked at.
    let path = format!("/proc/{pid}/stat");
    let mut buffer = [0u8; 2048];
    let stat: std::borrow::Cow<'_, [u8]> = match read_small(&path, &mut buffer) {
        Some(len) => std::borrow::Cow::Borrowed(&buffer[..len]),
        None => std::borrow::Cow::Owned(std::fs::read(&path).ok()?),
    };
    let after_name = stat.iter().rposition(|&byte| byte == b')')?;
    let fields = std::str::from_utf8(&stat[after_name + 1..]).ok()?;
    // Field 3 (the state) is the first after the name: the start time is 19 further on.
    fields.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// `path` read whole into `buffer`: its length, or None when it does not fit (or cannot be
/// read).
fn read_small(path: &str, buffer: &mut [u8]) -> Option<usize> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = 0;
    loop {
        match file.read(&mut buffer[len..]) {
            Ok(0) => return Some(len),
            Ok(read) => {
                len += read;
                if len == buffer.len() {
                    return None;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Now, in clock ticks since the host started (the boot-time clock `/proc/PID/stat` counts
/// starts by; no file read), less two ticks: a process that started as the lease did is
/// counted as after it.
fn uptime_ticks() -> Option<u64> {
    static TICKS_PER_SECOND: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let per_second = (*TICKS_PER_SECOND.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|ticks| u64::try_from(ticks).ok())
    }))?;
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    let seconds = u64::try_from(now.tv_sec()).ok()?;
    let fraction = u64::try_from(now.tv_nsec()).ok()? * per_second / 1_000_000_000;
    Some((seconds * per_second + fraction).saturating_sub(2))
}

/// The last process id handed out in this process's pid namespace (`/proc/loadavg`'s fifth
/// field).
fn last_pid() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_ascii_whitespace().nth(4)?.parse().ok()
}

/// Ids wrap around past this.
fn pid_max() -> Option<u32> {
    static PID_MAX: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *PID_MAX.get_or_init(|| std::fs::read_to_string("/proc/sys/kernel/pid_max").ok()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(last: u32) -> PidMark {
        PidMark { last, at: Instant::now(), ticks: None }
    }

    #[test]
    fn ids_since_a_mark_are_those_after_it_up_to_the_last_one_wrapping_at_pid_max() {
        let since = Since::between(mark(100), 110, 32768, Duration::from_millis(5));
        assert_eq!(since, Since::Ids { after: 100, upto: 110, wrapped: false, count: 10 });
        assert!(since.contains(101) && since.contains(110));
        assert!(!since.contains(100) && !since.contains(111) && !since.contains(7));

        let since = Since::between(mark(32760), 305, 32768, Duration::from_millis(5));
        assert_eq!(since, Since::Ids { after: 32760, upto: 305, wrapped: true, count: 313 });
        assert!(since.contains(32761) && since.contains(32767) && since.contains(300) && since.contains(305));
        assert!(!since.contains(32760) && !since.contains(306) && !since.contains(1000));

        let none = Since::between(mark(100), 100, 32768, Duration::from_millis(5));
        assert!(!none.contains(100) && !none.contains(101));
    }

    #[test]
    fn a_lease_long_enough_for_the_ids_to_go_round_looks_at_every_process() {
        assert_eq!(Since::between(mark(100), 110, 32768, Duration::from_millis(20)), Since::Any);
        assert_eq!(Since::between(mark(100), 110, 4_194_304, Duration::from_secs(3)), Since::Any);
        assert!(matches!(Since::between(mark(100), 110, 4_194_304, Duration::from_secs(1)), Since::Ids { .. }));
        assert!(Since::Any.contains(1) && Since::Any.contains(u32::MAX));
    }

    #[test]
    fn a_process_started_after_the_mark_is_found_in_the_tree_and_one_elsewhere_is_not() {
        let tree = tempfile::tempdir().expect("tree");
        let elsewhere = tempfile::tempdir().expect("elsewhere");
        let mark = PidMark::now().expect("/proc/loadavg");
        let mut outside =
            std::process::Command::new("sleep").arg("30").current_dir(elsewhere.path()).spawn().expect("sleep");
        assert_eq!(process_inside(tree.path(), Some(mark)), None, "nothing runs in the tree");
        let mut inside = std::process::Command::new("sleep").arg("30").current_dir(tree.path()).spawn().expect("sleep");
        assert_eq!(process_inside(tree.path(), Some(mark)), Some(inside.id()));
        assert_eq!(process_inside(tree.path(), None), Some(inside.id()), "every process looked at");
        // Elsewhere, but holding a file of the tree open (a daemon's log).
        std::fs::write(tree.path().join("log"), "").expect("log");
        let mut holding = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 3>>\"$0\"; exec sleep 30")
            .arg(tree.path().join("log"))
            .current_dir(elsewhere.path())
            .spawn()
            .expect("sh");
        let _ = inside.kill();
        let _ = inside.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while process_inside(tree.path(), Some(mark)) != Some(holding.id()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(process_inside(tree.path(), Some(mark)), Some(holding.id()), "a descriptor open in the tree");
        for child in [&mut outside, &mut inside, &mut holding] {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(process_inside(tree.path(), Some(mark)), None, "gone");
    }

    #[test]
    fn a_process_older_than_the_lease_is_not_counted_as_one_the_task_left() {
        let tree = tempfile::tempdir().expect("tree");
        let mut old = std::process::Command::new("sleep").arg("30").current_dir(tree.path()).spawn().expect("sleep");
        let started = start_ticks(old.id()).expect("its start time");
        // The clock moves on in ticks (a hundredth of a second, most often).
        let deadline = Instant::now() + Duration::from_secs(5);
        while uptime_ticks().expect("uptime") <= started && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Every id looked at (a range too long for one by one), the start time deciding.
        let mark = PidMark { last: 1, at: Instant::now(), ticks: uptime_ticks() };
        assert_eq!(process_inside(tree.path(), Some(mark)), None, "it started before the lease");
        assert_eq!(process_inside(tree.path(), None), Some(old.id()), "without a mark it counts");
        let _ = old.kill();
        let _ = old.wait();
    }

    #[test]
    fn a_process_start_is_read_from_its_stat_and_comes_before_now() {
        let own = std::process::id();
        let started = start_ticks(own).expect("this process's start");
        let now = uptime_ticks().expect("now");
        assert!(started <= now + 2, "started {started}, now {now}");
        assert_eq!(start_ticks(u32::MAX), None, "no such process");
        // Too large for the buffer: None, never a part of it.
        let mut tiny = [0u8; 8];
        assert_eq!(read_small(&format!("/proc/{own}/stat"), &mut tiny), None);
    }
}
