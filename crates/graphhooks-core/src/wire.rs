//! The bytes receivers see (SPEC §2.2): Meta's JSON escaping and the notification body.
//!
//! Meta serialises compactly, writes every non-ASCII character as a lowercase `\uXXXX` escape
//! (surrogate pairs beyond the BMP) and writes `/` as `\/`. Receivers hash the raw body, so
//! graphhooks must produce exactly this form and sign exactly the bytes it sends. Change values
//! are escaped once at ingest ([`to_meta_json`]) and copied into bodies verbatim afterwards.

use std::io;

use serde::Serialize;
use serde_json::Value;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// serde_json formatter that escapes the Meta way; serde_json itself handles `"`, `\` and
/// control characters before fragments reach it.
struct MetaFormatter;

impl serde_json::ser::Formatter for MetaFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut buffer = Vec::with_capacity(fragment.len() + 8);
        escape_fragment(&mut buffer, fragment);
        writer.write_all(&buffer)
    }
}

/// Appends `fragment` with `/` and non-ASCII escaped; runs of plain ASCII are copied whole.
fn escape_fragment(out: &mut Vec<u8>, fragment: &str) {
    let bytes = fragment.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if byte < 0x80 && byte != b'/' {
            continue;
        }
        if byte >= 0x80 && (byte & 0xC0) == 0x80 {
            // continuation byte of a character already escaped
            continue;
        }
        out.extend_from_slice(&bytes[start..index]);
        if byte == b'/' {
            out.extend_from_slice(b"\\/");
            start = index + 1;
            continue;
        }
        let width = utf8_width(byte);
        let end = (index + width).min(bytes.len());
        let Some(ch) = fragment.get(index..end).and_then(|s| s.chars().next()) else {
            start = index;
            continue;
        };
        let mut units = [0u16; 2];
        for unit in ch.encode_utf16(&mut units) {
            out.extend_from_slice(b"\\u");
            for shift in [12u16, 8, 4, 0] {
                out.push(HEX[((*unit >> shift) & 0xF) as usize]);
            }
        }
        start = end;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn utf8_width(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

/// Serialises any value the Meta way (compact, ASCII only, `\/`).
pub fn to_meta_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, MetaFormatter);
    value.serialize(&mut serializer)?;
    // Only ASCII is ever written, so this cannot fail; map rather than unwrap all the same.
    String::from_utf8(out).map_err(|e| serde_json::Error::io(io::Error::other(e)))
}

/// Appends `text` as a Meta-escaped JSON string literal, quotes included. Runs of characters
/// that need no escape (most of any id or field name) are copied whole.
pub fn push_meta_string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if (0x20..0x80).contains(&byte) && !matches!(byte, b'"' | b'\\' | b'/') {
            index += 1;
            continue;
        }
        // `index` is on a character boundary: only whole characters are stepped over.
        out.push_str(&text[start..index]);
        let mut width = 1;
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'/' => out.push_str("\\/"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0x00..=0x1f => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
            _ => {
                if let Some(ch) = text[index..].chars().next() {
                    width = ch.len_utf8();
                    let mut units = [0u16; 2];
                    for unit in ch.encode_utf16(&mut units) {
                        out.push_str("\\u");
                        for shift in [12u16, 8, 4, 0] {
                            out.push(char::from(HEX[usize::from((*unit >> shift) & 0xF)]));
                        }
                    }
                }
            }
        }
        index += width;
        start = index;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Limits of one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most changes per notification (1 turns batching off).
    pub max_changes: usize,
    /// Most bytes per body.
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_changes: crate::MAX_BATCH,
            max_bytes: crate::MAX_BODY_BYTES,
        }
    }
}

/// One change as the body builder needs it.
#[derive(Debug, Clone, Copy)]
pub struct ChangeItem<'a> {
    /// The change id, recorded with the notification.
    pub id: i64,
    /// The object id (the entry it joins).
    pub object_id: &'a str,
    /// The field.
    pub field: &'a str,
    /// The value, already Meta-escaped JSON.
    pub value: &'a str,
}

/// A finished notification body with the changes it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltNotification {
    /// The exact body to send.
    pub body: String,
    /// The change ids in it, in order.
    pub change_ids: Vec<i64>,
    /// The distinct object ids in it, in entry order.
    pub object_ids: Vec<String>,
}

struct EntryBuffer {
    object_id: String,
    /// `{"id":..,"uid":..,"time":..,"changes":[` part, fixed once the entry opens.
    head: String,
    /// Comma-separated items.
    items: String,
    /// For `changed_fields`: the fields already listed.
    fields: Vec<String>,
}

/// Builds notifications for one (app, object type), closing one and opening the next whenever
/// the next change would pass the count or byte limit.
pub struct NotificationBuilder {
    object_prefix: String,
    uid: bool,
    include_values: bool,
    time: i64,
    limits: BatchLimits,
    entries: Vec<EntryBuffer>,
    /// Entry index by object id (FxHash: looked up for every change).
    by_object: rustc_hash::FxHashMap<String, usize>,
    change_ids: Vec<i64>,
    bytes: usize,
    done: Vec<BuiltNotification>,
}

