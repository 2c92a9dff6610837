//! The review workflow of a detection rule, as types: a `Draft` is submitted
//! into `InReview`, which is approved (possibly after several approvals) into
//! `Approved` or rejected into `Rejected`. Each transition consumes the state it
//! starts from, so an approval of a draft or a second rejection does not compile;
//! the server rebuilds the state it holds in the database with `resume` and asks
//! the transition, which refuses with a `ReviewRefused` naming why.
//!
//! Separation of duties: nobody who wrote any version since the last approved one
//! (the change under review) may approve or reject it, whatever their role; and
//! an approval does not count when an author *controls* the approver — the
//! approver's session came through an identity provider an author created or
//! last changed, or the approver's account was made by an author after the
//! change was submitted (see `ReviewerControl`).

use crate::rbac::{AccessDenied, check_separation_of_duties};
use crate::{InvalidField, Permission, Role, Timestamp, UserId};

/// How many distinct approvals a company requires before a rule is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewPolicy {
    min_approvers: u8,
    approvers_predate_change: bool,
}

impl ReviewPolicy {
    /// Most approvals a company may require; beyond that reviews stall in small
    /// teams and the setting is more likely a typo than a policy.
    pub const MAX_APPROVERS: u8 = 5;

    pub const DEFAULT: ReviewPolicy = ReviewPolicy {
        min_approvers: 1,
        approvers_predate_change: false,
    };

    pub fn new(min_approvers: u32) -> Result<Self, InvalidField> {
        match u8::try_from(min_approvers) {
            Ok(n) if (1..=Self::MAX_APPROVERS).contains(&n) => Ok(Self {
                min_approvers: n,
                approvers_predate_change: false,
            }),
            _ => Err(InvalidField::new(
                "min_approvers",
                format!("must be between 1 and {}", Self::MAX_APPROVERS),
            )),
        }
    }

    pub fn min_approvers(self) -> u8 {
        self.min_approvers
    }

    /// The optional stricter rule: an approver's account must have existed
    /// before the change was submitted (whoever made it).
    pub fn with_approvers_predating(self, on: bool) -> Self {
        Self {
            approvers_predate_change: on,
            ..self
        }
    }

    pub fn approvers_predate_change(self) -> bool {
        self.approvers_predate_change
    }
}

/// Who stands behind an approver, beyond who they are: the facts that tell
/// whether an author of the change could be acting through them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewerControl {
    /// The Admins who created or last changed the identity provider the
    /// approver's session (or the session that minted their token) came
    /// through; empty for a password or passkey sign-in.
    pub provider_controllers: Vec<UserId>,
    /// The Admin who created the approver's account, if recorded.
    pub account_created_by: Option<UserId>,
    pub account_created_at: Timestamp,
    /// The company's policy as it is now.
    pub policy: ReviewPolicy,
}

/// The test results a submission rests on: a run of the rule's stored tests
/// against exactly the version being submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestEvidence {
    pub version: u32,
    pub passed: u32,
    pub failed: u32,
    /// Tests that expect the rule to match (a rule proven only by events it
    /// ignores proves nothing about detection).
    pub positive: u32,
}

/// Why a workflow step was refused. Each maps to one stable API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReviewRefused {
    #[error("{0}")]
    Access(AccessDenied),
    #[error("the rule has no tests; add at least one positive test first")]
    NoTests,
    #[error("the rule needs at least one positive test (one that expects a match)")]
    NoPositiveTest,
    #[error("{failed} test(s) fail on this version; fix them before submitting")]
    TestsFailing { failed: u32 },
    #[error("the rule is at version {current}, not the version you reviewed; reload it")]
    StaleVersion { current: u32 },
    #[error("the rule is {status}, so it cannot be {step}")]
    WrongStatus {
        status: &'static str,
        step: &'static str,
    },
    #[error("you have already approved this version")]
    AlreadyApproved,
    /// An author of the change controls the approver's sign-in or account.
    #[error("{0}")]
    ControlledByAuthor(&'static str),
}

