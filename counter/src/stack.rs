//! `StackCounter`: a counter per distinct call stack of its caller.

use std::sync::{Mutex, PoisonError};

use crate::counter::Counter;
use crate::stack_name::frame;

/// Counts events by the caller's stack: each distinct stack of up to `depth` frames gets
/// its own counter, named `name` followed by one `function+0xoffset` line per frame
/// (the offset is from the function's start, so it is the same in every run of one
/// build, whatever the address-space layout).
///
/// ```
/// static SLOW_PATH: telemetry_counter::StackCounter =
///     telemetry_counter::StackCounter::new("mytool/slow", 8);
/// fn fallback() {
///     SLOW_PATH.inc();
/// }
/// fallback();
/// ```
///
/// Names hold function names only: no file paths, no line text, no values. The first
/// increment from a new stack symbolizes it (milliseconds the first time in a process,
/// as debug info loads); later increments from the same stack cost a stack walk and a
/// list search.
pub struct StackCounter {
    name: &'static str,
    depth: usize,
    stacks: Mutex<Vec<SeenStack>>,
}

/// A stack seen before, by its instruction addresses, and the counter it is named by.
type SeenStack = (Box<[usize]>, &'static Counter);

impl StackCounter {
    /// A stack counter named `name` recording up to `depth` frames.
    pub const fn new(name: &'static str, depth: usize) -> StackCounter {
        StackCounter {
            name,
            depth,
            stacks: Mutex::new(Vec::new()),
        }
    }

    /// The name prefix shared by this counter's stacks.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Adds one to the counter of the caller's stack.
    #[inline(never)]
    pub fn inc(&'static self) {
        self.add(1);
    }

    /// Adds `n` to the counter of the caller's stack.
    #[inline(never)]
    pub fn add(&'static self, n: u64) {
        // Frames of the unwinder and of this type come first; leave room for them.
        let limit = self.depth + 16;
        let mut ips = Vec::with_capacity(limit);
        let mut starts = Vec::with_capacity(limit);
        backtrace::trace(|frame| {
            ips.push(frame.ip() as usize);
            starts.push(frame.symbol_address() as usize);
            ips.len() < limit
        });
        let mut stacks = self.stacks.lock().unwrap_or_else(PoisonError::into_inner);
        let counter = match stacks.iter().find(|(key, _)| **key == *ips) {
            Some((_, counter)) => *counter,
            None => {
                let frames = symbolize(&ips, &starts);
                let frames: Vec<&String> = frames
                    .iter()
                    .skip_while(|f| is_own_frame(f))
                    .take(self.depth)
                    .collect();
                let name = crate::stack_name::encode(self.name, &frames);
                let counter = crate::counter::named(&name);
                stacks.push((ips.into_boxed_slice(), counter));
                counter
            }
        };
        drop(stacks);
        counter.add(n);
    }

    /// The counters of every stack seen so far in this process.
    pub fn counters(&self) -> Vec<&'static Counter> {
        let stacks = self.stacks.lock().unwrap_or_else(PoisonError::into_inner);
        stacks.iter().map(|(_, c)| *c).collect()
    }
}

impl std::fmt::Debug for StackCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackCounter")
            .field("name", &self.name)
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

/// Frames of the stack walker and of `StackCounter` itself, which callers never want.
fn is_own_frame(frame: &str) -> bool {
    frame.starts_with("backtrace::")
        || frame.starts_with("telemetry_counter::stack::StackCounter::")
}

/// One frame name per instruction address, `function+0xoffset`, where `starts` holds
/// each function's entry address as the unwinder found it.
fn symbolize(ips: &[usize], starts: &[usize]) -> Vec<String> {
    ips.iter()
        .zip(starts)
        .map(|(&ip, &start)| {
            // Return addresses point after the call; look up the call itself.
            let mut function = None;
            let mut entry = None;
            backtrace::resolve(ip.saturating_sub(1) as *mut std::ffi::c_void, |symbol| {
                // The last symbol is the outermost, real function: inlined callees come
                // first, and only the real function's entry is what `start` measures.
                function = symbol.name().map(|n| format!("{n:#}"));
                entry = symbol.addr().map(|a| a as usize);
            });
            // Where the unwinder knows no entry (Windows: it reports the address
            // itself), the symbol table's is used.
            let start = Some(start)
                .filter(|&s| s != 0 && s < ip)
                .or(entry.filter(|&s| s != 0 && s < ip));
            let offset = start.map_or(0, |s| ip - s);
            frame(function.as_deref().unwrap_or("?"), offset)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    static STACKS: StackCounter = StackCounter::new("test/stack", 3);

    #[inline(never)]
    fn from_here() {
        STACKS.inc();
    }

    #[inline(never)]
    fn from_there() {
        STACKS.inc();
    }

    #[test]
    fn distinct_stacks_distinct_counters() {
        for _ in 0..2 {
            from_here();
        }
        from_there();
        let counters = STACKS.counters();
        assert_eq!(counters.len(), 2, "{counters:?}");
        let here = counters
            .iter()
            .find(|c| c.name().contains("from_here"))
            .expect("a counter for from_here");
        assert_eq!(crate::testing::read(here), 2);
        let lines: Vec<&str> = here.name().split('\n').collect();
        assert_eq!(lines[0], "test/stack");
        assert!(
            lines[1].starts_with("telemetry_counter::stack::tests::from_here+0x"),
            "{lines:?}"
        );
        assert!(
            !lines[1].ends_with("+0x0"),
            "an offset into the function: {lines:?}"
        );
        assert_eq!(lines.len(), 4, "depth 3: {lines:?}");
        assert!(
            !here.name().contains(".rs"),
            "no file paths: {}",
            here.name()
        );
    }

    #[test]
    fn frame_format() {
        assert_eq!(frame("a::b", 0x1f), "a::b+0x1f");
    }
}
