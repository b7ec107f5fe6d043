//! Mapping of database errors to [`StoreError`], and the column codecs shared by both backends.
//!
//! Messages carry error codes and the database's primary message, never bound values (so never key
//! material) and never the connection URL.

use sqlx::error::ErrorKind;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::repository::StoreError;

/// Maps a database error; unique and foreign-key violations become [`StoreError::Conflict`] with
/// `conflict` as the message.
pub(crate) fn map_conflict(e: sqlx::Error, conflict: &str) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && matches!(
            d.kind(),
            ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation
        )
    {
        return StoreError::Conflict(conflict.to_owned());
    }
    map(e)
}

/// Maps a database error: unreachable, timed out, busy or out of resources is
/// [`StoreError::Unavailable`]; undecodable data and anything unexpected is [`StoreError::Corrupt`].
pub(crate) fn map(e: sqlx::Error) -> StoreError {
    use StoreError::{Conflict, Corrupt, Unavailable};
    match e {
        sqlx::Error::Database(d) => {
            match d.kind() {
                ErrorKind::UniqueViolation => return Conflict("already exists".to_owned()),
                ErrorKind::ForeignKeyViolation => {
                    return Conflict("refers to a record that does not exist".to_owned());
                }
                _ => {}
            }
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let transient = if d
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // Connection exceptions, insufficient resources, operator intervention (shutdown,
                // starting up), serialization failures and deadlocks, lock not available.
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "40001"
                    || code == "40P01"
                    || code == "55P03"
            } else {
                // SQLite primary result codes: BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN.
                code.parse::<i64>()
                    .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 7 | 10 | 13 | 14))
            };
            if transient {
                Unavailable(format!("database error {code}: {}", d.message()))
            } else {
                Corrupt(format!("database error {code}: {}", d.message()))
            }
        }
        sqlx::Error::Io(e) => Unavailable(format!("I/O: {e}")),
        sqlx::Error::Tls(e) => Unavailable(format!("TLS: {e}")),
        sqlx::Error::Protocol(m) => Unavailable(format!("protocol: {m}")),
        sqlx::Error::PoolTimedOut => {
            Unavailable("timed out waiting for a database connection".to_owned())
        }
        sqlx::Error::PoolClosed => Unavailable("the database pool is closed".to_owned()),
        sqlx::Error::WorkerCrashed => Unavailable("the database worker stopped".to_owned()),
        sqlx::Error::BeginFailed => Unavailable("could not begin a transaction".to_owned()),
        // Never echo configuration errors: they may quote the URL and its password.
        sqlx::Error::Configuration(_) => Unavailable("invalid database URL or options".to_owned()),
        other => Corrupt(other.to_string()),
    }
}

/// A timestamp as stored: nanoseconds since the Unix epoch (lossless for 1678..2262).
pub(crate) fn ts_to_db(t: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| {
        StoreError::Corrupt("timestamp outside 1678..2262 cannot be stored".to_owned())
    })
}

/// An optional timestamp as stored.
pub(crate) fn opt_ts_to_db(t: Option<OffsetDateTime>) -> Result<Option<i64>, StoreError> {
    t.map(ts_to_db).transpose()
}

/// A stored timestamp.
pub(crate) fn ts_from_db(nanos: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .map_err(|_| StoreError::Corrupt("stored timestamp out of range".to_owned()))
}

/// A stored UUID (canonical hyphenated lowercase text).
pub(crate) fn uuid_from_db(text: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(text).map_err(|_| StoreError::Corrupt("stored id is not a UUID".to_owned()))
}

/// A UUID as stored: canonical hyphenated lowercase text, whose byte order is the UUID's order.
pub(crate) fn uuid_to_db(id: Uuid) -> String {
    id.hyphenated().to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_to_the_nanosecond() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(ts_from_db(ts_to_db(t).unwrap()).unwrap(), t);
        let far = OffsetDateTime::from_unix_timestamp(20_000_000_000).unwrap();
        assert!(matches!(ts_to_db(far), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn uuid_text_order_is_uuid_order() {
        let a = Uuid::from_u128(0x0f00_0000_0000_7000_8000_0000_0000_0000);
        let b = Uuid::from_u128(0xa000_0000_0000_7000_8000_0000_0000_0000);
        assert!(uuid_to_db(a) < uuid_to_db(b));
        assert_eq!(uuid_from_db(&uuid_to_db(a)).unwrap(), a);
        assert!(uuid_from_db("nope").is_err());
    }

    #[test]
    fn pool_errors_are_unavailable() {
        assert!(matches!(
            map(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused
            ))),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map(sqlx::Error::RowNotFound),
            StoreError::Corrupt(_)
        ));
    }
}
