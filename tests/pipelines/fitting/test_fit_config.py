"""The engine's settings come from the parameter sections by name, with the same defaults."""

from __future__ import annotations

import dataclasses

import pytest

from phot7dt.config.ingest import SourceSaturationCutParams
from phot7dt.config.patch_run import PatchRunParams
from phot7dt.config.scene import SceneParams
from phot7dt.pipelines.fitting.tasks import fit_config
from phot7dt.scene import FitSettings

SECTIONS = (PatchRunParams, SceneParams)


def _shared(model) -> list[str]:
    return sorted(set(model.model_fields) & set(FitSettings.field_names()))


def test_sections_and_engine_share_defaults():
    engine = {f.name: f.default for f in dataclasses.fields(FitSettings)}
    for model in SECTIONS:
        assert _shared(model), model.__name__
        for name in _shared(model):
            assert model.model_fields[name].default == engine[name], f"{model.__name__}.{name}"


@pytest.mark.parametrize(
    ("section", "name", "value"),
    [(PatchRunParams, n, None) for n in _shared(PatchRunParams)]
    + [(SceneParams, n, None) for n in _shared(SceneParams)],
)
def test_every_shared_key_reaches_the_engine(section, name, value):
    default = section.model_fields[name].default
    if isinstance(default, bool):
        value = not default
    elif name == "neighbour_fit":
        value = "fluxes"
    elif isinstance(default, int):
        value = default + 1
    else:
        value = default * 1.5
    run = PatchRunParams(**({name: value} if section is PatchRunParams else {}))
    engine = SceneParams(**({name: value} if section is SceneParams else {}))
    config = fit_config(["m400"], ["ID"], run, engine, SourceSaturationCutParams())
    assert getattr(config.settings, name) == value
