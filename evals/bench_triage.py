"""Triage speed (`make bench`): start-up time of `rxinbox triage` and messages per second after start-up.

Start-up is measured as the wall time of a fresh process triaging one message (interpreter, imports, rules,
lexicons, cached model). Throughput is (time for N messages - start-up) / N, end to end through the CLI
(JSON in and out), and in-process through Triager.triage_many.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from connectors import model_store
from core.triage.dataset import dataset_files, read_rows
from core.triage.engine import TriageInput, Triager
from rxinbox.settings import get_settings

TARGET_RATE = 1000.0
TARGET_STARTUP = 3.0


def sample_lines(count: int) -> list[str]:
    """`count` JSONL input lines cycled from the labelled set (both languages, every intent)."""
    rows = read_rows(dataset_files())
    return [json.dumps({"id": f"b{i}", "from": r.sender, "subject": r.subject, "body": r.body}, ensure_ascii=False)
            for i, r in enumerate(rows[i % len(rows)] for i in range(count))]


def timed_cli(command: list[str], lines: list[str], env: dict) -> float:
    """Wall time of one CLI process reading `lines` on stdin (output discarded, exit code checked)."""
    start = time.perf_counter()
    subprocess.run(command, input="\n".join(lines) + "\n", text=True, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3, help="start-up runs (the median is reported)")
    args = parser.parse_args(argv)
    env = {**os.environ}
    home = Path(env.get("RXINBOX_HOME") or tempfile.mkdtemp(prefix="rxinbox-bench-"))
    env["RXINBOX_HOME"] = str(home)
    os.environ["RXINBOX_HOME"] = str(home)
    model_store.load_or_train(get_settings().models_dir)  # start-up is measured with the model cached
    lines = sample_lines(args.messages)
    commands = {"python -m rxinbox.commands.triage": [sys.executable, "-m", "rxinbox.commands.triage"],
                "rxinbox triage": [sys.executable, "-m", "rxinbox.cli", "triage"]}
    print(f"triage benchmark: {args.messages} messages, {os.cpu_count()} CPU(s), RXINBOX_HOME={home}")
    for name, command in commands.items():
        startups = sorted(timed_cli(command, lines[:1], env) for _ in range(args.repeat))
        startup = startups[len(startups) // 2]
        total = timed_cli(command, lines, env)
        rate = args.messages / max(total - startup, 1e-9)
        print(f"{name:34s} start-up {startup:5.2f} s (target < {TARGET_STARTUP:.0f} s)   "
              f"throughput after start-up {rate:7.0f} msgs/s (target >= {TARGET_RATE:.0f})")
    triager = Triager.load()
    items = [TriageInput(id=str(i), sender=None, subject=json.loads(line)["subject"], body=json.loads(line)["body"])
             for i, line in enumerate(lines)]
    start = time.perf_counter()
    for offset in range(0, len(items), 512):
        triager.triage_many(items[offset:offset + 512])
    elapsed = time.perf_counter() - start
    print(f"{'in-process Triager.triage_many':34s} {len(items) / elapsed:7.0f} msgs/s "
          f"({1000 * elapsed / len(items):.2f} ms per message)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
