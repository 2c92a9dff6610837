//! Detection rules as Ward keeps them: a rule per company with its workflow
//! status, and immutable versions of its Sigma text.

use serde::Serialize;

use crate::{InvalidField, RuleId, TenantId, Timestamp, UserId};

/// Where a rule stands in review. Every saved change starts a new draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    Draft,
    InReview,
    Approved,
    Rejected,
}

impl RuleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Draft => "draft",
            RuleStatus::InReview => "in_review",
            RuleStatus::Approved => "approved",
            RuleStatus::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "draft" => Some(RuleStatus::Draft),
            "in_review" => Some(RuleStatus::InReview),
            "approved" => Some(RuleStatus::Approved),
            "rejected" => Some(RuleStatus::Rejected),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub id: RuleId,
    pub tenant_id: TenantId,
    /// The Sigma `id`, unique within the company when present.
    pub sigma_id: Option<String>,
    pub title: String,
    pub status: RuleStatus,
    pub current_version: u32,
    /// The newest version approved through review, if any.
    pub approved_version: Option<u32>,
    /// From the current version, for filtering: Sigma `level`, `tags`, the
    /// logsource as `product/category/service`, and who wrote that version.
    pub level: Option<String>,
    pub tags: Vec<String>,
    pub logsource: String,
    pub author_label: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a rule's list entry shows of its current version; taken from the
/// Sigma text each time a version is saved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleHeader {
    pub title: String,
    pub sigma_id: Option<String>,
    pub level: Option<String>,
    pub tags: Vec<String>,
    pub logsource: String,
}

/// One saved text of a rule. Never changed once written (the database refuses
/// updates and deletes).
#[derive(Debug, Clone, Serialize)]
pub struct RuleVersion {
    pub rule_id: RuleId,
    pub version: u32,
    pub content: String,
    /// SHA-256 of the content, hex.
    pub content_hash: String,
    pub author_id: UserId,
    pub author_label: String,
    pub note: String,
    pub created_at: Timestamp,
}

/// A change note: optional, one line, at most 500 characters.
pub fn check_change_note(note: Option<&str>) -> Result<String, InvalidField> {
    let n = note.unwrap_or_default().trim();
    if n.chars().count() > 500 || n.chars().any(char::is_control) {
        return Err(InvalidField::new(
            "note",
            "must be one line of at most 500 characters",
        ));
    }
    Ok(n.to_owned())
}

/// What the rule list can be narrowed by; every given criterion must hold.
/// Text criteria compare case-insensitively; `logsource` and `author` match a
/// part, `tag` one whole tag.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFilter {
    pub status: Option<String>,
    pub level: Option<String>,
    pub tag: Option<String>,
    pub author: Option<String>,
    pub logsource: Option<String>,
}

impl RuleFilter {
    pub fn matches(&self, r: &Rule) -> bool {
        let eq = |want: &Option<String>, have: &str| {
            want.as_deref()
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .is_none_or(|w| w.eq_ignore_ascii_case(have))
        };
        let part = |want: &Option<String>, have: &str| {
            want.as_deref()
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .is_none_or(|w| have.to_lowercase().contains(&w.to_lowercase()))
        };
        let tag_ok = self
            .tag
            .as_deref()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .is_none_or(|w| r.tags.iter().any(|t| t.eq_ignore_ascii_case(w)));
        eq(&self.status, r.status.as_str())
            && eq(&self.level, r.level.as_deref().unwrap_or_default())
            && tag_ok
            && part(&self.author, &r.author_label)
            && part(&self.logsource, &r.logsource)
    }
}
