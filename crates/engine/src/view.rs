//! Cards as the outside world sees them: the JSON of api.md ("A card as
//! JSON"), shared by `simulate --json`, the server's API and the UI.

use crate::state::{CardId, State};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One card as JSON, with its history when `with_history`.
pub fn card_json(state: &State, card: CardId, with_history: bool) -> Value {
    let c = &state.cards[card];
    let contact = state.contacts.get(&c.contact);
    let sla = match &c.sla {
        Some(s) => json!({ "kind": s.kind, "state": s.state, "due_at": s.due_at.map(time) }),
        None => json!({ "kind": null, "state": "none", "due_at": null }),
    };
    let mut out = json!({
        "id": format!("c_{}_{}", c.pipe, c.number),
        "number": c.number,
        "pipe": c.pipe,
        "status": c.status,
        "assignee": c.assignee,
        "team": c.team,
        "contact": {
            "wa_id": c.contact,
            "name": contact.map(|x| x.name.clone()),
            "phone": contact.map(|x| x.phone.clone()),
        },
        "fields": c.fields,
        "sla": sla,
        "last_responder": c.last_responder,
        "window_closes_at": contact.and_then(|x| x.window_closes_at).map(time),
        "template_needed": c.template_needed,
        "created_at": time(c.created_at),
        "updated_at": time(c.updated_at),
    });
    if with_history {
        out["history"] = json!(c
            .history
            .iter()
            .map(|h| json!({ "at": time(h.at), "what": h.what, "cause": h.cause }))
            .collect::<Vec<_>>());
        out["messages"] = json!(c.messages);
    }
    out
}
