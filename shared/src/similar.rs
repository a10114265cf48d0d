//! Names that are nearly alike: an edit distance with a ceiling, and the closest names to one among
//! many. Chat forgives misspelt object names with it, and a lineage lookup that finds nothing
//! suggests the closest names. Both compare a word of a request against every object of a project,
//! so the cost is bounded by construction: a word longer than [`MAX_COMPARED_CHARS`] is no name, a
//! near-miss comparison only fills the band of the table within its ceiling (O(length x ceiling)),
//! and a "did you mean" list ranks by full distance only a shortlist picked in linear time.

/// Longer words are not compared with names at all (SQL Server allows 128 characters, PostgreSQL 63;
/// a name people type and misspell is far shorter).
pub const MAX_COMPARED_CHARS: usize = 64;

/// The Levenshtein distance between `a` and `b` (over characters) if it is at most `ceiling`, else
/// `None`. Only the cells within `ceiling` of the diagonal are computed, and the comparison stops
/// as soon as a whole row is over the ceiling.
pub fn distance_within(a: &str, b: &str, ceiling: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    chars_within(&a, &b, ceiling)
}

/// The candidates within `ceiling` edits of `wanted`: `(distance, index in candidates)`. `wanted`
/// is read once, one buffer holds each candidate's characters in turn, and a candidate whose length
/// alone puts it over the ceiling is skipped before its characters are read.
pub fn all_within<'a, T>(wanted: &str, candidates: &'a [T], key: impl Fn(&'a T) -> &'a str, ceiling: usize) -> Vec<(usize, usize)> {
    let wanted: Vec<char> = wanted.chars().collect();
    let mut chars = Vec::new();
    let mut found = Vec::new();
    for (index, candidate) in candidates.iter().enumerate() {
        let name = key(candidate);
        // A character is 1 to 4 bytes.
        if name.len() + ceiling < wanted.len() || name.len() > (wanted.len() + ceiling) * 4 {
            continue;
        }
        chars.clear();
        chars.extend(name.chars());
        if let Some(distance) = chars_within(&wanted, &chars, ceiling) {
            found.push((distance, index));
        }
    }
    found
}

fn chars_within(a: &[char], b: &[char], ceiling: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > ceiling {
        return None;
    }
    // Anything over the ceiling is as good as infinite; one more than it keeps the sums small.
    let over = ceiling + 1;
    let mut previous: Vec<usize> = (0..=b.len()).map(|j| j.min(over)).collect();
    let mut current = vec![over; b.len() + 1];
    for (i, left) in a.iter().enumerate() {
        let row = i + 1;
        let first = row.saturating_sub(ceiling).max(1);
        let last = (row + ceiling).min(b.len());
        current.fill(over);
        current[0] = row.min(over);
        let mut best = current[0];
        for j in first..=last {
            let substitute = previous[j - 1] + usize::from(*left != b[j - 1]);
            let value = substitute.min(previous[j] + 1).min(current[j - 1] + 1).min(over);
            current[j] = value;
            best = best.min(value);
        }
        if best > ceiling {
            return None;
        }
        std::mem::swap(&mut previous, &mut current);
    }
    Some(previous[b.len()]).filter(|distance| *distance <= ceiling)
}

/// How many candidates, the ones sharing the most letter pairs with the wanted word, are ranked by
/// their full edit distance in [`closest`].
const SHORTLIST: usize = 64;

