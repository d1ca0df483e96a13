//! Typed notification bodies: [`Notification`] → [`Entry`] → [`Change`] (Graph API objects),
//! `changed_fields` (subscriptions without values), and Messenger-style [`MessagingEvent`]s.
//! Unknown keys are ignored, so new fields from Meta or graphhooks never break parsing.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// One notification: the body of one POST.
///
/// Parse it from the raw bytes **after** [verifying](crate::Verifier::verify) them. Serialising it
/// again does not give the bytes that were signed (see [`Verifier`](crate::Verifier)).
///
/// ```
/// use graphhooks_receiver::Notification;
///
/// let body = br#"{"object":"user","entry":[{"id":"1021","uid":"1021","time":1520383571,
///     "changes":[{"field":"photos","value":{"verb":"update","object_id":"10211885744794461"}}]}]}"#;
/// let notification = Notification::from_slice(body)?;
/// assert_eq!(notification.object, "user");
/// let entry = &notification.entry[0];
/// assert_eq!((entry.id.as_str(), entry.time), ("1021", Some(1520383571)));
/// assert_eq!(entry.changes[0].field, "photos");
/// assert_eq!(entry.changes[0].value["verb"], "update");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The object type: `user`, `page`, `permissions`, `instagram`, `whatsapp_business_account`,
    /// or one the graphhooks operator declared.
    pub object: String,
    /// One entry per object that changed.
    pub entry: Vec<Entry>,
}

impl Notification {
    /// Parses a notification from the raw body.
    ///
    /// ```
    /// use graphhooks_receiver::Notification;
    ///
    /// let notification =
    ///     Notification::from_slice(br#"{"object":"whatsapp_business_account","entry":[]}"#)?;
    /// assert_eq!(notification.object, "whatsapp_business_account");
    /// assert!(notification.entry.is_empty());
    /// assert!(Notification::from_slice(b"{}").is_err());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn from_slice(raw_body: &[u8]) -> Result<Notification, serde_json::Error> {
        serde_json::from_slice(raw_body)
    }

    /// Every change with its entry, in order.
    ///
    /// ```
    /// use graphhooks_receiver::Notification;
    ///
    /// let notification = Notification::from_slice(
    ///     br#"{"object":"page","entry":[
    ///         {"id":"1","time":1,"changes":[{"field":"feed","value":{"item":"post"}},
    ///                                       {"field":"name","value":"New name"}]},
    ///         {"id":"2","time":1,"changes":[{"field":"feed","value":{"item":"comment"}}]}]}"#,
    /// )?;
    /// let seen: Vec<(&str, &str)> = notification
    ///     .changes()
    ///     .map(|(entry, change)| (entry.id.as_str(), change.field.as_str()))
    ///     .collect();
    /// assert_eq!(seen, [("1", "feed"), ("1", "name"), ("2", "feed")]);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn changes(&self) -> impl Iterator<Item = (&Entry, &Change)> {
        self.entry
            .iter()
            .flat_map(|entry| entry.changes.iter().map(move |change| (entry, change)))
    }

    /// Every Messenger-style event (`messaging`, then `standby`) with its entry, in order.
    ///
    /// ```
    /// use graphhooks_receiver::Notification;
    ///
    /// let notification = Notification::from_slice(
    ///     br#"{"object":"page","entry":[{"id":"1","time":1458692752478,
    ///         "messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},
    ///                       "timestamp":1458692752478,"message":{"text":"hi"}}],
    ///         "standby":[{"sender":{"id":"3"},"recipient":{"id":"1"},
    ///                     "timestamp":1458692752479,"read":{"watermark":1}}]}]}"#,
    /// )?;
    /// let kinds: Vec<_> = notification.messaging_events().map(|(_, event)| event.kind()).collect();
    /// assert_eq!(kinds, [Some("message"), Some("read")]);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn messaging_events(&self) -> impl Iterator<Item = (&Entry, &MessagingEvent)> {
        self.entry.iter().flat_map(|entry| {
            entry
                .messaging
                .iter()
                .chain(&entry.standby)
                .map(move |event| (entry, event))
        })
    }
}

