//! Webhook bodies parsed into typed updates.
//!
//! The parser walks `serde_json::Value` by hand rather than deriving strict
//! structs: Meta adds fields and message types without notice and losing a
//! customer's message is worse than not understanding it, so one odd item
//! becomes an [`Update::Other`] kept raw while its neighbours parse normally.
//! Every message and status also keeps its JSON as received (`raw`).

use serde::Serialize;
use serde_json::{json, Map, Value};

/// The `object` of every WhatsApp Business Account notification.
const WABA_OBJECT: &str = "whatsapp_business_account";

/// A parsed notification: every update it carries, in order (entries, then changes, then items).
///
/// Within one change: its messages, then its statuses, then its errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The updates, in the order they appear in the body.
    pub updates: Vec<Update>,
}

/// Where a change came from: the business number.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    /// The number's Graph API id (`value.metadata.phone_number_id`): which pipe the change belongs to.
    pub phone_number_id: String,
    /// The number as shown to customers, digits only (`value.metadata.display_phone_number`).
    pub display_phone_number: String,
}

/// One thing a notification tells us.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A message from a customer.
    Message(InboundMessage),
    /// A delivery status of one of our messages.
    Status(StatusUpdate),
    /// `value.errors[]`: an account-level failure, not tied to a card.
    Error {
        /// The business number the failure concerns.
        metadata: Metadata,
        /// The failure as Meta described it.
        error: WaError,
    },
    /// A change of another field (user_preferences, account_update, …) or anything not understood: kept raw.
    ///
    /// For another field, `raw` is the change's `value` as received. For an
    /// item that could not be read, `field` is the change's field (empty when
    /// even that was unreadable) and `raw` is `{"note": "<where and why>",
    /// "item": <the item as received>}`.
    Other {
        /// The change's `field`, e.g. `user_preferences`.
        field: String,
        /// The JSON kept for later (see above).
        raw: Value,
    },
}

/// A message a customer sent to one of our numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The business number it was sent to.
    pub metadata: Metadata,
    /// The wamid: opaque, the message's idempotency key.
    pub id: String,
    /// The sender's wa_id (digits, no `+`); absent for some username users.
    pub from: Option<String>,
    /// The sender's business-scoped user id (BSUID, e.g. `BR.4417029988`).
    pub from_user_id: Option<String>,
    /// The sender's profile name, from `contacts[]` joined on wa_id or user_id (not by index).
    pub name: Option<String>,
    /// The sender's username (`@`-less), from `contacts[]`.
    pub username: Option<String>,
    /// When the customer sent it, in Unix seconds (sent as a string or a number).
    pub timestamp: i64,
    /// The `type` as sent (text, image, …, unknown ones verbatim).
    pub kind: String,
    /// One readable line where the message has one: a text body, a caption, a button or list title, a place, an emoji, a system notice.
    pub text: Option<String>,
    /// What the message replies to or whether it was forwarded.
    pub context: Option<Context>,
    /// Click-to-WhatsApp ad or post attribution, as received.
    pub referral: Option<Value>,
    /// The message's `errors[]` (set on `unsupported` messages).
    pub errors: Vec<WaError>,
    /// The message object exactly as received.
    pub raw: Value,
}

/// A message's `context`: the message it quotes, and forwarding marks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Context {
    /// The wamid of the quoted message.
    pub id: Option<String>,
    /// The quoted message's author (our display number when they quote us).
    pub from: Option<String>,
    /// The message was forwarded.
    pub forwarded: bool,
    /// The message was forwarded more than five times.
    pub frequently_forwarded: bool,
}

/// What happened to a message we sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The business number that sent the message.
    pub metadata: Metadata,
    /// The wamid of our message.
    pub id: String,
    /// The status as sent (`sent`, `delivered`, `read`, `played`, `failed`, or anything newer).
    pub status: String,
    /// When it happened, in Unix seconds.
    pub timestamp: i64,
    /// The recipient's wa_id; absent when we sent to a BSUID and no phone may be shown.
    pub recipient_id: Option<String>,
    /// The recipient's BSUID.
    pub recipient_user_id: Option<String>,
    /// `biz_opaque_callback_data`: the string we set when sending (our outbox row id).
    pub callback_data: Option<String>,
    /// Why the message failed, for `failed`.
    pub errors: Vec<WaError>,
    /// The status object exactly as received.
    pub raw: Value,
}

