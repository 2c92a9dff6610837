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
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
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
