//! Query strings: list filters, sorting and paging, parsed strictly (unknown or repeated-when-single
//! parameters are errors) and bounded. Nothing from here reaches SQL as text: sort fields map to an
//! enum, filters become bind parameters.

use std::borrow::Cow;

use cryptoutil_server::Problem;

use crate::ids::parse_uuid;
use crate::model::{ElasticKeyFilter, ElasticKeySortField, KeyStatus, PageRequest, Sort};

/// Longest accepted query string, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Most values in one filter list.
pub const MAX_FILTER_VALUES: usize = 100;

/// Parsed `key=value` pairs, percent-decoded.
pub struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    /// Splits a raw query (`None` = no query) into pairs, refusing names outside `allowed`.
    pub fn parse(raw: Option<&'a str>, allowed: &[&str]) -> Result<Self, Problem> {
        let raw = raw.unwrap_or("");
        if raw.len() > MAX_QUERY_BYTES {
            return Err(Problem::bad_request(format!(
                "the query string exceeds {MAX_QUERY_BYTES} bytes"
            )));
        }
        let pairs: Vec<_> = form_urlencoded::parse(raw.as_bytes()).collect();
        for (name, _) in &pairs {
            if !allowed.contains(&name.as_ref()) {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {:?}; accepted: {}",
                    name.chars().take(64).collect::<String>(),
                    allowed.join(", ")
                )));
            }
        }
        Ok(Self(pairs))
    }

    /// Every value of a (repeatable) parameter; comma-separated values are split when `split`.
    pub fn all(&self, name: &str, split: bool) -> Result<Vec<String>, Problem> {
        let mut out = Vec::new();
        for (_, value) in self.0.iter().filter(|(n, _)| n == name) {
            if split {
                out.extend(
                    value
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned),
                );
            } else {
                out.push(value.to_string());
            }
        }
        if out.len() > MAX_FILTER_VALUES {
            return Err(Problem::bad_request(format!(
                "at most {MAX_FILTER_VALUES} values for {name}"
            )));
        }
        Ok(out)
    }

    /// The single value of a parameter, if present.
    pub fn one(&self, name: &str) -> Result<Option<&str>, Problem> {
        let mut values = self.0.iter().filter(|(n, _)| n == name);
        let first = values.next().map(|(_, v)| v.as_ref());
        if values.next().is_some() {
            return Err(Problem::bad_request(format!("{name} may be given once")));
        }
        Ok(first)
    }

    /// A boolean parameter (`true`/`false`).
    pub fn flag(&self, name: &str) -> Result<Option<bool>, Problem> {
        match self.one(name)? {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(Problem::bad_request(format!(
                "{name} must be true or false"
            ))),
        }
    }

    /// `page` (0-based) and `size` (1–1000, default 25).
    pub fn page(&self) -> Result<PageRequest, Problem> {
        let number = |name: &str, default: u32| -> Result<u32, Problem> {
            match self.one(name)? {
                None => Ok(default),
                Some(v) => v.parse::<u32>().map_err(|_| {
                    Problem::bad_request(format!("{name} must be a non-negative integer"))
                }),
            }
        };
        let page = number("page", 0)?;
        let size = number("size", crate::model::PAGE_SIZE_DEFAULT)?;
        if page > 1_000_000 {
            return Err(Problem::bad_request("page must be at most 1000000"));
        }
        PageRequest::new(page, size).ok_or_else(|| {
            Problem::bad_request(format!(
                "size must be between {} and {}",
                crate::model::PAGE_SIZE_MIN,
                crate::model::PAGE_SIZE_MAX
            ))
        })
    }
}

/// Query parameters of `GET /elastickeys`.
pub const ELASTIC_KEY_LIST_PARAMS: &[&str] = &[
    "ids",
    "names",
    "algorithms",
    "status",
    "versioning_allowed",
    "import_allowed",
    "export_allowed",
    "sort",
    "page",
    "size",
];

