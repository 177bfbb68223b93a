"""The gateway's systemd unit (deploy/wastebank-gateway.service) against the install steps of
docs/deploy-pi.md: the process the unit starts can read the site file the steps install, and
open the serial ports. (The second review found `Group=dialout`: systemd then makes dialout the
primary group, and the site file, root:wastebank 0640, was unreadable.)"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "wastebank-gateway.service"
DOC = ROOT / "docs" / "deploy-pi.md"


def service_section() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return dict(parser["Service"])


def test_the_gateways_process_reads_the_site_file_and_opens_the_serial_ports() -> None:
    service = service_section()
    user = service["User"]
    doc = DOC.read_text()
    # the user the docs create: its own group, and the groups it is added to
    made = re.search(r"useradd --system .*--groups (\S+) (\S+)", doc)
    assert made is not None
    added_to, created = made.group(1).split(","), made.group(2)
    assert created == user
    # what systemd gives the process: Group= (else the user's own group), the user's groups
    # in /etc/group, and SupplementaryGroups=
    primary = service.get("Group", user)
    groups = {primary, *service.get("SupplementaryGroups", "").split()}
    if "Group" not in service:
        groups |= set(added_to)
    installed = re.search(r"install -m (0\d+) -o (\S+) -g (\S+) \S+ (\S+site\.toml)", doc)
    assert installed is not None
    mode, owner, group, path = installed.groups()
    assert service["ExecStart"].endswith(f"--config {path}")
    assert owner != user  # so the user reads it through the group
    assert int(mode, 8) & 0o040
    assert group in groups, f"{path} is {owner}:{group} {mode}; the process has {groups}"
    assert "dialout" in groups  # /dev/ttyUSB0 and friends
