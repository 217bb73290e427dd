//! Conditions, values, scripts and texts, evaluated against one card.
//! A condition that does not hold says which part was false: that is the
//! "why not" of the rule log.

use crate::engine::Run;
use crate::event::EffectKind;
use crate::state::{CardId, Cause, FieldValue};
use switchboard_lang::model::{Condition, FieldType, Op, Operand, Pipe, Script, Subject, Value};

/// `Ok(None)` when the condition holds, `Ok(Some(why not))` when it does
/// not, `Err(what failed)` when a script failed (the rule must not fire).
///
/// Without `explain`, the "why not" is left empty: building it costs more
/// than evaluating the condition.
pub(crate) fn condition(
    run: &Run,
    card: CardId,
    c: &Condition,
    explain: bool,
) -> Result<Option<String>, String> {
    Ok(match c {
        Condition::And(a, b) => match condition(run, card, a, explain)? {
            Some(why) => Some(why),
            None => condition(run, card, b, explain)?,
        },
        Condition::Or(a, b) => match (
            condition(run, card, a, explain)?,
            condition(run, card, b, explain)?,
        ) {
            (Some(_), Some(_)) if !explain => Some(String::new()),
            (Some(x), Some(y)) => Some(format!("{x}, and {y}")),
            _ => None,
        },
        Condition::Not(a) => match condition(run, card, a, explain)? {
            None if !explain => Some(String::new()),
            None => Some(format!("`{a}` holds")),
            Some(_) => None,
        },
        Condition::WithinHours => {
            let pipe = run.pipe(card);
            if run
                .engine
                .calendar(&pipe.name)
                .is_some_and(|c| c.is_open(run.now))
            {
                None
            } else if !explain {
                Some(String::new())
            } else {
                Some("it is outside business hours".to_string())
            }
        }
        Condition::Script(s) => {
            let vars = script_vars(run, card);
            match run.engine.sandbox.run_bool(&s.compiled, &vars) {
                Ok(true) => None,
                Ok(false) if !explain => Some(String::new()),
                Ok(false) => Some(format!("{} said no", script_name(s))),
                Err(e) => return Err(script_failure(s, &e)),
            }
        }
        Condition::Compare { subject, op, value } => {
            let actual = actual(run, card, subject);
            let holds = match (subject, value) {
                (Subject::Message(m), Operand::Regex(p)) if m == "text" && *op == Op::Matches => {
                    text_matches(run, p.source()).unwrap_or_else(|| compare(actual, *op, value))
                }
                _ => compare(actual, *op, value),
            };
            if holds {
                None
            } else if !explain {
                Some(String::new())
            } else {
                let shown = match actual {
                    Some(Actual::Text(t)) => format!("{t:?}"),
                    Some(a) => a.to_value().to_string(),
                    None => "empty".to_string(),
                };
                Some(format!("`{c}` is false: `{subject}` is {shown}"))
            }
        }
    })
}

/// A value looked at by a condition, borrowed from the card where it can
/// be: evaluating a rule allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Actual<'a> {
    Text(&'a str),
    Number(f64),
    Bool(bool),
    /// A date field, as stored (`YYYY-MM-DD`).
    Date(&'a str),
}

impl Actual<'_> {
    fn equals(self, v: &Value) -> bool {
        match (self, v) {
            (Actual::Text(a), Value::Text(b)) => a == b,
            (Actual::Number(a), Value::Number(b)) => a == *b,
            (Actual::Bool(a), Value::Bool(b)) => a == *b,
            (Actual::Date(a), Value::Date(b)) => {
                a.parse::<chrono::NaiveDate>().is_ok_and(|d| d == *b)
            }
            (Actual::Date(a), Value::Text(b)) => a == b,
            _ => false,
        }
    }

    /// The value as a checked value (for routes, `set x = contact.city` and messages).
    pub(crate) fn to_value(self) -> Value {
        match self {
            Actual::Text(t) => Value::Text(t.to_string()),
            Actual::Number(n) => Value::Number(n),
            Actual::Bool(b) => Value::Bool(b),
            Actual::Date(d) => d
                .parse()
                .map(Value::Date)
                .unwrap_or_else(|_| Value::Text(d.to_string())),
        }
    }
}

/// Whether the step's message matches a pattern, from the engine's set of
/// text patterns (read once per message); `None` when the set cannot say.
fn text_matches(run: &Run, source: &str) -> Option<bool> {
    let (set, index) = run.engine.text_patterns.as_ref()?;
    let i = *index.get(source)?;
    let matches = run.text_matches.get_or_init(|| {
        run.message
            .as_ref()
            .and_then(|m| m.text.as_deref())
            .map(|t| set.matches(t))
    });
    Some(matches.as_ref().is_some_and(|m| m.matched(i)))
}