const BODY_SUFFIX: &str = "]}";
const ENTRY_SUFFIX: &str = "]}";

impl NotificationBuilder {
    /// A builder for notifications about `object_type`, built at `time` (unix seconds).
    pub fn new(object_type: &str, include_values: bool, time: i64, limits: BatchLimits) -> Self {
        let mut object_prefix = String::from("{\"object\":");
        push_meta_string(&mut object_prefix, object_type);
        object_prefix.push_str(",\"entry\":[");
        NotificationBuilder {
            uid: crate::catalog::entries_have_uid(object_type),
            bytes: object_prefix.len() + BODY_SUFFIX.len(),
            object_prefix,
            include_values,
            time,
            limits: BatchLimits {
                max_changes: limits.max_changes.clamp(1, crate::MAX_BATCH),
                max_bytes: limits.max_bytes,
            },
            entries: Vec::new(),
            by_object: rustc_hash::FxHashMap::default(),
            change_ids: Vec::new(),
            done: Vec::new(),
        }
    }

    fn item_for(&self, change: &ChangeItem<'_>) -> String {
        let mut item = String::with_capacity(change.value.len() + change.field.len() + 24);
        if self.include_values {
            item.push_str("{\"field\":");
            push_meta_string(&mut item, change.field);
            item.push_str(",\"value\":");
            item.push_str(change.value);
            item.push('}');
        } else {
            push_meta_string(&mut item, change.field);
        }
        item
    }

    fn head_for(&self, object_id: &str) -> String {
        let mut head = String::with_capacity(64);
        head.push_str("{\"id\":");
        push_meta_string(&mut head, object_id);
        if self.uid {
            head.push_str(",\"uid\":");
            push_meta_string(&mut head, object_id);
        }
        head.push_str(",\"time\":");
        head.push_str(&self.time.to_string());
        head.push_str(if self.include_values {
            ",\"changes\":["
        } else {
            ",\"changed_fields\":["
        });
        head
    }

    /// Adds a change, closing the current notification first if it would not fit.
    pub fn push(&mut self, change: ChangeItem<'_>) {
        if self.change_ids.len() >= self.limits.max_changes {
            self.close();
        }
        let item = self.item_for(&change);
        // Built once, whether or not the notification has to be closed first.
        let mut head: Option<String> = None;
        loop {
            let existing = self.by_object.get(change.object_id).copied();
            let duplicate_field = !self.include_values
                && existing
                    .is_some_and(|i| self.entries[i].fields.iter().any(|f| f == change.field));
            let added = match existing {
                Some(_) if duplicate_field => 0,
                Some(_) => item.len() + 1,
                None => {
                    let head = head.get_or_insert_with(|| self.head_for(change.object_id));
                    usize::from(!self.entries.is_empty())
                        + head.len()
                        + item.len()
                        + ENTRY_SUFFIX.len()
                }
            };
            // Closing empties the notification, so this closes at most once.
            if !self.change_ids.is_empty() && self.bytes + added > self.limits.max_bytes {
                self.close();
                continue;
            }
            self.change_ids.push(change.id);
            self.bytes += added;
            match existing {
                Some(_) if duplicate_field => {}
                Some(index) => {
                    let entry = &mut self.entries[index];
                    entry.items.push(',');
                    entry.items.push_str(&item);
                    if !self.include_values {
                        entry.fields.push(change.field.to_owned());
                    }
                }
                None => {
                    let head = head
                        .take()
                        .unwrap_or_else(|| self.head_for(change.object_id));
                    self.by_object
                        .insert(change.object_id.to_owned(), self.entries.len());
                    self.entries.push(EntryBuffer {
                        object_id: change.object_id.to_owned(),
                        head,
                        items: item,
                        fields: if self.include_values {
                            Vec::new()
                        } else {
                            vec![change.field.to_owned()]
                        },
                    });
                }
            }
            return;
        }
    }

    fn close(&mut self) {
        if self.change_ids.is_empty() {
            return;
        }
        let mut body = String::with_capacity(self.bytes);
        body.push_str(&self.object_prefix);
        let mut object_ids = Vec::with_capacity(self.entries.len());
        for (index, entry) in self.entries.drain(..).enumerate() {
            if index > 0 {
                body.push(',');
            }
            body.push_str(&entry.head);
            body.push_str(&entry.items);
            body.push_str(ENTRY_SUFFIX);
            object_ids.push(entry.object_id);
        }
        body.push_str(BODY_SUFFIX);
        debug_assert_eq!(body.len(), self.bytes);
        self.by_object.clear();
        self.bytes = self.object_prefix.len() + BODY_SUFFIX.len();
        self.done.push(BuiltNotification {
            body,
            change_ids: std::mem::take(&mut self.change_ids),
            object_ids,
        });
    }

    /// Closes the last notification and returns them all, in order.
    pub fn finish(mut self) -> Vec<BuiltNotification> {
        self.close();
        self.done
    }
}

