"""The IMAP connector against a real Dovecot, and SMTP sending against aiosmtpd (both on 127.0.0.1)."""

import email
import logging
import re
import ssl
from email.policy import default as default_policy

import pytest
from prefect.blocks.system import Secret

from connectors import imap_mailbox, imap_session
from connectors.imap_mailbox import ImapLoginError, ImapMailbox, open_from_config
from connectors.imap_protocol import encode_folder, fetched_bodies, group_refs, uid_set
from connectors.mailbox import Mailbox, MailboxError, MailboxNotice, NoticeKind, NoticeSource, OutgoingMail
from connectors.mailbox_config import ImapMailboxConfig
from connectors.smtp_sender import SmtpLoginError, SmtpSender, compose
from rxinbox.settings import get_settings
from tests.e2e.dovecot import admin_connection, append_messages, free_port, realistic_messages, uids_with

pytestmark = pytest.mark.e2e

KEYWORD = imap_mailbox.PROCESSED_KEYWORD


def open_box(account, **kwargs) -> ImapMailbox:
    options = {"port": account.port, "security": "plain", "allow_plaintext_auth": True, **kwargs}
    return ImapMailbox("dovecot", account.host, account.user, lambda: account.password, **options)


def notices(box: ImapMailbox) -> dict[NoticeKind, MailboxNotice]:
    drained = box.drain_notices()
    assert len({n.kind for n in drained}) == len(drained), "one notice per kind and drain"
    assert box.drain_notices() == [], "a drain forgets what it handed out"
    return {n.kind: n for n in drained}


def assert_no_mail_content(found: dict[NoticeKind, MailboxNotice], raw: bytes) -> None:
    """Nothing of the message (subject, sender, Message-ID, body) may reach a notice, which goes to the audit trail."""
    msg = email.message_from_bytes(raw, policy=default_policy)
    body = max(msg.get_body(("plain", "html")).get_content().splitlines(), key=len).strip()
    text = repr(list(found.values()))
    for secret in (str(msg["Subject"]), msg["From"].addresses[0].addr_spec, str(msg["Message-ID"]), body[:40]):
        assert secret and secret not in text


def reply(key: str = "out-1", parent: str = "<gen-000001.abc@example.net>") -> OutgoingMail:
    return OutgoingMail(to="patient@example.net", subject="Re: Fornyelse af recept", body="Kære patient,\n\nTak.\n",
                        sender="apotek@soendergade-apotek.example", in_reply_to=parent,
                        references=("<root@example.net>",), idempotency_key=key)


def test_list_fetch_and_mark_are_stable_and_idempotent(dovecot):
    raws = realistic_messages(5)
    append_messages(dovecot, raws)
    box = open_box(dovecot)
    assert isinstance(box, Mailbox)
    refs = box.list_refs()
    assert len(refs) == 5 and all(re.fullmatch(r"\d+:\d+", r) for r in refs)
    assert [int(r.split(":")[1]) for r in refs] == sorted(int(r.split(":")[1]) for r in refs)
    assert box.list_refs() == refs, "refs are stable across calls"
    assert isinstance(box, NoticeSource)

    fetched = list(box.fetch(refs))
    assert [m.ref for m in fetched] == refs
    assert [m.raw for m in fetched] == raws
    staff = admin_connection(dovecot)
    assert uids_with(staff, "UNSEEN") == [int(r.split(":")[1]) for r in refs], "fetching must not mark mail read"

    box.mark_processed(refs[:2])
    box.mark_processed(refs[:2])
    assert box.list_refs() == refs[2:]
    staff.select("INBOX")
    assert uids_with(staff, "KEYWORD", KEYWORD) == uids_with(staff, "SEEN") == [int(r.split(":")[1]) for r in refs[:2]]
    staff.logout()
    assert notices(box) == {}, "a sweep without faults reports none"


def test_mail_opened_by_staff_is_still_listed(dovecot):
    append_messages(dovecot, realistic_messages(2))
    staff = admin_connection(dovecot)
    staff.uid("STORE", "1", "+FLAGS", "(\\Seen)")
    staff.logout()
    assert len(open_box(dovecot).list_refs()) == 2