/// The changes of one object.
///
/// `time` is when the notification was built: UNIX **seconds** for Graph API objects (and
/// graphhooks), **milliseconds** in Messenger payloads, and absent in WhatsApp's.
///
/// ```
/// use graphhooks_receiver::Notification;
///
/// // A WhatsApp notification: no `time`, the messages inside the change value.
/// let notification = Notification::from_slice(
///     br#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[
///         {"field":"messages","value":{"messaging_product":"whatsapp",
///          "messages":[{"from":"16505551234","id":"wamid.HBgL","timestamp":"1749416383",
///                       "type":"text","text":{"body":"Does it come in another color?"}}]}}]}]}"#,
/// )?;
/// let entry = &notification.entry[0];
/// assert_eq!(entry.time, None);
/// assert_eq!(entry.changes[0].value["messages"][0]["text"]["body"], "Does it come in another color?");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The object's id (always a string; a number on the wire is accepted and turned into one).
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// The user id, on `user` and `permissions` entries (equal to `id`).
    #[serde(
        default,
        deserialize_with = "optional_string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub uid: Option<String>,
    /// When the notification was built (see the type's documentation for units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// The changed fields with their values (subscriptions with `include_values`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// The names of the changed fields (subscriptions without `include_values`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<String>,
    /// Messenger / Instagram messaging events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messaging: Vec<MessagingEvent>,
    /// Messaging events for a secondary receiver (Handover Protocol).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standby: Vec<MessagingEvent>,
}

/// One changed field and its new value.
///
/// ```
/// use graphhooks_receiver::Change;
///
/// let change: Change = serde_json::from_str(r#"{"field":"email","value":"zoë@example.com"}"#)?;
/// assert_eq!(change.field, "email");
/// assert_eq!(change.value_as::<String>()?, "zoë@example.com");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The field's name.
    pub field: String,
    /// The field's value, any JSON (`null` when absent).
    #[serde(default)]
    pub value: Value,
}

impl Change {
    /// The value as your own type.
    ///
    /// ```
    /// use graphhooks_receiver::Change;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Feed {
    ///     item: String,
    ///     verb: String,
    ///     post_id: String,
    /// }
    ///
    /// let change: Change = serde_json::from_str(
    ///     r#"{"field":"feed","value":{"item":"post","verb":"add","post_id":"44_55","extra":1}}"#,
    /// )?;
    /// let feed: Feed = change.value_as()?;
    /// assert_eq!((feed.item.as_str(), feed.verb.as_str(), feed.post_id.as_str()), ("post", "add", "44_55"));
    /// assert!(change.value_as::<Vec<u8>>().is_err());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn value_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.value)
    }
}

/// One Messenger-style event of `entry[].messaging` or `entry[].standby`.
///
/// `sender`, `recipient` and `timestamp` (epoch **milliseconds**) are typed; the event body
/// (`message`, `postback`, `delivery`, `read`, `reaction`, …) stays in [`fields`](Self::fields).
///
/// ```
/// use graphhooks_receiver::MessagingEvent;
///
/// let event: MessagingEvent = serde_json::from_str(
///     r#"{"sender":{"id":"PSID"},"recipient":{"id":"PAGE_ID"},"timestamp":1458692752478,
///         "message":{"mid":"mid.1457764197618:41d102a3e1ae206a38","text":"hello, world!"}}"#,
/// )?;
/// assert_eq!(event.sender.as_ref().and_then(|s| s.id.as_deref()), Some("PSID"));
/// assert_eq!(event.timestamp, Some(1458692752478));
/// assert_eq!(event.kind(), Some("message"));
/// assert_eq!(event.get("message").map(|m| &m["text"]), Some(&"hello, world!".into()));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagingEvent {
    /// Who sent it (a PSID, or a `user_ref` for plugin opt-ins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Participant>,
    /// Who received it (the Page or Instagram account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Participant>,
    /// When it happened, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Everything else: the event body (`message`, `postback`, …) and any other key.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// Event bodies Meta documents for `messaging` entries, in the order [`MessagingEvent::kind`]
