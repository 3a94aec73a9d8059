"""The embedded mailbox: a folder of .eml files is read-only; a Maildir gets real Maildir semantics."""

import threading
from pathlib import Path

import pytest

from connectors.local_mailbox import LocalMailbox
from connectors.mailbox import Mailbox, MailboxError, OutgoingMail

RAW = b"From: a@example.com\r\nTo: apotek@example.dk\r\nSubject: Hej\r\nMessage-ID: <m1@example.com>\r\n\r\nHej\r\n"


def test_folder_lists_sorted_and_is_never_modified(tmp_path):
    src = tmp_path / "mail"
    src.mkdir()
    for name in ("b.eml", "a.eml", ".hidden.eml", "notes.pdf"):
        (src / name).write_bytes(RAW)
    box = LocalMailbox(src, "local", tmp_path / "home")
    assert isinstance(box, Mailbox)
    assert box.list_refs() == ["a.eml", "b.eml"]
    fetched = list(box.fetch(["a.eml", "gone.eml"]))
    assert [m.ref for m in fetched] == ["a.eml"] and fetched[0].raw == RAW
    box.mark_processed(["a.eml"])
    assert sorted(p.name for p in src.iterdir()) == [".hidden.eml", "a.eml", "b.eml", "notes.pdf"]


def test_maildir_moves_processed_mail_to_cur_with_seen_flag(tmp_path):
    src = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (src / sub).mkdir(parents=True)
    (src / "new" / "1700000000.1.host").write_bytes(RAW)
    box = LocalMailbox(src, "local", tmp_path / "home")
    assert box.list_refs() == ["new/1700000000.1.host"]
    box.mark_processed(["new/1700000000.1.host"])
    box.mark_processed(["new/1700000000.1.host"])  # idempotent
    assert [p.name for p in (src / "cur").iterdir()] == ["1700000000.1.host:2,S"]
    assert box.list_refs() == ["cur/1700000000.1.host:2,S"]


def test_drafts_and_sent_mail_are_threaded_and_idempotent(tmp_path):
    src = tmp_path / "mail"
    src.mkdir()
    box = LocalMailbox(src, "local", tmp_path / "home")
    mail = OutgoingMail(to="a@example.com", subject="Re: Hej", body="Tak for din mail.", sender="apotek@example.dk",
                        in_reply_to="<m1@example.com>", references=("<m0@example.com>",), idempotency_key="out-1")
    first = Path(box.save_draft(mail))
    assert Path(box.save_draft(mail)) == first
    text = first.read_text()
    assert "In-Reply-To: <m1@example.com>" in text and "References: <m0@example.com> <m1@example.com>" in text
    assert Path(box.send(mail)).parent.name == "local"
    assert len(list((tmp_path / "home" / "drafts" / "local").iterdir())) == 1


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(MailboxError, match="does not exist"):
        LocalMailbox(tmp_path / "nope", "local", tmp_path)


def test_workers_writing_the_same_reply_at_once_all_succeed(tmp_path):
    src = tmp_path / "mail"
    src.mkdir()
    box = LocalMailbox(src, "local", tmp_path / "home")
    workers, replies = 8, 30
    start, errors = threading.Barrier(workers), []

    def worker() -> None:
        start.wait(30)
        for n in range(replies):
            mail = OutgoingMail(to="a@example.com", subject="Re: Hej", body="Tak for din mail." * 2000,
                                sender="apotek@example.dk", idempotency_key=f"out-{n}")
            try:
                box.send(mail)
            except OSError as exc:  # reported below: a worker must not fail
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(p.name for p in (tmp_path / "home" / "outbox" / "local").iterdir()) == \
        sorted(f"out-{n}.eml" for n in range(replies)), "one file per reply, no temp files left"