@pytest.mark.parametrize("without_move", [False, True], ids=["uid-move", "copy-expunge"])
def test_processed_mail_is_moved_to_the_processed_folder(dovecot, without_move):
    append_messages(dovecot, realistic_messages(4))
    box = open_box(dovecot, processed_folder="Behandlet æøå")
    refs = box.list_refs()
    if without_move:
        box.session.capabilities.discard("MOVE")  # a server without RFC 6851 MOVE
    box.mark_processed(refs[:3])
    box.mark_processed(refs[:3])
    assert box.list_refs() == refs[3:]
    staff = admin_connection(dovecot, folder=None)
    assert staff.select('"Behandlet &AOYA+ADl-"')[0] == "OK", "the folder name is sent in modified UTF-7"
    assert len(uids_with(staff, "KEYWORD", KEYWORD)) == 3
    staff.select("INBOX")
    assert len(uids_with(staff, "ALL")) == 1
    staff.logout()


def test_move_one_message(dovecot):
    append_messages(dovecot, realistic_messages(2))
    box = open_box(dovecot)
    first, second = box.list_refs()
    box.move(first, "Eskaleret")
    box.move(first, "Eskaleret")
    assert box.list_refs() == [second]
    staff = admin_connection(dovecot, folder="Eskaleret")
    assert len(uids_with(staff, "ALL")) == 1
    staff.logout()


def composed() -> email.message.EmailMessage:
    return compose(reply(), "<t-1@soendergade-apotek.example>")


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=default_policy)


def test_drafts_are_threaded_flagged_and_stored_once(dovecot):
    box = open_box(dovecot)
    first = box.save_draft(reply("out-abc"))
    assert box.save_draft(reply("out-abc")) == first, "a retried save finds the draft the first call stored"
    box.save_draft(reply("out-def"))

    staff = admin_connection(dovecot, folder="Drafts")
    assert uids_with(staff, "DRAFT") == [1, 2]
    raw = staff.uid("FETCH", "1", "(BODY.PEEK[])")[1][0][1]
    draft = parse(raw)
    assert draft["Message-ID"] == "<out-abc@soendergade-apotek.example>"
    assert draft["In-Reply-To"] == "<gen-000001.abc@example.net>"
    assert draft["References"] == "<root@example.net> <gen-000001.abc@example.net>"
    assert draft["Subject"] == "Re: Fornyelse af recept"
    assert draft.get_content().replace("\r\n", "\n") == "Kære patient,\n\nTak.\n"
    staff.logout()


def test_uidvalidity_change_gives_new_refs_and_old_ones_are_skipped(dovecot, caplog):
    append_messages(dovecot, realistic_messages(3), folder="Apotek")
    box = open_box(dovecot, folder="Apotek")
    old = box.list_refs()
    staff = admin_connection(dovecot, folder=None)
    assert staff.delete('"Apotek"')[0] == "OK"
    staff.logout()
    append_messages(dovecot, realistic_messages(3), folder="Apotek")
    new = box.list_refs()
    assert len(new) == 3 and not set(new) & set(old), "a recreated folder must not reuse refs"
    with caplog.at_level(logging.WARNING):
        assert list(box.fetch(old)) == []
        box.mark_processed(old)
    assert "older UIDVALIDITY" in caplog.text
    assert box.list_refs() == new
    changed = notices(box)[NoticeKind.uidvalidity_changed]
    assert changed.count == 6 and "Apotek" in changed.detail, "3 refs skipped at fetch, 3 at mark"


