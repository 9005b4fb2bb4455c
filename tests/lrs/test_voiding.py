"""Voiding and the StatementRef filter rule (Communication 2.1.3.s3, 2.1.4)."""

from __future__ import annotations

from tests.lrs.conftest import new_id, statement

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
ADMIN = {"mbox": "mailto:admin@example.com"}


def _void(xapi, target):
    return xapi.post(
        "statements", json_body=statement(actor=ADMIN, verb=VOIDED, object={"objectType": "StatementRef", "id": target})
    )


def test_voided_statement_is_hidden_but_retrievable_by_voided_id(xapi):
    sid = xapi.post("statements", json_body=statement()).get_json()[0]
    voiding = _void(xapi, sid).get_json()[0]
    assert xapi.get("statements", statementId=sid).status_code == 404
    assert xapi.get("statements", voidedStatementId=sid).get_json()["id"] == sid
    listed = [s["id"] for s in xapi.get("statements").get_json()["statements"]]
    assert sid not in listed and voiding in listed
    # The voiding statement is found through the voided one's filters (StatementRef rule).
    by_activity = [
        s["id"] for s in xapi.get("statements", activity="http://example.com/activities/1").get_json()["statements"]
    ]
    assert by_activity == [voiding]


def test_a_voiding_statement_cannot_be_voided(xapi):
    sid = xapi.post("statements", json_body=statement()).get_json()[0]
    voiding = _void(xapi, sid).get_json()[0]
    _void(xapi, voiding)
    assert xapi.get("statements", statementId=voiding).status_code == 200
    assert xapi.get("statements", voidedStatementId=voiding).status_code == 404


def test_voiding_in_the_same_batch_and_before_the_target(xapi):
    target = new_id()
    # The voiding statement arrives first: the target is voided when it arrives.
    _void(xapi, target)
    xapi.post("statements", json_body=statement(id=target))
    assert xapi.get("statements", statementId=target).status_code == 404
    other = new_id()
    xapi.post(
        "statements",
        json_body=[
            statement(id=other),
            statement(actor=ADMIN, verb=VOIDED, object={"objectType": "StatementRef", "id": other}),
        ],
    )
    assert xapi.get("statements", voidedStatementId=other).status_code == 200


def test_statement_ref_chains_match_filters_of_the_target(xapi):
    a = xapi.post("statements", json_body=statement(verb="http://example.com/verbs/passed")).get_json()[0]
    b = xapi.post(
        "statements",
        json_body=statement(
            actor=ADMIN, verb="http://example.com/verbs/confirmed", object={"objectType": "StatementRef", "id": a}
        ),
    ).get_json()[0]
    c = xapi.post(
        "statements",
        json_body=statement(
            actor=ADMIN, verb="http://example.com/verbs/audited", object={"objectType": "StatementRef", "id": b}
        ),
    ).get_json()[0]
    found = {s["id"] for s in xapi.get("statements", verb="http://example.com/verbs/passed").get_json()["statements"]}
    assert found == {a, b, c}
    learner = {
        s["id"] for s in xapi.get("statements", agent={"mbox": "mailto:learner@example.com"}).get_json()["statements"]
    }
    assert learner == {a, b, c}


def test_reference_stored_before_its_target_still_matches(xapi):
    target = new_id()
    ref = xapi.post(
        "statements",
        json_body=statement(
            actor=ADMIN, verb="http://example.com/verbs/confirmed", object={"objectType": "StatementRef", "id": target}
        ),
    ).get_json()[0]
    xapi.post("statements", json_body=statement(id=target, verb="http://example.com/verbs/passed"))
    found = {s["id"] for s in xapi.get("statements", verb="http://example.com/verbs/passed").get_json()["statements"]}
    assert found == {target, ref}
