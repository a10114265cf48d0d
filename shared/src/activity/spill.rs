//! The spill file: where activity events go when the store cannot take them right now.
//!
//! Events are appended as JSON lines, one `write` per batch on an append-only file, so a crash can at
//! worst tear the last line (which replay skips and reports). Replay first moves the file aside
//! (`<name>.replaying`), so events spilled while a replay runs start a fresh file; the moved file is
//! deleted only after its events are stored. Storing is idempotent by id, so an interrupted replay
//! simply runs again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
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

/// Events read back for replay.
pub struct Replay {
    pub events: Vec<ActivityEvent>,
    /// Lines that did not decode (a torn last line after a crash).
    pub unreadable_lines: usize,
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

    /// Events spilled and not yet replayed into the store.
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
            *writer = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        let file = writer.as_mut().expect("opened above");
        file.write_all(&lines)?;
        file.flush()?;
        self.pending.fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Moves spilled events aside and reads them back. Call [`SpillFile::finish_replay`] once they are
    /// stored; until then they stay on disk.
    pub fn take_for_replay(&self) -> io::Result<Replay> {
        {
            let mut writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            *writer = None;
            if self.path.exists() {
                if self.replay_path.exists() {
                    // An earlier replay did not finish: fold the new spill into it.
                    let spilled = fs::read(&self.path)?;
                    OpenOptions::new().append(true).open(&self.replay_path)?.write_all(&spilled)?;
                    fs::remove_file(&self.path)?;
                } else {
                    fs::rename(&self.path, &self.replay_path)?;
                }
            }
        }
        let mut replay = Replay { events: Vec::new(), unreadable_lines: 0 };
        let file = match File::open(&self.replay_path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(replay),
            Err(error) => return Err(error),
        };
        for line in BufReader::new(file).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(&line) {
                Ok(event) => replay.events.push(event),
                Err(_) => replay.unreadable_lines += 1,
            }
        }
        Ok(replay)
    }

    /// Forgets a replay whose events are now stored.
    pub fn finish_replay(&self, replayed: &Replay) -> io::Result<()> {
        match fs::remove_file(&self.replay_path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let done = (replayed.events.len() + replayed.unreadable_lines) as u64;
        let _ = self.pending.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |pending| Some(pending.saturating_sub(done)));
        Ok(())
    }
}

fn count_lines(path: &Path) -> u64 {
    File::open(path).map(|file| BufReader::new(file).lines().count() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::ActivityEvent;

    fn event(n: u16) -> ActivityEvent {
        ActivityEvent::http_request("GET", "/health", 200 + n, 1.0)
    }

    #[test]
    fn spilled_events_replay_once_and_survive_until_finished() {
        let folder = tempfile::tempdir().unwrap();
        let spill = SpillFile::new(folder.path().join("nested/spill.jsonl"));
        let spilled = [event(0), event(1)];
        spill.append(&spilled).unwrap();
        assert_eq!(spill.pending(), 2);

        let first = spill.take_for_replay().unwrap();
        assert_eq!(first.events, spilled);
        // Spilled during the replay, and a replay that never finished: both come back next time.
        spill.append(&[event(2)]).unwrap();
        let again = spill.take_for_replay().unwrap();
        assert_eq!(again.events.len(), 3);
        spill.finish_replay(&again).unwrap();
        assert_eq!(spill.pending(), 0);
        assert!(spill.take_for_replay().unwrap().events.is_empty());
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_reported() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("spill.jsonl");
        let spill = SpillFile::new(path.clone());
        spill.append(&[event(0)]).unwrap();
        OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"id\":\"0190").unwrap();
        let reopened = SpillFile::new(path);
        assert_eq!(reopened.pending(), 2);
        let replay = reopened.take_for_replay().unwrap();
        assert_eq!(replay.events.len(), 1);
        assert_eq!(replay.unreadable_lines, 1);
    }
}