/// Parses a stored Meta-escaped value back into JSON (for API views).
pub fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_like_meta() {
        let value = json!({"text": "café / 😀", "n": 1, "nested": ["a/b", "ü"]});
        let text = to_meta_json(&value).unwrap();
        assert_eq!(
            text,
            r#"{"n":1,"nested":["a\/b","\u00fc"],"text":"caf\u00e9 \/ \ud83d\ude00"}"#
        );
        assert!(text.is_ascii());
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn control_characters_and_quotes_stay_escaped() {
        let text = to_meta_json(&json!("a\"b\\c\n\u{1}")).unwrap();
        assert_eq!(text, r#""a\"b\\c\n\u0001""#);
        let mut literal = String::new();
        push_meta_string(&mut literal, "a\"b\\c\n\u{1}");
        assert_eq!(literal, text);
    }

    #[test]
    fn string_literals_match_the_serialiser() {
        for sample in [
            "plain",
            "é/😀",
            "",
            "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}",
            "\u{8}\u{c}\t\r\n/\"\\\u{1f}\u{0}",
            "user 42/é x😀y\u{1}z",
            "trailing é",
        ] {
            let mut literal = String::new();
            push_meta_string(&mut literal, sample);
            assert_eq!(literal, to_meta_json(sample).unwrap(), "{sample:?}");
        }
    }

    fn item<'a>(id: i64, object_id: &'a str, field: &'a str, value: &'a str) -> ChangeItem<'a> {
        ChangeItem {
            id,
            object_id,
            field,
            value,
        }
    }

    #[test]
    fn changes_of_one_object_share_an_entry() {
        let mut builder =
            NotificationBuilder::new("user", true, 1520383571, BatchLimits::default());
        builder.push(item(1, "1021", "photos", r#"{"verb":"add"}"#));
        builder.push(item(2, "7", "email", r#""a@b.c""#));
        builder.push(item(3, "1021", "email", r#""x@y.z""#));
        let built = builder.finish();
        assert_eq!(built.len(), 1);
        assert_eq!(
            built[0].body,
            r#"{"object":"user","entry":[{"id":"1021","uid":"1021","time":1520383571,"changes":[{"field":"photos","value":{"verb":"add"}},{"field":"email","value":"x@y.z"}]},{"id":"7","uid":"7","time":1520383571,"changes":[{"field":"email","value":"a@b.c"}]}]}"#
        );
        assert_eq!(built[0].change_ids, vec![1, 2, 3]);
        assert_eq!(built[0].object_ids, vec!["1021", "7"]);
    }

    #[test]
    fn changed_fields_lists_each_field_once() {
        let mut builder = NotificationBuilder::new("page", false, 5, BatchLimits::default());
        builder.push(item(1, "1", "feed", "{}"));
        builder.push(item(2, "1", "feed", "{}"));
        builder.push(item(3, "1", "name", "\"n\""));
        let built = builder.finish();
        assert_eq!(
            built[0].body,
            r#"{"object":"page","entry":[{"id":"1","time":5,"changed_fields":["feed","name"]}]}"#
        );
        assert_eq!(built[0].change_ids, vec![1, 2, 3]);
    }

    #[test]
    fn batches_split_by_count() {
        let limits = BatchLimits {
            max_changes: 1000,
            max_bytes: crate::MAX_BODY_BYTES,
        };
        let mut builder = NotificationBuilder::new("page", true, 1, limits);
        let ids: Vec<String> = (0..2500).map(|i| i.to_string()).collect();
        for (index, id) in ids.iter().enumerate() {
            builder.push(item(index as i64, id, "feed", "{}"));
        }
        let built = builder.finish();
        let sizes: Vec<usize> = built.iter().map(|n| n.change_ids.len()).collect();
        assert_eq!(sizes, vec![1000, 1000, 500]);
        for notification in &built {
            let parsed: Value = serde_json::from_str(&notification.body).unwrap();
            assert_eq!(
                parsed["entry"].as_array().unwrap().len(),
                notification.change_ids.len()
            );
        }
    }

    #[test]
    fn batches_split_by_size_and_sizes_are_exact() {
        let limits = BatchLimits {
            max_changes: 1000,
            max_bytes: 300,
        };
        let mut builder = NotificationBuilder::new("page", true, 1, limits);
        let value = format!("\"{}\"", "x".repeat(60));
        for index in 0..10 {
            builder.push(item(index, "1", "feed", &value));
        }
        let built = builder.finish();
        assert!(built.len() > 1);
        let total: usize = built.iter().map(|n| n.change_ids.len()).sum();
        assert_eq!(total, 10);
        for notification in &built {
            assert!(
                notification.body.len() <= 300,
                "{}",
                notification.body.len()
            );
            serde_json::from_str::<Value>(&notification.body).unwrap();
        }
    }

    #[test]
    fn batch_max_one_sends_one_change_per_notification() {
        let limits = BatchLimits {
            max_changes: 1,
            max_bytes: crate::MAX_BODY_BYTES,
        };
        let mut builder = NotificationBuilder::new("page", true, 1, limits);
        for index in 0..3 {
            builder.push(item(index, "1", "feed", "{}"));
        }
        assert_eq!(builder.finish().len(), 3);
    }
}
