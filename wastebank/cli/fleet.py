"""`wastebank fleet`: every gateway and TPS fill sensor, the broken ones first (wastebank/fleet/,
docs/fleet.md); the same rules as the page /armada and GET /api/fleet."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol, cast

import typer

from wastebank.cli._common import ApiLedgerUrlOption, ConfigOption, processes

if TYPE_CHECKING:
    from wastebank.config import InfluxSettings
    from wastebank.fleet import Fleet, FleetSettings
    from wastebank.fleet.view import Lang

fleet_app = typer.Typer(help="armada perangkat / the device fleet")

NOT_OK_EXIT = 1
"""The exit status while any device is not ok."""
NO_SITES_EXIT = 3
"""The exit status when the ledger has no bank and no TPS (the wrong ledger?): not 0, so a
monitoring script pointed at the wrong ledger does not read "all ok", and not 2, a bad option or
setting (every command's usage error), so the script can tell the two apart."""


class _Pages(Protocol):
    @property
    def broker_run_dir(self) -> Path | None: ...


class _Settings(Protocol):
    """What this command reads of the API's settings (api.settings.ApiSettings)."""

    @property
    def ledger_url(self) -> str: ...
    @property
    def influx(self) -> InfluxSettings: ...
    @property
    def fleet(self) -> FleetSettings: ...
    @property
    def default_timezone(self) -> str: ...
    @property
    def pages(self) -> _Pages: ...


@fleet_app.command("fleet")
def fleet_list(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="daftar seperti GET /api/fleet / the fleet as GET /api/fleet gives it"
        ),
    ] = False,
    english: Annotated[
        bool, typer.Option("--en", help="kata-kata dalam bahasa Inggris / words in English")
    ] = False,
    config: ConfigOption = None,
    ledger_url: ApiLedgerUrlOption = None,
) -> None:
    """Setiap gateway dan sensor isi TPS, yang rusak lebih dulu (luring, gangguan, jam belum
    sinkron, tak diketahui, baik); keluar 1 selama ada yang tidak baik, 3 bila ledger tanpa bank
    dan TPS / Every gateway and TPS fill sensor, the broken ones first (offline, fault, clock not
    synchronized, unknown, ok), each with last seen, version, outbox, clock, scales and active
    problems. Settings: the API's (WASTEBANK_FLEET__*; WASTEBANK_PAGES__BROKER_RUN_DIR, the
    broker's registry: the devices removed from it are left out, the sensors each gateway serves
    are checked against it: docs/fleet.md). Exit status: 0 every device ok (or none heard yet);
    1 any device not ok; 2 a bad option or setting (the error says which); 3 the ledger has no
    bank and no TPS (the wrong ledger?)."""
    from wastebank import fleet, ledger
    from wastebank.influx import Influx

    settings = cast(_Settings, processes().api_settings(config))
    engine = ledger.make_engine(ledger_url or settings.ledger_url, writer=False)

    async def load() -> Fleet:
        influx = Influx(settings.influx)
        try:
            return await fleet.load(
                engine,
                influx,
                settings.fleet,
                None,
                default_timezone=settings.default_timezone,
                broker_run_dir=settings.pages.broker_run_dir,
            )
        finally:
            await influx.aclose()

    try:
        found = asyncio.run(load())
        has_sites = fleet.ledger_has_sites(engine)
    finally:
        engine.dispose()
    lang: Lang = "en" if english else "id"
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
    else:
        _print(found, lang)
    if not has_sites:
        typer.echo(fleet.say("no_sites", lang), err=True)
        raise typer.Exit(code=NO_SITES_EXIT)
    if any(d.condition != fleet.Condition.OK for d in found.devices):
        raise typer.Exit(code=NOT_OK_EXIT)


def _print(found: Fleet, lang: Lang) -> None:
    """One block per device, the broken ones first."""
    from wastebank import fleet
    from wastebank.formats import terminal_text

    now = datetime.now(UTC)
    for d in found.devices:
        w = fleet.describe(d, now, lang)
        site = f"{d.site} ({d.site_name or fleet.say('not_registered', lang)})"
        via = f" {fleet.say('via', lang)} {d.via}" if d.via else ""
        lines = [
            f"{w.condition}\t{fleet.say(d.kind, lang)} {d.device_id}\t{site}{via}",
            f"{fleet.say('last_seen', lang)}: {w.last_seen}"
            + (f"; {fleet.say('why_offline', lang)}: {w.why_offline}" if w.why_offline else "")
            + (f"; {fleet.say('why_unknown', lang)}: {w.why_unknown}" if w.why_unknown else ""),
            f"{fleet.say('version', lang)}: {w.version}"
            + (f"; {fleet.say('outbox', lang)}: {w.outbox}" if w.outbox is not None else "")
            + (f"; {fleet.say('clock', lang)}: {w.clock}" if w.clock is not None else ""),
        ]
        if w.scales:
            scales = ", ".join(f"{sc} {state}" for sc, state, _fault in w.scales)
            lines.append(f"{fleet.say('scales', lang)}: {scales}")
        if w.no_target is not None:
            lines.append(f"{fleet.say('no_target_count', lang)}: {w.no_target}")
        if w.problems:
            lines.append(f"{fleet.say('problems', lang)}: " + "; ".join(w.problems))
        # device text stored before the contract refused control characters is escaped here;
        # the tabs are ours (the columns)
        typer.echo("\n    ".join("\t".join(map(terminal_text, x.split("\t"))) for x in lines))
    if found.registry_problem:
        typer.echo(found.registry_problem)
    if not found.serving_checked:
        typer.echo(fleet.say("serving_unchecked", lang))
    counts = ", ".join(f"{fleet.condition_text(c, lang)} {n}" for c, n in found.counts.items())
    typer.echo(counts)
