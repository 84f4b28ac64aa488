//! Keyset pagination, shared by both services: a page is the items after the last key the
//! previous page returned, so items added or removed between calls never cause skips or
//! repeats. The token (KMS's `Marker`, cloudhsmv2's `NextToken`) is opaque to clients:
//! base64url of `<kind>\0<last key>`, where the kind (`keys`, `aliases`, `clusters`, …) keeps a
//! token of one listing from being taken by another. Each service words a bad token its own way.

use base64::Engine;

/// The token for the page after the item keyed `last`, in the listing `kind`.
pub fn token_after(kind: &str, last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}\0{last}"))
}

/// The last key a token of listing `kind` names; `None` if the token is not one of ours, or
/// belongs to another listing.
pub fn last_key(kind: &str, token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (k, last) = text.split_once('\0')?;
    (k == kind && !last.is_empty()).then(|| last.to_string())
}

/// The order of a listing's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Smallest key first.
    Ascending,
    /// Largest key first.
    Descending,
}

/// One page of `items`, which come keyed and in `order`: those after the key `after`, at most
/// `limit` (at least one), and the token of the next page if more remain.
pub fn page<K: AsRef<str>, T>(
    items: impl IntoIterator<Item = (K, T)>,
    kind: &str,
    order: Order,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let limit = limit.max(1);
    let beyond = |k: &str| match (after, order) {
        (None, _) => true,
        (Some(a), Order::Ascending) => k > a,
        (Some(a), Order::Descending) => k < a,
    };
    let mut page = Vec::new();
    let mut last: Option<String> = None;
    for (k, v) in items {
        if !beyond(k.as_ref()) {
            continue;
        }
        if page.len() == limit {
            return (page, last.map(|l| token_after(kind, &l)));
        }
        last = Some(k.as_ref().to_string());
        page.push(v);
    }
    (page, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(keys: &[&str], order: Order, limit: usize) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let items = keys.iter().map(|k| (*k, k.to_string()));
            let (p, next) = page(items, "t", order, after.as_deref(), limit);
            pages.push(p);
            match next {
                Some(t) => after = Some(last_key("t", &t).expect("our own token")),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_walk_every_item_once_in_order() {
        let pages = walk(&["a", "b", "c", "d", "e"], Order::Ascending, 2);
        assert_eq!(pages, [vec!["a", "b"], vec!["c", "d"], vec!["e"]]);
        let pages = walk(&["e", "d", "c", "b", "a"], Order::Descending, 2);
        assert_eq!(pages, [vec!["e", "d"], vec!["c", "b"], vec!["a"]]);
    }

    #[test]
    fn a_full_last_page_has_no_next_token() {
        let (p, next) = page([("a", 1), ("b", 2)], "t", Order::Ascending, None, 2);
        assert_eq!((p, next), (vec![1, 2], None));
    }

    #[test]
    fn a_page_continues_after_its_key_even_when_that_item_is_gone() {
        let (_, next) = page(
            [("a", 1), ("b", 2), ("c", 3)],
            "t",
            Order::Ascending,
            None,
            1,
        );
        let after = last_key("t", &next.unwrap()).unwrap();
        let (p, _) = page([("b", 2), ("c", 3)], "t", Order::Ascending, Some(&after), 5);
        assert_eq!(p, vec![2, 3]);
    }

    #[test]
    fn a_token_of_another_listing_or_not_ours_names_nothing() {
        let t = token_after("keys", "abc");
        assert_eq!(last_key("keys", &t).as_deref(), Some("abc"));
        assert_eq!(last_key("aliases", &t), None);
        assert_eq!(last_key("keys", "!!"), None);
        assert_eq!(last_key("keys", &token_after("keys", "")), None);
    }
}