fn compare(actual: Option<Actual>, op: Op, operand: &Operand) -> bool {
    match (op, operand) {
        (Op::Eq, Operand::Value(Value::None)) => actual.is_none(),
        (Op::Ne, Operand::Value(Value::None)) => actual.is_some(),
        (Op::Eq, Operand::Value(v)) => actual.is_some_and(|a| a.equals(v)),
        (Op::Ne, Operand::Value(v)) => !actual.is_some_and(|a| a.equals(v)),
        (Op::Lt | Op::Le | Op::Gt | Op::Ge, Operand::Value(v)) => {
            let ord = match (actual, v) {
                (Some(Actual::Number(a)), Value::Number(b)) => a.partial_cmp(b),
                (Some(Actual::Date(a)), Value::Date(b)) => {
                    a.parse::<chrono::NaiveDate>().ok().map(|a| a.cmp(b))
                }
                _ => None,
            };
            match ord {
                Some(o) => match op {
                    Op::Lt => o.is_lt(),
                    Op::Le => o.is_le(),
                    Op::Gt => o.is_gt(),
                    _ => o.is_ge(),
                },
                None => false,
            }
        }
        (Op::Contains, Operand::Value(Value::Text(needle))) => match actual {
            Some(Actual::Text(t)) => contains_ignoring_case(t, needle),
            _ => false,
        },
        (Op::Matches, Operand::Regex(p)) => match actual {
            Some(Actual::Text(t) | Actual::Date(t)) => p.is_match(t),
            Some(Actual::Number(n)) => p.is_match(&n.to_string()),
            Some(Actual::Bool(b)) => p.is_match(if b { "true" } else { "false" }),
            None => false,
        },
        (Op::In, Operand::List(vs)) => actual.is_some_and(|a| vs.iter().any(|v| a.equals(v))),
        (Op::NotIn, Operand::List(vs)) => !actual.is_some_and(|a| vs.iter().any(|v| a.equals(v))),
        _ => false,
    }
}

fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let n = needle.len();
        n == 0
            || haystack
                .as_bytes()
                .windows(n)
                .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    } else {
        haystack.to_lowercase().contains(&needle.to_lowercase())
    }
}

/// The current value of what a condition or a route looks at.
pub(crate) fn subject_value(run: &Run, card: CardId, s: &Subject) -> Option<Value> {
    actual(run, card, s).map(Actual::to_value)
}

/// The same, borrowed.
pub(crate) fn actual<'r>(run: &'r Run, card: CardId, s: &Subject) -> Option<Actual<'r>> {
    let c = &run.state.cards[card];
    let text = |t: &'r str| Some(Actual::Text(t));
    match s {
        Subject::Field(f) => c.fields.get(f).map(|v| match v {
            FieldValue::Text(t) => Actual::Text(t),
            FieldValue::Number(n) => Actual::Number(*n),
            FieldValue::Bool(b) => Actual::Bool(*b),
            FieldValue::Date(d) => Actual::Date(d),
        }),
        Subject::Status => text(&c.status),
        Subject::Team => c.team.as_deref().and_then(text),
        Subject::Assignee => c.assignee.as_deref().and_then(text),
        Subject::Sla => text(c.sla.as_ref().map_or("none", |v| v.state.as_str())),
        Subject::LastResponder => c.last_responder.map(|r| match r {
            crate::state::Responder::Team => Actual::Text("team"),
            crate::state::Responder::Customer => Actual::Text("customer"),
        }),
        Subject::Card(a) if a == "number" => Some(Actual::Number(c.number as f64)),
        Subject::Card(_) => None,
        Subject::Contact(a) => {
            let contact = run.state.contacts.get(&c.contact)?;
            match a.as_str() {
                "name" => text(&contact.name),
                "phone" => text(&contact.phone),
                "wa_id" => text(&contact.wa_id),
                other => contact.attributes.get(other).and_then(|v| text(v)),
            }
        }
        Subject::Message(a) => {
            let m = run.message.as_ref()?;
            match a.as_str() {
                "text" => m.text.as_deref().and_then(text),
                "type" => text(&m.kind),
                "from" => text(&m.from),
                "id" => text(&m.id),
                _ => None,
            }
        }
    }
}

