"""What `wastebank sms run` leaves on disk is its owner's alone, whatever the process's umask: a
receipt's amount and balance and the member's number are personal data (wastebank/sms/gammu.py;
docs/attendant.md, SMS). No SMSD needed: the files are ours."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path, PosixPath
from typing import ClassVar

import pytest

from wastebank import sms


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets everyone read (a service started without the CLI's 077)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_outbox_files_config_and_folders_are_private(tmp_path: Path) -> None:
    config = sms.dummy_config(tmp_path)
    assert mode(config) == 0o600
    files = sms.GammuFiles.from_config(config)
    for folder in (files.inbox, files.outbox, files.sent, files.error, tmp_path / "phone"):
        assert mode(folder) == 0o700, folder

    name = sms.GammuFiles.outbox_name(7, "+6281200000001", datetime(2026, 12, 6, tzinfo=UTC))
    files.hand(name, "Bank Sampah Batu Merah: saldo AMB-0001 Rp5.000.")
    assert mode(files.outbox / name) == 0o600
    assert (files.outbox / name).read_bytes().startswith(b"\xfe\xff")
    assert [p.name for p in files.outbox.iterdir()] == [name]  # no temporary file left

    # a received message, once recorded, is set aside in a folder of ours alone
    received = files.inbox / "IN20261206_103000_00_+6281200000001_00.txt"
    received.write_bytes(b"\xff\xfe" + "SALDO".encode("utf-16-le"))
    (item,) = files.received()
    files.set_aside(item)
    assert mode(files.processed) == 0o700
    assert (files.processed / received.name).exists()


@pytest.mark.usefixtures("open_umask")
def test_a_config_rewritten_over_an_open_one_becomes_private(tmp_path: Path) -> None:
    config = tmp_path / "smsdrc"
    config.write_text("old")
    config.chmod(0o644)
    for folder in ("inbox", "outbox"):  # made before, open
        (tmp_path / folder).mkdir(mode=0o755)
    sms.dummy_config(tmp_path)
    assert mode(config) == 0o600
    assert mode(tmp_path / "outbox") == 0o700


class _Watched(PosixPath):
    """A folder path whose every existence check is told to ``on_look`` first."""

    on_look: ClassVar[list[Callable[[], None]]] = []

    def exists(self) -> bool:
        for hook in self.on_look:
            hook()
        return super().exists()


@pytest.mark.parametrize("moved_after", range(3))
@pytest.mark.parametrize("to", ["sent", "error"])
def test_a_file_smsd_moves_while_it_is_looked_for_is_never_found_nowhere(
    tmp_path: Path, moved_after: int, to: str
) -> None:
    """SMSD moves a handed file to its sent (or error) folder at any moment: between any two of
    ``where``'s looks, the file is in one folder or the other, never "vanished"."""
    files = sms.GammuFiles.from_config(sms.dummy_config(tmp_path))
    name = sms.GammuFiles.outbox_name(7, "+6281200000001", datetime(2026, 12, 6, tzinfo=UTC))
    files.hand(name, "Bank Sampah Batu Merah: saldo AMB-0001 Rp5.000.")
    looks, moved = 0, False

    def smsd_moves_it() -> None:  # before look number `moved_after` (0: before the first)
        nonlocal looks, moved
        if looks == moved_after:
            os.rename(files.outbox / name, getattr(files, to) / name)
            moved = True
        looks += 1

    watched = replace(
        files, outbox=_Watched(files.outbox), sent=_Watched(files.sent), error=_Watched(files.error)
    )
    _Watched.on_look = [smsd_moves_it]
    try:
        found = watched.where(name)
    finally:
        _Watched.on_look = []
    assert found == (to if moved else "outbox")


def test_an_empty_inbox_file_is_read_only_once_smsd_can_no_longer_be_writing_it(
    tmp_path: Path,
) -> None:
    """SMSD opens an inbox file and writes the text as it closes it: an empty file seen between
    the two is left for a later pass, not recorded as an empty message (its SALDO lost); an
    empty file older than INBOX_SETTLE_S is an empty message, read as one."""
    files = sms.GammuFiles.from_config(sms.dummy_config(tmp_path))
    opened = files.inbox / "IN20261206_103000_00_+6281200000001_00.txt"
    opened.touch()
    assert list(files.received()) == []

    opened.write_bytes(b"\xff\xfe" + "SALDO".encode("utf-16-le"))  # SMSD closes it
    (item,) = files.received()
    assert item.text == "SALDO"

    files.set_aside(item)
    empty = files.inbox / "IN20261206_103500_00_+6281200000001_00.txt"
    empty.touch()
    old = time.time() - sms.gammu.INBOX_SETTLE_S - 1
    os.utime(empty, (old, old))
    (item,) = files.received()
    assert (item.name, item.text) == (empty.name, "")
