//! Conditions, values, scripts and texts, evaluated against one card.
//! A condition that does not hold says which part was false: that is the
//! "why not" of the rule log.

use crate::engine::Run;
use crate::event::EffectKind;
use crate::plan::{Atom, Node, PipePlan};
use crate::state::{CardId, Cause, FieldValue};
use switchboard_lang::model::{Condition, FieldType, Op, Operand, Pipe, Script, Subject, Value};
use switchboard_script::{ScriptMap, ScriptValue};

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
            if within_hours(run, card) {
                None
            } else if !explain {
                Some(String::new())
            } else {
                Some(why_false(run, card, c))
            }
        }
        Condition::Script(s) => match script_holds(run, card, s)? {
            true => None,
            false if !explain => Some(String::new()),
            false => Some(format!("{} said no", script_name(s))),
        },
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
                Some(why_false(run, card, c))
            }
        }
    })
}

/// Why a comparison or `within hours` is false, in words.
fn why_false(run: &Run, card: CardId, c: &Condition) -> String {
    match c {
        Condition::Compare { subject, .. } => {
            let shown = match actual(run, card, subject) {
                Some(Actual::Text(t)) => format!("{t:?}"),
                Some(a) => a.to_value().to_string(),
                None => "empty".to_string(),
            };
            format!("`{c}` is false: `{subject}` is {shown}")
        }
        _ => "it is outside business hours".to_string(),
    }
}

fn within_hours(run: &Run, card: CardId) -> bool {
    let pipe = run.pipe(card);
    run.engine
        .calendar(&pipe.name)
        .is_some_and(|c| c.is_open(run.now))
}

/// Runs a condition's script; `Err` says where and how it failed.
fn script_holds(run: &Run, card: CardId, s: &Script) -> Result<bool, String> {
    let vars = script_vars(run, card);
    run.engine
        .sandbox
        .run_bool(&s.compiled, &vars)
        .map_err(|e| script_failure(s, &e))
}

/// A rule's condition, as [`condition`] evaluates it, with its atoms (see
/// [`crate::plan`]) answered once while the card does not change. `n` is
/// the plan of `c`.
pub(crate) fn rule_condition(
    run: &Run,
    card: CardId,
    plan: &PipePlan,
    c: &Condition,
    n: &Node,
    explain: bool,
) -> Result<Option<String>, String> {
    if explain {
        explained(run, card, plan, c, n)
    } else {
        Ok((!holds(run, card, plan, c, n)?).then(String::new))
    }
}

/// Whether a rule's condition holds (no "why not").
fn holds(
    run: &Run,
    card: CardId,
    plan: &PipePlan,
    c: &Condition,
    n: &Node,
) -> Result<bool, String> {
    Ok(match (c, n) {
        (_, Node::Atom(i)) => atom(run, card, plan, *i),
        (Condition::And(a, b), Node::And(x, y)) => {
            holds(run, card, plan, a, x)? && holds(run, card, plan, b, y)?
        }
        // Both sides are evaluated, left first, as `condition` does: a
        // script on the right runs (and may fail) even when the left holds.
        (Condition::Or(a, b), Node::Or(x, y, script)) => {
            let left = holds(run, card, plan, a, x)?;
            if left && !script {
                true
            } else {
                holds(run, card, plan, b, y)? || left
            }
        }
        (Condition::Not(a), Node::Not(x)) => !holds(run, card, plan, a, x)?,
        (Condition::Script(s), Node::Script) => script_holds(run, card, s)?,
        // A plan always has its condition's shape; if not, no shortcut.
        _ => condition(run, card, c, false)?.is_none(),
    })
}

/// `condition` with "why not", the atoms answered once.
fn explained(
    run: &Run,
    card: CardId,
    plan: &PipePlan,
    c: &Condition,
    n: &Node,
) -> Result<Option<String>, String> {
    Ok(match (c, n) {
        (_, Node::Atom(i)) => (!atom(run, card, plan, *i)).then(|| why_false(run, card, c)),
        (Condition::And(a, b), Node::And(x, y)) => match explained(run, card, plan, a, x)? {
            Some(why) => Some(why),
            None => explained(run, card, plan, b, y)?,
        },
        (Condition::Or(a, b), Node::Or(x, y, _)) => match (
            explained(run, card, plan, a, x)?,
            explained(run, card, plan, b, y)?,
        ) {
            (Some(x), Some(y)) => Some(format!("{x}, and {y}")),
            _ => None,
        },
        (Condition::Not(a), Node::Not(x)) => match explained(run, card, plan, a, x)? {
            None => Some(format!("`{a}` holds")),
            Some(_) => None,
        },
        (Condition::Script(s), Node::Script) => {
            (!script_holds(run, card, s)?).then(|| format!("{} said no", script_name(s)))
        }
        _ => condition(run, card, c, true)?,
    })
}

