"""`rxinbox triage` and `rxinbox train`: JSONL in, JSONL out with exactly the specified fields."""

import io
import json

import typer
from typer.testing import CliRunner

from rxinbox.commands import triage as triage_cmd
from triage_support import trained_model, triager

FIELDS = ["id", "intent", "secondary_intents", "escalate", "reasons", "priority", "language", "confidence",
          "evidence"]


def _app(monkeypatch) -> typer.Typer:
    loaded = triager()  # before patching: triager() itself calls Triager.load
    monkeypatch.setattr(triage_cmd.Triager, "load", classmethod(lambda cls, *a, **k: loaded))
    app = typer.Typer()
    triage_cmd.register(app)
    return app


LINES = [
    {"id": "m1", "from": "a@example.dk", "subject": "Bestilling", "body": "Kan I bestille min Eltroxin?", "x": 1},
    {"id": "m2", "from": "b@example.com", "subject": "Question", "body": "Can I take ibuprofen with Eliquis?"},
]


def test_file_in_file_out(tmp_path, monkeypatch):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in LINES), encoding="utf-8")
    result = CliRunner().invoke(_app(monkeypatch), ["triage", "--input", str(source), "--output", str(target)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [list(row) for row in rows] == [FIELDS, FIELDS]
    assert [row["id"] for row in rows] == ["m1", "m2"]
    assert rows[0]["escalate"] is False and rows[1]["escalate"] is True
    assert all({"rule_id", "reason", "field", "matched_text", "start", "end"} == set(e) for e in rows[1]["evidence"])


def test_stdin_to_stdout_and_bad_lines_are_reported(monkeypatch):
    stdin = json.dumps(LINES[0]) + "\nnot json\n" + json.dumps({"id": "m3"}) + "\n"
    result = CliRunner().invoke(_app(monkeypatch), ["triage"], input=stdin)
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [row["id"] for row in out] == ["m1"]
    assert "line 2" in result.stderr and "line 3" in result.stderr


def test_train_command_writes_a_versioned_model(tmp_path, monkeypatch):
    monkeypatch.setenv("RXINBOX_HOME", str(tmp_path / "home"))
    model_path = trained_model()
    monkeypatch.setattr(triage_cmd.model_store, "train_and_save",
                        lambda models_dir, rows: (triage_cmd.model_store.load(model_path), model_path))
    result = CliRunner().invoke(_app(monkeypatch), ["train"])
    assert result.exit_code == 0 and "trained triage model" in result.output and model_path.name in result.output


def test_large_input_over_two_workers_matches_one_process_line_for_line():
    # Three batches, a bad line in the middle: forked workers must keep input order and the error report.
    lines = [json.dumps({**LINES[i % 2], "id": f"m{i}"}) for i in range(2 * triage_cmd.BATCH + 7)]
    lines.insert(600, "not json")
    text = "\n".join(lines) + "\n"
    serial, parallel = io.StringIO(), io.StringIO()
    one = triage_cmd.run(triager(), io.StringIO(text), serial, workers=1)
    two = triage_cmd.run(triager(), io.StringIO(text), parallel, workers=2)
    assert one == two == (2 * triage_cmd.BATCH + 7, ["line 601: Expecting value: line 1 column 1 (char 0)"])
    assert parallel.getvalue() == serial.getvalue()
    assert [json.loads(line)["id"] for line in parallel.getvalue().splitlines()][:3] == ["m0", "m1", "m2"]