/// looks for them.
const EVENT_KINDS: &[&str] = &[
    "message",
    "postback",
    "delivery",
    "read",
    "reaction",
    "optin",
    "referral",
    "account_linking",
    "policy_enforcement",
    "message_edit",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "app_roles",
    "game_play",
    "messaging_feedback",
    "response_feedback",
];

impl MessagingEvent {
    /// The event's kind: the first documented event body present (`message`, `postback`,
    /// `delivery`, `read`, `reaction`, `optin`, `referral`, …), else the first other key.
    ///
    /// ```
    /// use graphhooks_receiver::MessagingEvent;
    ///
    /// let event: MessagingEvent =
    ///     serde_json::from_str(r#"{"timestamp":1,"postback":{"payload":"START"}}"#)?;
    /// assert_eq!(event.kind(), Some("postback"));
    /// let bare: MessagingEvent = serde_json::from_str(r#"{"timestamp":1}"#)?;
    /// assert_eq!(bare.kind(), None);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn kind(&self) -> Option<&str> {
        EVENT_KINDS
            .iter()
            .copied()
            .find(|kind| self.fields.contains_key(*kind))
            .or_else(|| self.fields.keys().next().map(String::as_str))
    }

    /// A key of the event body, such as `message` or `postback`.
    ///
    /// ```
    /// use graphhooks_receiver::MessagingEvent;
    ///
    /// let event: MessagingEvent = serde_json::from_str(r#"{"read":{"watermark":1458668856253}}"#)?;
    /// assert_eq!(event.get("read").map(|read| &read["watermark"]), Some(&1458668856253_i64.into()));
    /// assert!(event.get("message").is_none());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }
}

/// The `sender` or `recipient` of a [`MessagingEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    /// The id (PSID, Page id, Instagram-scoped id).
    #[serde(
        default,
        deserialize_with = "optional_string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// Anything else, such as `user_ref`.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// A string, or a number turned into its decimal text (ids are strings on the wire, but a
/// receiver should not fail on a producer that sends numbers).
fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Id::deserialize(deserializer)? {
        Id::Text(text) => text,
        Id::Number(number) => number.to_string(),
    })
}