/// An error object as Meta sends it in webhooks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WaError {
    /// Meta's error code, e.g. 131047 (0 when absent).
    pub code: i64,
    /// The short title.
    pub title: String,
    /// The message (often the same as the title; empty when absent).
    pub message: String,
    /// `error_data.details` (or a top-level `details`, as older versions sent it).
    pub details: Option<String>,
}

/// Why a body could not be read at all (not JSON, or not a WhatsApp notification object).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not JSON.
    #[error("the webhook body is not JSON: {reason}")]
    NotJson {
        /// serde_json's description, with line and column.
        reason: String,
    },
    /// The body is JSON but not an object.
    #[error("the webhook body is a JSON {found}, not the object Meta sends (`{{\"object\": \"whatsapp_business_account\", \"entry\": [...]}}`)")]
    NotAnObject {
        /// What the body is instead: `array`, `string`, `number`, `boolean` or `null`.
        found: &'static str,
    },
    /// The body's `object` names another product.
    #[error("the webhook body's `object` is {object}, not \"whatsapp_business_account\": check which products the app's webhook is subscribed to")]
    NotWhatsApp {
        /// The `object` value as JSON text.
        object: String,
    },
}

/// Parses a webhook body. Tolerant: never panics; a malformed item inside a valid body becomes `Update::Other` with its raw JSON (field name "messages" and a note) rather than failing the whole body; only a body that is not JSON or not an object fails.
///
/// A body without `object` is accepted; one whose `object` is not
/// `whatsapp_business_account` is refused with [`ParseError::NotWhatsApp`].
pub fn parse(body: &[u8]) -> Result<Notification, ParseError> {
    let root: Value = serde_json::from_slice(body).map_err(|error| ParseError::NotJson {
        reason: error.to_string(),
    })?;
    let Value::Object(root) = root else {
        return Err(ParseError::NotAnObject {
            found: json_kind(&root),
        });
    };
    match root.get("object") {
        None => {}
        Some(Value::String(object)) if object == WABA_OBJECT => {}
        Some(other) => {
            return Err(ParseError::NotWhatsApp {
                object: other.to_string(),
            })
        }
    }
    let mut updates = Vec::new();
    match root.get("entry") {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) => {
            for (e, entry) in entries.iter().enumerate() {
                read_entry(entry, &format!("entry[{e}]"), &mut updates);
            }
        }
        Some(other) => updates.push(malformed("", "entry", "is not a list", other)),
    }
    Ok(Notification { updates })
}

/// A webhook body carrying one text message, shaped and escaped as Meta sends it (for tests, the phone simulator and the load generator).
///
/// The entry id (WABA id) is a placeholder `"0"`; the timestamp is a string,
/// non-ASCII is escaped as `\uXXXX` and `/` as `\/`, so signatures over these
/// bodies exercise the same bytes as real ones.
pub fn text_message_body(
    meta: &Metadata,
    from: &str,
    name: &str,
    wamid: &str,
    timestamp: i64,
    text: &str,
) -> String {
    notification_body(
        meta,
        json!({
            "contacts": [{"profile": {"name": name}, "wa_id": from}],
            "messages": [{
                "from": from,
                "id": wamid,
                "timestamp": timestamp.to_string(),
                "type": "text",
                "text": {"body": text},
            }],
        }),
    )
}

/// A webhook body carrying one status of a message we sent, shaped and escaped as Meta sends it.
///
/// It has no `contacts[]`, `pricing` or `errors[]`: a `failed` status built
/// here carries no reason.
pub fn status_body(
    meta: &Metadata,
    wamid: &str,
    status: &str,
    timestamp: i64,
    recipient: &str,
    callback_data: Option<&str>,
) -> String {
    let mut item = json!({
        "id": wamid,
        "status": status,
        "timestamp": timestamp.to_string(),
        "recipient_id": recipient,
    });
    if let (Some(data), Value::Object(fields)) = (callback_data, &mut item) {
        fields.insert("biz_opaque_callback_data".into(), data.into());
    }
    notification_body(meta, json!({ "statuses": [item] }))
}

