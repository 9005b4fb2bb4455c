"""The domain events this plugin publishes, with their human (catalogued) names.

The credit bank consumes them (``lms_handle_event``); names and payload keys are a
contract, so they are spelled once here.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

#: A person-day was assessed (or re-assessed). Payload: user_id, day (Beijing date,
#: ISO), verdict (credited | deducted | held | void), credited_seconds, held_seconds,
#: deducted_seconds, policy_version, review_score.
DAY_ASSESSED = "anti_idle.day_assessed"
#: An auditor posted or voided a held day. Payload: user_id, day, decision
#: (post | void), seconds, reviewer_id, reason.
DAY_REVIEWED = "anti_idle.day_reviewed"

#: The server revealed an attention check to a player. Payload: check_id, session_id,
#: due_at (ISO, UTC), policy_version.
CHECK_ISSUED = "anti_idle.check_issued"
#: A check's single-use token was redeemed. Payload: check_id, outcome (passed | wrong |
#: automated), late, trusted, latency_ms, server_latency_ms, input_mode.
CHECK_ANSWERED = "anti_idle.check_answered"
#: A site admin stored a new policy version. Payload: version, course_id, changes.
POLICY_CHANGED = "anti_idle.policy_changed"

#: A learner appealed a study day. Payload: appeal_id, day, verdict, evidence_id.
APPEAL_FILED = "anti_idle.appeal_filed"
#: An auditor decided an appeal. Payload: appeal_id, user_id, status (upheld | rejected), reason.
APPEAL_DECIDED = "anti_idle.appeal_decided"

EVENT_NAMES = {
    APPEAL_FILED: _l("Study day appealed"),
    APPEAL_DECIDED: _l("Appeal decided"),
    CHECK_ISSUED: _l("Attention check shown"),
    CHECK_ANSWERED: _l("Attention check answered"),
    POLICY_CHANGED: _l("Anti-idle policy changed"),
    DAY_ASSESSED: _l("Study day assessed by anti-idle"),
    DAY_REVIEWED: _l("Held study day reviewed"),
}

#: The plugin's tables that events name as their object.
OBJECT_NAMES = {
    "anti_idle_policies": _l("Anti-idle policy version"),
    "anti_idle_appeals": _l("Study time appeal"),
    "anti_idle_day_verdicts": _l("Study day verdict"),
    "anti_idle_checks": _l("Anti-idle prompt"),
}

VERDICT_NAMES = {
    "credited": _l("Credited in full"),
    "deducted": _l("Credited with deductions"),
    "held": _l("Held for audit"),
    "void": _l("Void"),
}