/// Parses the elastic key list query.
pub fn elastic_key_list(
    raw: Option<&str>,
) -> Result<(ElasticKeyFilter, Sort<ElasticKeySortField>, PageRequest), Problem> {
    let params = Params::parse(raw, ELASTIC_KEY_LIST_PARAMS)?;
    let ids = params
        .all("ids", true)?
        .iter()
        .map(|id| {
            parse_uuid(id).ok_or_else(|| {
                Problem::bad_request("ids must be canonical lowercase UUIDs, comma-separated")
            })
        })
        .collect::<Result<_, _>>()?;
    let statuses = params
        .all("status", true)?
        .iter()
        .map(|s| {
            KeyStatus::parse(s).ok_or_else(|| {
                Problem::bad_request("status must be active, disabled, pending_delete or deleted")
            })
        })
        .collect::<Result<_, _>>()?;
    let filter = ElasticKeyFilter {
        ids,
        names: params.all("names", false)?,
        algorithms: params.all("algorithms", true)?,
        statuses,
        versioning_allowed: params.flag("versioning_allowed")?,
        import_allowed: params.flag("import_allowed")?,
        export_allowed: params.flag("export_allowed")?,
    };
    let sort = match params.one("sort")? {
        None => Sort::default(),
        Some(text) => parse_sort(text)?,
    };
    Ok((filter, sort, params.page()?))
}

fn parse_sort(text: &str) -> Result<Sort<ElasticKeySortField>, Problem> {
    let (field, direction) = text.split_once(':').unwrap_or((text, "asc"));
    let field = match field {
        "name" => ElasticKeySortField::Name,
        "algorithm" => ElasticKeySortField::Algorithm,
        "status" => ElasticKeySortField::Status,
        "created_at" => ElasticKeySortField::CreatedAt,
        "updated_at" => ElasticKeySortField::UpdatedAt,
        _ => {
            return Err(Problem::bad_request(
                "sort must be name, algorithm, status, created_at or updated_at, optionally \
                 followed by :asc or :desc",
            ));
        }
    };
    let descending = match direction {
        "asc" => false,
        "desc" => true,
        _ => return Err(Problem::bad_request("sort direction must be asc or desc")),
    };
    Ok(Sort { field, descending })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn list_query_parses_filters_sort_and_paging() {
        let id = uuid::Uuid::now_v7();
        let q = format!(
            "ids={id}&names=a%2Cb&names=c&algorithms=ES256,A256GCM/A256KW&status=active,disabled\
             &versioning_allowed=true&sort=name:desc&page=2&size=10"
        );
        let (f, s, p) = elastic_key_list(Some(&q)).unwrap();
        assert_eq!(f.ids, vec![id]);
        assert_eq!(f.names, vec!["a,b".to_owned(), "c".to_owned()]);
        assert_eq!(f.algorithms.len(), 2);
        assert_eq!(f.statuses, vec![KeyStatus::Active, KeyStatus::Disabled]);
        assert_eq!(f.versioning_allowed, Some(true));
        assert_eq!(
            s,
            Sort {
                field: ElasticKeySortField::Name,
                descending: true
            }
        );
        assert_eq!((p.page, p.size), (2, 10));
    }

    #[test]
    fn bad_queries_are_refused() {
        for bad in [
            "size=0",
            "size=1001",
            "page=-1",
            "page=x",
            "sort=secret",
            "sort=name:up",
            "ids=1",
            "status=gone",
            "versioning_allowed=yes",
            "unknown=1",
            "page=1&page=2",
        ] {
            assert!(elastic_key_list(Some(bad)).is_err(), "{bad}");
        }
        assert!(elastic_key_list(Some(&"a".repeat(MAX_QUERY_BYTES + 1))).is_err());
        let many = (0..=MAX_FILTER_VALUES)
            .map(|i| format!("names=n{i}"))
            .collect::<Vec<_>>()
            .join("&");
        assert!(elastic_key_list(Some(&many)).is_err());
        assert!(elastic_key_list(None).is_ok());
    }
}