/// One entry with one `messages` change for `meta`, whose value is `fields`
/// plus `messaging_product` and `metadata`.
fn notification_body(meta: &Metadata, fields: Value) -> String {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": meta.display_phone_number,
            "phone_number_id": meta.phone_number_id,
        },
    });
    if let (Value::Object(value), Value::Object(fields)) = (&mut value, fields) {
        value.extend(fields);
    }
    let body = json!({
        "object": WABA_OBJECT,
        "entry": [{"id": "0", "changes": [{"field": "messages", "value": value}]}],
    });
    to_meta_json(&body)
}

/// Serialises like Meta's servers: compact, non-ASCII as `\uXXXX`, `/` as `\/`.
fn to_meta_json(value: &Value) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, MetaEscapes);
    if value.serialize(&mut serializer).is_err() {
        // Writing a Value to memory cannot fail; fall back to plain JSON anyway.
        return value.to_string();
    }
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_else(|_| value.to_string())
}

/// A compact formatter that escapes what Meta's encoder escapes.
struct MetaEscapes;

impl serde_json::ser::Formatter for MetaEscapes {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> std::io::Result<()>
    where
        W: ?Sized + std::io::Write,
    {
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if c == '/' {
                writer.write_all(b"\\/")?;
            } else if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Reads `entry[e]`: every change in order.
fn read_entry(entry: &Value, path: &str, updates: &mut Vec<Update>) {
    let Value::Object(entry) = entry else {
        updates.push(malformed("", path, "is not an object", entry));
        return;
    };
    match entry.get("changes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(changes)) => {
            for (c, change) in changes.iter().enumerate() {
                read_change(change, &format!("{path}.changes[{c}]"), updates);
            }
        }
        Some(other) => updates.push(malformed(
            "",
            &format!("{path}.changes"),
            "is not a list",
            other,
        )),
    }
}

/// Reads one change: `messages` changes are taken apart, others kept raw.
fn read_change(change: &Value, path: &str, updates: &mut Vec<Update>) {
    let Some(field) = change.get("field").and_then(Value::as_str) else {
        updates.push(malformed("", path, "has no `field` string", change));
        return;
    };
    let raw_value = change.get("value").unwrap_or(&Value::Null);
    if field != "messages" {
        updates.push(Update::Other {
            field: field.to_owned(),
            raw: raw_value.clone(),
        });
        return;
    }
    let path = format!("{path}.value");
    let Value::Object(value) = raw_value else {
        updates.push(malformed(field, &path, "is not an object", raw_value));
        return;
    };
    let metadata = read_metadata(value.get("metadata"));
    let contacts = read_contacts(value.get("contacts"));
    let before = updates.len();

    let messages = items(value, "messages", field, &path, updates);
    for (i, item) in messages.iter().enumerate() {
        updates.push(match read_message(item, &metadata, &contacts) {
            Ok(message) => Update::Message(message),
            Err(problem) => malformed(field, &format!("{path}.messages[{i}]"), &problem, item),
        });
    }
    let statuses = items(value, "statuses", field, &path, updates);
    for (i, item) in statuses.iter().enumerate() {
        updates.push(match read_status(item, &metadata) {
            Ok(status) => Update::Status(status),
            Err(problem) => malformed(field, &format!("{path}.statuses[{i}]"), &problem, item),
        });
    }
    let errors = items(value, "errors", field, &path, updates);
    for (i, item) in errors.iter().enumerate() {
        updates.push(if item.is_object() {
            Update::Error {
                metadata: metadata.clone(),
                error: read_error(item),
            }
        } else {
            malformed(
                field,
                &format!("{path}.errors[{i}]"),
                "is not an object",
                item,
            )
        });
    }

    if updates.len() == before {
        // Nothing we know in it (a new kind of `messages` change?): keep it.
        updates.push(malformed(
            field,
            &path,
            "has no messages, statuses or errors",
            raw_value,
        ));
    }
}

/// The items of the list `value[key]`; a value that is not a list is kept
/// raw with a note, and has no items.
fn items<'v>(
    value: &'v Map<String, Value>,
    key: &str,
    field: &str,
    path: &str,
    updates: &mut Vec<Update>,
) -> &'v [Value] {
    match value.get(key) {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(other) => {
            let at = format!("{path}.{key}");
            updates.push(malformed(field, &at, "is not a list", other));
            &[]
        }
    }
}