/// The `limit` names among `candidates` closest to `wanted` by edit distance (then by name), for a
/// "did you mean" list: there always are some, near or not. `key` gives the part of a candidate to
/// compare (its name without its schema, say). Every candidate is first scored by the letter pairs
/// it shares with `wanted` (linear in its length); only a shortlist of the best is ranked by
/// Levenshtein distance, so the cost grows with the number of names, not with its square of lengths.
pub fn closest<'a, T>(wanted: &str, candidates: &'a [T], key: impl Fn(&'a T) -> &'a str, limit: usize) -> Vec<&'a T> {
    let wanted_chars: Vec<char> = wanted.chars().collect();
    if wanted_chars.is_empty() || wanted_chars.len() > MAX_COMPARED_CHARS {
        return Vec::new();
    }
    let pairs: std::collections::HashSet<(char, char)> = wanted_chars.windows(2).map(|pair| (pair[0], pair[1])).collect();
    let mut scored: Vec<(usize, usize, &'a str, &'a T)> = candidates
        .iter()
        .map(|candidate| {
            let name = key(candidate);
            let mut shared = 0;
            let mut length = 0;
            let mut previous = None;
            for c in name.chars().take(MAX_COMPARED_CHARS * 2) {
                if let Some(before) = previous
                    && pairs.contains(&(before, c))
                {
                    shared += 1;
                }
                previous = Some(c);
                length += 1;
            }
            (shared, length, name, candidate)
        })
        .collect();
    let by_shared_pairs = |a: &(usize, usize, &str, &T), b: &(usize, usize, &str, &T)| {
        b.0.cmp(&a.0).then_with(|| a.1.abs_diff(wanted_chars.len()).cmp(&b.1.abs_diff(wanted_chars.len()))).then_with(|| a.2.cmp(b.2))
    };
    if scored.len() > SHORTLIST {
        scored.select_nth_unstable_by(SHORTLIST - 1, by_shared_pairs);
        scored.truncate(SHORTLIST);
    }
    let mut ranked: Vec<(usize, &str, &T)> =
        scored.into_iter().map(|(_, _, name, candidate)| (strsim::levenshtein(wanted, name), name, candidate)).collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    ranked.into_iter().take(limit).map(|(_, _, candidate)| candidate).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distance_is_levenshteins_when_within_the_ceiling() {
        assert_eq!(distance_within("orders", "order", 2), Some(1));
        assert_eq!(distance_within("", "abc", 3), Some(3));
        assert_eq!(distance_within("costumers", "customers", 2), Some(2));
        assert_eq!(distance_within("costumers", "customers", 1), None);
        assert_eq!(distance_within("kitten", "sitting", 3), Some(3));
        assert_eq!(distance_within("short", "a_much_longer_name", 4), None);
        assert_eq!(distance_within("ÄÖÜ", "AÖU", 2), Some(2), "characters, not bytes");
    }

    /// strsim's full Levenshtein is the reference: within the ceiling the banded one agrees with it,
    /// beyond it the banded one says so.
    #[test]
    fn the_banded_distance_agrees_with_strsim_on_many_pairs() {
        let alphabet = ['a', 'b', 'c', '_', 'é'];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let word = |next: &mut dyn FnMut() -> u64| -> String {
            let length = (next() % 12) as usize;
            (0..length).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect()
        };
        for _ in 0..5_000 {
            let a = word(&mut next);
            let b = word(&mut next);
            let ceiling = (next() % 6) as usize;
            let full = strsim::levenshtein(&a, &b);
            let expected = (full <= ceiling).then_some(full);
            assert_eq!(distance_within(&a, &b, ceiling), expected, "{a:?} {b:?} within {ceiling}");
        }
    }

    #[test]
    fn all_within_finds_exactly_the_names_within_the_ceiling() {
        let names = ["orders", "order", "ordres", "customers", "ÖRDERS"];
        let found = all_within("orders", &names, |name| name, 1);
        assert_eq!(found, [(0, 0), (1, 1)]);
        let found = all_within("orders", &names, |name| name, 2);
        assert_eq!(found, [(0, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn the_closest_names_come_first_and_far_ones_not_at_all() {
        let names = ["raw.orders", "staging.orders", "raw.order_items", "gold.customers", "raw.orderes", "raw.ordres"];
        let last = |name: &&'static str| -> &'static str { name.rsplit('.').next().unwrap() };
        let found = closest("orderz", &names, |name| last(name), 3);
        // orders: 1; orderes: 2; ordres: 3; order_items: 6.
        assert_eq!(found, [&"raw.orders", &"staging.orders", &"raw.orderes"]);
        assert_eq!(closest("invoices", &names, |name| last(name), 2).len(), 2, "far names are offered too");
    }

    #[test]
    fn words_too_long_to_be_names_are_not_compared() {
        let names = ["a".repeat(65)];
        assert!(closest(&"a".repeat(65), &names, |name| name.as_str(), 5).is_empty());
    }
}
