//! The three-way, per-field merge of an offline edit, as a pure function.
//!
//! For each field the phone sends, compare three values: the **base** (the field as it was at
//! the revision the phone started from, `server_rev`), the **server**'s current value, and the
//! **client**'s value.
//! - The client did not change the field (client = base): keep the server value.
//! - Only the client changed it: apply the client value, unless the column's policy forbids it
//!   (immutable after create, server owned), in which case the server value stays and a conflict
//!   record keeps the client's value.
//! - Both changed it to the same value: nothing to do.
//! - Both changed it to different values: a conflict. The policy decides the applied value and
//!   the conflict record keeps base, server, client and applied, so no acknowledged value is lost.
//!   A union column merges both sides and loses nothing, so it records no conflict.

use serde_json::Value;

/// How a column resolves concurrent edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The edit that arrives last wins (the phone's, in a push).
    LastReceivedWins,
    /// Only the office sets it (review status fields, reviewer): the server value stays.
    ServerOwned,
    /// A state with a rank; the higher rank wins. Equal ranks with different values keep the
    /// server's. Ranks are given as `(state, rank)`.
    StateOrder(&'static [(&'static str, u8)]),
    /// Evidence captured by the device (time, place, author): the first value stays.
    ImmutableAfterCreate,
    /// A set (JSON array): the union of both sides, in first-seen order.
    Union,
}

impl Policy {
    /// The policy's name in conflict records and SYNC.md.
    pub fn name(self) -> &'static str {
        match self {
            Policy::LastReceivedWins => "last_received_wins",
            Policy::ServerOwned => "server_owned",
            Policy::StateOrder(_) => "state_order",
            Policy::ImmutableAfterCreate => "immutable_after_create",
            Policy::Union => "union",
        }
    }
}

/// Why a field's value was not simply taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// Both sides changed the field to different values.
    BothChanged,
    /// The client changed a field it may not change (immutable or server owned).
    NotWritable,
}

impl ConflictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::BothChanged => "both_changed",
            ConflictKind::NotWritable => "not_writable",
        }
    }
}

/// The decision for one field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMerge {
    /// The value the record gets.
    pub applied: Value,
    /// Set when a conflict record must be written.
    pub conflict: Option<ConflictKind>,
}

impl FieldMerge {
    /// Whether the applied value differs from the server's current one.
    pub fn changes(&self, server: &Value) -> bool {
        &self.applied != server
    }
}

fn rank(states: &[(&str, u8)], v: &Value) -> Option<u8> {
    let s = v.as_str()?;
    states.iter().find(|(name, _)| *name == s).map(|(_, r)| *r)
}

