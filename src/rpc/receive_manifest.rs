//! The agent's side of a task's manifest: whole (ManifestChunk messages, then ManifestEnd), or
//! by outline — the parts the agent cannot take from the manifest it holds for the workspace
//! (what the tree an earlier task left held) are asked for, and only their entries travel.
//! Every part is checked against its name in the outline, whichever side it came from.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tonic::{Status, Streaming};

use super::proto::execute_request::Item;
use super::proto::execute_response::Event;
use super::proto::{ExecuteRequest, ExecuteResponse, FileEntry, ManifestOutline, NeedParts};
use super::receive::{Traffic, blocking};
use super::server::Outbound;
use crate::workspace::outline::{self, MAX_PART_ENTRIES, Part};
use crate::workspace::{Entry, Manifest, RelPath};

/// Reads the manifest, whole or by outline (`known`: the manifest held for this workspace, if
/// any), checking counts, entries and the limit of `max_entries`.
pub(super) async fn receive_manifest(
    inbound: &mut Streaming<ExecuteRequest>,
    max_entries: u64,
    known: Option<Arc<Manifest>>,
    tx: &Outbound,
    traffic: &Traffic,
) -> Result<Manifest, Status> {
    match next(inbound, "the manifest").await? {
        Item::Outline(first) => {
            let parts = receive_outline(inbound, first, max_entries).await?;
            by_outline(inbound, parts, known, tx, traffic).await
        }
        first => {
            let mut manifest = Manifest::default();
            let too_many = format!("the workspace has more than {max_entries} entries");
            let count = receive_entries(inbound, Some(first), (max_entries, &too_many), |entries| {
                super::manifest::extend_from_wire(&mut manifest, entries)
            })
            .await?;
            traffic.manifest_entries_received.fetch_add(count, Ordering::Relaxed);
            Ok(manifest)
        }
    }
}

/// The next message's item; the call ending or an empty message is an error.
async fn next(inbound: &mut Streaming<ExecuteRequest>, receiving: &str) -> Result<Item, Status> {
    match inbound.message().await? {
        Some(ExecuteRequest { item: Some(item) }) => Ok(item),
        // A message with no item this agent knows: empty, or one a newer master sends.
        Some(_) => Err(Status::invalid_argument(format!(
            "a message this agent (sloth-runner {}) does not know while receiving {receiving}: is the master a newer \
             version?",
            env!("CARGO_PKG_VERSION")
        ))),
        None => Err(Status::cancelled(format!("the master ended the call before {receiving} was complete"))),
    }
}

/// ManifestChunk messages (from `first`, when given) until ManifestEnd, each batch handed to
/// `take`; checks the announced count and the limit (`too_many` says what past it is);
/// returns the count.
async fn receive_entries(
    inbound: &mut Streaming<ExecuteRequest>,
    mut first: Option<Item>,
    (max_entries, too_many): (u64, &str),
    mut take: impl FnMut(Vec<FileEntry>) -> Result<(), String>,
) -> Result<u64, Status> {
    let mut received: u64 = 0;
    loop {
        let item = match first.take() {
            Some(item) => item,
            None => next(inbound, "the manifest").await?,
        };
        match item {
            Item::ManifestChunk(chunk) => {
                received += chunk.entries.len() as u64;
                if received > max_entries {
                    return Err(Status::invalid_argument(too_many));
                }
                take(chunk.entries).map_err(Status::invalid_argument)?;
            }
            Item::ManifestEnd(end) => {
                if end.entries != received {
                    return Err(Status::invalid_argument(format!(
                        "manifest truncated: announced {} entries, received {received}",
                        end.entries
                    )));
                }
                return Ok(received);
            }
            _ => return Err(Status::invalid_argument("unexpected message while receiving the manifest")),
        }
    }
}

/// The outline's messages, from `first` to the one marked last, checked: a whole hash and a
/// count in range for every part, no more entries than the limit.
async fn receive_outline(
    inbound: &mut Streaming<ExecuteRequest>,
    first: ManifestOutline,
    max_entries: u64,
) -> Result<Vec<Part>, Status> {
    let mut parts = Vec::new();
    let mut total: u64 = 0;
    let mut message = first;
    loop {
        if message.hashes.len() != message.entries.len() {
            return Err(Status::invalid_argument(format!(
                "manifest outline: {} hashes for {} counts",
                message.hashes.len(),
                message.entries.len()
            )));
        }
        for (hash, entries) in message.hashes.iter().zip(&message.entries) {
            let hash = <[u8; 32]>::try_from(hash.as_slice())
                .map_err(|_| Status::invalid_argument(format!("manifest outline: part {}: bad hash", parts.len())))?;
            if *entries == 0 || *entries as usize > MAX_PART_ENTRIES {
                return Err(Status::invalid_argument(format!(
                    "manifest outline: part {} holds {entries} entries (1 to {MAX_PART_ENTRIES})",
                    parts.len()
                )));
            }
            total += u64::from(*entries);
            if total > max_entries {
                return Err(Status::invalid_argument(format!("the workspace has more than {max_entries} entries")));
            }
            parts.push(Part { hash: blake3::Hash::from_bytes(hash), entries: *entries });
        }
        if message.last {
            return Ok(parts);
        }
        message = match next(inbound, "the manifest's outline").await? {
            Item::Outline(more) => more,
            _ => return Err(Status::invalid_argument("unexpected message while receiving the manifest's outline")),
        };
    }
}