impl ReviewRefused {
    /// The stable code the API and CLI report.
    pub fn code(&self) -> &'static str {
        match self {
            ReviewRefused::Access(AccessDenied::Role) => "forbidden",
            ReviewRefused::Access(AccessDenied::SeparationOfDuties) => "separation_of_duties",
            ReviewRefused::NoTests => "no_tests",
            ReviewRefused::NoPositiveTest => "no_positive_test",
            ReviewRefused::TestsFailing { .. } => "tests_failing",
            ReviewRefused::StaleVersion { .. } => "stale_version",
            ReviewRefused::WrongStatus { .. } => "invalid_transition",
            ReviewRefused::AlreadyApproved => "already_approved",
            ReviewRefused::ControlledByAuthor(_) => "separation_of_duties",
        }
    }
}

/// A rule version open for edits and not under review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    version: u32,
}

impl Draft {
    pub fn resume(version: u32) -> Self {
        Self { version }
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Submits this version for review. `authors` are the writers of every
    /// version since the last approved one; `evidence` must be a run of the
    /// rule's tests on this very version, all passing, with a positive test.
    pub fn submit(
        self,
        submitter_role: Role,
        policy: ReviewPolicy,
        authors: Vec<UserId>,
        evidence: &TestEvidence,
        now: Timestamp,
    ) -> Result<InReview, ReviewRefused> {
        if !submitter_role.allows(Permission::WriteWorkObjects) {
            return Err(ReviewRefused::Access(AccessDenied::Role));
        }
        if evidence.version != self.version {
            return Err(ReviewRefused::StaleVersion {
                current: self.version,
            });
        }
        if evidence.passed + evidence.failed == 0 {
            return Err(ReviewRefused::NoTests);
        }
        if evidence.failed > 0 {
            return Err(ReviewRefused::TestsFailing {
                failed: evidence.failed,
            });
        }
        if evidence.positive == 0 {
            return Err(ReviewRefused::NoPositiveTest);
        }
        Ok(InReview {
            version: self.version,
            authors,
            required: policy.min_approvers,
            approvals: Vec::new(),
            submitted_at: now,
        })
    }
}

/// A version waiting for approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InReview {
    version: u32,
    authors: Vec<UserId>,
    required: u8,
    approvals: Vec<UserId>,
    submitted_at: Timestamp,
}

/// What one approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Recorded; more approvals are needed.
    Pending(InReview),
    /// That was the last approval required.
    Approved(Approved),
}