def test_connection_dropped_mid_fetch_reconnects_and_finishes(dovecot_server, dovecot, monkeypatch, caplog):
    monkeypatch.setattr(imap_mailbox, "FETCH_CHUNK", 2)
    monkeypatch.setattr(imap_session, "RETRY_DELAYS", (0.1, 0.5))
    raws = realistic_messages(6)
    append_messages(dovecot, raws)
    box = open_box(dovecot)
    refs = box.list_refs()
    fetched = []
    with caplog.at_level(logging.WARNING):
        for message in box.fetch(refs):
            fetched.append(message)
            if len(fetched) == 1:
                dovecot_server.kick(dovecot.user)  # the server closes the session under the client
    assert [m.raw for m in fetched] == raws
    assert "lost during fetch" in caplog.text
    found = notices(box)
    assert set(found) == {NoticeKind.reconnected}
    assert found[NoticeKind.reconnected].count >= 1 and found[NoticeKind.reconnected].detail.startswith("fetch after")
    for raw in raws:
        assert_no_mail_content(found, raw)


def test_wrong_password_is_a_clear_error_without_retries(dovecot, caplog):
    box = ImapMailbox("dovecot", dovecot.host, dovecot.user, lambda: "wrong", port=dovecot.port,
                      security="plain", allow_plaintext_auth=True)
    with caplog.at_level(logging.WARNING), pytest.raises(ImapLoginError) as error:
        box.list_refs()
    assert str(error.value) == f"IMAP login failed for user {dovecot.user} on {dovecot.host}:{dovecot.port}"
    assert "reconnecting" not in caplog.text
    assert notices(box) == {}, "a failure is the flow's to report (flow.failed), not a handled fault"


def test_unreachable_server_names_host_and_port(monkeypatch):
    monkeypatch.setattr(imap_session, "RETRY_DELAYS", (0.01, 0.01))
    port = free_port()
    box = ImapMailbox("dovecot", "127.0.0.1", "x", lambda: "y", port=port, security="tls")
    with pytest.raises(MailboxError, match=rf"127\.0\.0\.1:{port} failed after 3 attempts"):
        box.list_refs()
    assert notices(box) == {}, "reconnects that never got through are not reported as reconnected"


def test_message_deleted_between_list_and_fetch_is_skipped(dovecot, caplog):
    raws = realistic_messages(3)
    append_messages(dovecot, raws)
    box = open_box(dovecot)
    refs = box.list_refs()
    staff = admin_connection(dovecot)
    staff.uid("STORE", refs[1].split(":")[1], "+FLAGS", "(\\Deleted)")
    staff.expunge()
    staff.logout()
    with caplog.at_level(logging.WARNING):
        fetched = list(box.fetch(refs))
    assert [m.ref for m in fetched] == [refs[0], refs[2]]
    assert "vanished between listing and fetching" in caplog.text
    found = notices(box)
    assert set(found) == {NoticeKind.vanished_before_fetch}
    assert found[NoticeKind.vanished_before_fetch] == MailboxNotice(NoticeKind.vanished_before_fetch, 1, "folder INBOX")
    assert_no_mail_content(found, raws[1])


def test_implicit_tls_and_starttls_with_a_trusted_self_signed_certificate(dovecot, imap_tls_context):
    append_messages(dovecot, realistic_messages(1))
    implicit = ImapMailbox("dovecot", dovecot.host, dovecot.user, lambda: dovecot.password, port=dovecot.tls_port,
                           security="tls", ssl_context=imap_tls_context)
    upgraded = ImapMailbox("dovecot", dovecot.host, dovecot.user, lambda: dovecot.password, port=dovecot.port,
                           security="starttls", ssl_context=imap_tls_context)
    assert len(implicit.list_refs()) == len(upgraded.list_refs()) == 1
    untrusted = ImapMailbox("dovecot", dovecot.host, dovecot.user, lambda: dovecot.password, port=dovecot.tls_port,
                            security="tls", ssl_context=ssl.create_default_context())
    with pytest.raises(MailboxError, match="certificate of IMAP server .* not trusted"):
        untrusted.list_refs()


def test_plaintext_login_needs_explicit_consent(dovecot):
    with pytest.raises(MailboxError, match="refusing plaintext IMAP"):
        ImapMailbox("dovecot", dovecot.host, dovecot.user, lambda: dovecot.password, port=dovecot.port, security="plain")


def config(account, **kwargs) -> ImapMailboxConfig:
    return ImapMailboxConfig(name=f"box-{account.user}", host=account.host, port=account.port, security="plain",
                             allow_plaintext_auth=True, username=account.user, **kwargs)