fn union(server: &Value, client: &Value) -> Value {
    let mut out: Vec<Value> = server.as_array().cloned().unwrap_or_default();
    for v in client.as_array().into_iter().flatten() {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Value::Array(out)
}

/// Merges one field.
///
/// `base` is `None` when the base revision is unknown (a record the server has never sent the
/// phone, or a base older than the kept history); the client's value then counts as changed
/// wherever it differs from the server's. `server_changed` says whether the server changed this
/// field after the base revision.
pub fn merge_field(
    policy: Policy,
    base: Option<&Value>,
    server: &Value,
    client: &Value,
    server_changed: bool,
) -> FieldMerge {
    let keep = |conflict| FieldMerge {
        applied: server.clone(),
        conflict,
    };
    let client_changed = match base {
        Some(b) => client != b,
        None => client != server,
    };
    if !client_changed || client == server {
        return keep(None);
    }
    if !server_changed {
        return match policy {
            Policy::ImmutableAfterCreate | Policy::ServerOwned => {
                keep(Some(ConflictKind::NotWritable))
            }
            Policy::Union => FieldMerge {
                applied: union(server, client),
                conflict: None,
            },
            Policy::LastReceivedWins | Policy::StateOrder(_) => FieldMerge {
                applied: client.clone(),
                conflict: None,
            },
        };
    }
    let both = Some(ConflictKind::BothChanged);
    match policy {
        Policy::LastReceivedWins => FieldMerge {
            applied: client.clone(),
            conflict: both,
        },
        Policy::ServerOwned | Policy::ImmutableAfterCreate => keep(both),
        Policy::StateOrder(states) => match (rank(states, server), rank(states, client)) {
            (Some(s), Some(c)) if c > s => FieldMerge {
                applied: client.clone(),
                conflict: both,
            },
            (None, Some(_)) => FieldMerge {
                applied: client.clone(),
                conflict: both,
            },
            _ => keep(both),
        },
        Policy::Union => FieldMerge {
            applied: union(server, client),
            conflict: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STATES: &[(&str, u8)] = &[
        ("concept", 0),
        ("submitted", 1),
        ("approved", 2),
        ("rejected", 2),
    ];

    /// (policy, base, server, client, server_changed) → (applied, conflict)
    #[test]
    fn every_branch_under_every_policy() {
        use ConflictKind::*;
        let lrw = Policy::LastReceivedWins;
        let own = Policy::ServerOwned;
        let st = Policy::StateOrder(STATES);
        let imm = Policy::ImmutableAfterCreate;
        let uni = Policy::Union;
        let s = |v: &str| json!(v);
        #[rustfmt::skip]
        /// policy, base, server, client, server_changed, expected applied, expected conflict
        type Row = (Policy, Option<Value>, Value, Value, bool, Value, Option<ConflictKind>);
        let table: Vec<Row> = vec![
            // Client did not change the field: the server's value stays, whoever changed it.
            (lrw, Some(s("a")), s("a"), s("a"), false, s("a"), None),
            (lrw, Some(s("a")), s("b"), s("a"), true, s("b"), None),
            (own, Some(s("a")), s("b"), s("a"), true, s("b"), None),
            (
                st,
                Some(s("concept")),
                s("approved"),
                s("concept"),
                true,
                s("approved"),
                None,
            ),
            (imm, Some(s("a")), s("a"), s("a"), false, s("a"), None),
            (
                uni,
                Some(json!([1])),
                json!([1, 2]),
                json!([1]),
                true,
                json!([1, 2]),
                None,
            ),
            // Only the client changed it.
            (lrw, Some(s("a")), s("a"), s("c"), false, s("c"), None),
            (
                st,
                Some(s("concept")),
                s("concept"),
                s("submitted"),
                false,
                s("submitted"),
                None,
            ),
            (
                own,
                Some(s("a")),
                s("a"),
                s("c"),
                false,
                s("a"),
                Some(NotWritable),
            ),
            (
                imm,
                Some(s("a")),
                s("a"),
                s("c"),
                false,
                s("a"),
                Some(NotWritable),
            ),
            (
                uni,
                Some(json!([1])),
                json!([1]),
                json!([1, 3]),
                false,
                json!([1, 3]),
                None,
            ),
            // Both changed it, to the same value: no conflict.
            (lrw, Some(s("a")), s("b"), s("b"), true, s("b"), None),
            (own, Some(s("a")), s("b"), s("b"), true, s("b"), None),
            (
                st,
                Some(s("concept")),
                s("submitted"),
                s("submitted"),
                true,
                s("submitted"),
                None,
            ),
            (imm, Some(s("a")), s("b"), s("b"), true, s("b"), None),
            (
                uni,
                Some(json!([1])),
                json!([1, 2]),
                json!([1, 2]),
                true,
                json!([1, 2]),
                None,
            ),
            // Both changed it, differently: the policy decides and a conflict is recorded.
            (
                lrw,
                Some(s("a")),
                s("b"),
                s("c"),
                true,
                s("c"),
                Some(BothChanged),
            ),
            (
                own,
                Some(s("a")),
                s("b"),
                s("c"),
                true,
                s("b"),
                Some(BothChanged),
            ),
            (
                imm,
                Some(s("a")),
                s("b"),
                s("c"),
                true,
                s("b"),
                Some(BothChanged),
            ),
            (
                st,
                Some(s("concept")),
                s("submitted"),
                s("approved"),
                true,
                s("approved"),
                Some(BothChanged),
            ),
            (
                st,
                Some(s("concept")),
                s("approved"),
                s("submitted"),
                true,
                s("approved"),
                Some(BothChanged),
            ),
            (
                st,
                Some(s("submitted")),
                s("approved"),
                s("rejected"),
                true,
                s("approved"),
                Some(BothChanged),
            ),
            (
                st,
                Some(s("concept")),
                s("bogus"),
                s("submitted"),
                true,
                s("submitted"),
                Some(BothChanged),
            ),
            (
                st,
                Some(s("concept")),
                s("submitted"),
                s("bogus"),
                true,
                s("submitted"),
                Some(BothChanged),
            ),
            (
                uni,
                Some(json!([1])),
                json!([1, 2]),
                json!([1, 3]),
                true,
                json!([1, 2, 3]),
                None,
            ),
            // Base unknown: a differing client value counts as a change.
            (lrw, None, s("a"), s("c"), true, s("c"), Some(BothChanged)),
            (lrw, None, s("a"), s("c"), false, s("c"), None),
            (lrw, None, s("a"), s("a"), true, s("a"), None),
            (imm, None, s("a"), s("c"), false, s("a"), Some(NotWritable)),
            (uni, None, json!([1]), json!([2]), true, json!([1, 2]), None),
        ];
        for (i, (policy, base, server, client, server_changed, applied, conflict)) in
            table.into_iter().enumerate()
        {
            let m = merge_field(policy, base.as_ref(), &server, &client, server_changed);
            assert_eq!(m.applied, applied, "row {i}: applied");
            assert_eq!(m.conflict, conflict, "row {i}: conflict");
        }
    }

    #[test]
    fn union_keeps_order_and_drops_duplicates() {
        assert_eq!(
            union(&json!(["a", "b"]), &json!(["b", "c", "a"])),
            json!(["a", "b", "c"])
        );
        assert_eq!(union(&Value::Null, &json!(["x"])), json!(["x"]));
    }
}
