"""The devices' errors, in the project's families (wastebank/errors.py)."""

from __future__ import annotations

from wastebank.errors import Conflict, NotFound, Refused, SetupError, WastebankError


class DeviceError(WastebankError):
    """A device or certificate operation was refused or failed; the message says why."""


class DeviceRefused(DeviceError, Refused):
    """A host name, code, topic or device the rules do not allow."""


class DeviceConflict(DeviceError, Conflict):
    """The device is registered already (or as something else)."""


class DeviceNotFound(DeviceError, NotFound):
    """No such device in the registry."""


class DeviceSetupError(DeviceError, SetupError):
    """The site's CA, certificates, registry or ``mosquitto_passwd`` need an operator first."""