impl InReview {
    /// The review as stored: its version, the change's authors, the approvals
    /// the company required when it was submitted, and those given so far.
    pub fn resume(
        version: u32,
        authors: Vec<UserId>,
        required: u8,
        approvals: Vec<UserId>,
        submitted_at: Timestamp,
    ) -> Self {
        Self {
            version,
            authors,
            required,
            approvals,
            submitted_at,
        }
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn approvals(&self) -> &[UserId] {
        &self.approvals
    }

    pub fn required(&self) -> u8 {
        self.required
    }

    /// Whether `reviewer` may approve or reject this change: the role allows
    /// it and they wrote none of it.
    pub fn check_reviewer(&self, reviewer: &UserId, role: Role) -> Result<(), ReviewRefused> {
        for author in &self.authors {
            check_separation_of_duties(reviewer, role, author).map_err(ReviewRefused::Access)?;
        }
        if !role.allows(Permission::ApproveChanges) {
            return Err(ReviewRefused::Access(AccessDenied::Role));
        }
        Ok(())
    }

    /// Whether an author of this change controls the approver: the provider
    /// they signed in through was created or last changed by an author, or an
    /// author made their account after the change was submitted (or, under the
    /// stricter policy, anyone made it after).
    pub fn check_control(&self, control: &ReviewerControl) -> Result<(), ReviewRefused> {
        if control
            .provider_controllers
            .iter()
            .any(|c| self.authors.contains(c))
        {
            return Err(ReviewRefused::ControlledByAuthor(
                "you signed in through an identity provider that an author of this change created or last changed; sign in with your password or passkey to approve",
            ));
        }
        let made_after = control.account_created_at > self.submitted_at;
        if made_after
            && control
                .account_created_by
                .as_ref()
                .is_some_and(|c| self.authors.contains(c))
        {
            return Err(ReviewRefused::ControlledByAuthor(
                "your account was created by an author of this change after it was submitted",
            ));
        }
        if made_after && control.policy.approvers_predate_change {
            return Err(ReviewRefused::ControlledByAuthor(
                "your company requires approvers whose accounts existed before the change was submitted",
            ));
        }
        Ok(())
    }

    /// One approval of `seen_version` (the version the reviewer looked at).
    pub fn approve(
        mut self,
        approver: &UserId,
        role: Role,
        seen_version: u32,
        control: &ReviewerControl,
    ) -> Result<Approval, ReviewRefused> {
        self.check_reviewer(approver, role)?;
        self.check_control(control)?;
        if seen_version != self.version {
            return Err(ReviewRefused::StaleVersion {
                current: self.version,
            });
        }
        if self.approvals.contains(approver) {
            return Err(ReviewRefused::AlreadyApproved);
        }
        self.approvals.push(approver.clone());
        if self.approvals.len() >= usize::from(self.required) {
            Ok(Approval::Approved(Approved {
                version: self.version,
                approvers: self.approvals,
            }))
        } else {
            Ok(Approval::Pending(self))
        }
    }

    /// Rejects the change with a reason (one line, at most 1,000 characters).
    pub fn reject(
        self,
        reviewer: &UserId,
        role: Role,
        seen_version: u32,
        reason: &str,
    ) -> Result<Rejected, RejectRefused> {
        self.check_reviewer(reviewer, role)
            .map_err(RejectRefused::Review)?;
        if seen_version != self.version {
            return Err(RejectRefused::Review(ReviewRefused::StaleVersion {
                current: self.version,
            }));
        }
        let reason = crate::checked_text("reason", reason, 1000).map_err(RejectRefused::Reason)?;
        Ok(Rejected {
            version: self.version,
            reason,
        })
    }

    /// An edit of the rule or of its tests ends the review: what was reviewed is
    /// no longer what would ship, so the approvals given so far no longer count.
    pub fn void(self) -> Draft {
        Draft {
            version: self.version,
        }
    }
}

/// Why a rejection was refused: the workflow, or a bad reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectRefused {
    #[error("{0}")]
    Review(ReviewRefused),
    #[error("{0}")]
    Reason(InvalidField),
}

/// A version approved by enough reviewers, none of them its authors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    version: u32,
    approvers: Vec<UserId>,
}

impl Approved {
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn approvers(&self) -> &[UserId] {
        &self.approvers
    }
}

/// A version a reviewer turned down. The author edits the rule (a new version,
/// a draft again) to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    version: u32,
    reason: String,
}

