//! Policy versions: every published revision with who published it and
//! when, which one decisions use now, and the line diff between any two —
//! by default what the latest publication changed.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use ladder_store::{StoreError, policies};
use serde::Deserialize;

use super::{ConsoleError, Frame, Operator, Section, ok, when};
use crate::service::error::ServiceError;
use crate::service::policy::diff;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffForm {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

#[derive(Debug)]
struct VersionRow {
    revision: i64,
    version: String,
    published: String,
    by: String,
    active: bool,
}

/// One line of a diff and how it reads: added, removed, or context.
#[derive(Debug)]
pub struct DiffLine {
    pub tone: &'static str,
    pub text: String,
}

/// A unified diff's lines, each marked for the stylesheet.
pub fn marked(diff: &str) -> Vec<DiffLine> {
    diff.lines()
        .map(|l| DiffLine {
            tone: match l.chars().next() {
                Some('+') => "add",
                Some('-') => "del",
                Some('@') => "hunk",
                _ => "",
            },
            text: l.to_string(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/policy.html")]
struct PolicyPage {
    frame: Frame,
    versions: Vec<VersionRow>,
    from: Option<i64>,
    to: Option<i64>,
    lines: Vec<DiffLine>,
}

/// `GET /console/policy`.
pub async fn show(
    State(state): State<AppState>,
    op: Operator,
    Query(form): Query<DiffForm>,
) -> Result<Response, ConsoleError> {
    let tenant = &op.caller.tenant_id;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let versions = policies::list(&mut conn, tenant, None, 50).await?;
    // Default: the active revision against the highest one below it
    // (publications in the same second cannot be told apart by time).
    let to = form.to.or_else(|| {
        versions
            .iter()
            .find(|v| v.active)
            .map(|v| v.policy.revision)
    });
    let from = form.from.or_else(|| {
        versions
            .iter()
            .map(|v| v.policy.revision)
            .filter(|r| to.is_some_and(|t| *r < t))
            .max()
    });
    let source = async |conn: &mut sqlx::AnyConnection, rev: i64, name: &'static str| {
        policies::by_revision(conn, tenant, rev)
            .await?
            .map(|p| p.policy.source)
            .ok_or_else(|| {
                ServiceError::bad_request(
                    "invalid_revision",
                    format!("query `{name}`: no published revision {rev}"),
                )
            })
    };
    let lines = match (from, to) {
        (Some(f), Some(t)) => {
            let old = source(&mut conn, f, "from").await?;
            let new = source(&mut conn, t, "to").await?;
            marked(&diff(&old, &new))
        }
        _ => Vec::new(),
    };
    drop(conn);
    Ok(ok(&PolicyPage {
        frame: Frame::new(&op, Section::Policy, "Policy versions"),
        versions: versions
            .into_iter()
            .map(|v| VersionRow {
                revision: v.policy.revision,
                version: v.policy.version.chars().take(19).collect(),
                published: when(v.policy.published_at),
                by: v.policy.published_by,
                active: v.active,
            })
            .collect(),
        from,
        to,
        lines,
    }))
}

#[cfg(test)]
mod tests {
    use super::marked;

    #[test]
    fn diff_lines_are_marked_by_their_first_character() {
        let m = marked("@@ -1 +1 @@\n-mode = \"observe\"\n+mode = \"enforce\"\n name = \"x\"\n");
        let tones: Vec<&str> = m.iter().map(|l| l.tone).collect();
        assert_eq!(tones, vec!["hunk", "del", "add", ""]);
    }
}
