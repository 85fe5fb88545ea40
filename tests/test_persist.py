"""Tests of ltvkit.persist: model folders written atomically and checked on load."""

from __future__ import annotations

import hashlib
import json
import operator
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import ltvkit
from ltvkit import persist
from ltvkit.errors import (
    ConfigError,
    DataQualityWarning,
    ModelError,
    ModelFolderError,
)
from ltvkit.load import read_transactions
from ltvkit.ml import SpendRegressor
from ltvkit.persist import (
    FORMAT_VERSION,
    LoadedModel,
    load_model,
    save_model,
)

END = pd.Timestamp("2021-06-30")


class _FakeModel:
    """Stands in for a fitted model of the models layer: to_dict / from_dict."""

    kind = "fake"

    def __init__(self, params: dict[str, float]):
        self.params_ = dict(params)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "params": dict(self.params_), "n_customers": 3}

    @classmethod
    def from_dict(cls, d: dict):
        if d.get("kind") != cls.kind:
            raise ModelError(f"not a {cls.kind}")
        return cls(d["params"])


class _FakeBGNBD(_FakeModel):
    kind = "bgnbd"


class _FakeGammaGamma(_FakeModel):
    kind = "gammagamma"


@pytest.fixture
def fake_models(monkeypatch):
    monkeypatch.setattr(
        persist,
        "_model_classes",
        lambda: ({"bgnbd": _FakeBGNBD}, _FakeGammaGamma),
    )
    purchase = _FakeBGNBD({"r": 0.2425, "alpha": 4.4136, "a": 0.7929, "b": 2.4259})
    spend = _FakeGammaGamma({"p": 6.2485, "q": 3.7443, "v": 15.4473})
    return purchase, spend


def _regular_log(n_customers: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n_customers):
        gap = int(rng.integers(7, 45))
        amount = float(rng.choice([12.5, 30.0]))
        day = pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 30)))
        while day <= END:
            rows.append((f"c{i:02d}", day, amount))
            day += pd.Timedelta(days=gap)
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


@pytest.fixture(scope="module")
def tx():
    return read_transactions(_regular_log())


@pytest.fixture(scope="module")
def regressor(tx):
    return SpendRegressor(horizon_days=60).fit(tx, observation_end=END)


EXTRA = {
    "time_unit": "D",
    "period": "D",
    "observation_end": "2021-06-30",
    "training_data_hash": "abc123",
    "n_rows": 10,
    "n_customers": 3,
    "fit_metrics": {"log_likelihood": -12.5},
    "options": {"refunds": "error", "customer_id_col": "id"},
}


def _save(folder, purchase, spend, regressor=None, **kwargs):
    return save_model(
        folder,
        purchase_model=purchase,
        spend_model=spend,
        regressor=regressor,
        manifest_extra=EXTRA,
        **kwargs,
    )


