"""Gammu SMSD's FILES backend, as `wastebank sms run` uses it: its folders read from the
SMSD's own config (one source of truth), outbox files written, sent and error folders read
back, inbox files read and moved aside once recorded.

Why files and not ``gammu-smsd-inject``: the outbox file's name is ours to choose, and we make
it from the message's id (``OUTC<date>_<time>_00_<number>_wb<id>.txt``, Gammu's third name
form, whose last field is a note it ignores). A run that dies after writing the file and before
the ledger knew finds that file (in the outbox, or already in sent/error) on its next pass and
does not write it again: a receipt is never sent twice. With inject, the name is Gammu's and a
crash between it and our commit would send the receipt again. The same names tell, later,
whether Gammu sent a message (it moves the file to SentSMSPath) or gave up (ErrorSMSPath), so
``sent`` means the network took it. And no process is spawned per message.

A file is written under a name SMSD does not read (``.wb<id>.tmp``) and renamed into place,
so SMSD never sees half a message. The text is UTF-16 with a byte-order mark (the FILES
backend's "unicode" form, as inject writes it), which SMSD reads whatever the locale; with
``TransmitFormat = auto`` a GSM-7 text goes as one 7-bit SMS.

Also here: a config for Gammu's **dummy** phone (``model = dummy``, a directory that plays a
phone), which tests and `wastebank services up --with sms` run SMSD on, and the start of an
SMSD process.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from wastebank.errors import SetupError

GAMMU_SMSD = Path("/usr/bin/gammu-smsd")
INBOX_NAME = re.compile(r"^IN(\d{8})_(\d{6})_(\d{2})_(.+)_(\d{2})\.(txt|bin)$")
FOLDERS = ("inboxpath", "outboxpath", "sentsmspath", "errorsmspath")
TAKEN = ".wb-taken-"
"""The prefix of an outbox file taken back from SMSD (:meth:`GammuFiles.take_back`): SMSD skips
hidden files, so it never sends one."""
INBOX_SETTLE_S = 10.0
"""An empty inbox file younger than this is one SMSD is still writing (:meth:`received`)."""


class GammuConfigError(SetupError):
    """The SMSD config cannot be used: the message says which directive and why."""


@dataclass(frozen=True)
class Inbound:
    """One received message as SMSD stored it."""

    name: str  # the file's name: Gammu's id for it
    path: Path
    sender: str
    text: str | None  # None: unreadable (8-bit, or not text)


@dataclass(frozen=True)
class GammuFiles:
    """SMSD's folders (from its config) and the one we move read inbox files to."""

    config: Path
    inbox: Path
    outbox: Path
    sent: Path
    error: Path
    processed: Path

    @classmethod
    def from_config(cls, config: Path, processed: Path | None = None) -> GammuFiles:
        """Read ``[smsd]`` of SMSD's config: ``Service = files`` and four distinct folders
        (sent and error must differ from each other and from the outbox, or what happened to
        a message could not be told)."""
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with config.open(encoding="utf-8") as f:
                parser.read_file(f)
        except OSError as exc:  # its words (Permission denied), not "[Errno 13] ..."
            raise GammuConfigError(
                f"konfigurasi SMSD {config} tidak terbaca / SMSD config {config} cannot be read: "
                f"{exc.strerror or exc}"
            ) from None
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise GammuConfigError(
                f"konfigurasi SMSD {config} tidak terbaca / SMSD config {config} cannot be read: "
                f"{exc}"
            ) from None
        if not parser.has_section("smsd"):
            raise GammuConfigError(f"{config}: tidak ada bagian [smsd] / no [smsd] section")
        smsd = parser["smsd"]
        service = smsd.get("service", "").strip().lower()
        if service != "files":
            raise GammuConfigError(
                f"{config}: Service = {service or '(kosong / none)'}; `wastebank sms run` perlu "
                "Service = files / needs Service = files (docs/attendant.md, SMS)"
            )
        paths = {}
        for key in FOLDERS:
            value = smsd.get(key, "").strip()
            if not value:
                raise GammuConfigError(
                    f"{config}: [smsd] {key} belum diisi / [smsd] {key} is not set"
                )
            paths[key] = Path(value)
        if len({p.resolve() for p in paths.values()}) != len(paths):
            raise GammuConfigError(
                f"{config}: InboxPath, OutboxPath, SentSMSPath dan ErrorSMSPath harus berbeda / "
                "InboxPath, OutboxPath, SentSMSPath and ErrorSMSPath must differ"
            )
        inbox = paths["inboxpath"]
        return cls(
            config,
            inbox,
            paths["outboxpath"],
            paths["sentsmspath"],
            paths["errorsmspath"],
            processed or inbox.parent / f"{inbox.name}-processed",
        )

    def check(self) -> None:
        """At start: each of SMSD's folders exists and is a folder, the ones we write (the
        inbox, whose files we move out; the outbox) writable, and the processed folder made if
        missing; else a :class:`GammuConfigError` naming it. Without this a missing inbox was a
        traceback, a missing outbox one at the lock file, and a missing sent folder made every
        message SMSD sent "vanished"."""
        folders = (
            ("inboxpath", self.inbox, True),
            ("outboxpath", self.outbox, True),
            ("sentsmspath", self.sent, False),
            ("errorsmspath", self.error, False),
        )
        for key, path, written in folders:
            _check_folder(f"{self.config}: [smsd] {key}", path, written=written)
        if not self.processed.exists():
            try:
                self.processed.mkdir(mode=0o700, parents=True)
            except OSError as exc:
                raise GammuConfigError(
                    f"folder SMSD / SMSD folder: [sms] processed_path = {self.processed}: "
                    f"tidak bisa dibuat / cannot be made ({exc.strerror or exc})"
                ) from None
        _check_folder("[sms] processed_path", self.processed, written=True)

    def _require_folders(self) -> None:
        """A message file found nowhere is "vanished" only while SMSD's folders are there: a
        folder gone (unmounted, removed) is an error of the pass, and its messages wait."""
        for key, path in (
            ("outboxpath", self.outbox),
            ("sentsmspath", self.sent),
            ("errorsmspath", self.error),
        ):
            _check_folder(f"{self.config}: [smsd] {key}", path, written=False)

    # ---- out ------------------------------------------------------------------------------------

    @staticmethod
    def outbox_name(msg_id: int, phone: str, created_at: datetime) -> str:
        """Gammu's ``OUT<priority><date>_<time>_<serial>_<recipient>_<note>.txt``: priority C
        (SMSD sends in name order), our id as the note."""
        at = created_at.astimezone(UTC)
        return f"OUTC{at:%Y%m%d_%H%M%S}_00_{phone}_wb{msg_id}.txt"

    def where(self, name: str) -> str | None:
        """``outbox``, ``sent`` or ``error``: the folder a message file is in; None: nowhere.
        The outbox is looked at first: SMSD moves a file out of it (a rename, or a copy then a
        remove) while we look, and only in this order does a file moved between two looks
        still turn up. Sent first, a move between the sent and the outbox look found it
        nowhere, and a sent receipt was marked vanished (CI at 5acb063)."""
        for folder, path in (("outbox", self.outbox), ("sent", self.sent), ("error", self.error)):
            if (path / name).exists():
                return folder
        self._require_folders()
        return None

    def take_back(self, name: str) -> bool:
        """Take a message file out of SMSD's outbox before it is sent: True when it is ours
        again (SMSD will not send it), False when SMSD moved it first (to sent or error: the
        pass settles it as usual). The file is renamed, in the outbox, to a hidden name
        (:data:`TAKEN`), which SMSD's FILES backend skips: a rename is atomic, so either SMSD's
        own rename to sent/error or ours wins, never both; a remove after a look would race it.
        A file found taken already (a run that died before recording it) is taken too. What
        SMSD cannot tell us: a file it has read and is transmitting at this very moment; it
        still goes out (SMSD then logs that it cannot move it), the window of one send."""
        taken = self.outbox / f"{TAKEN}{name}"
        try:
            os.rename(self.outbox / name, taken)
        except FileNotFoundError:
            return taken.exists()
        return True

    def drop_taken(self, name: str) -> None:
        """Remove a file :meth:`take_back` took, once the ledger has recorded it."""
        (self.outbox / f"{TAKEN}{name}").unlink(missing_ok=True)

    def sent_at(self, name: str) -> datetime:
        """When SMSD moved the file to its sent folder (the file's change time)."""
        return datetime.fromtimestamp((self.sent / name).stat().st_ctime, UTC)

    def hand(self, name: str, text: str) -> None:
        """Put a message in SMSD's outbox, unless it is there, or was sent or failed, already.
        The file is its owner's alone (0600, whatever the umask): a receipt's amount and balance
        and the member's number are personal data (SMSD runs as the same user: docs/attendant.md,
        SMS)."""
        if self.where(name) is not None:
            return
        tmp = self.outbox / f".wb-{os.getpid()}-{name}.tmp"
        _private_write(tmp, b"\xfe\xff" + text.encode("utf-16-be"))
        os.replace(tmp, self.outbox / name)

    # ---- in -------------------------------------------------------------------------------------

    def received(self, on_error: Callable[[str, OSError], None] | None = None) -> Iterator[Inbound]:
        """The inbox's messages, oldest first by name; files that are not SMSD's are left, and
        so is an empty one younger than :data:`INBOX_SETTLE_S`: SMSD writes an inbox file in
        place (open, then one write at close), so a message read between the two was empty,
        recorded as such and moved aside while SMSD wrote its text into it: a SALDO lost.
        A file that cannot be read (an OSError) is left too, told to ``on_error`` (raised
        without one): one such file must not keep the others from being read."""
        for path in sorted(self.inbox.iterdir()):
            found = INBOX_NAME.match(path.name)
            if found is None:
                continue
            try:
                if not path.is_file() or _being_written(path):
                    continue
                sender, ext = found.group(4), found.group(6)
                text = _text(path) if ext == "txt" else None
            except FileNotFoundError:
                continue  # gone since the listing (another hand tidied the inbox)
            except OSError as exc:
                if on_error is None:
                    raise
                on_error(path.name, exc)
                continue
            yield Inbound(path.name, path, sender, text)

    def set_aside(self, item: Inbound) -> None:
        """Move a recorded inbox file out of the inbox (kept, for inspection)."""
        self.processed.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(item.path, self.processed / item.name)


