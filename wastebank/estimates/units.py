"""Unit definitions and the defaults every estimate starts from."""

from __future__ import annotations

from typing import Literal

# Unit definitions (exact), not coefficients: they never change with a data version.
SHORT_TON_T = 0.90718474  # 1 short ton = 2000 lb x 0.45359237 kg/lb (NIST Handbook 44, App. C)
GJ_PER_MMBTU = 1.05505585262  # 1 Btu (International Table) = 1055.05585262 J
MJ_PER_KWH = 3.6
KWH_PER_GJ = 1000.0 / MJ_PER_KWH  # kWh-equivalent of a GJ (energy, not electricity)
KG_PER_T = 1000.0
G_PER_T = 1_000_000
SECONDS_PER_DAY = 86_400
CH4_PER_C = 16.0 / 12.0  # molecular mass of CH4 / atomic mass of C (IPCC 2006 Eq 3.3)
WATER_PER_HYDROGEN = 8.94  # kg H2O formed per kg H burned (18.015 / 2.016)

DEFAULT_GWP = "AR5"  # the UNFCCC / Paris Agreement reporting basis
DEFAULT_SITE = "uncategorised"  # IPCC Table 3.1 MCF 0.6 when the TPA's type is not known

Climate = Literal["tropical_wet", "tropical_dry"]
BiologicalProcess = Literal["composting", "anaerobic_digestion"]
DEFAULT_CLIMATE: Climate = "tropical_wet"  # Indonesia: MAT > 20 C, MAP >= 1000 mm