def _write_signed(folder: Path, manifest: dict) -> None:
    """Write ``manifest`` with a matching checksum, as a forger would."""
    manifest["manifest_sha256"] = persist._manifest_digest(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _rehash(folder: Path, name: str) -> None:
    """Make the manifest agree with an edited file, as a forger would."""
    manifest = json.loads((folder / "manifest.json").read_text())
    digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    manifest["files"][name] = digest
    _write_signed(folder, manifest)


def _edit_manifest(folder: Path, **changes) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    _write_signed(folder, manifest)


def test_save_model_writes_files_and_manifest(tmp_path, fake_models, regressor):
    purchase, spend = fake_models

    folder = _save(tmp_path / "m", purchase, spend, regressor)

    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "manifest.json",
        "purchase_model.json",
        "regressor.json",
        "regressor.skops",
        "spend_model.json",
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 1
    assert manifest["kind"] == "ltvkit-model"
    assert manifest["ltvkit_version"] == ltvkit.__version__
    assert set(manifest["package_versions"]) == {
        "numpy",
        "scipy",
        "pandas",
        "scikit-learn",
        "skops",
        "duckdb",
    }
    assert manifest["purchase_model"] == "bgnbd"
    assert manifest["spend_model"] == "gammagamma"
    for key, value in EXTRA.items():
        assert manifest[key] == value
    assert manifest["regressor"]["training_windows"] == regressor.training_windows_
    assert manifest["regressor"]["horizon_days"] == 60.0
    assert pd.Timestamp(manifest["created_at"]).tzinfo is not None
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    assert set(manifest["files"]) == set(names) - {"manifest.json"}
    stored = json.loads((folder / "purchase_model.json").read_text())
    assert stored["params"] == {"r": 0.2425, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}


def test_load_model_round_trip(tmp_path, fake_models, tx, regressor):
    purchase, spend = fake_models
    folder = _save(tmp_path / "m", purchase, spend, regressor)

    loaded = load_model(folder)

    assert isinstance(loaded, LoadedModel)
    assert loaded.purchase_model.params_ == purchase.params_
    assert loaded.spend_model.params_ == spend.params_
    assert loaded.manifest["observation_end"] == "2021-06-30"
    assert loaded.regressor.feature_names_ == regressor.feature_names_
    assert loaded.regressor.training_windows_ == regressor.training_windows_
    assert loaded.regressor.summary_options_ == regressor.summary_options_
    pd.testing.assert_series_equal(
        loaded.regressor.predict(tx, as_of=END),
        regressor.predict(tx, as_of=END),
        check_exact=True,
    )


def test_load_model_without_regressor(tmp_path, fake_models):
    purchase, spend = fake_models
    folder = _save(tmp_path / "m", purchase, spend)

    loaded = load_model(folder)

    assert loaded.regressor is None
    assert loaded.manifest["regressor"] is None
    assert not (folder / "regressor.skops").exists()


def test_load_model_refuses_edited_parameter(tmp_path, fake_models):
    folder = _save(tmp_path / "m", *fake_models)
    path = folder / "purchase_model.json"
    d = json.loads(path.read_text())
    d["params"]["r"] = 0.25
    path.write_text(json.dumps(d, indent=2))

    with pytest.raises(
        ModelFolderError, match=r"purchase_model\.json was changed after it was saved"
    ):
        load_model(folder)


@pytest.mark.parametrize(
    "name", ["spend_model.json", "purchase_model.json", "regressor.skops"]
)
def test_load_model_refuses_missing_file(tmp_path, fake_models, regressor, name):
    folder = _save(tmp_path / "m", *fake_models, regressor)
    (folder / name).unlink()

    with pytest.raises(ModelFolderError, match=rf"{name} is missing.*Copy the whole"):
        load_model(folder)


def test_load_model_reports_every_bad_file(tmp_path, fake_models, regressor):
    folder = _save(tmp_path / "m", *fake_models, regressor)
    (folder / "spend_model.json").unlink()
    (folder / "regressor.json").write_text("{}")

    with pytest.raises(ModelFolderError) as info:
        load_model(folder)

    assert "spend_model.json is missing" in str(info.value)
    assert "regressor.json was changed" in str(info.value)


def test_load_model_refuses_other_format_version(tmp_path, fake_models):
    folder = _save(tmp_path / "m", *fake_models)
    _edit_manifest(folder, format_version=2)

    with pytest.raises(
        ModelFolderError,
        match=r"was written by ltvkit format 2; this ltvkit reads format 1\. Load "
        r"it with the ltvkit version that wrote it",
    ):
        load_model(folder)


def test_load_model_refuses_other_kind(tmp_path, fake_models):
    folder = _save(tmp_path / "m", *fake_models)
    _edit_manifest(folder, kind="sklearn-model")

    with pytest.raises(
        ModelFolderError, match="holds kind 'sklearn-model', not 'ltvkit-model'"
    ):
        load_model(folder)


def test_load_model_refuses_missing_folder(tmp_path):
    with pytest.raises(ModelFolderError, match="There is no model folder at"):
        load_model(tmp_path / "nowhere")


def test_load_model_refuses_missing_manifest(tmp_path, fake_models):
    folder = _save(tmp_path / "m", *fake_models)
    (folder / "manifest.json").unlink()

    with pytest.raises(ModelFolderError, match="has no manifest.json"):
        load_model(folder)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\xff\xfe"])
def test_load_model_refuses_manifest_that_is_not_json(tmp_path, fake_models, text):
    folder = _save(tmp_path / "m", *fake_models)
    (folder / "manifest.json").write_bytes(text.encode("latin-1"))

    with pytest.raises(ModelFolderError, match="not (valid JSON|a JSON object|JSON)"):
        load_model(folder)


def test_load_model_refuses_unknown_model_kind(tmp_path, fake_models):
    folder = _save(tmp_path / "m", *fake_models)
    path = folder / "purchase_model.json"
    d = json.loads(path.read_text())
    d["kind"] = "gompertz"
    path.write_text(json.dumps(d))
    _rehash(folder, "purchase_model.json")

    with pytest.raises(
        ModelFolderError, match="unknown purchase model kind 'gompertz'; this ltvkit"
    ):
        load_model(folder)


def test_load_model_refuses_file_name_outside_folder(tmp_path, fake_models):
    folder = _save(tmp_path / "m", *fake_models)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["../secret"] = "0" * 64
    _write_signed(folder, manifest)

    with pytest.raises(ModelFolderError, match="bad file name '../secret'"):
        load_model(folder)


def test_load_model_refuses_untrusted_skops_type(tmp_path, fake_models, regressor):
    folder = _save(tmp_path / "m", *fake_models, regressor)
    sneaky = SpendRegressor.from_fitted(
        make_pipeline(FunctionTransformer(operator.pos), regressor.estimator_),
        regressor.get_metadata(),
    )
    persist.sio.dump(sneaky.estimator_, folder / "regressor.skops")
    _rehash(folder, "regressor.skops")

    with pytest.raises(
        ModelFolderError, match=r"types that ltvkit does not trust: _operator\.pos\."
    ):
        load_model(folder)


def test_save_model_refuses_regressor_that_could_not_be_loaded(
    tmp_path, fake_models, regressor
):
    sneaky = SpendRegressor.from_fitted(
        make_pipeline(FunctionTransformer(operator.pos), regressor.estimator_),
        regressor.get_metadata(),
    )

    with pytest.raises(ModelError, match="types that load_model would refuse"):
        _save(tmp_path / "m", *fake_models, sneaky)

    assert list(tmp_path.iterdir()) == []


def test_save_model_folder_is_readable_by_others(tmp_path, fake_models):
    folder = _save(tmp_path / "m", *fake_models)

    assert folder.stat().st_mode & 0o777 == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_save_model_refuses_existing_folder_without_force(tmp_path, fake_models):
    purchase, spend = fake_models
    folder = _save(tmp_path / "m", purchase, spend)
    before = (folder / "manifest.json").read_bytes()

    with pytest.raises(ModelFolderError, match="already exists; pass force=True"):
        _save(folder, _FakeBGNBD({"r": 1.0}), spend)

    assert (folder / "manifest.json").read_bytes() == before


def test_save_model_force_replaces_model_folder(tmp_path, fake_models, regressor):
    purchase, spend = fake_models
    folder = _save(tmp_path / "m", purchase, spend, regressor)

    _save(folder, _FakeBGNBD({"r": 1.0}), spend, force=True)

    loaded = load_model(folder)
    assert loaded.purchase_model.params_ == {"r": 1.0}
    assert loaded.regressor is None
    assert not (folder / "regressor.skops").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_save_model_force_never_replaces_other_folders(tmp_path, fake_models):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\x00")

    with pytest.raises(ModelFolderError, match="is not an ltvkit model folder"):
        _save(folder, *fake_models, force=True)

    assert (folder / "holiday.jpg").exists()


def test_save_model_failure_leaves_nothing(
    tmp_path, fake_models, regressor, monkeypatch
):
    def broken_dump(obj, file):
        Path(file).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(persist.sio, "dump", broken_dump)

    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path / "m", *fake_models, regressor)

    assert list(tmp_path.iterdir()) == []