/// Asks for the parts `known` cannot give, receives their entries, and puts the manifest
/// together in the outline's order.
async fn by_outline(
    inbound: &mut Streaming<ExecuteRequest>,
    parts: Vec<Part>,
    known: Option<Arc<Manifest>>,
    tx: &Outbound,
    traffic: &Traffic,
) -> Result<Manifest, Status> {
    let held = match &known {
        Some(known) => {
            let known = Arc::clone(known);
            blocking(move || Ok(outline::index_of(&known.entries))).await?
        }
        None => Default::default(),
    };
    // A hash names its entries, and so their number: a part held under it holds as many.
    for (index, part) in parts.iter().enumerate() {
        if let Some(&(_, count)) = held.get(&part.hash)
            && count != part.entries
        {
            return Err(Status::invalid_argument(format!(
                "manifest outline: part {index} holds {} entries, but the part its hash names holds {count}",
                part.entries
            )));
        }
    }
    let needed: Vec<u32> = (0..parts.len()).filter(|&i| !held.contains_key(&parts[i].hash)).map(|i| i as u32).collect();
    ask_for_parts(&needed, tx).await?;
    let expected: u64 = needed.iter().map(|&i| u64::from(parts[i as usize].entries)).sum();
    let mut wire = Vec::with_capacity(expected as usize);
    let too_many = format!("manifest parts: more entries than the parts asked for hold ({expected})");
    let received = receive_entries(inbound, None, (expected, &too_many), |entries| {
        wire.extend(entries);
        Ok(())
    })
    .await?;
    if received != expected {
        return Err(Status::invalid_argument(format!(
            "manifest parts: {received} entries for parts holding {expected}"
        )));
    }
    traffic.manifest_entries_received.fetch_add(received, Ordering::Relaxed);
    tracing::debug!(parts = parts.len(), asked = needed.len(), entries = received, "manifest by outline");
    assemble(&parts, known.as_deref(), &held, wire).map_err(Status::invalid_argument)
}

/// The manifest `parts` outline, in order: each part taken from `known` where `held` (its
/// parts by hash) has it, else from the next entries of `wire`, checked against the part's
/// name — and every entry checked as a whole manifest's are.
fn assemble(
    parts: &[Part],
    known: Option<&Manifest>,
    held: &std::collections::HashMap<blake3::Hash, (usize, u32)>,
    wire: Vec<FileEntry>,
) -> Result<Manifest, String> {
    let known_entries: Vec<(&RelPath, &Entry)> = known.map(|m| m.entries.iter().collect()).unwrap_or_default();
    let mut wire = wire.into_iter();
    let mut all: Vec<(RelPath, Entry)> = Vec::with_capacity(parts.iter().map(|part| part.entries as usize).sum());
    for (index, part) in parts.iter().enumerate() {
        let entries: Vec<(RelPath, Entry)> = match held.get(&part.hash) {
            Some(&(start, count)) if count == part.entries => known_entries
                .get(start..start + count as usize)
                .ok_or_else(|| format!("manifest part {index}: not where it was found"))?
                .iter()
                .map(|(path, entry)| ((*path).clone(), (*entry).clone()))
                .collect(),
            _ => {
                let entries = wire
                    .by_ref()
                    .take(part.entries as usize)
                    .map(super::manifest::from_wire)
                    .collect::<Result<Vec<_>, _>>()?;
                if outline::hash_of(entries.iter().map(|(path, entry)| (path, entry))) != *part {
                    return Err(format!("manifest part {index}: its entries are not the ones the outline names"));
                }
                entries
            }
        };
        all.extend(entries);
    }
    if wire.next().is_some() {
        return Err("manifest parts: more entries than the parts asked for".to_owned());
    }
    // A master sends its entries in order: then the map is built at once, and order alone
    // rules out a path twice. Anything else is checked entry by entry.
    if !all.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        let mut manifest = Manifest::default();
        for (path, entry) in all {
            super::manifest::insert_checked(&mut manifest, path, entry)?;
        }
        return Ok(manifest);
    }
    for (at, (path, entry)) in all.iter().enumerate() {
        if let Entry::File { link: Some(leader), .. } = entry {
            let before = &all[..at];
            let leader_ok = before
                .binary_search_by(|(candidate, _)| candidate.cmp(leader))
                .is_ok_and(|found| matches!(before[found].1, Entry::File { link: None, .. }));
            if !leader_ok {
                return Err(format!(
                    "manifest entry '{path}': a hard link to '{leader}', which is not a file before it"
                ));
            }
        }
    }
    Ok(Manifest { entries: all.into_iter().collect(), ..Manifest::default() })
}

