//! THREAD and UID THREAD (RFC 5256 §2.2 ORDEREDSUBJECT, §2.3 REFERENCES).
//!
//! Both algorithms work on the matched messages' sort fields (see `sort`)
//! and build a forest of containers in an arena. Nothing recurses over the
//! forest (a peer chooses every References header, so a thread can be as
//! deep as the mailbox is large): pruning, sorting and rendering use
//! explicit stacks, and the loop check before a link walks at most
//! [`MAX_WALK`] parents.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write;

use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::search::SearchKey;

use super::response::Completion;
use super::session::Session;
use super::sort::{Sortable, join};
use crate::backend::MailStore;

/// Parents walked at most to tell whether a link would make a loop; a
/// chain deeper than this is not linked further (as if it were a loop), so
/// building costs O(messages × MAX_WALK) at worst.
const MAX_WALK: usize = 1000;

/// One container: a message (index into the messages) or a dummy.
#[derive(Debug, Clone, Default)]
struct Node {
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// A forest of containers over `messages`.
struct Forest<'a> {
    messages: &'a [Sortable<'a>],
    nodes: Vec<Node>,
}

impl<'a> Forest<'a> {
    fn new(messages: &'a [Sortable<'a>]) -> Forest<'a> {
        Forest {
            messages,
            nodes: Vec::new(),
        }
    }

    fn add(&mut self, message: Option<usize>) -> usize {
        self.nodes.push(Node {
            message,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    fn is_dummy(&self, node: usize) -> bool {
        self.nodes[node].message.is_none()
    }

    /// Whether `ancestor` is `node` or above it (or too far up to tell:
    /// see [`MAX_WALK`]).
    fn is_ancestor(&self, ancestor: usize, node: usize) -> bool {
        if ancestor != node && self.nodes[ancestor].children.is_empty() {
            // A leaf is nobody's ancestor: the common case (a message
            // nothing referred to yet) costs no walk.
            return false;
        }
        let mut at = Some(node);
        for _ in 0..MAX_WALK {
            match at {
                Some(n) if n == ancestor => return true,
                Some(n) => at = self.nodes[n].parent,
                None => return false,
            }
        }
        true
    }

    fn unlink(&mut self, child: usize) {
        if let Some(parent) = self.nodes[child].parent.take() {
            self.nodes[parent].children.retain(|c| *c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// The message that stands for `node`: itself, or for a dummy its
    /// first child's (children sorted first).
    fn representative(&self, node: usize) -> Option<&'a Sortable<'a>> {
        let mut at = node;
        for _ in 0..=self.nodes.len() {
            match self.nodes[at].message {
                Some(m) => return Some(&self.messages[m]),
                None => at = *self.nodes[at].children.first()?,
            }
        }
        None
    }

    /// Sent date, then sequence number (RFC 5256 §2.2).
    fn compare(&self, a: usize, b: usize) -> Ordering {
        let key = |n| self.representative(n).map(|m| (m.sent(), m.hit.seq));
        key(a).cmp(&key(b))
    }

    fn sort_siblings(&self, siblings: &mut [usize]) {
        siblings.sort_by(|a, b| self.compare(*a, *b));
    }

    /// Sorts every set of siblings below `nodes`, deepest first, then
    /// `nodes` themselves (RFC 5256 §2.3 step 7).
    fn sort_tree(&mut self, nodes: &mut [usize]) {
        let mut order = Vec::new();
        let mut stack: Vec<usize> = nodes.to_vec();
        while let Some(n) = stack.pop() {
            order.push(n);
            stack.extend(self.nodes[n].children.iter().copied());
        }
        // Children of later (deeper) nodes are sorted first.
        for n in order.into_iter().rev() {
            let mut children = std::mem::take(&mut self.nodes[n].children);
            self.sort_siblings(&mut children);
            self.nodes[n].children = children;
        }
        self.sort_siblings(nodes);
    }

    /// The children of `node` as the answer shows them: a lone dummy
    /// child stands for its own children.
    fn shown_children(&self, node: usize) -> &[usize] {
        match self.nodes[node].children.as_slice() {
            [only] if self.is_dummy(*only) => &self.nodes[*only].children,
            children => children,
        }
    }

    /// Appends the wire form of the threads under `roots` (RFC 5256 §4:
    /// `(1 2 (3)(4))`, a dummy as `((3)(4))`).
    fn render(&self, roots: &[usize], uid: bool, out: &mut String) {
        enum Work {
            Open(usize),
            Close,
        }
        let mut stack: Vec<Work> = roots.iter().rev().map(|r| Work::Open(*r)).collect();
        while let Some(work) = stack.pop() {
            let node = match work {
                Work::Close => {
                    out.push(')');
                    continue;
                }
                Work::Open(node) => node,
            };
            let children: &[usize];
            if self.is_dummy(node) {
                children = self.shown_children(node);
                match children {
                    [] => continue,
                    [only] => {
                        stack.push(Work::Open(*only));
                        continue;
                    }
                    _ => out.push('('),
                }
            } else {
                // The chain of single replies is one `thread-members` list.
                out.push('(');
                let mut at = node;
                loop {
                    if at != node {
                        out.push(' ');
                    }
                    if let Some(m) = self.nodes[at].message {
                        let _ = write!(out, "{}", self.messages[m].number(uid));
                    }
                    match self.shown_children(at) {
                        [only] if !self.is_dummy(*only) => at = *only,
                        _ => break,
                    }
                }
                children = self.shown_children(at);
                if !children.is_empty() {
                    out.push(' ');
                }
            }
            stack.push(Work::Close);
            stack.extend(children.iter().rev().map(|c| Work::Open(*c)));
        }
    }
}

/// ORDEREDSUBJECT (RFC 5256 §2.2): threads of equal base subject, each a
/// first message with the later ones as its children, ordered by the sent
/// date of their first message.
fn ordered_subject(messages: &[Sortable<'_>], uid: bool) -> String {
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_by(|a, b| {
        let (a, b) = (&messages[*a], &messages[*b]);
        (a.fields.subject(), a.sent(), a.hit.seq).cmp(&(b.fields.subject(), b.sent(), b.hit.seq))
    });
    let mut forest = Forest::new(messages);
    let mut roots: Vec<usize> = Vec::new();
    let mut current: Option<(usize, &str)> = None;
    for m in order {
        let node = forest.add(Some(m));
        let subject = messages[m].fields.subject();
        match current {
            Some((root, s)) if s == subject => forest.link(root, node),
            _ => {
                roots.push(node);
                current = Some((node, subject));
            }
        }
    }
    forest.sort_siblings(&mut roots);
    let mut out = String::new();
    forest.render(&roots, uid, &mut out);
    out
}

/// REFERENCES (RFC 5256 §2.3).
fn references(messages: &[Sortable<'_>], uid: bool) -> String {
    let mut forest = Forest::new(messages);
    let mut ids: HashMap<&str, usize> = HashMap::new();
    // Step 1: containers and links, in sequence order.
    for (m, message) in messages.iter().enumerate() {
        let fields = message.fields;
        let node = match fields.message_id() {
            Some(id) => match ids.get(id) {
                Some(&n) if forest.is_dummy(n) => {
                    forest.nodes[n].message = Some(m);
                    n
                }
                // A duplicate id: this message gets a unique one.
                Some(_) => forest.add(Some(m)),
                None => {
                    let n = forest.add(Some(m));
                    ids.insert(id, n);
                    n
                }
            },
            None => forest.add(Some(m)),
        };
        let mut previous: Option<usize> = None;
        for reference in fields.references() {
            let r = match ids.get(reference) {
                Some(&r) => r,
                None => {
                    let r = forest.add(None);
                    ids.insert(reference, r);
                    r
                }
            };
            // Step 1.B: link each reference to the one before it, unless
            // it has a parent already or that would make a loop.
            if let Some(p) = previous
                && forest.nodes[r].parent.is_none()
                && !forest.is_ancestor(r, p)
            {
                forest.link(p, r);
            }
            previous = Some(r);
        }
        // Step 1.C: the message's parent is its last reference (or none).
        match previous {
            Some(p) if !forest.is_ancestor(node, p) => forest.link(p, node),
            Some(_) => {}
            None => forest.unlink(node),
        }
    }
    // Step 2: the root set; step 4: prune dummies.
    let roots: Vec<usize> = (0..forest.nodes.len())
        .filter(|n| forest.nodes[*n].parent.is_none())
        .collect();
    let mut roots = prune(&mut forest, roots);
    // Step 5: sort the roots (dummies by their sorted first child).
    for r in &roots {
        let mut children = std::mem::take(&mut forest.nodes[*r].children);
        forest.sort_siblings(&mut children);
        forest.nodes[*r].children = children;
    }
    forest.sort_siblings(&mut roots);
    // Step 6: merge threads by base subject.
    let roots = merge_subjects(&mut forest, roots);
    // Step 7: sort every set of siblings.
    let mut roots = roots;
    forest.sort_tree(&mut roots);
    let mut out = String::new();
    forest.render(&roots, uid, &mut out);
    out
}

/// RFC 5256 §2.3 step 4: drops childless dummies and splices the children
/// of the others into their place, except a dummy at the top with more
/// than one child. Bottom up, so a dummy's children are final when it is
/// spliced.
fn prune(forest: &mut Forest<'_>, roots: Vec<usize>) -> Vec<usize> {
    let mut order = Vec::with_capacity(forest.nodes.len());
    let mut stack = roots.clone();
    while let Some(n) = stack.pop() {
        order.push(n);
        stack.extend(forest.nodes[n].children.iter().copied());
    }
    for &n in order.iter().rev() {
        let children = std::mem::take(&mut forest.nodes[n].children);
        let mut kept = Vec::with_capacity(children.len());
        for c in children {
            if forest.is_dummy(c) {
                kept.append(&mut forest.nodes[c].children);
            } else {
                kept.push(c);
            }
        }
        for c in &kept {
            forest.nodes[*c].parent = Some(n);
        }
        forest.nodes[n].children = kept;
    }
    let mut out = Vec::with_capacity(roots.len());
    for r in roots {
        if !forest.is_dummy(r) || forest.nodes[r].children.len() > 1 {
            out.push(r);
            continue;
        }
        for c in std::mem::take(&mut forest.nodes[r].children) {
            forest.nodes[c].parent = None;
            out.push(c);
        }
    }
    out
}

/// RFC 5256 §2.3 step 6.
fn merge_subjects(forest: &mut Forest<'_>, roots: Vec<usize>) -> Vec<usize> {
    let subject_of = |forest: &Forest<'_>, n: usize| {
        forest
            .representative(n)
            .map(|m| (m.fields.subject().to_string(), m.fields.is_reply()))
    };
    // 6.A: one container per subject: a dummy if there is one, else a
    // message that is not a reply, else the first.
    let mut table: HashMap<String, usize> = HashMap::new();
    for &r in &roots {
        let Some((subject, is_reply)) = subject_of(forest, r) else {
            continue;
        };
        if subject.is_empty() {
            continue;
        }
        match table.get(&subject).copied() {
            None => {
                table.insert(subject, r);
            }
            Some(t) => {
                let t_reply = subject_of(forest, t).is_some_and(|(_, reply)| reply);
                let better = (forest.is_dummy(r) && !forest.is_dummy(t))
                    || (!forest.is_dummy(t) && !forest.is_dummy(r) && t_reply && !is_reply);
                if better {
                    table.insert(subject, r);
                }
            }
        }
    }
    // 6.B: merge every other root into its subject's container.
    let mut out: Vec<usize> = Vec::with_capacity(roots.len());
    let mut replaced: HashMap<usize, usize> = HashMap::new();
    let mut gone = vec![false; forest.nodes.len()];
    for &r in &roots {
        let Some((subject, r_reply)) = subject_of(forest, r) else {
            out.push(r);
            continue;
        };
        let Some(&t) = table.get(&subject).filter(|_| !subject.is_empty()) else {
            out.push(r);
            continue;
        };
        if t == r {
            out.push(r);
            continue;
        }
        let t_reply = subject_of(forest, t).is_some_and(|(_, reply)| reply);
        match (forest.is_dummy(t), forest.is_dummy(r)) {
            (true, true) => {
                let children = std::mem::take(&mut forest.nodes[r].children);
                for c in children {
                    forest.link(t, c);
                }
            }
            (true, false) => forest.link(t, r),
            (false, true) => {
                // The table prefers dummies, so this does not happen; keep
                // both as they are.
                out.push(r);
                continue;
            }
            (false, false) if !t_reply && r_reply => forest.link(t, r),
            (false, false) => {
                let dummy = forest.add(None);
                gone.push(false);
                forest.link(dummy, t);
                forest.link(dummy, r);
                table.insert(subject, dummy);
                replaced.insert(t, dummy);
            }
        }
        gone[r] = true;
    }
    // A root that became a child of a new dummy is shown as that dummy.
    let mut seen = vec![false; forest.nodes.len()];
    out.into_iter()
        .map(|r| {
            let mut at = r;
            while let Some(next) = replaced.get(&at) {
                at = *next;
            }
            at
        })
        .filter(|r| !gone[*r] && !std::mem::replace(&mut seen[*r], true))
        .collect()
}

impl<S: MailStore> Session<S> {
    /// THREAD / UID THREAD.
    pub(super) async fn thread(
        &mut self,
        algorithm: &ThreadingAlgorithm<'_>,
        charset: &Charset<'_>,
        search: &[SearchKey<'_>],
        uid: bool,
    ) -> Completion {
        let references_algorithm = match algorithm {
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::Other(_) => {
                return Completion::bad("Unknown threading algorithm");
            }
        };
        let (found, fields) = match self.sortables(charset, search, true).await {
            Ok(found) => found,
            Err(completion) => return completion,
        };
        let messages = join(found, &fields);
        let threads = if references_algorithm {
            references(&messages, uid)
        } else {
            ordered_subject(&messages, uid)
        };
        if threads.is_empty() {
            self.out.untagged("THREAD");
        } else {
            self.out.untagged(&format!("THREAD {threads}"));
        }
        Completion::ok(if uid {
            "UID THREAD completed"
        } else {
            "THREAD completed"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::selected::Hit;
    use crate::mime::{SortFieldParts, SortFields};

    fn message(seq: u32, date: i64, subject: &str, id: &str, refs: &[&str]) -> Sortable<'static> {
        let base = SortFields::from_message(format!("Subject: {subject}\r\n\r\n").as_bytes());
        Sortable {
            hit: Hit {
                seq,
                uid: seq + 100,
                modseq: 1,
                size: 1,
                internal_date: date,
            },
            position: None,
            // Leaked: a test's messages live as long as the test.
            fields: Box::leak(Box::new(SortFields::new(SortFieldParts {
                date: Some(date),
                message_id: (!id.is_empty()).then(|| id.to_string()),
                references: refs.iter().map(|r| r.to_string()).collect(),
                ..base.parts()
            })))
            .view(),
        }
    }

    fn show(threads: &str) -> String {
        threads.to_string()
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        let messages = [
            message(1, 10, "lunch", "a", &[]),
            message(2, 5, "dinner", "b", &[]),
            message(3, 30, "Re: lunch", "c", &[]),
            message(4, 20, "Re: lunch", "d", &[]),
            message(5, 40, "Re: dinner", "e", &[]),
        ];
        assert_eq!(show(&ordered_subject(&messages, false)), "(2 5)(1 (4)(3))");
        assert_eq!(
            show(&ordered_subject(&messages, true)),
            "(102 105)(101 (104)(103))"
        );
    }

    #[test]
    fn references_with_missing_parents_and_subjects() {
        let messages = [
            // A conversation whose root is missing: 1 and 2 both answer x.
            message(1, 10, "Re: plan", "a", &["x"]),
            message(2, 20, "Re: plan", "b", &["x"]),
            // 3 answers 1; 4 answers 3 through a missing message y.
            message(3, 30, "Re: plan", "c", &["x", "a"]),
            message(4, 40, "Re: plan", "d", &["x", "a", "c", "y"]),
            // No references at all: joined by subject.
            message(5, 5, "party", "e", &[]),
            message(6, 50, "Re: party", "f", &[]),
            // Unrelated, no Message-ID.
            message(7, 1, "alone", "", &[]),
        ];
        assert_eq!(show(&references(&messages, false)), "(7)(5 6)((1 3 4)(2))");
    }

    #[test]
    fn deep_threads_do_not_recurse() {
        // A chain of 20,000 replies, each naming only its parent, then a
        // reply to every second one (a deep branching tree).
        let mut messages: Vec<Sortable<'static>> = Vec::new();
        for i in 0..20_000u32 {
            let parent = if i == 0 {
                vec![]
            } else {
                vec![format!("m{}", i - 1)]
            };
            let refs: Vec<&str> = parent.iter().map(String::as_str).collect();
            messages.push(message(
                i + 1,
                i64::from(i),
                "deep",
                &format!("m{i}"),
                &refs,
            ));
        }
        for i in (0..20_000u32).step_by(2) {
            let id = format!("m{i}");
            messages.push(message(
                20_001 + i,
                100_000,
                "Re: deep",
                &format!("r{i}"),
                &[id.as_str()],
            ));
        }
        let threads = references(&messages, false);
        assert!(threads.starts_with("(1 (2 3 (4 5 (6"), "{}", &threads[..40]);
        let opens = threads.matches('(').count();
        assert_eq!(opens, threads.matches(')').count());
        assert!(ordered_subject(&messages, false).starts_with("(1 (2)"));
    }

    #[test]
    fn references_survive_loops_and_duplicates() {
        let messages = [
            message(1, 10, "a", "a", &["b"]),
            message(2, 20, "b", "b", &["a"]),
            message(3, 30, "c", "a", &[]),
        ];
        let threads = show(&references(&messages, false));
        assert!(threads.contains('1') && threads.contains('2') && threads.contains('3'));
    }
}