def test_save_model_failure_keeps_old_folder(tmp_path, fake_models, monkeypatch):
    purchase, spend = fake_models
    folder = _save(tmp_path / "m", purchase, spend)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    calls = []

    def failing_manifest(obj, what):
        calls.append(what)
        if what == "the manifest":
            raise RuntimeError("interrupted")
        return json.dumps(obj).encode()

    monkeypatch.setattr(persist, "_json_bytes", failing_manifest)

    with pytest.raises(RuntimeError, match="interrupted"):
        _save(folder, _FakeBGNBD({"r": 9.0}), spend, force=True)

    assert calls[-1] == "the manifest"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_save_model_requires_manifest_entries(tmp_path, fake_models):
    purchase, spend = fake_models

    with pytest.raises(ConfigError, match="it lacks training_data_hash, n_rows"):
        save_model(
            tmp_path / "m",
            purchase_model=purchase,
            spend_model=spend,
            manifest_extra={"time_unit": "D", "period": "D", "observation_end": "x"},
        )
    with pytest.raises(ConfigError, match="it sets files, kind, which save_model"):
        save_model(
            tmp_path / "m",
            purchase_model=purchase,
            spend_model=spend,
            manifest_extra={**EXTRA, "kind": "x", "files": {}},
        )
    assert list(tmp_path.iterdir()) == []


