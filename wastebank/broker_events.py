"""What the broker itself says: the events deploy/mosquitto/wastebank_clientid.c publishes.

The plugin refuses a CONNECT whose client id is not the username's own (``{user}`` or
``{user}@...``) and publishes one :class:`Refusal` on :data:`REFUSED_TOPIC`. Only the ingester
may read that topic and nobody may publish on the namespace (``devices.acl_text``): a device or
a process cannot forge an event, and the topic carries no prefix (the broker knows none).
docs/protocol.md, "Broker events"; docs/operations.md, "Broker identities".
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from wastebank.messages import AwareDatetime, check_times

NAMESPACE = "wastebank/broker/"
"""Topics only the broker publishes on; the ACL denies it to every client but its readers."""
REFUSED_TOPIC = NAMESPACE + "refused"
"""Also spelled in the plugin's C source (EVENT_TOPIC)."""
READERS = frozenset({"ingest"})
"""Usernames the ACL lets read :data:`REFUSED_TOPIC`."""
RATE_WINDOW_S = 10
"""The plugin's EVENT_EVERY_S: at most one event per (username, client id) in this long."""
FIELD_MAX = 128
"""The plugin's FIELD_MAX: bytes of a username or client id an event keeps."""

RefusalReason = Literal["foreign_client_id", "username_with_at"]
REASONS: tuple[RefusalReason, ...] = ("foreign_client_id", "username_with_at")


class Refusal(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A CONNECT the plugin refused; one event may stand for several (``count``)."""

    reason: Annotated[
        RefusalReason,
        Meta(
            description="foreign_client_id: the id is another identity's; username_with_at: the "
            "username holds '@' (it could claim another's prefix)"
        ),
    ]
    username: Annotated[
        str,
        Meta(
            max_length=FIELD_MAX,
            description="the username the client gave (checked before its password is)",
        ),
    ]
    client_id: Annotated[str, Meta(max_length=FIELD_MAX)]
    owner: Annotated[
        str,
        Meta(max_length=FIELD_MAX, description="whose id it is: the client id up to its first '@'"),
    ]
    address: Annotated[str, Meta(max_length=64, description="the client's IP address")] | None
    at: Annotated[AwareDatetime, Meta(description="the latest refusal this event counts")]
    count: Annotated[
        int,
        Meta(ge=1, description="refusals of this (username, client id) since its previous event"),
    ]
    unreported: Annotated[
        int,
        Meta(
            ge=0,
            description="refusals of other pairs not reported one by one (more pairs than the "
            "plugin tracks refused within the window)",
        ),
    ]
    truncated: Annotated[bool, Meta(description=f"username or client id cut to {FIELD_MAX} bytes")]

    def __post_init__(self) -> None:
        check_times(self)  # the broker's clock, bounded as every timestamp on the wire

    def describe(self) -> str:
        """One line for the log and the alert, Bahasa Indonesia first."""
        where = f" dari/from {self.address}" if self.address else ""
        if self.reason == "username_with_at":
            return (
                f"nama pengguna {self.username!r} memuat '@' (client id {self.client_id!r}){where}"
                f", {self.count}x / username {self.username!r} contains '@'"
            )
        return (
            f"pengguna {self.username!r} memakai client id {self.client_id!r} milik "
            f"{self.owner!r}{where}, {self.count}x / user {self.username!r} tried client id "
            f"{self.client_id!r}, which belongs to {self.owner!r}"
        )