/// Whether all of a rule's guards (see [`PipePlan::guards`]) hold.
pub(crate) fn guards_hold(run: &Run, card: CardId, plan: &PipePlan, guards: &[usize]) -> bool {
    guards.iter().all(|&g| atom(run, card, plan, g))
}

/// Whether an atom holds for the card, worked out once per card change.
#[inline]
pub(crate) fn atom(run: &Run, card: CardId, plan: &PipePlan, i: usize) -> bool {
    let answers = run.memo.answers();
    match run.memo.known(answers, i) {
        Some(holds) => holds,
        None => {
            let holds = eval_atom(run, card, plan, i);
            run.memo.keep(answers, i, holds);
            holds
        }
    }
}

/// Works an atom out.
#[inline(never)]
fn eval_atom(run: &Run, card: CardId, plan: &PipePlan, i: usize) -> bool {
    match &plan.atoms[i] {
        Atom::Hours => within_hours(run, card),
        Atom::TextPattern(p) => text_pattern_matches(run, *p),
        Atom::Compare { subject, op, value } => compare(actual(run, card, subject), *op, value),
    }
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
    let (_, index) = run.engine.text_patterns.as_ref()?;
    let i = *index.get(source)?;
    Some(text_pattern_matches(run, i))
}

/// Whether the step's message matches the pattern at `i` in the engine's
/// set of text patterns (false when there is no set).
fn text_pattern_matches(run: &Run, i: usize) -> bool {
    let Some((set, _)) = run.engine.text_patterns.as_ref() else {
        return false;
    };
    let matches = run.text_matches.get_or_init(|| {
        run.message
            .as_ref()
            .and_then(|m| m.text.as_deref())
            .map(|t| set.matches(t))
    });
    matches.as_ref().is_some_and(|m| m.matched(i))
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
    let key = (card, run.out.effects.len());
    if let Some((k, vars)) = run.script_vars.borrow().as_ref() {
        if *k == key {
            return vars.clone();
        }
    }
    // Shared values: each script run clones a pointer, not the maps.
    let vars: ScriptVars = std::rc::Rc::new(vec![
        ("card", script_card(run, card).into_shared()),
        ("contact", script_contact(run, card).into_shared()),
        ("message", script_message(run).into_shared()),
    ]);
    *run.script_vars.borrow_mut() = Some((key, vars.clone()));
    vars
}

// What scripts see, built directly: the same values as `from_json` of
// `card_json`, `contact_json` and `message_json` (a test compares them),
// without the JSON in between, which cost more than running a script.

fn script_text(t: &str) -> ScriptValue {
    ScriptValue::from(t.to_string())
}

fn script_optional_text(t: Option<&str>) -> ScriptValue {
    t.map_or(ScriptValue::UNIT, script_text)
}

/// A field value as `from_json` of its JSON gives it.
fn script_field(v: &FieldValue) -> ScriptValue {
    match v {
        FieldValue::Text(t) | FieldValue::Date(t) => script_text(t),
        // As `FieldValue` serializes: whole numbers as integers.
        FieldValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            ScriptValue::from(*n as i64)
        }
        // JSON has no infinities: they are null.
        FieldValue::Number(n) if n.is_finite() => ScriptValue::from(*n),
        FieldValue::Number(_) => ScriptValue::UNIT,
        FieldValue::Bool(b) => ScriptValue::from(*b),
    }
}

fn script_card(run: &Run, card: CardId) -> ScriptValue {
    let c = &run.state.cards[card];
    let mut map = ScriptMap::new();
    let number = i64::try_from(c.number)
        .map(ScriptValue::from)
        .unwrap_or_else(|_| ScriptValue::from(c.number as f64));
    map.insert("number".into(), number);
    map.insert("status".into(), script_text(&c.status));
    map.insert("team".into(), script_optional_text(c.team.as_deref()));
    map.insert(
        "assignee".into(),
        script_optional_text(c.assignee.as_deref()),
    );
    map.insert("pipe".into(), script_text(&c.pipe));
    map.insert(
        "created_at".into(),
        ScriptValue::from(c.created_at.to_rfc3339()),
    );
    let mut fields = ScriptMap::new();
    for (k, v) in &c.fields {
        let v = script_field(v);
        // Fields are reachable as `card.fields.NAME` and as `card.NAME`.
        map.entry(k.as_str().into()).or_insert_with(|| v.clone());
        fields.insert(k.as_str().into(), v);
    }
    map.insert("fields".into(), ScriptValue::from_map(fields));
    ScriptValue::from_map(map)
}