def test_save_model_refuses_unknown_model_kinds(tmp_path, fake_models):
    purchase, spend = fake_models
    with pytest.raises(ModelError, match="Unknown purchase model kind 'fake'"):
        _save(tmp_path / "m", _FakeModel({"r": 1.0}), spend)
    with pytest.raises(ModelError, match="Unknown spend model kind 'bgnbd'"):
        _save(tmp_path / "m", purchase, purchase)


def test_save_model_refuses_unfitted_regressor(tmp_path, fake_models):
    with pytest.raises(ModelError, match="not fitted yet"):
        _save(tmp_path / "m", *fake_models, SpendRegressor(horizon_days=30))
    assert list(tmp_path.iterdir()) == []


def test_save_model_creates_missing_parents(tmp_path, fake_models):
    folder = _save(tmp_path / "no" / "m", *fake_models)
    assert (folder / "manifest.json").is_file()


def test_save_model_reports_a_parent_it_cannot_create(tmp_path, fake_models):
    (tmp_path / "file").write_text("")
    with pytest.raises(ModelFolderError, match="Cannot create the folder"):
        _save(tmp_path / "file" / "m", *fake_models)


# -- with the real models layer ------------------------------------------------


def _real_models():
    models = pytest.importorskip("ltvkit.models")
    if not hasattr(models, "PURCHASE_MODELS") or not hasattr(models, "GammaGammaModel"):
        pytest.skip("ltvkit.models does not export PURCHASE_MODELS yet")
    return models


def test_save_model_failed_swap_restores_old_folder(tmp_path, fake_models, monkeypatch):
    purchase, spend = fake_models
    folder = _save(tmp_path / "m", purchase, spend)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_replace = persist.os.replace
    calls = []

    def replace(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # moving the new folder in
            raise OSError("device busy")
        real_replace(src, dst)

    monkeypatch.setattr(persist.os, "replace", replace)

    with pytest.raises(OSError, match="device busy"):
        _save(folder, _FakeBGNBD({"r": 9.0}), spend, force=True)

    assert len(calls) == 3  # aside, (failed) in, back
    assert calls[0][1].startswith(".m.old-") and calls[2][0] == calls[0][1]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


@pytest.fixture(scope="module")
def cdnow_sample():
    from ltvkit.load import load_cdnow
    from ltvkit.summary import summarise

    with pytest.warns(DataQualityWarning):  # CDNOW's zero amounts, duplicates
        return summarise(load_cdnow("sample"), time_unit="W")


def _real_extra(rfm: pd.DataFrame) -> dict:
    return {
        **EXTRA,
        "time_unit": "W",
        "observation_end": rfm.attrs["observation_end"],
        "n_customers": len(rfm),
    }


@pytest.mark.parametrize("kind", ["bgnbd", "mbgnbd", "paretonbd"])
def test_load_model_round_trip_real_models(tmp_path, cdnow_sample, kind):
    models = _real_models()
    rfm = cdnow_sample
    purchase = models.PURCHASE_MODELS[kind]().fit(rfm)
    spend = models.GammaGammaModel().fit(rfm)

    folder = save_model(
        tmp_path / kind,
        purchase_model=purchase,
        spend_model=spend,
        manifest_extra=_real_extra(rfm),
    )
    loaded = load_model(folder)

    assert type(loaded.purchase_model) is type(purchase)
    assert loaded.purchase_model.params_ == purchase.params_
    assert loaded.purchase_model.to_dict() == purchase.to_dict()
    assert loaded.spend_model.params_ == spend.params_
    assert loaded.manifest["purchase_model"] == kind
    stored = json.loads((folder / "purchase_model.json").read_text())
    assert set(stored["params"]) == set(models.PURCHASE_MODELS[kind].param_names)
    pd.testing.assert_series_equal(
        loaded.purchase_model.predict_purchases(rfm, horizon=39),
        purchase.predict_purchases(rfm, horizon=39),
        check_exact=True,
    )
    pd.testing.assert_series_equal(
        loaded.purchase_model.predict_probability_alive(rfm),
        purchase.predict_probability_alive(rfm),
        check_exact=True,
    )
    pd.testing.assert_series_equal(
        loaded.spend_model.predict_spend(rfm),
        spend.predict_spend(rfm),
        check_exact=True,
    )


def test_load_model_refuses_edited_real_parameter(tmp_path, cdnow_sample):
    models = _real_models()
    rfm = cdnow_sample
    folder = save_model(
        tmp_path / "m",
        purchase_model=models.BGNBDModel().fit(rfm),
        spend_model=models.GammaGammaModel().fit(rfm),
        manifest_extra=_real_extra(rfm),
    )
    path = folder / "purchase_model.json"
    path.write_text(path.read_text().replace('"r": 0.2', '"r": 0.3', 1))

    with pytest.raises(ModelFolderError, match=r"purchase_model\.json was changed"):
        load_model(folder)


def _corrupt_skops(folder: Path) -> None:
    (folder / "regressor.skops").write_bytes(b"not a zip file")
    _rehash(folder, "regressor.skops")


def _garble_regressor_meta(folder: Path) -> None:
    (folder / "regressor.json").write_text('{"horizon_days": 60}')
    _rehash(folder, "regressor.json")


def _list_regressor_meta(folder: Path) -> None:
    (folder / "regressor.json").write_text("[]")
    _rehash(folder, "regressor.json")


def _drop_feature(folder: Path) -> None:
    path = folder / "regressor.json"
    meta = json.loads(path.read_text())
    meta["feature_names"] = meta["feature_names"][:-1]
    path.write_text(json.dumps(meta))
    _rehash(folder, "regressor.json")


def _bad_params(folder: Path) -> None:
    path = folder / "purchase_model.json"
    path.write_text(json.dumps({"kind": "bgnbd"}))
    _rehash(folder, "purchase_model.json")


def _other_manifest_kind(folder: Path) -> None:
    _edit_manifest(folder, purchase_model="paretonbd")


def _no_files_map(folder: Path) -> None:
    _edit_manifest(folder, files=None)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_corrupt_skops, r"regressor\.skops is not a readable skops file"),
        (_garble_regressor_meta, "lacks or garbles the entry 'feature_names'"),
        (_list_regressor_meta, r"regressor\.json is not a JSON object"),
        (_drop_feature, r"expects \d+ features but regressor\.json lists"),
        (_bad_params, "does not describe a valid bgnbd model"),
        (_other_manifest_kind, "names purchase model 'paretonbd' but"),
        (_no_files_map, "has no 'files' map"),
    ],
)
def test_load_model_refuses_inconsistent_folder(
    tmp_path, fake_models, regressor, damage, message
):
    folder = _save(tmp_path / "m", *fake_models, regressor)
    damage(folder)

    with pytest.raises(ModelFolderError, match=message):
        load_model(folder)


