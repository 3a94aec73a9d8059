"""The Microsoft 365 connector against the Graph stand-in: delta sweeps, marking, threaded drafts, faults, sign-in."""

import datetime as dt
import logging
import random
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connectors import graph_mailbox
from connectors.graph_auth import BASE_URL_ENV, TEST_TOKEN_ENV
from connectors.graph_http import GraphAuthError, GraphUnreachable, RetryPolicy, retry_after_seconds
from connectors.graph_mailbox import (
    DRAFTED_CATEGORY, ESCALATED_CATEGORY, KEY_PROPERTY, PROCESSED_CATEGORY, STAGE_PROPERTY, build_mailbox,
    open_from_config, splice_reply,
)
from connectors.mailbox import MailboxError, MailboxNotice, NoticeKind, NoticeSource, OutgoingMail
from connectors.mailbox_config import GraphMailboxConfig
from evals.mailgen import load_rows, render
from rxinbox.settings import get_settings
from tests.e2e.graph_standin import GraphStandIn

pytestmark = pytest.mark.e2e

MAILBOX = "apotek@soendergade-apotek.example"
POLICY = RetryPolicy(base_delay=0.01, max_delay=0.08, max_retry_after=30.0, connect_attempts=2)


class Sleeps(list):
    """Records every wait the connector asks for, and waits only a moment (no timed assertions)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        threading.Event().wait(min(seconds, 0.01))


@pytest.fixture
def standin():
    with GraphStandIn(MAILBOX) as server:
        yield server


def config(**changes) -> GraphMailboxConfig:
    base = {"name": "m365", "tenant_id": "standin-tenant", "client_id": "standin-client",
            "client_secret_env": "RXINBOX_TEST_GRAPH_SECRET", "mailbox": MAILBOX}
    return GraphMailboxConfig(**{**base, **changes})


def connector(standin, home, sleeps=None, token="standin-token", **changes):
    return build_mailbox(config(**changes), get_settings(), base_url=standin.base_url, test_token=token,
                         policy=POLICY, sleep=sleeps if sleeps is not None else Sleeps())


def fill(standin, count, seed=3) -> list[str]:
    rng, rows = random.Random(seed), load_rows()
    return [standin.store.deliver(render(rows[n % len(rows)], n, rng)).immutable_id for n in range(count)]


def reply_to(standin, ref, key="out-1", body="Your refill is ready.\nKind regards") -> OutgoingMail:
    original = standin.store.messages[ref].props
    return OutgoingMail(to=original["from"]["emailAddress"]["address"], subject="Re: " + original["subject"],
                        body=body, sender=MAILBOX, in_reply_to=original["internetMessageId"], idempotency_key=key)


def notices(mailbox) -> dict[NoticeKind, MailboxNotice]:
    drained = mailbox.drain_notices()
    assert len({n.kind for n in drained}) == len(drained), "one notice per kind and drain"
    assert mailbox.drain_notices() == [], "a drain forgets what it handed out"
    return {n.kind: n for n in drained}


def assert_no_mail_content(found: dict[NoticeKind, MailboxNotice], message) -> None:
    """Nothing of the message (subject, sender, Message-ID, body, id) may reach a notice: it goes to the audit trail."""
    text = repr(list(found.values()))
    for secret in (message.props["subject"], message.props["from"]["emailAddress"]["address"],
                   message.props["internetMessageId"], message.props["body"]["content"][:30], message.immutable_id):
        assert secret not in text


def test_delta_listing_pages_with_immutable_ids_oldest_first_and_fetches_exact_mime(standin, home):
    refs = fill(standin, 25)
    mailbox = connector(standin, home)
    listed = mailbox.list_refs()
    assert sorted(listed) == sorted(refs)
    received = [standin.store.messages[r].props["receivedDateTime"] for r in listed]
    assert received == sorted(received)
    fetched = list(mailbox.fetch(listed[:6]))
    assert [m.raw for m in fetched] == [standin.store.messages[r].mime for r in listed[:6]]
    assert all(m.mailbox == "m365" and m.received_at is not None for m in fetched)
    assert all('IdType="ImmutableId"' in e["prefer"] for e in standin.log)
    assert all("odata.maxpagesize=100" in e["prefer"] for e in standin.requests_matching("/messages/delta$"))
    assert (home / "graph" / "m365.delta").is_file()
    assert isinstance(mailbox, NoticeSource) and notices(mailbox) == {}, "no faults, no notices"


def test_second_round_follows_the_delta_link_and_sees_only_changes(standin, home):
    fill(standin, 12)
    mailbox = connector(standin, home)
    assert len(mailbox.list_refs()) == 12
    new = standin.store.deliver(render(load_rows()[0], 900, random.Random(1))).immutable_id
    before = len(standin.log)
    assert new in mailbox.list_refs()
    rounds = standin.requests_matching("/messages/delta$")[-1:]
    assert "$deltatoken" in rounds[0]["query"] and len(standin.log) - before == 1


def test_mark_processed_reads_categorises_and_moves_once_keeping_the_id(standin, home):
    refs = fill(standin, 6)
    mailbox = connector(standin, home)
    mailbox.list_refs()
    mailbox.mark_processed(refs[:4])
    mailbox.mark_processed(refs[:4])
    processed = next(f for f, d in standin.store.folders.items() if d["displayName"] == "rxinbox-processed")
    for ref in refs[:4]:
        msg = standin.store.messages[ref]
        assert msg.props["isRead"] and msg.props["categories"] == [PROCESSED_CATEGORY]
        assert msg.folder == processed and msg.moves == 1
    assert len(list(mailbox.fetch(refs[:4]))) == 4, "immutable ids still fetch after the move"
    assert sorted(mailbox.list_refs()) == sorted(refs[4:])


def test_categorise_keeps_staff_categories(standin, home):
    ref = fill(standin, 1)[0]
    standin.store.messages[ref].props["categories"] = ["Red category"]
    mailbox = connector(standin, home, processed_folder=None)
    mailbox.categorise(ref, ESCALATED_CATEGORY)
    mailbox.categorise(ref, ESCALATED_CATEGORY)
    assert standin.store.messages[ref].props["categories"] == ["Red category", ESCALATED_CATEGORY]
    assert not standin.store.messages[ref].props["isRead"]


def test_expired_delta_link_resyncs_the_folder_without_handing_out_handled_mail(standin, home, caplog):
    refs = fill(standin, 15)
    mailbox = connector(standin, home, processed_folder=None)
    mailbox.list_refs()
    mailbox.mark_processed(refs[:10])
    standin.expire_delta_tokens()
    late = standin.store.deliver(render(load_rows()[1], 901, random.Random(2))).immutable_id
    with caplog.at_level(logging.WARNING):
        waiting = mailbox.list_refs()
    assert sorted(waiting) == sorted(refs[10:] + [late])
    assert "resynchronising" in caplog.text
    assert [e["status"] for e in standin.requests_matching("/messages/delta$")[-2:]] == [410, 200]
    found = notices(mailbox)
    assert set(found) == {NoticeKind.delta_resync}
    assert found[NoticeKind.delta_resync].count == 1 and "HTTP 410" in found[NoticeKind.delta_resync].detail


def test_retry_after_is_honoured_on_429(standin, home):
    fill(standin, 3)
    sleeps = Sleeps()
    standin.add_fault("throttle", "/messages/delta$", times=2, retry_after="7")
    mailbox = connector(standin, home, sleeps)
    assert len(mailbox.list_refs()) == 3
    assert sleeps == [7.0, 7.0]
    assert notices(mailbox) == {NoticeKind.throttled: MailboxNotice(NoticeKind.throttled, 2,
                                                                    "HTTP 429; waited 14.0 s in total")}


def test_retry_after_beyond_the_limit_is_left_to_the_next_sweep_and_noticed(standin, home):
    fill(standin, 1)
    standin.add_fault("throttle", "/messages/delta$", times=1, retry_after="600")
    mailbox = connector(standin, home)
    with pytest.raises(MailboxError, match="throttled for 600 s"):
        mailbox.list_refs()
    throttled = notices(mailbox)[NoticeKind.throttled]
    assert throttled.count == 1 and "Retry-After 600 s" in throttled.detail


def test_a_429_storm_without_retry_after_backs_off_with_jitter_and_completes(standin, home):
    refs = fill(standin, 20)
    sleeps = Sleeps()
    standin.add_fault("throttle", r"/\$value$", times=14)
    mailbox = connector(standin, home, sleeps)
    fetched = list(mailbox.fetch(refs))
    assert len(fetched) == 20
    found = notices(mailbox)
    assert set(found) == {NoticeKind.throttled}, "fourteen 429s from four threads make one notice"
    assert found[NoticeKind.throttled].count == 14 and found[NoticeKind.throttled].detail.startswith("HTTP 429; waited")
    assert len(standin.requests_matching(r"/\$value$")) == 34
    assert len(sleeps) == 14 and all(0 <= s <= POLICY.max_delay for s in sleeps)
    assert len(set(sleeps)) > 1, "backoff delays are jittered, not in lock-step"


def test_no_more_than_four_requests_in_flight_for_one_mailbox(home):
    with GraphStandIn(MAILBOX, latency=0.02) as standin:
        refs = fill(standin, 40)
        first, second = connector(standin, home), connector(standin, home)
        threads = [threading.Thread(target=lambda m=m: list(m.fetch(refs))) for m in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert standin.max_in_flight == 4, "the connector uses its four requests, and never more"
        assert not [e for e in standin.log if e["status"] == 429]


def test_connection_dropped_mid_fetch_is_retried(standin, home):
    refs = fill(standin, 5)
    standin.add_fault("drop", r"/\$value$", times=2)
    mailbox = connector(standin, home)
    fetched = list(mailbox.fetch(refs))
    assert [m.raw for m in fetched] == [standin.store.messages[r].mime for r in refs]
    found = notices(mailbox)
    assert set(found) == {NoticeKind.request_retried}
    assert found[NoticeKind.request_retried].count == 2 and found[NoticeKind.request_retried].detail.startswith("GET ")
    for ref in refs:
        assert_no_mail_content(found, standin.store.messages[ref])


def test_message_deleted_between_list_and_fetch_is_skipped_and_logged_without_phi(standin, home, caplog):
    refs = fill(standin, 4)
    mailbox = connector(standin, home)
    listed = mailbox.list_refs()
    gone = standin.store.messages[refs[1]]
    standin.store.delete(gone)
    with caplog.at_level(logging.DEBUG, logger="connectors"):
        fetched = [m.ref for m in mailbox.fetch(listed)]
        mailbox.mark_processed([refs[1]])
    assert refs[1] not in fetched and len(fetched) == 3
    assert "deleted between listing and fetching" in caplog.text
    for secret in (gone.props["subject"], gone.props["from"]["emailAddress"]["address"],
                   gone.props["internetMessageId"], gone.props["body"]["content"][:30]):
        assert secret not in caplog.text
    found = notices(mailbox)
    assert list(found.values()) == [MailboxNotice(NoticeKind.vanished_before_fetch, 1, "folder Inbox"),
                                    MailboxNotice(NoticeKind.vanished_before_mark, 1, "folder Inbox")]
    assert_no_mail_content(found, gone)


def test_reply_draft_is_threaded_under_the_original_and_saved_once(standin, home):
    ref = fill(standin, 3)[1]
    mailbox = connector(standin, home)
    mail = reply_to(standin, ref)
    draft_id = mailbox.save_draft(mail)
    assert mailbox.save_draft(mail) == draft_id
    drafts = [m for m in standin.store.messages.values() if m.props["isDraft"]]
    assert [d.immutable_id for d in drafts] == [draft_id]
    draft, original = drafts[0], standin.store.messages[ref]
    assert draft.folder == standin.store.well_known["drafts"]
    assert draft.props["conversationId"] == original.props["conversationId"]
    assert draft.extended == {KEY_PROPERTY: "out-1", STAGE_PROPERTY: "filled"}
    mime = standin.store.mime(draft).decode()
    assert f"In-Reply-To: {original.props['internetMessageId']}" in mime
    content = draft.props["body"]["content"]
    assert content.index("Your refill is ready.<br>Kind regards") < content.index("divRplyFwdMsg")
    assert draft.props["subject"] == mail.subject
    assert original.props["categories"] == [DRAFTED_CATEGORY]
    assert draft.props["toRecipients"][0]["emailAddress"]["address"] == mail.to


def test_a_lost_createreply_answer_is_looked_up_not_repeated(standin, home):
    ref = fill(standin, 2)[0]
    standin.add_fault("drop", r"/createReply$")
    mailbox = connector(standin, home)
    mailbox.save_draft(reply_to(standin, ref))
    drafts = [m for m in standin.store.messages.values() if m.props["isDraft"]]
    assert len(drafts) == 1 and drafts[0].extended[STAGE_PROPERTY] == "filled"
    retried = notices(mailbox)[NoticeKind.request_retried]
    assert retried.count == 1 and "looked up before retrying" in retried.detail


def test_a_crash_after_createreply_is_finished_on_replay(standin, home):
    ref = fill(standin, 2)[0]
    standin.add_fault("error", r"^PATCH ", body="rxinboxDraftStage", times=99, status=400, code="ErrorInvalidRequest")
    mailbox = connector(standin, home)
    with pytest.raises(MailboxError):
        mailbox.save_draft(reply_to(standin, ref))
    standin.faults.clear()
    draft_id = mailbox.save_draft(reply_to(standin, ref))
    drafts = [m for m in standin.store.messages.values() if m.props["isDraft"]]
    assert [d.immutable_id for d in drafts] == [draft_id] and drafts[0].extended[STAGE_PROPERTY] == "filled"


def test_send_goes_out_once_from_a_threaded_draft(standin, home):
    ref = fill(standin, 2)[0]
    mailbox = connector(standin, home)
    mail = reply_to(standin, ref, key="send-1")
    sent_id = mailbox.send(mail)
    assert mailbox.send(mail) == sent_id
    assert [m.immutable_id for m in standin.store.sent] == [sent_id]
    sent = standin.store.messages[sent_id]
    assert not sent.props["isDraft"] and sent.folder == standin.store.well_known["sentitems"]
    assert sent.in_reply_to == standin.store.messages[ref].props["internetMessageId"]


def test_reply_whose_original_is_gone_is_saved_unthreaded(standin, home):
    mail = OutgoingMail(to="kunde@example.net", subject="Re: Recept", body="Hej", sender=MAILBOX,
                        in_reply_to="<gone@example.net>", idempotency_key="out-9")
    mailbox = connector(standin, home)
    draft_id = mailbox.save_draft(mail)
    draft = standin.store.messages[draft_id]
    assert draft.props["isDraft"] and draft.in_reply_to is None and "Hej" in draft.props["body"]["content"]
    assert set(notices(mailbox)) == {NoticeKind.reply_unthreaded}


def test_a_rejected_token_is_a_clear_error(standin, home):
    with pytest.raises(GraphAuthError, match="rejected the access token"):
        connector(standin, home, token="expired-or-forged").list_refs()


def test_a_mailbox_outside_the_access_policy_is_refused_clearly(standin, home):
    with pytest.raises(GraphAuthError, match="application access policy"):
        connector(standin, home, mailbox="ceo@soendergade-apotek.example").list_refs()


def test_client_secret_sign_in_through_msal_and_a_wrong_secret(standin, home, monkeypatch):
    monkeypatch.setenv("RXINBOX_TEST_GRAPH_SECRET", "standin-secret")
    fill(standin, 2)
    mailbox = build_mailbox(config(), get_settings(), base_url=standin.base_url, policy=POLICY)
    assert len(mailbox.list_refs()) == 2
    list(mailbox.fetch(mailbox.list_refs()))
    assert standin.token_requests == 1, "MSAL's token is reused, not fetched per request"

    monkeypatch.setenv("RXINBOX_TEST_GRAPH_SECRET", "wrong")
    wrong = build_mailbox(config(), get_settings(), base_url=standin.base_url, policy=POLICY)
    with pytest.raises(GraphAuthError, match=r"invalid_client \(AADSTS7000215\)"):
        wrong.list_refs()
    unknown = build_mailbox(config(client_id="nobody"), get_settings(), base_url=standin.base_url, policy=POLICY)
    with pytest.raises(GraphAuthError, match="AADSTS700016"):
        unknown.list_refs()


def self_signed(tmp_path, name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=2)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    path = tmp_path / f"{name}.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert_pem)
    return path, cert_pem


def test_certificate_sign_in_and_a_certificate_the_app_does_not_have(home, tmp_path):
    path, cert_pem = self_signed(tmp_path, "rxinbox-app")
    other, _ = self_signed(tmp_path, "someone-else")
    with GraphStandIn(MAILBOX, certificate_pem=cert_pem) as standin:
        fill(standin, 2)
        cfg = config(client_secret_env=None, certificate_path=path)
        assert len(build_mailbox(cfg, get_settings(), base_url=standin.base_url, policy=POLICY).list_refs()) == 2
        bad = build_mailbox(config(client_secret_env=None, certificate_path=other), get_settings(),
                            base_url=standin.base_url, policy=POLICY)
        with pytest.raises(GraphAuthError, match="AADSTS700027"):
            bad.list_refs()


def test_an_unreachable_server_is_a_clear_error(home):
    with GraphStandIn(MAILBOX) as standin:
        base = standin.base_url
    mailbox = build_mailbox(config(), get_settings(), base_url=base, test_token="standin-token", policy=POLICY)
    with pytest.raises(GraphUnreachable, match="cannot reach Microsoft Graph"):
        mailbox.list_refs()
    # Each refused attempt was waited for and is noticed; the failure itself is the flow's to report.
    assert notices(mailbox)[NoticeKind.request_retried].count == POLICY.connect_attempts - 1


def test_the_test_switches_only_point_at_this_machine(home, monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, "https://graph.example.org/")
    with pytest.raises(MailboxError, match="127.0.0.1 or localhost"):
        open_from_config(config(), get_settings())
    monkeypatch.delenv(BASE_URL_ENV)
    monkeypatch.setenv(TEST_TOKEN_ENV, "anything")
    with pytest.raises(MailboxError, match="test switch"):
        open_from_config(config(), get_settings())


def test_open_from_config_reuses_one_connector_per_mailbox(standin, home, monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, standin.base_url)
    monkeypatch.setenv(TEST_TOKEN_ENV, "standin-token")
    fill(standin, 1)
    first = open_from_config(config(), get_settings())
    assert open_from_config(config(), get_settings()) is first
    assert isinstance(first, graph_mailbox.GraphMailbox) and len(first.list_refs()) == 1


def test_credentials_must_be_configured_exactly_once(home, monkeypatch):
    monkeypatch.delenv("RXINBOX_TEST_GRAPH_SECRET", raising=False)
    with pytest.raises(MailboxError, match="RXINBOX_TEST_GRAPH_SECRET"):
        build_mailbox(config(), get_settings())
    with pytest.raises(MailboxError, match="exactly one"):
        build_mailbox(config(client_secret_block="graph-secret"), get_settings())


def test_retry_after_accepts_seconds_and_http_dates():
    now = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Wed, 25 Nov 2026 09:00:30 GMT", now=lambda: now) == 30.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_reply_text_goes_above_the_quoted_original_escaped():
    body = {"contentType": "html", "content": "<html><body class='x'><hr><div>quoted</div></body></html>"}
    assert splice_reply(body, "1 < 2\nHej") == ("<html><body class='x'><div dir=\"auto\">1 &lt; 2<br>Hej</div>"
                                                "<hr><div>quoted</div></body></html>")
    text_body = {"contentType": "text", "content": "a & b"}
    assert splice_reply(text_body, "ok") == '<div dir="auto">ok</div><pre>a &amp; b</pre>'