/// An item that could not be read, kept raw with a note saying where and why.
fn malformed(field: &str, path: &str, problem: &str, item: &Value) -> Update {
    Update::Other {
        field: field.to_owned(),
        raw: json!({
            "note": format!("{path} {problem}; kept raw"),
            "item": item,
        }),
    }
}

fn read_metadata(metadata: Option<&Value>) -> Metadata {
    let Some(metadata) = metadata else {
        return Metadata::default();
    };
    Metadata {
        phone_number_id: string(metadata, "phone_number_id").unwrap_or_default(),
        display_phone_number: string(metadata, "display_phone_number").unwrap_or_default(),
    }
}

/// One `contacts[]` entry, for joining names onto messages.
struct Profile<'a> {
    wa_id: Option<&'a str>,
    user_id: Option<&'a str>,
    name: Option<&'a str>,
    username: Option<&'a str>,
}

fn read_contacts(contacts: Option<&Value>) -> Vec<Profile<'_>> {
    let Some(Value::Array(contacts)) = contacts else {
        return Vec::new();
    };
    contacts
        .iter()
        .map(|contact| {
            let profile = contact.get("profile");
            Profile {
                wa_id: str_at(contact, "wa_id"),
                user_id: str_at(contact, "user_id"),
                name: profile.and_then(|p| str_at(p, "name")),
                username: profile.and_then(|p| str_at(p, "username")),
            }
        })
        .collect()
}

/// The contact that sent a message: same wa_id or same BSUID.
fn sender<'c, 'a>(
    contacts: &'c [Profile<'a>],
    from: Option<&str>,
    from_user_id: Option<&str>,
) -> Option<&'c Profile<'a>> {
    contacts.iter().find(|contact| {
        (from.is_some() && contact.wa_id == from)
            || (from_user_id.is_some() && contact.user_id == from_user_id)
    })
}