/// The card, contact and message as JSON: what scripts and texts see.
pub(crate) fn card_json(run: &Run, card: CardId) -> serde_json::Value {
    let c = &run.state.cards[card];
    let mut fields = serde_json::Map::new();
    for (k, v) in &c.fields {
        fields.insert(k.clone(), serde_json::to_value(v).unwrap_or_default());
    }
    let mut json = serde_json::json!({
        "number": c.number,
        "status": c.status,
        "team": c.team,
        "assignee": c.assignee,
        "pipe": c.pipe,
        "created_at": c.created_at.to_rfc3339(),
    });
    if let Some(obj) = json.as_object_mut() {
        // Fields are reachable as `card.fields.NAME` and as `card.NAME`.
        for (k, v) in &fields {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
        obj.insert("fields".into(), serde_json::Value::Object(fields));
    }
    json
}

fn contact_json(run: &Run, card: CardId) -> serde_json::Value {
    let c = &run.state.cards[card];
    match run.state.contacts.get(&c.contact) {
        Some(contact) => {
            let mut json = serde_json::json!({ "name": contact.name, "phone": contact.phone, "wa_id": contact.wa_id });
            if let Some(obj) = json.as_object_mut() {
                for (k, v) in &contact.attributes {
                    obj.entry(k.clone())
                        .or_insert_with(|| serde_json::Value::String(v.clone()));
                }
            }
            json
        }
        None => serde_json::json!({}),
    }
}

fn message_json(run: &Run) -> serde_json::Value {
    match &run.message {
        Some(m) => {
            serde_json::json!({ "text": m.text, "type": m.kind, "from": m.from, "id": m.id })
        }
        None => serde_json::Value::Null,
    }
}

/// What scripts see. Building it costs more than running a small script,
/// so it is kept until the card changes (every change adds an effect).
fn script_vars(run: &Run, card: CardId) -> ScriptVars {
    use switchboard_script::from_json;
    let key = (card, run.out.effects.len());
    if let Some((k, vars)) = run.script_vars.borrow().as_ref() {
        if *k == key {
            return vars.clone();
        }
    }
    // Shared values: each script run clones a pointer, not the maps.
    let vars: ScriptVars = std::rc::Rc::new(vec![
        ("card", from_json(&card_json(run, card)).into_shared()),
        ("contact", from_json(&contact_json(run, card)).into_shared()),
        ("message", from_json(&message_json(run)).into_shared()),
    ]);
    *run.script_vars.borrow_mut() = Some((key, vars.clone()));
    vars
}

/// The values a script runs with, shared while the card does not change.
pub(crate) type ScriptVars = std::rc::Rc<Vec<(&'static str, switchboard_script::ScriptValue)>>;

fn script_name(s: &Script) -> String {
    match &s.file {
        Some(f) => format!("script `{f}`"),
        None => format!("the script at {}", s.origin),
    }
}

fn script_failure(s: &Script, e: &switchboard_script::ScriptError) -> String {
    let place = match (&s.file, e.line) {
        (Some(f), Some(l)) => format!("{f}:{l}"),
        (Some(f), None) => f.clone(),
        (None, Some(l)) => format!("{} (line {l} of the script)", s.origin),
        (None, None) => s.origin.to_string(),
    };
    format!("script failed at {place}: {}", e.message)
}

/// What a `set x = script(...)` script gives.
pub(crate) fn script_value(
    run: &Run,
    card: CardId,
    s: &Script,
) -> Result<Option<FieldValue>, String> {
    let vars = script_vars(run, card);
    let v = run
        .engine
        .sandbox
        .run(&s.compiled, &vars)
        .map_err(|e| script_failure(s, &e))?;
    if v.is_unit() {
        return Ok(None);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Some(FieldValue::Bool(b)));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Some(FieldValue::Number(i as f64)));
    }
    if let Ok(f) = v.as_float() {
        return Ok(Some(FieldValue::Number(f)));
    }
    match v.into_string() {
        Ok(s) if s.is_empty() => Ok(None),
        Ok(s) => Ok(Some(FieldValue::Text(s))),
        Err(ty) => Err(format!(
            "{} gave a {ty}, which no field can hold",
            script_name(s)
        )),
    }
}

