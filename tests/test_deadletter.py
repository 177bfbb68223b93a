"""Dead letters: stored by the running ingester, shown, replayed once after a fix, purged."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from ingest.deadletter import ReplayAborted, hex_dump, payload_text, replay_dead_letters
from ingest.main import IngestSettings
from tests.conftest import deposit_event, eventually, free_port, mqtt_login, settings_env
from tests.ledger_helpers import add_dead_letter
from wastebank import ledger
from wastebank.cli import app
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.influx import Influx
from wastebank.messages import Topics
from wastebank.structs import encode_json

NEW_CARD = "04FFEE0001"  # not in the demo city until the test issues it to AMB-0001


def rows(url: str) -> list[ledger.DeadLetter]:
    engine = ledger.make_engine(url)
    try:
        with ledger.Session(engine) as s:
            return ledger.dead_letters(s)
    finally:
        engine.dispose()


def balance(url: str) -> int:
    engine = ledger.make_engine(url)
    try:
        with ledger.Session(engine) as s:
            return ledger.member_balance(s, "AMB-0001")
    finally:
        engine.dispose()


async def influx_count(settings: InfluxSettings) -> int:
    influx = Influx(settings)
    try:
        series = await influx.query('SELECT count("net_g") FROM "deposit"')
    finally:
        await influx.aclose()
    values = [v for s in series for v in s.values]
    return int(values[0][1]) if values else 0


async def cli(args: list[str], env: dict[str, str]) -> Result:
    # In a thread: the command runs its own event loop (asyncio.run), as from a shell.
    return await asyncio.to_thread(CliRunner().invoke, app, args, env=env)


@pytest.mark.integration
async def test_dead_letter_shown_replayed_once_after_a_fix_and_purged(
    ingester: IngestSettings, mqtt_settings: MqttSettings, influx_settings: InfluxSettings
) -> None:
    url = ingester.ledger_url
    env = settings_env(mqtt_settings, influx_settings, url)
    topic = Topics(mqtt_settings.topic_prefix).deposit("bs-batu-merah", "gw-01")
    malformed = b'{"kind": "deposit", "net_g": -5}'
    unknown_card = deposit_event(7, net_g=2000, card=NEW_CARD)  # PET @ Rp4,000/kg = Rp8,000
    async with aiomqtt.Client(
        mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
    ) as client:
        await client.publish(topic, malformed, qos=1)
        await client.publish(topic, b"\xff\x00{not json", qos=1)
        await client.publish(topic, encode_json(unknown_card), qos=1)

    async def three_dead() -> bool:
        return len(rows(url)) == 3

    await eventually(three_dead)
    bad, binary, card = rows(url)
    assert "invalid DepositEvent" in bad.error
    assert f"unknown card '{NEW_CARD}'" in card.error
    start_balance = balance(url)

    # show: the raw payload as text when it is text, as a hex dump when it is not.
    shown = await cli(["deadletter", "show", str(bad.id)], env)
    assert shown.exit_code == 0, shown.output
    assert f"topik / topic: {topic}" in shown.output
    assert "invalid DepositEvent" in shown.output
    assert malformed.decode() in shown.output
    shown = await cli(["deadletter", "show", str(binary.id)], env)
    assert "00000000  ff 00 7b 6e 6f 74 20 6a 73 6f 6e" in shown.output
    assert "|..{not json|" in shown.output

    # Still malformed: fails again, counted on its own row, no new row.
    replay = await cli(["deadletter", "replay", str(bad.id)], env)
    assert replay.exit_code == 1
    assert f"#{bad.id} gagal / failed: invalid DepositEvent" in replay.output
    bad = rows(url)[0]
    assert (bad.replay_attempts, bad.replayed_at, len(rows(url))) == (1, None, 3)
    assert "invalid DepositEvent" in (bad.last_error or "")

    # The fix: the card is issued to AMB-0001. Replay applies the deposit, once.
    engine = ledger.make_engine(url)
    with ledger.Session(engine) as s:
        member = ledger.get_member(s, "AMB-0001")
        assert member is not None
        s.add(ledger.Card(uid=NEW_CARD, member_id=member.id))
        s.commit()
    engine.dispose()
    replay = await cli(["deadletter", "replay", str(card.id)], env)
    assert replay.exit_code == 0, replay.output
    assert "diputar ulang / replayed: 1, gagal / failed: 0" in replay.output
    assert balance(url) == start_balance + 8000
    assert await influx_count(influx_settings) == 1
    card = rows(url)[2]
    assert card.replayed_at is not None
    assert card.replay_attempts == 1
    listed = await cli(["deadletter", "list", "--topic-contains", "gw-01"], env)
    assert "3 pesan ditolak / 3 dead letter(s)" in listed.output
    assert "diputar ulang / replayed" in listed.output
    assert "gagal diputar ulang 1x / replay failed 1x" in listed.output

    # Again, by id and with --all: the replayed row is skipped and nothing changes.
    replay = await cli(["deadletter", "replay", str(card.id)], env)
    assert "already replayed: 1" in replay.output
    replay = await cli(["deadletter", "replay", "--all"], env)
    assert "diputar ulang / replayed: 0, gagal / failed: 2" in replay.output  # the malformed two
    assert rows(url)[2].replayed_at == card.replayed_at
    assert rows(url)[2].replay_attempts == 1
    assert balance(url) == start_balance + 8000
    assert await influx_count(influx_settings) == 1

    # A replay interrupted after applying but before marking is run again: still applied once.
    engine = ledger.make_engine(url)
    with ledger.Session(engine) as s:
        s.get_one(ledger.DeadLetter, card.id).replayed_at = None
        s.commit()
    engine.dispose()
    summary = await replay_dead_letters(ingester, [card.id])
    assert summary.replayed == [card.id]
    assert balance(url) == start_balance + 8000
    assert await influx_count(influx_settings) == 1

    # purge: a dry run without --yes, then the replayed row goes and the others stay.
    purge = await cli(["deadletter", "purge", "--replayed"], env)
    assert purge.exit_code == 1
    assert "1 would be deleted" in purge.output
    assert len(rows(url)) == 3
    purge = await cli(["deadletter", "purge", "--replayed", "--yes"], env)
    assert purge.exit_code == 0, purge.output
    assert "1 dihapus / 1 deleted" in purge.output
    assert [r.id for r in rows(url)] == [bad.id, binary.id]


async def test_replay_stops_without_touching_rows_when_influxdb_is_unreachable(
    ledger_url: str,
) -> None:
    engine = ledger.make_engine(ledger_url)
    with ledger.Session(engine) as s:
        row_id = add_dead_letter(s, "wastebank/x/gateway/gw-01/deposit", b"{}", "invalid")
        s.commit()
    engine.dispose()
    settings = load_settings(
        IngestSettings,
        ledger_url=ledger_url,
        influx=InfluxSettings(url=f"http://127.0.0.1:{free_port()}"),
    )
    with pytest.raises(ReplayAborted, match="unavailable"):
        await replay_dead_letters(settings, None)
    (row,) = rows(ledger_url)
    assert (row.id, row.replay_attempts, row.last_error, row.replayed_at) == (row_id, 0, None, None)


def test_purge_and_replay_need_explicit_choices(ledger_url: str) -> None:
    runner = CliRunner()
    base = ["--ledger-url", ledger_url]
    assert runner.invoke(app, ["deadletter", "purge", "--yes", *base]).exit_code == 2
    assert runner.invoke(app, ["deadletter", "replay", *base]).exit_code == 2
    assert runner.invoke(app, ["deadletter", "replay", "1", "--all", *base]).exit_code == 2
    missing = runner.invoke(app, ["deadletter", "show", "99", *base])
    assert missing.exit_code == 1
    bad_date = runner.invoke(app, ["deadletter", "list", "--since", "yesterday", *base])
    assert bad_date.exit_code == 2


def test_list_filters_and_purge_before(ledger_url: str) -> None:
    engine = ledger.make_engine(ledger_url)
    with ledger.Session(engine) as s:
        for i in range(5):
            add_dead_letter(s, f"wastebank/b{i}/gateway/gw-0{i}/deposit", b"x", "invalid")
        s.commit()
    engine.dispose()
    runner = CliRunner()
    base = ["--ledger-url", ledger_url]
    out = runner.invoke(app, ["deadletter", "list", "--topic-contains", "gw-03", *base]).output
    assert "1 pesan ditolak / 1 dead letter(s)" in out
    assert "b3/" in out
    out = runner.invoke(app, ["deadletter", "list", "--limit", "2", *base]).output
    assert [line.split("\t")[0] for line in out.splitlines()[:2]] == ["4", "5"]
    assert "only the newest 2 shown" in out
    out = runner.invoke(app, ["deadletter", "list", "--since", "2100-01-01", *base]).output
    assert "0 pesan ditolak" in out
    purged = runner.invoke(app, ["deadletter", "purge", "--before", "2100-01-01", "--yes", *base])
    assert "5 dihapus / 5 deleted" in purged.output


def test_an_older_ledger_file_gets_the_new_dead_letter_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE dead_letter (id INTEGER PRIMARY KEY, topic VARCHAR(500), "
            "payload BLOB, error TEXT, received_at DATETIME)"
        )
        conn.execute(
            "INSERT INTO dead_letter VALUES (1, 't', x'00', 'old', '2026-01-01 00:00:00.000000')"
        )
        conn.commit()
    engine = ledger.make_engine(f"sqlite:///{path}")
    ledger.make_engine(f"sqlite:///{path}").dispose()  # a second open adds nothing twice
    with ledger.Session(engine) as s:
        (row,) = ledger.dead_letters(s)
        assert (row.replay_attempts, row.replayed_at, row.last_error) == (0, None, None)
        ledger.mark_replayed(s, [row.id])
        assert s.scalar(select(func.count()).where(ledger.DeadLetter.replayed_at.is_not(None)))
    engine.dispose()


def test_payload_shown_as_text_or_hex() -> None:
    assert payload_text(b'{"a": 1}\n') == '{"a": 1}\n'
    assert payload_text("berat 1,25 kg — ok".encode()) == "berat 1,25 kg — ok"
    assert payload_text(b"\xff\xfe") is None
    assert payload_text(b"ok\x00") is None  # decodes, but a control byte: hex is clearer
    assert hex_dump(bytes(range(0x41, 0x41 + 18))) == (
        "00000000  41 42 43 44 45 46 47 48 49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|\n"
        "00000010  51 52                                            |QR|"
    )


def test_a_topic_of_any_mqtt_length_is_kept_whole(ledger_url: str) -> None:
    """MQTT allows topics of up to 65,535 bytes: each is stored whole (PostgreSQL refused more
    than 500 characters before migration 0007) and found by the list filter."""
    topics = [
        "wastebank/b/gateway/" + "g" * 482 + "/deposit",  # 510 characters
        "wastebank/b/gateway/" + "x" * (65_535 - 28) + "/deposit",  # 65,535 bytes
        "wastebank/b/gateway/" + "é" * 32_753 + "/deposit",  # 65,534 bytes, 32,781 characters
    ]
    assert [len(t.encode()) for t in topics] == [510, 65_535, 65_534]
    engine = ledger.make_engine(ledger_url)
    try:
        with ledger.Session(engine) as s:
            ledger.add_dead_letters(s, [(t, b"{}", "invalid") for t in topics[:2]])
            add_dead_letter(s, topics[2], b"{}", "invalid")
            assert [r.topic for r in ledger.dead_letters(s)] == topics
            s.commit()
    finally:
        engine.dispose()
    out = CliRunner().invoke(
        app, ["deadletter", "list", "--topic-contains", "é" * 40, "--ledger-url", ledger_url]
    )
    assert "1 pesan ditolak / 1 dead letter(s)" in out.output


@pytest.mark.integration
async def test_a_message_on_a_very_long_topic_is_dead_lettered_and_intake_goes_on(
    ingester: IngestSettings, mqtt_settings: MqttSettings
) -> None:
    """A bad deposit on a topic of 65,535 bytes is kept as a dead letter with its whole topic,
    and the ingester goes on to apply the next deposit."""
    topics = Topics(mqtt_settings.topic_prefix)
    short = topics.deposit("bs-batu-merah", "gw-01")
    pad = 65_535 - len(topics.deposit("bs-batu-merah", "").encode())
    long = topics.deposit("bs-batu-merah", "g" * pad)
    assert len(long.encode()) == 65_535
    async with aiomqtt.Client(
        mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
    ) as client:
        await client.publish(long, b'{"kind": "deposit", "net_g": -5}', qos=1)
        await client.publish(short, encode_json(deposit_event(8, net_g=1000)), qos=1)

    def applied() -> int:
        engine = ledger.make_engine(ingester.ledger_url)
        try:
            with ledger.Session(engine) as s:
                return s.scalar(select(func.count()).select_from(ledger.Deposit)) or 0
        finally:
            engine.dispose()

    async def both_handled() -> bool:
        return len(rows(ingester.ledger_url)) == 1 and applied() == 1

    await eventually(both_handled)
    (letter,) = rows(ingester.ledger_url)
    assert letter.topic == long
    assert "invalid DepositEvent" in letter.error
