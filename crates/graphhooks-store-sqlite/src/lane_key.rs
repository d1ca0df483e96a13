//! The integer key of a lane (an app and an object type) that leads the deliveries' lane and
//! by-change indexes.
//!
//! Those indexes used to start with the app id and the object type, so every seek compared two
//! text fields before reaching the due time or the change id, and in a busy lane they are
//! always equal: 7.75% of the server's instructions per unbatched change went to those
//! comparisons. An integer first field is compared in a few instructions. The key is a hash,
//! not an id from a table, so that it needs no lookup and no row that could go away; queries
//! keep their `app_id` and `object_type` conditions (the indexes carry both), so two lanes with
//! the same key would only share an index range, never each other's rows.
//!
//! SQL reaches it as the function `graphhooks_lane_key(app_id, object_type)`, registered on
//! every connection the store opens. The schema itself never calls it, so the database file
//! stays readable by any SQLite.

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

/// The name SQL calls [`lane_key`] by.
pub(crate) const FUNCTION: &str = "graphhooks_lane_key";

/// The lane key of (`app_id`, `object_type`): 64-bit FNV-1a over both, separated by a NUL
/// (which neither may contain). Stored in the database, so it must never change.
pub(crate) fn lane_key(app_id: &str, object_type: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let bytes = app_id
        .bytes()
        .chain(std::iter::once(0))
        .chain(object_type.bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Makes `graphhooks_lane_key(app_id, object_type)` available to SQL on `connection`.
pub(crate) fn register(connection: &Connection) -> rusqlite::Result<()> {
    connection.create_scalar_function(
        FUNCTION,
        2,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_DETERMINISTIC
            | FunctionFlags::SQLITE_INNOCUOUS,
        |context| {
            let app_id = context
                .get_raw(0)
                .as_str()
                .map_err(|error| rusqlite::Error::UserFunctionError(Box::new(error)))?;
            let object_type = context
                .get_raw(1)
                .as_str()
                .map_err(|error| rusqlite::Error::UserFunctionError(Box::new(error)))?;
            Ok(lane_key(app_id, object_type))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned values: the keys are stored, so a change to the hash would orphan existing rows.
    #[test]
    fn keys_are_stable_and_tell_lanes_apart() {
        assert_eq!(lane_key("", ""), 0xaf63_bd4c_8601_b7df_u64 as i64);
        assert_ne!(lane_key("1", "user"), lane_key("1", "page"));
        assert_ne!(lane_key("1", "user"), lane_key("2", "user"));
        assert_ne!(lane_key("12", "3user"), lane_key("123", "user"));
        let connection = Connection::open_in_memory().unwrap();
        register(&connection).unwrap();
        let from_sql: i64 = connection
            .query_row("SELECT graphhooks_lane_key('1', 'user')", [], |r| r.get(0))
            .unwrap();
        assert_eq!(from_sql, lane_key("1", "user"));
    }
}