/// A value made to fit a field's type, or why it cannot.
pub(crate) fn fit_field(
    pipe: &Pipe,
    field: &str,
    v: Option<FieldValue>,
) -> Result<Option<FieldValue>, String> {
    let Some(def) = pipe.field(field) else {
        return Err(format!("pipe `{}` has no field `{field}`", pipe.name));
    };
    let Some(v) = v else { return Ok(None) };
    let bad = |v: &FieldValue| Err(format!("`{field}` is {}, and {} is not", def.ty, show(v)));
    Ok(Some(match (&def.ty, v) {
        (FieldType::Text, FieldValue::Text(t)) => FieldValue::Text(t),
        (FieldType::Text, FieldValue::Number(n)) => FieldValue::Text(n.to_string()),
        (FieldType::Number, FieldValue::Number(n)) => FieldValue::Number(n),
        (FieldType::Number, FieldValue::Text(t)) => match t.trim().replace(',', ".").parse::<f64>()
        {
            Ok(n) if n.is_finite() => FieldValue::Number(n),
            _ => return bad(&FieldValue::Text(t)),
        },
        (FieldType::Bool, FieldValue::Bool(b)) => FieldValue::Bool(b),
        (FieldType::Choice(values), FieldValue::Text(t)) if values.contains(&t) => {
            FieldValue::Text(t)
        }
        (FieldType::Choice(values), v) => {
            return Err(format!(
                "{} is not one of the values of `{field}` ({})",
                show(&v),
                values.join(", ")
            ))
        }
        (FieldType::Date, FieldValue::Date(d)) => FieldValue::Date(d),
        (FieldType::Date, FieldValue::Text(t)) if t.parse::<chrono::NaiveDate>().is_ok() => {
            FieldValue::Date(t)
        }
        (FieldType::Agent, FieldValue::Text(t)) if t.contains('@') => FieldValue::Text(t),
        (_, v) => return bad(&v),
    }))
}

fn show(v: &FieldValue) -> String {
    match v {
        FieldValue::Text(t) | FieldValue::Date(t) => format!("{t:?}"),
        FieldValue::Number(n) => n.to_string(),
        FieldValue::Bool(b) => b.to_string(),
    }
}

/// A field value sent by an agent or the API, as JSON.
pub(crate) fn field_from_json(
    pipe: &Pipe,
    field: &str,
    json: &serde_json::Value,
) -> Result<Option<FieldValue>, String> {
    let v = match json {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(FieldValue::Bool(*b)),
        serde_json::Value::Number(n) => Some(FieldValue::Number(n.as_f64().unwrap_or(0.0))),
        serde_json::Value::String(s) => Some(FieldValue::Text(s.clone())),
        other => return Err(format!("`{field}` cannot hold {other}")),
    };
    fit_field(pipe, field, v)
}

/// Renders a reply, note or notification text; a failure is recorded on the
/// card (and the text is not sent), never a crash.
pub(crate) fn render(run: &mut Run, card: CardId, source: &str, cause: &Cause) -> Option<String> {
    let pipe = run.pipe(card);
    render_in(run, pipe, Some(card), source, cause)
}

/// Renders a text for a pipe, with or without a card (a schedule without
/// `when` has none: its texts may use `pipe`, `now` and `count`).
pub(crate) fn render_in(
    run: &mut Run,
    pipe: &Pipe,
    card: Option<CardId>,
    source: &str,
    cause: &Cause,
) -> Option<String> {
    let pipe_json = serde_json::json!({ "name": pipe.name, "title": pipe.title });
    let counts = status_counts(run, &pipe.name);
    let count = minijinja::Value::from_function(
        move |kwargs: minijinja::value::Kwargs| -> Result<usize, minijinja::Error> {
            let status: Option<String> = kwargs.get("status")?;
            Ok(match status {
                Some(s) => counts.get(&s).copied().unwrap_or(0),
                None => counts.values().sum(),
            })
        },
    );
    let now = run.now.to_rfc3339();
    let rendered = match card {
        Some(card) => {
            let assignee = run.state.cards[card].assignee.clone();
            let ctx = minijinja::context! {
                card => minijinja::Value::from_serialize(card_json(run, card)),
                contact => minijinja::Value::from_serialize(contact_json(run, card)),
                message => minijinja::Value::from_serialize(message_json(run)),
                pipe => minijinja::Value::from_serialize(pipe_json),
                agent => minijinja::Value::from_serialize(serde_json::json!({ "email": assignee })),
                now => now,
                count => count,
            };
            run.engine.texts.render_str(source, ctx)
        }
        None => {
            let ctx = minijinja::context! {
                pipe => minijinja::Value::from_serialize(pipe_json),
                now => now,
                count => count,
            };
            run.engine.texts.render_str(source, ctx)
        }
    };
    match rendered {
        Ok(t) => Some(t),
        Err(e) => {
            let what = format!(
                "a text could not be written: {}",
                e.detail().unwrap_or("it has an error")
            );
            if let Some(card) = card {
                run.history(card, what.clone(), cause);
            }
            run.effect(card, EffectKind::Failed { what }, cause);
            None
        }
    }
}

fn status_counts(run: &Run, pipe: &str) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for c in run.state.cards.iter().filter(|c| c.pipe == pipe) {
        *counts.entry(c.status.clone()).or_insert(0) += 1;
    }
    counts
}
