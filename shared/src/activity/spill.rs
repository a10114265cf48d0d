//! The spill file: where activity events go when the store cannot take them right now.
//!
//! Events are appended as JSON lines on an append-only file. Before the first append of a process,
//! a missing final newline (a line torn by a crash or a full disk) is completed, so a torn line never
//! swallows the next event; replay skips and reports it.
//!
//! Replay first moves the file aside (`<name>.replaying`), so events spilled while a replay runs
//! start a fresh file; it then reads the moved file a chunk at a time (memory stays bounded however
//! long the outage was) and deletes it only once every chunk is stored. An interrupted replay is
//! resumed first next time; storing is idempotent by id, so replaying a chunk twice is harmless.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ActivityEvent;

/// An append-only JSON-lines file of events waiting for the store.
pub struct SpillFile {
    path: PathBuf,
    replay_path: PathBuf,
    writer: Mutex<Option<File>>,
    pending: AtomicU64,
}

/// A replay in progress: the moved-aside file, read a chunk at a time.
pub struct Replay {
    reader: BufReader<File>,
    lines: u64,
    /// Lines that did not decode (a line torn by a crash).
    pub unreadable_lines: usize,
    /// Events read so far.
    pub events_read: usize,
}

impl Replay {
    /// The next `max` events, or none at the end of the file.
    pub fn next_chunk(&mut self, max: usize) -> io::Result<Vec<ActivityEvent>> {
        let mut events = Vec::with_capacity(max.min(1024));
        let mut line = String::new();
        while events.len() < max {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                break;
            }
            self.lines += 1;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(&line) {
                Ok(event) => events.push(event),
                Err(_) => self.unreadable_lines += 1,
            }
        }
        self.events_read += events.len();
        Ok(events)
    }
}

impl SpillFile {
    /// A spill file at `path`; counts what earlier runs left there.
    pub fn new(path: PathBuf) -> Self {
        let mut replay_name = path.file_name().map(|name| name.to_os_string()).unwrap_or_else(|| "activity-spill.jsonl".into());
        replay_name.push(".replaying");
        let replay_path = path.with_file_name(replay_name);
        let pending = count_lines(&path) + count_lines(&replay_path);
        SpillFile { path, replay_path, writer: Mutex::new(None), pending: AtomicU64::new(pending) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events spilled and not yet replayed into the store (lines, counting any torn one).
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Appends `events` in one write.
    pub fn append(&self, events: &[ActivityEvent]) -> io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::with_capacity(events.len() * 256);
        for event in events {
            serde_json::to_writer(&mut lines, event).map_err(io::Error::other)?;
            lines.push(b'\n');
        }
        let mut writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if writer.is_none() {
            if let Some(folder) = self.path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
                fs::create_dir_all(folder)?;
            }
            let mut file = OpenOptions::new().create(true).read(true).append(true).open(&self.path)?;
            complete_last_line(&mut file)?;
            *writer = Some(file);
        }
        let file = writer.as_mut().expect("opened above");
        file.write_all(&lines)?;
        file.flush()?;
        self.pending.fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Starts a replay: an earlier unfinished one if there is one, else the current spill moved
    /// aside. `None` when nothing waits.
    pub fn start_replay(&self) -> io::Result<Option<Replay>> {
        if !self.replay_path.exists() {
            let mut writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            *writer = None;
            match fs::rename(&self.path, &self.replay_path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(error),
            }
        }
        match File::open(&self.replay_path) {
            Ok(file) => Ok(Some(Replay { reader: BufReader::new(file), lines: 0, unreadable_lines: 0, events_read: 0 })),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Forgets a replay whose events are all stored.
    pub fn finish_replay(&self, replay: Replay) -> io::Result<()> {
        match fs::remove_file(&self.replay_path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let _ = self.pending.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |pending| Some(pending.saturating_sub(replay.lines)));
        Ok(())
    }
}

/// Ends a non-empty file with a newline, so the next line starts clean.
fn complete_last_line(file: &mut File) -> io::Result<()> {
    let length = file.metadata()?.len();
    if length == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(length - 1))?;
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(())
}

fn count_lines(path: &Path) -> u64 {
    File::open(path).map(|file| BufReader::new(file).split(b'\n').count() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::ActivityEvent;

    fn event(n: u16) -> ActivityEvent {
        ActivityEvent::http_request("GET", "/health", 200 + n, 1.0)
    }

    fn read_all(replay: &mut Replay) -> Vec<ActivityEvent> {
        let mut all = Vec::new();
        loop {
            let chunk = replay.next_chunk(2).unwrap();
            if chunk.is_empty() {
                return all;
            }
            all.extend(chunk);
        }
    }

    #[test]
    fn spilled_events_replay_in_chunks_and_survive_until_finished() {
        let folder = tempfile::tempdir().unwrap();
        let spill = SpillFile::new(folder.path().join("nested/spill.jsonl"));
        let spilled = [event(0), event(1), event(2)];
        spill.append(&spilled).unwrap();
        assert_eq!(spill.pending(), 3);

        let mut first = spill.start_replay().unwrap().unwrap();
        assert_eq!(first.next_chunk(2).unwrap(), spilled[..2]);
        // Spilled during the replay: waits in a fresh file.
        let later = event(3);
        spill.append(std::slice::from_ref(&later)).unwrap();
        // A replay that never finished is resumed from its start next time.
        drop(first);
        let mut again = spill.start_replay().unwrap().unwrap();
        assert_eq!(read_all(&mut again), spilled);
        spill.finish_replay(again).unwrap();
        assert_eq!(spill.pending(), 1);

        let mut last = spill.start_replay().unwrap().unwrap();
        assert_eq!(read_all(&mut last), [later]);
        spill.finish_replay(last).unwrap();
        assert_eq!(spill.pending(), 0);
        assert!(spill.start_replay().unwrap().is_none());
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_does_not_swallow_the_next_event() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("spill.jsonl");
        let (first, second) = (event(0), event(1));
        SpillFile::new(path.clone()).append(std::slice::from_ref(&first)).unwrap();
        OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"id\":\"0190").unwrap();

        let reopened = SpillFile::new(path);
        assert_eq!(reopened.pending(), 2);
        reopened.append(std::slice::from_ref(&second)).unwrap();
        let mut replay = reopened.start_replay().unwrap().unwrap();
        assert_eq!(read_all(&mut replay), [first, second]);
        assert_eq!(replay.unreadable_lines, 1);
        reopened.finish_replay(replay).unwrap();
        assert_eq!(reopened.pending(), 0);
    }
}