/// Sends NeedParts messages for `parts` (at least one, the last one marked).
async fn ask_for_parts(parts: &[u32], tx: &Outbound) -> Result<(), Status> {
    let mut chunks: Vec<&[u32]> = parts.chunks(super::NEED_CHUNK_HASHES).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let need = NeedParts { parts: chunk.to_vec(), last: i == last };
        if tx.send(Ok(ExecuteResponse { event: Some(Event::NeedParts(need)) })).await.is_err() {
            return Err(Status::cancelled("the master went away"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::rpc::manifest::to_wire;
    use crate::workspace::Timestamp;

    /// Entries named `d<n>/f<m>` (and their directories), of a few contents, modes and times.
    fn entries(files: Vec<(u16, u8)>) -> BTreeMap<RelPath, Entry> {
        let mut entries = BTreeMap::new();
        for (name, content) in files {
            let path = RelPath::parse(format!("d{}/f{name}", name % 7).as_bytes()).expect("path");
            let mtime = Timestamp { secs: 1_700_000_000, nanos: u32::from(content) };
            entries.insert(path.parent().expect("a parent"), Entry::Dir { mode: 0o755, mtime });
            let entry = match content % 5 {
                0 => Entry::Symlink { target: vec![b'x'; usize::from(content)], mtime },
                _ => Entry::File {
                    mode: 0o644 | (u32::from(content % 2) * 0o111),
                    size: u64::from(content),
                    hash: blake3::hash(&[content]),
                    mtime,
                    link: None,
                },
            };
            entries.insert(path, entry);
        }
        entries
    }

    /// What the agent does with `target`'s outline, holding `known`: the parts it asks for,
    /// sent as the master sends them.
    fn over_the_wire(known: &Manifest, target: &Manifest) -> (Vec<Part>, Vec<FileEntry>, Result<Manifest, String>) {
        let parts = outline::outline(&target.entries);
        let held = outline::index_of(&known.entries);
        let mut wire = Vec::new();
        let mut all = target.entries.iter();
        for part in &parts {
            let entries: Vec<_> = all.by_ref().take(part.entries as usize).collect();
            if !held.contains_key(&part.hash) {
                wire.extend(entries.into_iter().map(|(path, entry)| to_wire(path, entry)));
            }
        }
        let assembled = assemble(&parts, Some(known), &held, wire.clone());
        (parts, wire, assembled)
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, cases: 64, ..Default::default() })]
        /// Whatever the agent holds, the manifest it puts together is the master's, entry for
        /// entry; and what travels is only the parts it lacked.
        #[test]
        fn the_assembled_manifest_is_the_masters(
            before in proptest::collection::vec((0u16..3000, 0u8..40), 0..1500),
            edits in proptest::collection::vec((0u16..3000, 0u8..40), 0..20),
            removed in proptest::collection::vec(0u16..3000, 0..20),
        ) {
            let known = Manifest { entries: entries(before.clone()), ..Default::default() };
            let mut after: Vec<(u16, u8)> = before.into_iter().filter(|(name, _)| !removed.contains(name)).collect();
            after.extend(edits.iter().copied());
            let target = Manifest { entries: entries(after), ..Default::default() };
            let (parts, wire, assembled) = over_the_wire(&known, &target);
            let assembled = assembled.map_err(TestCaseError::fail)?;
            prop_assert_eq!(&assembled.entries, &target.entries);
            prop_assert_eq!(parts.iter().map(|part| part.entries as usize).sum::<usize>(), target.entries.len());
            // Each edit or removal changes at most its part and the next: what travels is
            // bounded by the change, not by the workspace.
            let changes = edits.len() + removed.len();
            prop_assert!(wire.len() <= 2 * (changes + 1) * MAX_PART_ENTRIES);
            if changes == 0 {
                prop_assert!(wire.is_empty(), "nothing changed, yet {} entries travelled", wire.len());
            }
        }
    }

    #[test]
    fn a_part_whose_entries_are_not_the_outlines_is_refused() {
        let known = Manifest::default();
        let target =
            Manifest { entries: entries((0..200).map(|i| (i, (i % 40) as u8)).collect()), ..Default::default() };
        let (parts, mut wire, assembled) = over_the_wire(&known, &target);
        assert_eq!(assembled.expect("whole").entries, target.entries);
        wire[37].mode ^= 0o100;
        let error = assemble(&parts, Some(&known), &Default::default(), wire).expect_err("a changed entry");
        assert!(error.contains("not the ones the outline names"), "{error}");
        let (parts, mut wire, _) = over_the_wire(&known, &target);
        wire.push(wire[0].clone());
        let error = assemble(&parts, Some(&known), &Default::default(), wire).expect_err("one more");
        assert!(error.contains("more entries"), "{error}");
    }
}