impl Rejected {
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u8) -> UserId {
        UserId::from_random([n; 16])
    }

    /// An approver nobody controls: password sign-in, an old account.
    fn free() -> ReviewerControl {
        ReviewerControl {
            provider_controllers: vec![],
            account_created_by: None,
            account_created_at: Timestamp::from_millis(0),
            policy: ReviewPolicy::DEFAULT,
        }
    }

    fn passing(version: u32) -> TestEvidence {
        TestEvidence {
            version,
            passed: 2,
            failed: 0,
            positive: 1,
        }
    }

    fn in_review(required: u32) -> InReview {
        Draft::resume(3)
            .submit(
                Role::User,
                ReviewPolicy::new(required).expect("policy"),
                vec![user(1), user(2)],
                &passing(3),
                Timestamp::from_millis(1_000),
            )
            .expect("submit")
    }

    #[test]
    fn submission_needs_passing_tests_with_a_positive_one() {
        let d = || Draft::resume(3);
        let p = ReviewPolicy::DEFAULT;
        let check = |role, evidence: TestEvidence| {
            d().submit(role, p, vec![user(1)], &evidence, Timestamp::from_millis(0))
                .map(|_| ())
                .map_err(|e| e.code())
        };
        assert_eq!(check(Role::User, passing(3)), Ok(()));
        assert_eq!(check(Role::Viewer, passing(3)), Err("forbidden"));
        assert_eq!(check(Role::User, passing(2)), Err("stale_version"));
        let none = TestEvidence {
            version: 3,
            passed: 0,
            failed: 0,
            positive: 0,
        };
        assert_eq!(check(Role::User, none), Err("no_tests"));
        let failing = TestEvidence {
            failed: 1,
            ..passing(3)
        };
        assert_eq!(check(Role::User, failing), Err("tests_failing"));
        let negative_only = TestEvidence {
            positive: 0,
            ..passing(3)
        };
        assert_eq!(check(Role::User, negative_only), Err("no_positive_test"));
    }

    #[test]
    fn authors_never_approve_and_approvals_count_once() {
        let r = in_review(2);
        for author in [user(1), user(2)] {
            assert_eq!(
                r.clone()
                    .approve(&author, Role::Admin, 3, &free())
                    .map(|_| ())
                    .map_err(|e| e.code()),
                Err("separation_of_duties")
            );
        }
        assert_eq!(
            r.clone()
                .approve(&user(3), Role::Viewer, 3, &free())
                .map_err(|e| e.code()),
            Err("forbidden")
        );
        assert_eq!(
            r.clone()
                .approve(&user(3), Role::User, 2, &free())
                .map_err(|e| e.code()),
            Err("stale_version")
        );
        let Ok(Approval::Pending(r)) = r.approve(&user(3), Role::User, 3, &free()) else {
            panic!("one of two approvals leaves the review open");
        };
        assert_eq!(
            r.clone()
                .approve(&user(3), Role::User, 3, &free())
                .map_err(|e| e.code()),
            Err("already_approved")
        );
        let Ok(Approval::Approved(a)) = r.approve(&user(4), Role::Admin, 3, &free()) else {
            panic!("the second approval approves");
        };
        assert_eq!((a.version(), a.approvers().len()), (3, 2));
    }

    #[test]
    fn rejection_needs_a_reviewer_and_a_reason() {
        let r = in_review(1);
        assert!(matches!(
            r.clone().reject(&user(1), Role::Admin, 3, "no"),
            Err(RejectRefused::Review(ReviewRefused::Access(
                AccessDenied::SeparationOfDuties
            )))
        ));
        assert!(matches!(
            r.clone().reject(&user(3), Role::User, 3, "  "),
            Err(RejectRefused::Reason(_))
        ));
        let x = r
            .clone()
            .reject(&user(3), Role::User, 3, "too noisy")
            .expect("reject");
        assert_eq!((x.version(), x.reason()), (3, "too noisy"));
        assert_eq!(r.void(), Draft::resume(3));
    }

    #[test]
    fn authors_cannot_approve_through_people_they_control() {
        let r = in_review(1);
        let code = |c: &ReviewerControl| {
            r.clone()
                .approve(&user(3), Role::Admin, 3, c)
                .map(|_| ())
                .map_err(|e| e.code())
        };
        assert_eq!(code(&free()), Ok(()));
        // Signed in through a provider an author created or last changed.
        let via_authors_idp = ReviewerControl {
            provider_controllers: vec![user(9), user(2)],
            ..free()
        };
        assert_eq!(code(&via_authors_idp), Err("separation_of_duties"));
        let via_others_idp = ReviewerControl {
            provider_controllers: vec![user(9)],
            ..free()
        };
        assert_eq!(code(&via_others_idp), Ok(()));
        // An account an author made after submitting; before is allowed
        // unless the company asks approvers to predate the change.
        let puppet = ReviewerControl {
            account_created_by: Some(user(1)),
            account_created_at: Timestamp::from_millis(2_000),
            ..free()
        };
        assert_eq!(code(&puppet), Err("separation_of_duties"));
        let older = ReviewerControl {
            account_created_at: Timestamp::from_millis(500),
            ..puppet.clone()
        };
        assert_eq!(code(&older), Ok(()));
        let newcomer = ReviewerControl {
            account_created_by: Some(user(9)),
            ..puppet
        };
        assert_eq!(code(&newcomer), Ok(()));
        let strict = ReviewerControl {
            policy: ReviewPolicy::DEFAULT.with_approvers_predating(true),
            ..newcomer
        };
        assert_eq!(code(&strict), Err("separation_of_duties"));
    }

    #[test]
    fn policy_bounds() {
        assert!(ReviewPolicy::new(0).is_err());
        assert!(ReviewPolicy::new(6).is_err());
        assert_eq!(ReviewPolicy::new(5).map(ReviewPolicy::min_approvers), Ok(5));
    }
}