def test_open_from_config_reads_the_password_from_the_environment(dovecot, home, monkeypatch):
    monkeypatch.setenv("RXINBOX_TEST_IMAP_PASSWORD", dovecot.password)
    cfg = config(dovecot, password_env="RXINBOX_TEST_IMAP_PASSWORD")
    box = open_from_config(cfg, get_settings())
    assert box is open_from_config(cfg, get_settings()), "one connection per process and mailbox"
    assert box.list_refs() == []
    monkeypatch.delenv("RXINBOX_TEST_IMAP_PASSWORD")
    box.close()
    with pytest.raises(ImapLoginError, match="RXINBOX_TEST_IMAP_PASSWORD"):
        box.list_refs()


def test_open_from_config_reads_a_prefect_secret_block(dovecot, home, prefect_harness):
    Secret(value=dovecot.password).save(f"imap-{dovecot.user}", overwrite=True)
    box = open_from_config(config(dovecot, password_secret_block=f"imap-{dovecot.user}"), get_settings())
    assert box.list_refs() == []


def test_send_arrives_once_threaded_and_a_retry_does_not_resend(dovecot, smtp_server):
    sender = SmtpSender(smtp_server.host, smtp_server.port, security="plain")
    box = open_box(dovecot, smtp=sender)
    message_id = box.send(reply("out-send-1"))
    assert box.send(reply("out-send-1")) == message_id
    assert len(smtp_server.messages) == 1
    sent = parse(smtp_server.messages[0])
    assert sent["Message-ID"] == message_id == "<out-send-1@soendergade-apotek.example>"
    assert sent["In-Reply-To"] == "<gen-000001.abc@example.net>"
    assert smtp_server.collector.envelopes[0].rcpt_tos == ["patient@example.net"]
    staff = admin_connection(dovecot, folder="Sendt post")
    assert len(uids_with(staff, "SEEN")) == 1, "a copy is kept in the folder the server flags \\Sent"
    staff.logout()


def test_smtp_starttls_with_login(smtp_tls_server):
    context = ssl.create_default_context(cafile=str(smtp_tls_server.cert_file))
    good = SmtpSender(smtp_tls_server.host, smtp_tls_server.port, "starttls", "apotek", lambda: "smtp-secret",
                      ssl_context=context)
    good.send(composed())
    assert len(smtp_tls_server.messages) == 1 and smtp_tls_server.logins == ["apotek"]
    bad = SmtpSender(smtp_tls_server.host, smtp_tls_server.port, "starttls", "apotek", lambda: "nope", ssl_context=context)
    with pytest.raises(SmtpLoginError, match=rf"SMTP login failed for user apotek on 127\.0\.0\.1:{smtp_tls_server.port}"):
        bad.send(composed())


def test_smtp_refuses_a_password_in_the_clear(smtp_plain_auth_server):
    sender = SmtpSender(smtp_plain_auth_server.host, smtp_plain_auth_server.port, "plain", "apotek", lambda: "secret")
    with pytest.raises(MailboxError, match="refusing to send the SMTP password unencrypted"):
        sender.send(composed())
    assert smtp_plain_auth_server.messages == []


def test_imap_syntax_helpers():
    assert uid_set([7, 1, 2, 3, 9, 10, 3]) == "1:3,7,9:10"
    assert encode_folder("Behandlet æøå & co") == "Behandlet &AOYA+ADl- &- co"
    assert encode_folder("Sendt post") == "Sendt post"
    assert group_refs(["5:2", "5:1", "6:1", "junk", "5:x"]) == {5: [1, 2], 6: [1]}
    # Some servers send the UID after the literal; unsolicited FLAGS updates carry no literal.
    data = [(b"1 (UID 4 BODY[]<0> {3}", b"abc"), b")", (b"2 (BODY[]<0> {2}", b"de"), b" UID 9)", b"3 (FLAGS (\\Seen))"]
    assert fetched_bodies(data) == {4: b"abc", 9: b"de"}