def _check_folder(what: str, path: Path, *, written: bool) -> None:
    """``path`` is a folder we may look into (and write into, when ``written``); else a
    :class:`GammuConfigError` naming ``what``."""
    if not path.exists():
        problem = "tidak ada / does not exist"
    elif not path.is_dir():
        problem = "bukan folder / is not a folder"
    elif written and not os.access(path, os.W_OK | os.X_OK):
        problem = "tidak boleh ditulis / is not writable"
    elif not os.access(path, os.X_OK):
        problem = "tidak boleh dibuka / cannot be opened"
    else:
        return
    raise GammuConfigError(f"folder SMSD / SMSD folder: {what} = {path}: {problem}")


def _being_written(path: Path) -> bool:
    """Empty and changed within :data:`INBOX_SETTLE_S`: SMSD has it open (an empty message's
    file stays empty, and is read on a pass after that)."""
    st = path.stat()
    return st.st_size == 0 and time.time() - st.st_mtime < INBOX_SETTLE_S


def _private_write(path: Path, data: bytes) -> None:
    """``data`` in a new file ``path`` only its owner may read or write (0600 whatever the
    umask; one left by a crashed run is replaced)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _text(path: Path) -> str | None:
    """An inbox file's text: UTF-16 with its byte-order mark ("unicode", SMSD's default), or
    UTF-8 ("standard" on a UTF-8 system); None when it is neither."""
    data = path.read_bytes()
    try:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return data.decode("utf-16")
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ---- a dummy phone, for tests and development ---------------------------------------------------


def dummy_config(root: Path, *, log: Path | None = None) -> Path:
    """Write ``root/smsdrc``: SMSD on Gammu's dummy phone (the directory ``root/phone``, where
    a test puts received messages as Gammu backup files in ``phone/sms/1``), FILES backend
    with its folders under ``root``, checking every second. Returns the config's path. The
    config is 0600 and the folders 0700, whatever the umask: the messages are personal data."""
    names = ("inbox", "outbox", "sent", "error")
    folders = {key: root / name for key, name in zip(FOLDERS, names, strict=True)}
    for path in (root / "phone", *folders.values()):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    config = root / "smsdrc"
    lines = [
        "[gammu]",
        "model = dummy",
        "connection = none",
        f"device = {root / 'phone'}",
        "",
        "[smsd]",
        "service = files",
        f"logfile = {log or root / 'smsd.log'}",
        "debuglevel = 0",
        *(f"{key} = {path}/" for key, path in folders.items()),
        "inboxformat = unicode",
        "outboxformat = unicode",
        "transmitformat = auto",
        # A dummy phone answers at once: look at the outbox and the phone every second.
        "commtimeout = 1",
        "receivefrequency = 1",
        "loopsleep = 1",
        "statusfrequency = 0",
        "checksecurity = 0",
        "checkbattery = 0",
        "checksignal = 0",
        "",
    ]
    _private_write(config, "\n".join(lines).encode("utf-8"))
    return config


def start_smsd(config: Path, *, pid_file: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``gammu-smsd -c config`` in the foreground as our child (its log: the config's
    ``logfile``); the caller stops it."""
    if not GAMMU_SMSD.exists():
        raise GammuConfigError(
            f"{GAMMU_SMSD} tidak ada / not found: sudo apt-get install gammu-smsd "
            "(atau / or `wastebank services up --with sms`)"
        )
    args = [str(GAMMU_SMSD), "-c", str(config)]
    if pid_file is not None:
        args += ["-p", str(pid_file)]
    return subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
