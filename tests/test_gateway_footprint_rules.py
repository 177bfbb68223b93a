"""What the gateway process keeps out of memory (docs/scaling.md, "The gateway on a Pi")."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
from gateway.run import without_cryptography
without_cryptography()
import jwt, jwt.algorithms
token = jwt.encode({"sub": "petugas"}, "k" * 32, algorithm="HS256")
assert jwt.decode(token, "k" * 32, algorithms=["HS256"]) == {"sub": "petugas"}
import sys
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "cryptography" and sys.modules[m])
print(jwt.algorithms.has_crypto, loaded)
"""


def test_gateway_sessions_sign_without_loading_cryptography() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.split() == ["False", "[]"]


def test_without_the_rule_pyjwt_loads_cryptography() -> None:
    # The control: the rule above is what keeps it out, not a PyJWT that no longer imports it.
    probe = PROBE.replace("without_cryptography()\n", "", 1).replace(
        "from gateway.run import without_cryptography\n", ""
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.startswith("True ['cryptography")