def test_save_model_refuses_path_that_is_a_file(tmp_path, fake_models):
    (tmp_path / "m").write_text("x")

    with pytest.raises(ModelFolderError, match="exists and is not a folder"):
        _save(tmp_path / "m", *fake_models, force=True)


def test_save_model_refuses_objects_that_are_not_models(tmp_path, fake_models):
    purchase, spend = fake_models

    class _NoKind:
        def to_dict(self):
            return {"params": {}}

    with pytest.raises(ModelError, match="spend model .* has no to_dict"):
        _save(tmp_path / "m", purchase, object())
    with pytest.raises(ModelError, match="must return a dict with a 'kind'"):
        _save(tmp_path / "m", _NoKind(), spend)
    with pytest.raises(ConfigError, match="manifest_extra must be a dict"):
        save_model(
            tmp_path / "m",
            purchase_model=purchase,
            spend_model=spend,
            manifest_extra=[],
        )
    with pytest.raises(ModelError, match="Could not write the manifest as JSON"):
        save_model(
            tmp_path / "m",
            purchase_model=purchase,
            spend_model=spend,
            manifest_extra={**EXTRA, "fit_metrics": {"fitter": object()}},
        )
    assert list(tmp_path.iterdir()) == []


def test_save_model_writes_numpy_and_dates_as_json(tmp_path, fake_models):
    purchase, spend = fake_models
    extra = {
        **EXTRA,
        "n_rows": np.int64(10),
        "observation_end": pd.Timestamp("2021-06-30"),
        "fit_metrics": {"ll": np.float64(-1.5), "grad": np.array([0.5, 0.25])},
    }

    folder = save_model(
        tmp_path / "m", purchase_model=purchase, spend_model=spend, manifest_extra=extra
    )

    manifest = load_model(folder).manifest
    assert manifest["n_rows"] == 10
    assert manifest["observation_end"] == "2021-06-30T00:00:00"
    assert manifest["fit_metrics"] == {"ll": -1.5, "grad": [0.5, 0.25]}


def test_load_model_refuses_an_edited_manifest(tmp_path, fake_models):
    folder = _save(tmp_path / "m", *fake_models)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["observation_end"] = "2099-01-01"
    (folder / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ModelFolderError, match="manifest .* was edited"):
        load_model(folder)
