"""Save fitted models to a folder and load them back, checked.

A model folder holds:

``manifest.json``
    What the folder is (``kind``, ``format_version``), what wrote it (ltvkit
    and package versions, ``created_at``), what it was trained on (time
    unit, period, observation end, a hash of the training data, row and
    customer counts, the options used, fit metrics, the regressor's training
    windows) and a SHA-256 of every other file.
``purchase_model.json``, ``spend_model.json``
    The purchase and spend models' ``to_dict()``: kind and parameters under
    the papers' names.
``regressor.skops``, ``regressor.json``
    Optional: the :class:`ltvkit.ml.SpendRegressor`'s scikit-learn estimator
    in the skops format, which does not run code on load, and the rest of its
    fitted state (features, windows, horizon).

Nothing is pickled. :func:`load_model` refuses a folder of another kind or
format version, a missing or edited file, an unknown model kind, and a
skops file holding any type outside :data:`TRUSTED_SKOPS_TYPES`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio

import ltvkit

from .errors import ConfigError, ModelError, ModelFolderError
from .ml import SpendRegressor

__all__ = [
    "FORMAT_VERSION",
    "MODEL_KIND",
    "MANIFEST_FILE",
    "REQUIRED_MANIFEST_EXTRA",
    "TRUSTED_SKOPS_TYPES",
    "LoadedModel",
    "save_model",
    "load_model",
]

logger = logging.getLogger(__name__)

#: Format written by this ltvkit. Bump it whenever a reader of the old format
#: would misread a new folder.
FORMAT_VERSION = 1
#: The ``kind`` every ltvkit model folder's manifest carries.
MODEL_KIND = "ltvkit-model"

MANIFEST_FILE = "manifest.json"
PURCHASE_FILE = "purchase_model.json"
SPEND_FILE = "spend_model.json"
REGRESSOR_FILE = "regressor.skops"
REGRESSOR_META_FILE = "regressor.json"

#: Packages whose versions the manifest records.
RECORDED_PACKAGES = ("numpy", "scipy", "pandas", "scikit-learn", "skops", "duckdb")

#: Entries the caller must give in ``manifest_extra``.
REQUIRED_MANIFEST_EXTRA = (
    "time_unit",
    "period",
    "observation_end",
    "training_data_hash",
    "n_rows",
    "n_customers",
)
#: Entries of ``manifest_extra`` that default to an empty dict.
OPTIONAL_MANIFEST_EXTRA = ("fit_metrics", "options")

#: Types that skops does not trust by default but that a saved regressor may
#: hold: the trees of scikit-learn's gradient boosting and forest models.
#: Any other untrusted type in a skops file (a function, a class from another
#: package) makes :func:`load_model` refuse the folder.
TRUSTED_SKOPS_TYPES = frozenset(
    {
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
    }
)

_RESERVED = frozenset(
    {
        "format_version",
        "kind",
        "ltvkit_version",
        "package_versions",
        "created_at",
        "purchase_model",
        "spend_model",
        "regressor",
        "files",
        "manifest_sha256",
    }
)


@dataclass(frozen=True)
class LoadedModel:
    """A model folder, loaded and checked.

    Attributes
    ----------
    purchase_model : the fitted purchase model (BG/NBD, MBG/NBD or Pareto/NBD).
    spend_model : the fitted Gamma-Gamma spend model.
    regressor : SpendRegressor or None
        The fitted spend regressor, if the folder has one.
    manifest : dict
        The parsed ``manifest.json``.
    """

    purchase_model: Any
    spend_model: Any
    regressor: SpendRegressor | None
    manifest: dict[str, Any] = field(repr=False)


def _model_classes() -> tuple[dict[str, type], type]:
    """The purchase-model registry and the spend-model class."""
    from .models import PURCHASE_MODELS, GammaGammaModel

    return PURCHASE_MODELS, GammaGammaModel


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, _dt.date):  # pandas Timestamps too
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_bytes(obj: Any, what: str) -> bytes:
    try:
        text = json.dumps(obj, indent=2, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"Could not write {what} as JSON: {exc}.") from exc
    return (text + "\n").encode("utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def _model_dict(model: Any, role: str) -> dict[str, Any]:
    to_dict = getattr(model, "to_dict", None)
    if to_dict is None:
        raise ModelError(
            f"The {role} model ({type(model).__name__}) has no to_dict(); pass a "
            "fitted ltvkit model."
        )
    d = to_dict()
    if not isinstance(d, dict) or not isinstance(d.get("kind"), str):
        raise ModelError(
            f"The {role} model's to_dict() must return a dict with a 'kind'; got "
            f"{type(d).__name__} instead."
        )
    return d


def _check_extra(manifest_extra: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(manifest_extra, dict):
        raise ConfigError(
            "manifest_extra must be a dict; got "
            f"{type(manifest_extra).__name__} instead."
        )
    missing = [k for k in REQUIRED_MANIFEST_EXTRA if k not in manifest_extra]
    reserved = sorted(_RESERVED & set(manifest_extra))
    problems = []
    if missing:
        problems.append(f"it lacks {', '.join(missing)}")
    if reserved:
        problems.append(
            f"it sets {', '.join(reserved)}, which save_model writes itself"
        )
    if problems:
        raise ConfigError(
            "manifest_extra is not usable: "
            + "; ".join(problems)
            + f". Give {', '.join(REQUIRED_MANIFEST_EXTRA)} (and optionally "
            f"{', '.join(OPTIONAL_MANIFEST_EXTRA)})."
        )
    extra = dict(manifest_extra)
    for key in OPTIONAL_MANIFEST_EXTRA:
        extra.setdefault(key, {})
    return extra


def _is_model_folder(path: Path) -> bool:
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("kind") == MODEL_KIND


def _check_target(folder: Path, force: bool) -> None:
    if not folder.exists() and not folder.is_symlink():
        return
    if not force:
        raise ModelFolderError(
            f"{folder} already exists; pass force=True (--force) to replace it, or "
            "choose another folder."
        )
    if folder.is_symlink() or not folder.is_dir():
        raise ModelFolderError(
            f"{folder} exists and is not a folder; remove it or choose another path."
        )
    if any(folder.iterdir()) and not _is_model_folder(folder):
        raise ModelFolderError(
            f"{folder} exists and is not an ltvkit model folder (no manifest.json of "
            "kind 'ltvkit-model'); force=True replaces only model folders. Remove "
            "it yourself or choose another folder."
        )


def _write_contents(
    tmp: Path,
    purchase: dict[str, Any],
    spend: dict[str, Any],
    regressor: SpendRegressor | None,
    extra: dict[str, Any],
) -> None:
    (tmp / PURCHASE_FILE).write_bytes(_json_bytes(purchase, "the purchase model"))
    (tmp / SPEND_FILE).write_bytes(_json_bytes(spend, "the spend model"))
    regressor_entry = None
    if regressor is not None:
        metadata = regressor.get_metadata()
        sio.dump(regressor.estimator_, tmp / REGRESSOR_FILE)
        refused = sorted(
            set(sio.get_untrusted_types(file=tmp / REGRESSOR_FILE))
            - TRUSTED_SKOPS_TYPES
        )
        if refused:
            raise ModelError(
                f"The regressor's estimator holds types that load_model would "
                f"refuse: {', '.join(refused)}. Use a scikit-learn estimator "
                "built from numpy and scikit-learn parts only (the default "
                "HistGradientBoostingRegressor, a forest or a linear model)."
            )
        (tmp / REGRESSOR_META_FILE).write_bytes(
            _json_bytes(metadata, "the regressor metadata")
        )
        regressor_entry = {
            "horizon_days": metadata["horizon_days"],
            "training_windows": metadata["training_windows"],
            "estimator_class": metadata["estimator_class"],
        }

    files = {
        p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.name != MANIFEST_FILE
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": MODEL_KIND,
        "ltvkit_version": ltvkit.__version__,
        "package_versions": _package_versions(),
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "purchase_model": purchase["kind"],
        "spend_model": spend["kind"],
        **extra,
        "regressor": regressor_entry,
        "files": files,
    }
    _json_bytes(manifest, "the manifest")  # refuses what JSON cannot hold
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (tmp / MANIFEST_FILE).write_bytes(_json_bytes(manifest, "the manifest"))


def _manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's own entries, so that edits to it show."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(body, sort_keys=True, default=_json_default, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_model(
    folder: str | os.PathLike,
    *,
    purchase_model: Any,
    spend_model: Any,
    regressor: SpendRegressor | None = None,
    manifest_extra: dict[str, Any],
    force: bool = False,
) -> Path:
    """Write fitted models to a new model folder, all at once or not at all.

    Parameters
    ----------
    folder : path
        The folder to create. Its parent must exist.
    purchase_model : fitted BG/NBD, MBG/NBD or Pareto/NBD model
        Saved from its ``to_dict()``.
    spend_model : fitted Gamma-Gamma model
        Saved from its ``to_dict()``.
    regressor : SpendRegressor, optional
        A fitted spend regressor; its estimator goes to ``regressor.skops``.
    manifest_extra : dict
        Facts about the training that only the caller knows, copied into the
        manifest: ``time_unit``, ``period``, ``observation_end``,
        ``training_data_hash``, ``n_rows``, ``n_customers`` (all required),
        ``fit_metrics`` and ``options`` (dicts, default empty) and any other
        JSON-ready entries.
    force : bool, default=False
        Replace an existing model folder. A folder that is not a model folder
        is never replaced.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    ModelFolderError
        If ``folder`` exists (without ``force``), or is not a model folder.
    ConfigError
        If ``manifest_extra`` lacks a required entry or sets one that
        save_model writes itself.
    ModelError
        If a model cannot be written (no ``to_dict``, not fitted, an unknown
        kind, values that are not JSON).

    Notes
    -----
    Everything is first written to a hidden temporary folder beside
    ``folder`` and then renamed into place, so a reader never sees a half
    written folder and a failure leaves nothing behind. With ``force`` the
    old folder is renamed aside, the new one moved in, and the old one
    deleted; a crash between the two renames can leave the old folder under
    a hidden ``.<name>.old-*`` name in the same parent.
    """
    folder = Path(folder)
    extra = _check_extra(manifest_extra)
    _check_target(folder, force)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelFolderError(
            f"Cannot create the folder {folder.parent}: {exc}"
        ) from exc
    purchase = _model_dict(purchase_model, "purchase")
    spend = _model_dict(spend_model, "spend")
    purchase_models, gamma_gamma = _model_classes()
    if purchase["kind"] not in purchase_models:
        raise ModelError(
            f"Unknown purchase model kind {purchase['kind']!r}; ltvkit saves "
            f"{', '.join(sorted(purchase_models))}."
        )
    if spend["kind"] != getattr(gamma_gamma, "kind", spend["kind"]):
        raise ModelError(
            f"Unknown spend model kind {spend['kind']!r}; ltvkit saves "
            f"{gamma_gamma.kind!r}."
        )

    # mkdir, not mkdtemp: the folder keeps the permissions the umask gives,
    # not mkdtemp's owner-only ones.
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        _write_contents(tmp, purchase, spend, regressor, extra)
        _check_target(folder, force)
        if folder.exists():
            # A fresh name, not a created folder: renaming a folder onto an
            # existing one fails on Windows even when that one is empty.
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex}"
            os.replace(folder, old)
            try:
                os.replace(tmp, folder)
            except OSError:
                os.replace(old, folder)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info(
        "saved %s + %s%s to %s",
        purchase["kind"],
        spend["kind"],
        " + regressor" if regressor is not None else "",
        folder,
    )
    return folder


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelFolderError(f"{what} {path} is not JSON text: {exc}.") from exc
    except json.JSONDecodeError as exc:
        raise ModelFolderError(f"{what} {path} is not valid JSON: {exc}.") from exc


def _read_manifest(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise ModelFolderError(
            f"There is no model folder at {folder}. Train one with `ltvkit train` "
            "(ltvkit.persist.save_model) or check the path."
        )
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ModelFolderError(
            f"{folder} has no {MANIFEST_FILE}, so it is not an ltvkit model folder "
            "(or it was not fully copied)."
        )
    manifest = _read_json(path, "The manifest")
    if not isinstance(manifest, dict):
        raise ModelFolderError(f"The manifest {path} is not a JSON object.")
    if manifest.get("kind") != MODEL_KIND:
        raise ModelFolderError(
            f"{folder} holds kind {manifest.get('kind')!r}, not {MODEL_KIND!r}: it "
            "is not an ltvkit model folder."
        )
    found = manifest.get("format_version")
    if found != FORMAT_VERSION:
        raise ModelFolderError(
            f"{folder} was written by ltvkit format {found!r}; this ltvkit reads "
            f"format {FORMAT_VERSION}. Load it with the ltvkit version that wrote "
            f"it (ltvkit {manifest.get('ltvkit_version', 'unknown')}), or train the "
            "model again with this one."
        )
    if not isinstance(manifest.get("files"), dict):
        raise ModelFolderError(f"The manifest {path} has no 'files' map.")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise ModelFolderError(
            f"The manifest {path} was edited after it was written (its checksum "
            "does not match). Restore it, or train the model again."
        )
    return manifest


def _check_files(folder: Path, manifest: dict[str, Any]) -> None:
    files: dict[str, Any] = manifest["files"]
    needed = [PURCHASE_FILE, SPEND_FILE]
    if manifest.get("regressor") is not None:
        needed += [REGRESSOR_FILE, REGRESSOR_META_FILE]
    problems = [f"the manifest lists no {n}" for n in needed if n not in files]
    for name, digest in files.items():
        if Path(name).name != name or name in ("", ".", "..", MANIFEST_FILE):
            problems.append(f"the manifest lists a bad file name {name!r}")
            continue
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif _sha256(path) != digest:
            problems.append(f"{name} was changed after it was saved (SHA-256 differs)")
    if problems:
        raise ModelFolderError(
            f"The model folder {folder} cannot be trusted: "
            + "; ".join(problems)
            + ". Copy the whole folder again from its source, or train the model "
            "again."
        )


def _load_model_json(
    folder: Path, name: str, registry: dict[str, type], role: str
) -> tuple[Any, str]:
    d = _read_json(folder / name, f"The {role} model file")
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind not in registry:
        raise ModelFolderError(
            f"{folder / name} holds an unknown {role} model kind {kind!r}; this "
            f"ltvkit knows {', '.join(sorted(registry))}."
        )
    try:
        return registry[kind].from_dict(d), kind
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFolderError(
            f"{folder / name} does not describe a valid {kind} model: {exc}."
        ) from exc


def _load_regressor(folder: Path) -> SpendRegressor:
    path = folder / REGRESSOR_FILE
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFolderError(f"{path} is not a readable skops file: {exc}.") from exc
    refused = sorted(set(untrusted) - TRUSTED_SKOPS_TYPES)
    if refused:
        raise ModelFolderError(
            f"{path} holds types that ltvkit does not trust: {', '.join(refused)}. "
            "Loading could run their code, so the folder is refused. Train the "
            "regressor again with a scikit-learn estimator ltvkit knows."
        )
    try:
        estimator = sio.load(path, trusted=untrusted)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ModelFolderError(f"Could not load {path}: {exc}.") from exc
    metadata = _read_json(folder / REGRESSOR_META_FILE, "The regressor metadata")
    if not isinstance(metadata, dict):
        raise ModelFolderError(f"{folder / REGRESSOR_META_FILE} is not a JSON object.")
    try:
        regressor = SpendRegressor.from_fitted(estimator, metadata)
    except ModelError as exc:
        raise ModelFolderError(f"{folder / REGRESSOR_META_FILE}: {exc}") from exc
    n_in = getattr(estimator, "n_features_in_", len(regressor.feature_names_))
    if n_in != len(regressor.feature_names_):
        raise ModelFolderError(
            f"{path} expects {n_in} features but {REGRESSOR_META_FILE} lists "
            f"{len(regressor.feature_names_)}."
        )
    return regressor


def _report_versions(folder: Path, manifest: dict[str, Any]) -> None:
    saved = manifest.get("package_versions") or {}
    now = _package_versions()
    changed = [
        f"{name} {saved.get(name)} -> {now[name]}"
        for name in ("scikit-learn", "skops")
        if saved.get(name) != now[name]
    ]
    if changed and manifest.get("regressor") is not None:
        logger.warning(
            "%s was saved with other package versions (%s); the regressor's "
            "predictions may differ slightly",
            folder,
            ", ".join(changed),
        )


def load_model(folder: str | os.PathLike) -> LoadedModel:
    """Load a model folder written by :func:`save_model`, after checking it.

    Parameters
    ----------
    folder : path
        The model folder.

    Returns
    -------
    LoadedModel
        The purchase model, the spend model, the regressor (or None) and the
        manifest.

    Raises
    ------
    ModelFolderError
        If the folder or its manifest is missing or not JSON, the folder is of
        another kind or format version, a file is missing or was edited after
        saving, a model kind is unknown, or the skops file holds a type
        outside :data:`TRUSTED_SKOPS_TYPES`.

    Notes
    -----
    The SHA-256 sums guard against edits and incomplete copies, not against
    a forger who rewrites the manifest too; the skops type check is what
    keeps such a folder from running code.
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    _check_files(folder, manifest)

    purchase_models, gamma_gamma = _model_classes()
    purchase, purchase_kind = _load_model_json(
        folder, PURCHASE_FILE, purchase_models, "purchase"
    )
    # The spend model has one class; its kind is the one it declares, else
    # the one the manifest recorded when it was saved.
    spend_kind = getattr(gamma_gamma, "kind", None) or manifest.get("spend_model")
    spend, _ = _load_model_json(
        folder, SPEND_FILE, {str(spend_kind): gamma_gamma}, "spend"
    )
    if manifest.get("purchase_model") != purchase_kind:
        raise ModelFolderError(
            f"The manifest of {folder} names purchase model "
            f"{manifest.get('purchase_model')!r} but {PURCHASE_FILE} holds "
            f"{purchase_kind!r}."
        )
    regressor = None
    if manifest.get("regressor") is not None:
        regressor = _load_regressor(folder)
    _report_versions(folder, manifest)
    logger.info("loaded model folder %s (%s)", folder, manifest["purchase_model"])
    return LoadedModel(
        purchase_model=purchase,
        spend_model=spend,
        regressor=regressor,
        manifest=manifest,
    )
