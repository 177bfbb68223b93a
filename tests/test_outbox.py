"""The gateway's SQLite outbox: sequence numbers, order, removal, the bound, and durability."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.outbox import Outbox, machine_id
from wastebank.messages import INSTALL_PATTERN

REPO = Path(__file__).resolve().parents[1]


def _event(seq: int) -> tuple[str, bytes]:
    return f"t/{seq}", f"payload {seq}".encode()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "gw" / "outbox.db"


@pytest.fixture
def outbox(path: Path) -> Iterator[Outbox]:
    box = Outbox(path)
    yield box
    box.close()


def test_add_allocates_consecutive_seqs_from_one(outbox: Outbox) -> None:
    assert outbox.last_seq == 0
    assert len(outbox) == 0

    seqs = [outbox.add(_event) for _ in range(3)]

    assert seqs == [1, 2, 3]
    assert outbox.last_seq == 3
    assert [(r.topic, r.payload) for r in outbox.peek()] == [_event(1), _event(2), _event(3)]


def test_add_is_atomic_when_build_fails(outbox: Outbox) -> None:
    outbox.add(_event)

    def broken(seq: int) -> tuple[str, bytes]:
        assert seq == 2
        raise ValueError("schema says no")

    with pytest.raises(ValueError, match="schema says no"):
        outbox.add(broken)

    assert outbox.last_seq == 1
    assert len(outbox) == 1
    assert outbox.add(_event) == 2  # the failed build did not consume seq 2
    assert [r.payload for r in outbox.peek()] == [b"payload 1", b"payload 2"]


def test_peek_returns_oldest_first_up_to_limit(outbox: Outbox) -> None:
    for _ in range(5):
        outbox.add(_event)

    rows = outbox.peek(3)

    assert [r.payload for r in rows] == [b"payload 1", b"payload 2", b"payload 3"]
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert all(r.created_at.tzinfo is not None for r in rows)


def test_remove_deletes_only_that_row(outbox: Outbox) -> None:
    for _ in range(3):
        outbox.add(_event)
    middle = outbox.peek()[1]

    outbox.remove(middle.id)

    assert [r.payload for r in outbox.peek()] == [b"payload 1", b"payload 3"]
    assert len(outbox) == 2
    assert outbox.last_seq == 3  # removing never gives a seq back
    outbox.remove(middle.id)  # removing twice is harmless
    assert len(outbox) == 2


def test_rows_and_last_seq_survive_reopening(path: Path) -> None:
    box = Outbox(path)
    for _ in range(3):
        box.add(_event)
    box.remove(box.peek()[0].id)
    box.close()

    reopened = Outbox(path)
    try:
        assert [r.payload for r in reopened.peek()] == [b"payload 2", b"payload 3"]
        assert reopened.last_seq == 3
        assert reopened.add(_event) == 4
    finally:
        reopened.close()


def test_bound_keeps_newest_rows_and_counts_drops(path: Path) -> None:
    max_rows, extra = 5, 3
    box = Outbox(path, max_rows=max_rows)
    try:
        seqs = [box.add(_event) for _ in range(max_rows + extra)]
        assert seqs == list(range(1, max_rows + extra + 1))
        assert len(box) == max_rows
        assert box.dropped == extra
        kept = [r.payload for r in box.peek()]
        assert kept == [_event(s)[1] for s in range(extra + 1, max_rows + extra + 1)]
    finally:
        box.close()

    reopened = Outbox(path, max_rows=max_rows)
    try:
        assert reopened.dropped == extra
        assert [r.payload for r in reopened.peek()] == kept
        reopened.add(_event)
        assert reopened.dropped == extra + 1
        assert reopened.peek(1)[0].payload == _event(extra + 2)[1]
    finally:
        reopened.close()


def test_row_survives_sigkill_right_after_add(path: Path) -> None:
    child = textwrap.dedent(
        """
        import os, signal, sys
        from pathlib import Path
        from gateway.outbox import Outbox

        box = Outbox(Path(sys.argv[1]))
        seq = box.add(lambda s: ("t/killed", f"payload {s}".encode()))
        assert seq == 1
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )

    proc = subprocess.run(
        [sys.executable, "-c", child, str(path)],
        cwd=REPO,
        capture_output=True,
        timeout=30,
        check=False,
    )

    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode(errors="replace")
    box = Outbox(path)
    try:
        assert [(r.topic, r.payload) for r in box.peek()] == [("t/killed", b"payload 1")]
        assert box.last_seq == 1
        assert box.add(_event) == 2
    finally:
        box.close()


def test_a_new_file_draws_a_new_install_and_keeps_it(tmp_path: Path) -> None:
    """The install is drawn when the file is created and kept across opens: a restart keeps
    numbering under it; a new file (a replaced SD card) gets another one."""
    first = Outbox(tmp_path / "a.db", machine="m-1")
    install = first.install
    assert re.fullmatch(INSTALL_PATTERN, install)
    first.add(_event)
    first.close()
    again = Outbox(tmp_path / "a.db", machine="m-1")
    assert (again.install, again.last_seq) == (install, 1)
    again.close()
    other = Outbox(tmp_path / "b.db", machine="m-1")
    assert other.install != install
    assert other.last_seq == 0
    other.close()


def test_a_file_opened_on_another_machine_numbers_under_a_new_install(tmp_path: Path) -> None:
    """An outbox copied to another Pi (a card moved, an image cloned with its outbox) draws a
    new install and keeps its rows; a machine without an id changes nothing."""
    box = Outbox(tmp_path / "o.db", machine="m-1")
    install = box.install
    box.add(_event)
    box.close()
    unknown = Outbox(tmp_path / "o.db", machine="")
    assert unknown.install == install
    unknown.close()
    moved = Outbox(tmp_path / "o.db", machine="m-2")
    assert moved.install != install
    assert len(moved) == 1  # the row waiting to be published is kept
    assert moved.last_seq == 1
    moved.close()
    back = Outbox(tmp_path / "o.db", machine="m-2")
    assert back.install == moved.install
    back.close()


def test_machine_id_reads_the_first_file_with_text(tmp_path: Path) -> None:
    empty, real = tmp_path / "empty", tmp_path / "real"
    empty.write_text("\n")
    real.write_text("0123abcd\n")
    assert machine_id([tmp_path / "missing", empty, real]) == "0123abcd"
    assert machine_id([tmp_path / "missing"]) == ""
