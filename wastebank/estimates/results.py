"""What every estimate carries (its basis, method and the data it used), the GWP sets, and the
checks every computation makes of its input."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from wastebank.estimates.data import DataFile, EstimateData, default_data
from wastebank.estimates.units import DEFAULT_GWP


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class DataRef(Result):
    """A data file (id and version) and the source ids of it that an estimate used."""

    dataset: str
    version: str
    sources: tuple[str, ...]


class Estimate(Result):
    basis: Literal["estimated"] = "estimated"
    method: str
    provenance: tuple[DataRef, ...]


class GwpSet(Result):
    """GWP-100 values, t CO2e per t of gas; ``ch4`` is for biogenic (non-fossil) CH4."""

    name: str
    ch4: float
    n2o: float
    ref: DataRef


def gwp_set(name: str = DEFAULT_GWP, data: EstimateData | None = None) -> GwpSet:
    """The GWP set ``name`` ("SAR", "AR4", "AR5", "AR6") from the GWP file."""
    d = data or default_data()
    gases = d.gwp.sets.get(name)
    if gases is None:
        raise ValueError(f"unknown GWP set {name!r}; known: {', '.join(sorted(d.gwp.sets))}")
    ref = data_ref(d.gwp, [gases["ch4"].source, gases["n2o"].source])
    return GwpSet(name=name, ch4=gases["ch4"].value, n2o=gases["n2o"].value, ref=ref)


def data_ref(f: DataFile, sources: Iterable[str]) -> DataRef:
    return DataRef(dataset=f.meta.id, version=f.meta.version, sources=tuple(sorted(set(sources))))


def resolve_gwp(gwp: GwpSet | str, d: EstimateData) -> GwpSet:
    return gwp if isinstance(gwp, GwpSet) else gwp_set(gwp, d)


def check_tonnes(tonnes_by_material: Mapping[str, float], d: EstimateData) -> None:
    for material, t in tonnes_by_material.items():
        d.check_material(material)
        if not (math.isfinite(t) and t >= 0):
            raise ValueError(f"tonnes for {material!r} must be finite and >= 0, got {t!r}")