fn script_contact(run: &Run, card: CardId) -> ScriptValue {
    let c = &run.state.cards[card];
    let mut map = ScriptMap::new();
    if let Some(contact) = run.state.contacts.get(&c.contact) {
        map.insert("name".into(), script_text(&contact.name));
        map.insert("phone".into(), script_text(&contact.phone));
        map.insert("wa_id".into(), script_text(&contact.wa_id));
        for (k, v) in &contact.attributes {
            map.entry(k.as_str().into())
                .or_insert_with(|| script_text(v));
        }
    }
    ScriptValue::from_map(map)
}

fn script_message(run: &Run) -> ScriptValue {
    let Some(m) = &run.message else {
        return ScriptValue::UNIT;
    };
    let mut map = ScriptMap::new();
    map.insert("text".into(), script_optional_text(m.text.as_deref()));
    map.insert("type".into(), script_text(&m.kind));
    map.insert("from".into(), script_text(&m.from));
    map.insert("id".into(), script_text(&m.id));
    ScriptValue::from_map(map)
}

/// The values a script runs with, shared while the card does not change.
pub(crate) type ScriptVars = std::rc::Rc<Vec<(&'static str, ScriptValue)>>;

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
    // Counting walks the pipe's cards: only for texts that count.
    let counts = if source.contains("count") {
        status_counts(run, &pipe.name)
    } else {
        Default::default()
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::event::{Event, Inbound};
    use crate::state::State;
    use chrono::{TimeZone, Utc};
    use switchboard_lang::{check, MemoryLoader, Sources};
    use switchboard_script::from_json;

    /// Scripts see the same card, contact and message as texts do (as JSON).
    #[test]
    fn script_values_are_the_json_values() {
        let mut sources = Sources::new();
        sources.add(
            "t.flow",
            "pipe p \"P\" {\n  number \"+55 11 4000-1000\"\n  field topic: choice(a, b) = a\n  field amount: number\n  field due: date\n  field vip: bool\n  status new open initial\n}\n",
        );
        let checked = check(&mut sources, &MemoryLoader::default());
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics.first());
        let engine = Engine::new(checked.workflow);
        let mut state = State::default();
        let now = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("valid");
        let inbound = Inbound {
            id: "m1".into(),
            from: "5511900000001".into(),
            name: "Maria".into(),
            to: "+55 11 4000-1000".into(),
            kind: "text".into(),
            text: Some("Olá".into()),
        };
        engine.step(&mut state, Event::Message(inbound.clone()), now);
        let contact = state.contacts.values_mut().next().expect("a contact");
        contact.attributes.insert("city".into(), "Rio".into());
        contact
            .attributes
            .insert("name".into(), "not the name".into());
        let same = |state: &mut State, message: Option<Inbound>| {
            let mut run = Run::new(&engine, state, now);
            run.message = message;
            let show = |v: ScriptValue| format!("{v:?}");
            assert_eq!(
                show(script_card(&run, 0)),
                show(from_json(&card_json(&run, 0)))
            );
            assert_eq!(
                show(script_contact(&run, 0)),
                show(from_json(&contact_json(&run, 0)))
            );
            assert_eq!(
                show(script_message(&run)),
                show(from_json(&message_json(&run)))
            );
        };
        same(&mut state, Some(inbound.clone()));
        same(&mut state, None);
        let numbers = [
            120.0,
            -0.0,
            2.5,
            -7.25,
            1e16,
            f64::INFINITY,
            f64::NAN,
            9.5e15,
        ];
        for (i, n) in numbers.into_iter().enumerate() {
            let c = &mut state.cards[0];
            c.fields.insert("amount".into(), FieldValue::Number(n));
            c.fields
                .insert("status".into(), FieldValue::Text(format!("s{i}")));
            c.fields
                .insert("fields".into(), FieldValue::Text("f".into()));
            c.fields
                .insert("due".into(), FieldValue::Date("2026-12-01".into()));
            c.fields.insert("vip".into(), FieldValue::Bool(i % 2 == 0));
            c.team = (i % 2 == 1).then(|| "t".to_string());
            c.assignee = (i % 3 == 1).then(|| "a@x.com".to_string());
            c.number = if i == 7 { u64::MAX } else { i as u64 };
            let mut message = inbound.clone();
            message.text = (i % 2 == 0).then(|| format!("text {i}"));
            same(&mut state, Some(message));
        }
        state.contacts.clear();
        same(&mut state, None);
    }
}
