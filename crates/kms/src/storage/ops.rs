//! The SQL of every operation, written once and instantiated for each backend.
//!
//! Functions take a pool and a table prefix: `""` for SQLite (the pool is the tenant's own database
//! or the main database) and `"tenant_<hex>."` or `"kms_system."` for PostgreSQL. Prefixes come
//! from [`crate::model::TenantId::hex`] or constants; every value is a bind parameter (`$n`, which
//! both SQLite and PostgreSQL accept).

macro_rules! backend_ops {
    ($db:ty, $begin_write:literal) => {
        use sqlx::{AssertSqlSafe, Pool, Row};
        use time::OffsetDateTime;
        use uuid::Uuid;

        use crate::model::{
            ElasticKey, ElasticKeyFilter, ElasticKeySortField, KeyStatus, MaterialKey, Page,
            PageRequest, RealmUserRecord, Sort, Tenant, TenantId, WrappedKey,
        };
        use crate::storage::error::{
            map, map_conflict, opt_ts_to_db, ts_from_db, ts_to_db, uuid_from_db, uuid_to_db,
        };
        use crate::repository::StoreError;

        type Db = $db;
        type DbRow = <Db as sqlx::Database>::Row;
        type DbQuery<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>;

        fn sql(text: String) -> AssertSqlSafe<String> {
            AssertSqlSafe(text)
        }

        fn text(row: &DbRow, col: &str) -> Result<String, StoreError> {
            row.try_get::<String, _>(col).map_err(map)
        }

        fn opt_text(row: &DbRow, col: &str) -> Result<Option<String>, StoreError> {
            row.try_get::<Option<String>, _>(col).map_err(map)
        }

        fn flag(row: &DbRow, col: &str) -> Result<bool, StoreError> {
            row.try_get::<bool, _>(col).map_err(map)
        }

        fn id(row: &DbRow, col: &str) -> Result<Uuid, StoreError> {
            uuid_from_db(&text(row, col)?)
        }

        fn opt_id(row: &DbRow, col: &str) -> Result<Option<Uuid>, StoreError> {
            opt_text(row, col)?.as_deref().map(uuid_from_db).transpose()
        }

        fn ts(row: &DbRow, col: &str) -> Result<OffsetDateTime, StoreError> {
            ts_from_db(row.try_get::<i64, _>(col).map_err(map)?)
        }

        fn opt_ts(row: &DbRow, col: &str) -> Result<Option<OffsetDateTime>, StoreError> {
            row.try_get::<Option<i64>, _>(col)
                .map_err(map)?
                .map(ts_from_db)
                .transpose()
        }

        fn count(row: &DbRow) -> Result<u64, StoreError> {
            let n = row.try_get::<i64, _>(0).map_err(map)?;
            u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count".to_owned()))
        }

        /// A value bound to a generated placeholder.
        enum Bind {
            Text(String),
            Flag(bool),
            Int(i64),
        }

        fn bind_all<'q>(mut q: DbQuery<'q>, binds: &[Bind]) -> DbQuery<'q> {
            for b in binds {
                q = match b {
                    Bind::Text(s) => q.bind(s.clone()),
                    Bind::Flag(f) => q.bind(*f),
                    Bind::Int(i) => q.bind(*i),
                };
            }
            q
        }

        /// Appends `col IN ($k, ...)` for a non-empty list.
        fn in_list(col: &str, values: Vec<Bind>, clauses: &mut Vec<String>, binds: &mut Vec<Bind>) {
            if values.is_empty() {
                return;
            }
            let mut placeholders = Vec::with_capacity(values.len());
            for v in values {
                binds.push(v);
                placeholders.push(format!("${}", binds.len()));
            }
            clauses.push(format!("{col} IN ({})", placeholders.join(", ")));
        }

        fn page_bounds(page: PageRequest) -> Result<(i64, i64), StoreError> {
            let offset = i64::try_from(page.offset())
                .map_err(|_| StoreError::Corrupt("page offset too large".to_owned()))?;
            Ok((i64::from(page.size), offset))
        }

        // ---- Wrapped barrier keys (root, intermediate and content keys share one shape).

        const WRAPPED_COLUMNS: &str = "kid, parent_kid, owner, jwe, created_at";

        fn wrapped(row: &DbRow) -> Result<WrappedKey, StoreError> {
            Ok(WrappedKey {
                kid: id(row, "kid")?,
                parent_kid: opt_id(row, "parent_kid")?,
                owner: opt_id(row, "owner")?,
                jwe: text(row, "jwe")?,
                created_at: ts(row, "created_at")?,
            })
        }

        /// Every key of `table`, oldest first.
        pub(crate) async fn wrapped_all(
            pool: &Pool<Db>,
            table: &str,
        ) -> Result<Vec<WrappedKey>, StoreError> {
            sqlx::query(sql(format!(
                "SELECT {WRAPPED_COLUMNS} FROM {table} ORDER BY created_at, kid"
            )))
            .fetch_all(pool)
            .await
            .map_err(map)?
            .iter()
            .map(wrapped)
            .collect()
        }

        fn insert_wrapped_query(table: &str, key: &WrappedKey) -> Result<DbQuery<'static>, StoreError> {
            Ok(sqlx::query(sql(format!(
                "INSERT INTO {table} ({WRAPPED_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
            )))
            .bind(uuid_to_db(key.kid))
            .bind(key.parent_kid.map(uuid_to_db))
            .bind(key.owner.map(uuid_to_db))
            .bind(key.jwe.clone())
            .bind(ts_to_db(key.created_at)?))
        }

        /// Inserts one key into `table`; a used `kid` is a conflict.
        pub(crate) async fn wrapped_insert(
            pool: &Pool<Db>,
            table: &str,
            key: &WrappedKey,
        ) -> Result<(), StoreError> {
            insert_wrapped_query(table, key)?
                .execute(pool)
                .await
                .map_err(|e| map_conflict(e, "a barrier key with this kid already exists"))?;
            Ok(())
        }

        /// One key of `table` by `kid`.
        pub(crate) async fn wrapped_by_kid(
            pool: &Pool<Db>,
            table: &str,
            kid: Uuid,
        ) -> Result<Option<WrappedKey>, StoreError> {
            sqlx::query(sql(format!(
                "SELECT {WRAPPED_COLUMNS} FROM {table} WHERE kid = $1"
            )))
            .bind(uuid_to_db(kid))
            .fetch_optional(pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(wrapped)
            .transpose()
        }

        /// The newest key of `table` owned by `owner`.
        pub(crate) async fn wrapped_newest_for_owner(
            pool: &Pool<Db>,
            table: &str,
            owner: Uuid,
        ) -> Result<Option<WrappedKey>, StoreError> {
            sqlx::query(sql(format!(
                "SELECT {WRAPPED_COLUMNS} FROM {table} WHERE owner = $1 \
                 ORDER BY created_at DESC, kid DESC LIMIT 1"
            )))
            .bind(uuid_to_db(owner))
            .fetch_optional(pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(wrapped)
            .transpose()
        }

        // ---- Tenant registry (system database / schema; `p` is its prefix).

        /// Registered tenants, in order of registration.
        pub(crate) async fn tenants(pool: &Pool<Db>, p: &str) -> Result<Vec<TenantId>, StoreError> {
            sqlx::query(sql(format!("SELECT id FROM {p}tenants ORDER BY created_at, id")))
                .fetch_all(pool)
                .await
                .map_err(map)?
                .iter()
                .map(|row| id(row, "id").map(TenantId))
                .collect()
        }

        /// Whether the tenant is registered.
        pub(crate) async fn tenant_registered(
            pool: &Pool<Db>,
            p: &str,
            tenant: TenantId,
        ) -> Result<bool, StoreError> {
            Ok(sqlx::query(sql(format!("SELECT id FROM {p}tenants WHERE id = $1")))
                .bind(uuid_to_db(tenant.0))
                .fetch_optional(pool)
                .await
                .map_err(map)?
                .is_some())
        }

        /// Registers the tenant (no-op when registered).
        pub(crate) async fn register_tenant(
            pool: &Pool<Db>,
            p: &str,
            tenant: TenantId,
        ) -> Result<(), StoreError> {
            sqlx::query(sql(format!(
                "INSERT INTO {p}tenants (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING"
            )))
            .bind(uuid_to_db(tenant.0))
            .bind(ts_to_db(OffsetDateTime::now_utc())?)
            .execute(pool)
            .await
            .map_err(map)?;
            Ok(())
        }

        /// Removes the tenant from the registry; `true` when it was registered.
        pub(crate) async fn unregister_tenant(
            pool: &Pool<Db>,
            p: &str,
            tenant: TenantId,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(sql(format!("DELETE FROM {p}tenants WHERE id = $1")))
                .bind(uuid_to_db(tenant.0))
                .execute(pool)
                .await
                .map_err(map)?;
            Ok(done.rows_affected() > 0)
        }

        // ---- Elastic keys (tenant prefix `p`).

        const ELASTIC_COLUMNS: &str = "id, name, description, algorithm, versioning_allowed, \
            import_allowed, export_allowed, status, created_at, updated_at, purge_after";

        fn elastic(row: &DbRow) -> Result<ElasticKey, StoreError> {
            let status = text(row, "status")?;
            Ok(ElasticKey {
                id: id(row, "id")?,
                name: text(row, "name")?,
                description: text(row, "description")?,
                algorithm: text(row, "algorithm")?,
                versioning_allowed: flag(row, "versioning_allowed")?,
                import_allowed: flag(row, "import_allowed")?,
                export_allowed: flag(row, "export_allowed")?,
                status: KeyStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt("unknown elastic key status".to_owned()))?,
                created_at: ts(row, "created_at")?,
                updated_at: ts(row, "updated_at")?,
                purge_after: opt_ts(row, "purge_after")?,
            })
        }

        /// Elastic key, its content key and first material key, in one transaction.
        pub(crate) async fn insert_elastic_key(
            pool: &Pool<Db>,
            p: &str,
            key: &ElasticKey,
            content_key: &WrappedKey,
            first_material: &MaterialKey,
        ) -> Result<(), StoreError> {
            let mut tx = pool.begin_with($begin_write).await.map_err(map)?;
            sqlx::query(sql(format!(
                "INSERT INTO {p}elastic_keys ({ELASTIC_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            )))
            .bind(uuid_to_db(key.id))
            .bind(key.name.clone())
            .bind(key.description.clone())
            .bind(key.algorithm.clone())
            .bind(key.versioning_allowed)
            .bind(key.import_allowed)
            .bind(key.export_allowed)
            .bind(key.status.as_str())
            .bind(ts_to_db(key.created_at)?)
            .bind(ts_to_db(key.updated_at)?)
            .bind(opt_ts_to_db(key.purge_after)?)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                map_conflict(e, "an elastic key with this name or id already exists in the tenant")
            })?;
            insert_wrapped_query(&format!("{p}content_keys"), content_key)?
                .execute(&mut *tx)
                .await
                .map_err(|e| map_conflict(e, "a content key with this kid already exists"))?;
            insert_material_query(p, first_material)?
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    map_conflict(e, "the material key id is used or its elastic key is missing")
                })?;
            tx.commit().await.map_err(map)
        }

        /// One elastic key.
        pub(crate) async fn elastic_key(
            pool: &Pool<Db>,
            p: &str,
            key_id: Uuid,
        ) -> Result<Option<ElasticKey>, StoreError> {
            sqlx::query(sql(format!(
                "SELECT {ELASTIC_COLUMNS} FROM {p}elastic_keys WHERE id = $1"
            )))
            .bind(uuid_to_db(key_id))
            .fetch_optional(pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(elastic)
            .transpose()
        }

        /// Filtered, sorted, paged elastic keys.
        pub(crate) async fn list_elastic_keys(
            pool: &Pool<Db>,
            p: &str,
            filter: &ElasticKeyFilter,
            sort: Sort<ElasticKeySortField>,
            page: PageRequest,
        ) -> Result<Page<ElasticKey>, StoreError> {
            let mut clauses = Vec::new();
            let mut binds = Vec::new();
            let ids = filter.ids.iter().map(|i| Bind::Text(uuid_to_db(*i))).collect();
            in_list("id", ids, &mut clauses, &mut binds);
            let names = filter.names.iter().map(|n| Bind::Text(n.clone())).collect();
            in_list("name", names, &mut clauses, &mut binds);
            let algs = filter.algorithms.iter().map(|a| Bind::Text(a.clone())).collect();
            in_list("algorithm", algs, &mut clauses, &mut binds);
            let statuses = filter
                .statuses
                .iter()
                .map(|s| Bind::Text(s.as_str().to_owned()))
                .collect();
            in_list("status", statuses, &mut clauses, &mut binds);
            for (col, value) in [
                ("versioning_allowed", filter.versioning_allowed),
                ("import_allowed", filter.import_allowed),
                ("export_allowed", filter.export_allowed),
            ] {
                if let Some(v) = value {
                    binds.push(Bind::Flag(v));
                    clauses.push(format!("{col} = ${}", binds.len()));
                }
            }
            let where_sql = if clauses.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", clauses.join(" AND "))
            };
            let total_row = bind_all(
                sqlx::query(sql(format!("SELECT COUNT(*) FROM {p}elastic_keys{where_sql}"))),
                &binds,
            )
            .fetch_one(pool)
            .await
            .map_err(map)?;
            let total = count(&total_row)?;

            let column = match sort.field {
                ElasticKeySortField::Name => "name",
                ElasticKeySortField::Algorithm => "algorithm",
                ElasticKeySortField::Status => "status",
                ElasticKeySortField::CreatedAt => "created_at",
                ElasticKeySortField::UpdatedAt => "updated_at",
            };
            let direction = if sort.descending { "DESC" } else { "ASC" };
            let (limit, offset) = page_bounds(page)?;
            binds.push(Bind::Int(limit));
            binds.push(Bind::Int(offset));
            let n = binds.len();
            let rows = bind_all(
                sqlx::query(sql(format!(
                    "SELECT {ELASTIC_COLUMNS} FROM {p}elastic_keys{where_sql} \
                     ORDER BY {column} {direction}, id {direction} LIMIT ${} OFFSET ${n}",
                    n - 1
                ))),
                &binds,
            )
            .fetch_all(pool)
            .await
            .map_err(map)?;
            Ok(Page {
                items: rows.iter().map(elastic).collect::<Result<_, _>>()?,
                page: page.page,
                size: page.size,
                total,
            })
        }

        /// Writes description, status, purge_after and updated_at.
        pub(crate) async fn update_elastic_key(
            pool: &Pool<Db>,
            p: &str,
            key: &ElasticKey,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(sql(format!(
                "UPDATE {p}elastic_keys SET description = $1, status = $2, purge_after = $3, \
                 updated_at = $4 WHERE id = $5"
            )))
            .bind(key.description.clone())
            .bind(key.status.as_str())
            .bind(opt_ts_to_db(key.purge_after)?)
            .bind(ts_to_db(key.updated_at)?)
            .bind(uuid_to_db(key.id))
            .execute(pool)
            .await
            .map_err(map)?;
            Ok(done.rows_affected() > 0)
        }

        // ---- Material keys.

        const MATERIAL_COLUMNS: &str = "id, elastic_key_id, generate_date, import_date, \
            revocation_date, public_jwk, sealed_jwk";

        fn material(row: &DbRow) -> Result<MaterialKey, StoreError> {
            Ok(MaterialKey {
                id: id(row, "id")?,
                elastic_key_id: id(row, "elastic_key_id")?,
                generate_date: ts(row, "generate_date")?,
                import_date: opt_ts(row, "import_date")?,
                revocation_date: opt_ts(row, "revocation_date")?,
                public_jwk: opt_text(row, "public_jwk")?,
                sealed_jwk: text(row, "sealed_jwk")?,
            })
        }

        fn insert_material_query(p: &str, key: &MaterialKey) -> Result<DbQuery<'static>, StoreError> {
            Ok(sqlx::query(sql(format!(
                "INSERT INTO {p}material_keys ({MATERIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            )))
            .bind(uuid_to_db(key.id))
            .bind(uuid_to_db(key.elastic_key_id))
            .bind(ts_to_db(key.generate_date)?)
            .bind(opt_ts_to_db(key.import_date)?)
            .bind(opt_ts_to_db(key.revocation_date)?)
            .bind(key.public_jwk.clone())
            .bind(key.sealed_jwk.clone()))
        }

        /// Adds a material key version.
        pub(crate) async fn insert_material_key(
            pool: &Pool<Db>,
            p: &str,
            key: &MaterialKey,
        ) -> Result<(), StoreError> {
            insert_material_query(p, key)?
                .execute(pool)
                .await
                .map_err(|e| {
                    map_conflict(e, "the material key id is used or its elastic key is missing")
                })?;
            Ok(())
        }

        /// One material key of an elastic key.
        pub(crate) async fn material_key(
            pool: &Pool<Db>,
            p: &str,
            elastic_key_id: Uuid,
            key_id: Uuid,
        ) -> Result<Option<MaterialKey>, StoreError> {
            sqlx::query(sql(format!(
                "SELECT {MATERIAL_COLUMNS} FROM {p}material_keys WHERE elastic_key_id = $1 AND id = $2"
            )))
            .bind(uuid_to_db(elastic_key_id))
            .bind(uuid_to_db(key_id))
            .fetch_optional(pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(material)
            .transpose()
        }

        /// The newest non-revoked material key.
        pub(crate) async fn latest_material_key(
            pool: &Pool<Db>,
            p: &str,
            elastic_key_id: Uuid,
        ) -> Result<Option<MaterialKey>, StoreError> {
            sqlx::query(sql(format!(
                "SELECT {MATERIAL_COLUMNS} FROM {p}material_keys \
                 WHERE elastic_key_id = $1 AND revocation_date IS NULL ORDER BY id DESC LIMIT 1"
            )))
            .bind(uuid_to_db(elastic_key_id))
            .fetch_optional(pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(material)
            .transpose()
        }

        /// Material keys, newest first.
        pub(crate) async fn list_material_keys(
            pool: &Pool<Db>,
            p: &str,
            elastic_key_id: Option<Uuid>,
            page: PageRequest,
        ) -> Result<Page<MaterialKey>, StoreError> {
            let (limit, offset) = page_bounds(page)?;
            let (total_row, rows) = match elastic_key_id {
                Some(ek) => {
                    let ek = uuid_to_db(ek);
                    let total = sqlx::query(sql(format!(
                        "SELECT COUNT(*) FROM {p}material_keys WHERE elastic_key_id = $1"
                    )))
                    .bind(ek.clone())
                    .fetch_one(pool)
                    .await
                    .map_err(map)?;
                    let rows = sqlx::query(sql(format!(
                        "SELECT {MATERIAL_COLUMNS} FROM {p}material_keys WHERE elastic_key_id = $1 \
                         ORDER BY id DESC LIMIT $2 OFFSET $3"
                    )))
                    .bind(ek)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(pool)
                    .await
                    .map_err(map)?;
                    (total, rows)
                }
                None => {
                    let total = sqlx::query(sql(format!("SELECT COUNT(*) FROM {p}material_keys")))
                        .fetch_one(pool)
                        .await
                        .map_err(map)?;
                    let rows = sqlx::query(sql(format!(
                        "SELECT {MATERIAL_COLUMNS} FROM {p}material_keys \
                         ORDER BY id DESC LIMIT $1 OFFSET $2"
                    )))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(pool)
                    .await
                    .map_err(map)?;
                    (total, rows)
                }
            };
            Ok(Page {
                items: rows.iter().map(material).collect::<Result<_, _>>()?,
                page: page.page,
                size: page.size,
                total: count(&total_row)?,
            })
        }

        // ---- Barrier keys of a tenant and purging.

        /// Crypto-shreds every due `pending_delete` key, one transaction per key.
        pub(crate) async fn purge_due(
            pool: &Pool<Db>,
            p: &str,
            now: OffsetDateTime,
        ) -> Result<Vec<Uuid>, StoreError> {
            let now = ts_to_db(now)?;
            let pending = KeyStatus::PendingDelete.as_str();
            let due = sqlx::query(sql(format!(
                "SELECT id FROM {p}elastic_keys \
                 WHERE status = $1 AND purge_after IS NOT NULL AND purge_after <= $2 ORDER BY id"
            )))
            .bind(pending)
            .bind(now)
            .fetch_all(pool)
            .await
            .map_err(map)?
            .iter()
            .map(|row| id(row, "id"))
            .collect::<Result<Vec<_>, _>>()?;
            let mut purged = Vec::with_capacity(due.len());
            for key_id in due {
                let key = uuid_to_db(key_id);
                let mut tx = pool.begin_with($begin_write).await.map_err(map)?;
                // Re-checked under the write lock: a key restored meanwhile is left alone.
                let marked = sqlx::query(sql(format!(
                    "UPDATE {p}elastic_keys SET status = $1, updated_at = $2, purge_after = NULL \
                     WHERE id = $3 AND status = $4 AND purge_after IS NOT NULL AND purge_after <= $5"
                )))
                .bind(KeyStatus::Deleted.as_str())
                .bind(now)
                .bind(key.clone())
                .bind(pending)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
                if marked.rows_affected() == 0 {
                    tx.rollback().await.map_err(map)?;
                    continue;
                }
                sqlx::query(sql(format!("DELETE FROM {p}material_keys WHERE elastic_key_id = $1")))
                    .bind(key.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
                sqlx::query(sql(format!("DELETE FROM {p}content_keys WHERE owner = $1")))
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
                tx.commit().await.map_err(map)?;
                purged.push(key_id);
            }
            Ok(purged)
        }

        // ---- Directory: named tenants (system prefix `p`).

        fn named_tenant(row: &DbRow) -> Result<Tenant, StoreError> {
            Ok(Tenant {
                id: TenantId(id(row, "id")?),
                name: text(row, "name")?,
                created_at: ts(row, "created_at")?,
            })
        }

        /// The named tenant with that name.
        pub(crate) async fn tenant_by_name(
            pool: &Pool<Db>,
            p: &str,
            name: &str,
        ) -> Result<Option<Tenant>, StoreError> {
            sqlx::query(sql(format!(
                "SELECT id, name, created_at FROM {p}tenants WHERE name = $1"
            )))
            .bind(name.to_owned())
            .fetch_optional(pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(named_tenant)
            .transpose()
        }

        /// The tenant with that id, if it has a name.
        pub(crate) async fn tenant_by_id(
            pool: &Pool<Db>,
            p: &str,
            tenant: TenantId,
        ) -> Result<Option<Tenant>, StoreError> {
            sqlx::query(sql(format!(
                "SELECT id, name, created_at FROM {p}tenants WHERE id = $1 AND name IS NOT NULL"
            )))
            .bind(uuid_to_db(tenant.0))
            .fetch_optional(pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(named_tenant)
            .transpose()
        }

        /// Every named tenant, by name.
        pub(crate) async fn named_tenants(
            pool: &Pool<Db>,
            p: &str,
        ) -> Result<Vec<Tenant>, StoreError> {
            sqlx::query(sql(format!(
                "SELECT id, name, created_at FROM {p}tenants WHERE name IS NOT NULL ORDER BY name"
            )))
            .fetch_all(pool)
            .await
            .map_err(map)?
            .iter()
            .map(named_tenant)
            .collect()
        }

        /// Registers `tenant` under `name` unless the name is taken (then nothing happens: the
        /// caller re-reads the name to learn the winner).
        pub(crate) async fn register_named_tenant(
            pool: &Pool<Db>,
            p: &str,
            tenant: TenantId,
            name: &str,
        ) -> Result<(), StoreError> {
            sqlx::query(sql(format!(
                "INSERT INTO {p}tenants (id, name, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING"
            )))
            .bind(uuid_to_db(tenant.0))
            .bind(name.to_owned())
            .bind(ts_to_db(OffsetDateTime::now_utc())?)
            .execute(pool)
            .await
            .map_err(|e| map_conflict(e, "a tenant with this id already exists"))?;
            Ok(())
        }

        // ---- Directory: database realm users (system prefix `p`).

        const REALM_USER_COLUMNS: &str = "username, password_hash, roles, tenants, enabled, \
            metadata, certificate_subject, version, created_at, updated_at";

        const REALM_USER_CONFLICT: &str =
            "a realm user with this username or certificate subject already exists";

        fn string_list(row: &DbRow, col: &str) -> Result<Vec<String>, StoreError> {
            serde_json::from_str(&text(row, col)?).map_err(|_| {
                StoreError::Corrupt(format!("stored realm user {col} is not a JSON string array"))
            })
        }

        fn string_list_to_db(list: &[String]) -> Result<String, StoreError> {
            serde_json::to_string(list)
                .map_err(|_| StoreError::Corrupt("cannot encode a string list".to_owned()))
        }

        fn realm_user(row: &DbRow) -> Result<RealmUserRecord, StoreError> {
            Ok(RealmUserRecord {
                username: text(row, "username")?,
                password_hash: text(row, "password_hash")?,
                roles: string_list(row, "roles")?,
                tenants: string_list(row, "tenants")?,
                enabled: flag(row, "enabled")?,
                metadata: text(row, "metadata")?,
                certificate_subject: opt_text(row, "certificate_subject")?,
                version: row.try_get::<i64, _>("version").map_err(map)?,
                created_at: ts(row, "created_at")?,
                updated_at: ts(row, "updated_at")?,
            })
        }

        /// One realm user where `col` (`username` or `certificate_subject`) equals `value`.
        pub(crate) async fn realm_user_where(
            pool: &Pool<Db>,
            p: &str,
            col: &'static str,
            value: &str,
        ) -> Result<Option<RealmUserRecord>, StoreError> {
            sqlx::query(sql(format!(
                "SELECT {REALM_USER_COLUMNS} FROM {p}kms_realm_users WHERE {col} = $1"
            )))
            .bind(value.to_owned())
            .fetch_optional(pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(realm_user)
            .transpose()
        }

        /// Realm users by username, one page.
        pub(crate) async fn list_realm_users(
            pool: &Pool<Db>,
            p: &str,
            page: PageRequest,
        ) -> Result<Page<RealmUserRecord>, StoreError> {
            let total_row = sqlx::query(sql(format!("SELECT COUNT(*) FROM {p}kms_realm_users")))
                .fetch_one(pool)
                .await
                .map_err(map)?;
            let (limit, offset) = page_bounds(page)?;
            let rows = sqlx::query(sql(format!(
                "SELECT {REALM_USER_COLUMNS} FROM {p}kms_realm_users \
                 ORDER BY username LIMIT $1 OFFSET $2"
            )))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await
            .map_err(map)?;
            Ok(Page {
                items: rows.iter().map(realm_user).collect::<Result<_, _>>()?,
                page: page.page,
                size: page.size,
                total: count(&total_row)?,
            })
        }

        /// Adds a realm user; a used username or certificate subject is a conflict.
        pub(crate) async fn insert_realm_user(
            pool: &Pool<Db>,
            p: &str,
            user: &RealmUserRecord,
        ) -> Result<(), StoreError> {
            sqlx::query(sql(format!(
                "INSERT INTO {p}kms_realm_users ({REALM_USER_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            )))
            .bind(user.username.clone())
            .bind(user.password_hash.clone())
            .bind(string_list_to_db(&user.roles)?)
            .bind(string_list_to_db(&user.tenants)?)
            .bind(user.enabled)
            .bind(user.metadata.clone())
            .bind(user.certificate_subject.clone())
            .bind(user.version)
            .bind(ts_to_db(user.created_at)?)
            .bind(ts_to_db(user.updated_at)?)
            .execute(pool)
            .await
            .map_err(|e| map_conflict(e, REALM_USER_CONFLICT))?;
            Ok(())
        }

        /// Compare-and-set on `version`: writes every field but `username` and `created_at`.
        pub(crate) async fn update_realm_user(
            pool: &Pool<Db>,
            p: &str,
            user: &RealmUserRecord,
            expected_version: i64,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(sql(format!(
                "UPDATE {p}kms_realm_users SET password_hash = $1, roles = $2, tenants = $3, \
                 enabled = $4, metadata = $5, certificate_subject = $6, version = $7, \
                 updated_at = $8 WHERE username = $9 AND version = $10"
            )))
            .bind(user.password_hash.clone())
            .bind(string_list_to_db(&user.roles)?)
            .bind(string_list_to_db(&user.tenants)?)
            .bind(user.enabled)
            .bind(user.metadata.clone())
            .bind(user.certificate_subject.clone())
            .bind(user.version)
            .bind(ts_to_db(user.updated_at)?)
            .bind(user.username.clone())
            .bind(expected_version)
            .execute(pool)
            .await
            .map_err(|e| map_conflict(e, REALM_USER_CONFLICT))?;
            Ok(done.rows_affected() > 0)
        }

        /// Removes a realm user; `true` when there was one.
        pub(crate) async fn delete_realm_user(
            pool: &Pool<Db>,
            p: &str,
            username: &str,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(sql(format!(
                "DELETE FROM {p}kms_realm_users WHERE username = $1"
            )))
            .bind(username.to_owned())
            .execute(pool)
            .await
            .map_err(map)?;
            Ok(done.rows_affected() > 0)
        }

        // ---- Cryptographic inventory (tenant prefix `p`).

        /// Every elastic key with its material key count and last use, oldest first.
        pub(crate) async fn inventory_keys(
            pool: &Pool<Db>,
            p: &str,
        ) -> Result<Vec<crate::model::KeyInventoryRecord>, StoreError> {
            let rows = sqlx::query(sql(format!(
                "SELECT {ELASTIC_COLUMNS}, last_used_at, \
                 (SELECT COUNT(*) FROM {p}material_keys m WHERE m.elastic_key_id = e.id) AS versions \
                 FROM {p}elastic_keys e ORDER BY created_at, id"
            )))
            .fetch_all(pool)
            .await
            .map_err(map)?;
            rows.iter()
                .map(|row| {
                    let versions = row.try_get::<i64, _>("versions").map_err(map)?;
                    Ok(crate::model::KeyInventoryRecord {
                        key: elastic(row)?,
                        versions: u64::try_from(versions)
                            .map_err(|_| StoreError::Corrupt("negative count".to_owned()))?,
                        last_used_at: opt_ts(row, "last_used_at")?,
                    })
                })
                .collect()
        }

        /// Moves `last_used_at` forward for each key, in one transaction.
        pub(crate) async fn record_last_use(
            pool: &Pool<Db>,
            p: &str,
            uses: &[(Uuid, OffsetDateTime)],
        ) -> Result<u64, StoreError> {
            let mut tx = pool.begin_with($begin_write).await.map_err(map)?;
            let mut changed = 0;
            for (key_id, at) in uses {
                let done = sqlx::query(sql(format!(
                    "UPDATE {p}elastic_keys SET last_used_at = $1 \
                     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)"
                )))
                .bind(ts_to_db(*at)?)
                .bind(uuid_to_db(*key_id))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
                changed += done.rows_affected();
            }
            tx.commit().await.map_err(map)?;
            Ok(changed)
        }

        /// A cheap round trip.
        pub(crate) async fn ping(pool: &Pool<Db>) -> Result<(), StoreError> {
            sqlx::query("SELECT 1").execute(pool).await.map_err(map)?;
            Ok(())
        }
    };
}

/// SQLite instantiation (write transactions use `BEGIN IMMEDIATE` to take the write lock up front).
pub(crate) mod sqlite {
    backend_ops!(sqlx::Sqlite, "BEGIN IMMEDIATE");
}

/// PostgreSQL instantiation (registers tenants inside its migration transaction instead).
#[allow(dead_code)]
pub(crate) mod postgres {
    backend_ops!(sqlx::Postgres, "BEGIN");
}