fn read_message(
    item: &Value,
    metadata: &Metadata,
    contacts: &[Profile<'_>],
) -> Result<InboundMessage, String> {
    if !item.is_object() {
        return Err("is not an object".into());
    }
    let id = required_id(item)?;
    let kind = str_at(item, "type")
        .ok_or("has no `type` string")?
        .to_owned();
    let timestamp = timestamp(item)?;
    let from = string(item, "from");
    let from_user_id = string(item, "from_user_id");
    let contact = sender(contacts, from.as_deref(), from_user_id.as_deref());
    Ok(InboundMessage {
        metadata: metadata.clone(),
        id,
        name: contact.and_then(|c| c.name).map(str::to_owned),
        username: contact.and_then(|c| c.username).map(str::to_owned),
        from,
        from_user_id,
        timestamp,
        text: readable_text(&kind, item),
        kind,
        context: item
            .get("context")
            .filter(|c| c.is_object())
            .map(|c| Context {
                id: string(c, "id"),
                from: string(c, "from"),
                forwarded: c.get("forwarded").and_then(Value::as_bool) == Some(true),
                frequently_forwarded: c.get("frequently_forwarded").and_then(Value::as_bool)
                    == Some(true),
            }),
        referral: item.get("referral").filter(|r| !r.is_null()).cloned(),
        errors: read_errors(item),
        raw: item.clone(),
    })
}

fn read_status(item: &Value, metadata: &Metadata) -> Result<StatusUpdate, String> {
    if !item.is_object() {
        return Err("is not an object".into());
    }
    let id = required_id(item)?;
    let status = string(item, "status").ok_or("has no `status` string")?;
    Ok(StatusUpdate {
        metadata: metadata.clone(),
        id,
        status,
        timestamp: timestamp(item)?,
        recipient_id: string(item, "recipient_id"),
        recipient_user_id: string(item, "recipient_user_id"),
        callback_data: string(item, "biz_opaque_callback_data"),
        errors: read_errors(item),
        raw: item.clone(),
    })
}

/// The wamid, which everything downstream is keyed on.
fn required_id(item: &Value) -> Result<String, String> {
    match str_at(item, "id") {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err("has no `id` (wamid) string".into()),
    }
}

/// `timestamp` as Unix seconds, from a string of digits or a JSON integer.
fn timestamp(item: &Value) -> Result<i64, String> {
    let seconds = match item.get("timestamp") {
        Some(Value::String(text)) => text.trim().parse().ok(),
        Some(Value::Number(number)) => integer(number),
        _ => None,
    };
    seconds.ok_or_else(|| "has no `timestamp` in Unix seconds".into())
}

/// A JSON number as an i64, if it is a whole number in range (`12.0` counts).
fn integer(number: &serde_json::Number) -> Option<i64> {
    number.as_i64().or_else(|| {
        let float = number.as_f64()?;
        let whole = float.fract() == 0.0 && float.abs() < 9.0e15;
        whole.then_some(float as i64)
    })
}

/// The `errors[]` of a message or status; items that are not objects are
/// skipped (they stay in `raw`).
fn read_errors(item: &Value) -> Vec<WaError> {
    match item.get("errors") {
        Some(Value::Array(errors)) => errors
            .iter()
            .filter(|e| e.is_object())
            .map(read_error)
            .collect(),
        _ => Vec::new(),
    }
}

fn read_error(error: &Value) -> WaError {
    let code = match error.get("code") {
        Some(Value::Number(number)) => integer(number),
        Some(Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    };
    WaError {
        code: code.unwrap_or(0),
        title: string(error, "title").unwrap_or_default(),
        message: string(error, "message").unwrap_or_default(),
        details: error
            .get("error_data")
            .and_then(|data| string(data, "details"))
            .or_else(|| string(error, "details")),
    }
}

/// The message types whose payload object is named after them, for `edit`.
const PAYLOAD_KINDS: &[&str] = &[
    "text",
    "image",
    "video",
    "document",
    "audio",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
];

/// One readable line for a message of type `kind`, if it has one.
fn readable_text(kind: &str, message: &Value) -> Option<String> {
    let payload = message.get(kind).unwrap_or(&Value::Null);
    let line = match kind {
        "text" => string(payload, "body"),
        "image" | "video" | "document" => string(payload, "caption"),
        // A voice note, a sticker, a revoked message or an unsupported one
        // has nothing to read; the card shows what it is instead.
        "audio" | "sticker" | "revoke" | "unsupported" => None,
        "location" => location_line(payload),
        "contacts" => contact_names(payload),
        "interactive" => interactive_line(payload),
        "button" => string(payload, "text"),
        // No emoji (or an empty one) means the reaction was removed.
        "reaction" => string(payload, "emoji"),
        "order" => string(payload, "text"),
        "system" => string(payload, "body"),
        "edit" => {
            let edited = payload.get("message")?;
            let kind = str_at(edited, "type").or_else(|| {
                PAYLOAD_KINDS
                    .iter()
                    .copied()
                    .find(|k| edited.get(*k).is_some())
            })?;
            return readable_text(kind, edited);
        }
        // A type we do not know yet: the usual names for readable text.
        _ => ["body", "text", "caption"]
            .iter()
            .find_map(|key| string(payload, key)),
    };
    line.filter(|line| !line.trim().is_empty())
}

/// `name, address` when the place has them, else `latitude,longitude`.
fn location_line(location: &Value) -> Option<String> {
    let named: Vec<&str> = ["name", "address"]
        .iter()
        .filter_map(|key| str_at(location, key))
        .filter(|part| !part.trim().is_empty())
        .collect();
    if !named.is_empty() {
        return Some(named.join(", "));
    }
    let latitude = location.get("latitude").filter(|v| v.is_number())?;
    let longitude = location.get("longitude").filter(|v| v.is_number())?;
    Some(format!("{latitude},{longitude}"))
}

/// The shared contacts' formatted names, comma separated.
fn contact_names(contacts: &Value) -> Option<String> {
    let names: Vec<&str> = contacts
        .as_array()?
        .iter()
        .filter_map(|card| {
            card.get("name")
                .and_then(|name| str_at(name, "formatted_name"))
        })
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// The title of the tapped button or list row, or a Flow reply's body.
fn interactive_line(interactive: &Value) -> Option<String> {
    let reply = str_at(interactive, "type")
        .and_then(|kind| interactive.get(kind))
        .or_else(|| {
            ["button_reply", "list_reply", "nfm_reply"]
                .iter()
                .find_map(|kind| interactive.get(*kind))
        })?;
    string(reply, "title").or_else(|| string(reply, "body"))
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn string(value: &Value, key: &str) -> Option<String> {
    str_at(value, key).map(str::to_owned)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