/// [`string_or_number`] for optional ids; `null` is `None`.
fn optional_string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapper(#[serde(deserialize_with = "string_or_number")] String);
    Ok(Option::<Wrapper>::deserialize(deserializer)?.map(|Wrapper(id)| id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_graph_notification_with_values_parses() {
        let notification = Notification::from_slice(
            br#"{"object":"user","entry":[{"id":"1021","uid":"1021","time":1520383571,
                "changes":[{"field":"about","value":{"text":"Zo\u00eb likes caf\u00e9\/bar \ud83d\ude00"}},
                           {"field":"email","value":"zo\u00eb@example.com"}]}]}"#,
        )
        .expect("parses");
        let entry = &notification.entry[0];
        assert_eq!(entry.uid.as_deref(), Some("1021"));
        assert_eq!(entry.changes.len(), 2);
        assert_eq!(entry.changes[0].value["text"], "Zoë likes café/bar 😀");
        assert_eq!(
            entry.changes[1].value_as::<String>().expect("a string"),
            "zoë@example.com"
        );
        assert!(entry.changed_fields.is_empty() && entry.messaging.is_empty());
    }

    #[test]
    fn changed_fields_without_values_parse() {
        let notification = Notification::from_slice(
            br#"{"object":"page","entry":[{"id":"44","time":1,"changed_fields":["feed","name"]}]}"#,
        )
        .expect("parses");
        assert_eq!(notification.entry[0].changed_fields, ["feed", "name"]);
        assert!(notification.entry[0].changes.is_empty());
        assert_eq!(notification.changes().count(), 0);
    }

    #[test]
    fn the_spec_messaging_vector_parses_without_sender() {
        let notification = Notification::from_slice(
            br#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"caf\u00e9"}}]}]}"#,
        )
        .expect("parses");
        let event = &notification.entry[0].messaging[0];
        assert_eq!(event.sender, None);
        assert_eq!(event.kind(), Some("message"));
        assert_eq!(event.fields["message"]["text"], "café");
    }

    #[test]
    fn messenger_sample_parses_with_millisecond_time_and_participants() {
        let notification = Notification::from_slice(
            br#"{"object":"page","entry":[{"id":"PAGE_ID","time":1458692752478,
              "messaging":[{"sender":{"id":"PSID"},"recipient":{"id":"PAGE_ID"},
                "timestamp":1458692752478,
                "message":{"mid":"mid.1457764197618:41d102a3e1ae206a38","text":"hello, world!"}}]}]}"#,
        )
        .expect("parses");
        let (entry, event) = notification.messaging_events().next().expect("an event");
        assert_eq!(entry.time, Some(1_458_692_752_478));
        assert_eq!(
            event.recipient.as_ref().and_then(|r| r.id.as_deref()),
            Some("PAGE_ID")
        );
        assert_eq!(
            event.get("message").expect("message")["text"],
            "hello, world!"
        );
        assert!(!event.fields.contains_key("sender"));
    }

    #[test]
    fn a_user_ref_sender_keeps_its_fields() {
        let event: MessagingEvent = serde_json::from_value(json!({
            "sender": {"user_ref": "UREF"}, "recipient": {"id": 123}, "timestamp": 1,
            "optin": {"ref": "PASS_THROUGH"}
        }))
        .expect("parses");
        let sender = event.sender.expect("sender");
        assert_eq!(sender.id, None);
        assert_eq!(sender.fields["user_ref"], "UREF");
        assert_eq!(
            event.recipient.expect("recipient").id.as_deref(),
            Some("123")
        );
        assert_eq!(event.fields.keys().collect::<Vec<_>>(), ["optin"]);
    }

    #[test]
    fn whatsapp_entries_have_no_time() {
        let notification = Notification::from_slice(
            br#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages",
             "value":{"messaging_product":"whatsapp",
                      "metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
                      "contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],
                      "messages":[{"from":"16505551234","id":"wamid.HBgL...","timestamp":"1749416383","type":"text",
                                   "text":{"body":"Does it come in another color?"}}]}}]}]}"#,
        )
        .expect("parses");
        let (entry, change) = notification.changes().next().expect("a change");
        assert_eq!(entry.time, None);
        assert_eq!(change.field, "messages");
        assert_eq!(change.value["contacts"][0]["wa_id"], "16505551234");
    }

    #[test]
    fn unknown_keys_are_ignored_and_numeric_ids_become_strings() {
        let notification = Notification::from_slice(
            br#"{"object":"permissions","new_top_level":true,"entry":[{"id":0,"uid":0,"time":1624610156,
              "hop_context":[],"changes":[{"field":"instagram_basic","value":{"verb":"granted",
              "target_ids":["123123123123123"]},"extra":1}]}]}"#,
        )
        .expect("parses");
        let entry = &notification.entry[0];
        assert_eq!(entry.id, "0");
        assert_eq!(entry.uid.as_deref(), Some("0"));
        assert_eq!(entry.changes[0].value["verb"], "granted");
    }

    #[test]
    fn a_change_without_a_value_has_null() {
        let change: Change = serde_json::from_str(r#"{"field":"name"}"#).expect("parses");
        assert_eq!(change.value, Value::Null);
        assert_eq!(change.value_as::<Option<String>>().expect("null"), None);
    }

    #[test]
    fn not_a_notification_is_an_error() {
        for body in [
            &b"not json"[..],
            b"[]",
            br#"{"object":"user"}"#,
            br#"{"entry":[]}"#,
        ] {
            assert!(Notification::from_slice(body).is_err());
        }
        assert!(Notification::from_slice(br#"{"object":"user","entry":[{"time":1}]}"#).is_err());
    }

    #[test]
    fn serialising_skips_empty_parts() {
        let notification = Notification::from_slice(
            br#"{"object":"page","entry":[{"id":"1","changed_fields":["feed"]}]}"#,
        )
        .expect("parses");
        assert_eq!(
            serde_json::to_value(&notification).expect("serialises"),
            json!({"object":"page","entry":[{"id":"1","changed_fields":["feed"]}]})
        );
    }
}
