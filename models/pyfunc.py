"""The MLflow pyfunc around PatronScorer, logged as "models from code" (nothing pickled).

MLflow copies this file into the model and executes it on load; the scorer itself travels as the
`scorer` artifact (JSON + LightGBM text, see `models.scorer`). `log_scorer` logs it, `load_scorer`
loads one back as a PatronScorer with its registry name, version and alias.

`predict(context, model_input, params)` takes a features frame (`customer_id` column plus the feature
columns of ARCHITECTURE.md) and returns the scores table. The as-of date comes from `params["as_of"]`,
else an `as_of` column, else the last day of the model's training data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from core.errors import ModelError
from models.scorer import PatronScorer

logger = logging.getLogger(__name__)

SCORER_ARTIFACT = "scorer"
AS_OF = "as_of"


def _as_of_values(model_input: pd.DataFrame, params: dict[str, Any] | None, default: Any) -> pd.Series:
    """The as-of day of each input row: params, else the `as_of` column, else the model's default."""
    given = (params or {}).get(AS_OF)
    if given not in (None, ""):
        return pd.Series(pd.Timestamp(given).normalize(), index=model_input.index)
    if AS_OF in model_input.columns and model_input[AS_OF].notna().any():
        column = pd.to_datetime(model_input[AS_OF], errors="coerce")
        if column.isna().any():
            raise ModelError("the as_of column has empty or unparseable dates")
        if getattr(column.dt, "tz", None) is not None:
            column = column.dt.tz_convert(None)
        return column.dt.normalize()
    if default in (None, ""):
        raise ModelError("no as_of given (param or column) and the model has no training end date")
    return pd.Series(pd.Timestamp(default).normalize(), index=model_input.index)


def score_input(scorer: PatronScorer, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Score a pyfunc input frame, one as-of date at a time (normally exactly one)."""
    if not isinstance(model_input, pd.DataFrame):
        raise ModelError(f"the model takes a pandas DataFrame of features, got {type(model_input).__name__}")
    if "customer_id" not in model_input.columns:
        if model_input.index.name != "customer_id":
            raise ModelError("the features need a customer_id column")
        model_input = model_input.reset_index()
    as_of = _as_of_values(model_input, params, scorer.metadata.get("data_end"))
    features = model_input.drop(columns=[AS_OF], errors="ignore")
    days = as_of.unique()
    if len(days) == 1:
        return scorer.score(features, days[0])
    parts = [scorer.score(features.loc[(as_of == day).to_numpy()], day) for day in np.sort(days)]
    scores = pd.concat(parts, ignore_index=True)
    order = pd.Index(scores["customer_id"]).get_indexer(features["customer_id"].astype(str))
    return scores.iloc[order].reset_index(drop=True)  # the input's row order


class PatronPyfunc(PythonModel):
    """MLflow python model: loads the `scorer` artifact and scores feature frames."""

    def __init__(self) -> None:
        self.scorer: PatronScorer | None = None

    def load_context(self, context: Any) -> None:
        """Load the scorer from the model's `scorer` artifact."""
        self.scorer = PatronScorer.load(context.artifacts[SCORER_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Features in, scores table out."""
        if self.scorer is None:
            raise ModelError("the Patron model was not loaded (load_context not called)")
        return score_input(self.scorer, model_input, params)


def model_code_path() -> str:
    """Path of this file: MLflow logs it as the model's code."""
    return str(Path(__file__).resolve())


def pip_requirements() -> list[str]:
    """Pinned runtime requirements of the model (Patron's own packages must be installed too)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("mlflow", "lightgbm", "lifetimes", "numpy", "pandas", "scipy", "scikit-learn", "pandera"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:  # pragma: no cover - all are dependencies of Patron
            pins.append(package)
    return pins


def input_example(features: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A few synthetic rows (feature quantiles, not real customers) to document the input format."""
    quantiles = [0.25, 0.5, 0.9]
    frame = features[columns].astype(float).quantile(quantiles)
    frame.insert(0, "customer_id", [f"example_p{int(q * 100)}" for q in quantiles])
    return frame.reset_index(drop=True)


def model_signature(example: pd.DataFrame, output: pd.DataFrame) -> Any:
    """Input and output schema, with `as_of` as an optional input column and an optional param.

    The column is typed Any: MLflow cannot convert pandas' `str` dtype to datetime, and callers pass
    dates as strings (JSON) or Timestamps (Python); `_as_of_values` parses either.

    The param's default is empty (not the training end date): MLflow fills in defaults, and a dated
    default would silently override an `as_of` column.
    """
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    inferred = infer_signature(example, output, params={AS_OF: ""})
    inputs = Schema([*inferred.inputs.inputs, ColSpec(AnyType(), AS_OF, required=False)])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs, params=inferred.params)


def log_scorer(
    scorer: PatronScorer,
    scorer_dir: str | Path,
    example_features: pd.DataFrame,
    name: str = "model",
    registered_model_name: str | None = None,
) -> Any:
    """Log the saved scorer at `scorer_dir` as a models-from-code pyfunc in the active run.

    Returns MLflow's ModelInfo (with `registered_model_version` when registered).
    """
    example = input_example(example_features, scorer.required_columns)
    output = scorer.score(example, scorer.metadata.get("data_end") or pd.Timestamp.today().normalize())
    signature = model_signature(example, output)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=model_code_path(),
        artifacts={SCORER_ARTIFACT: str(scorer_dir)},
        signature=signature,
        input_example=example,
        pip_requirements=pip_requirements(),
        registered_model_name=registered_model_name,
    )


def parse_model_uri(model_uri: str) -> tuple[str | None, str | None, str | None]:
    """(registered name, version, alias) of a `models:/name/version` or `models:/name@alias` URI."""
    if not model_uri.startswith("models:/"):
        return None, None, None
    ref = model_uri.removeprefix("models:/").strip("/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return name, None, alias
    name, _, version = ref.partition("/")
    if not version:
        return None, None, None  # models:/m-<id>: a logged model, not a registered version
    return name, version, None


def load_scorer(model_uri: str) -> PatronScorer:
    """Load a logged or registered Patron model as a PatronScorer (no pickle).

    For registry URIs the scorer's metadata gets `model_name`, `model_version` and `alias`, which the
    scores carry in their model_name / model_version columns.
    """
    name, version, alias = parse_model_uri(model_uri)
    if name is not None and alias is not None:
        version = str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    elif name is not None and version == "latest":
        versions = mlflow.MlflowClient().search_model_versions(f"name='{name}'")
        version = str(max(int(v.version) for v in versions)) if versions else None
    # Load the exact version the alias pointed at, so a concurrent promotion cannot split the two.
    uri = f"models:/{name}/{version}" if name is not None and version is not None else model_uri
    model = mlflow.pyfunc.load_model(uri)
    python_model = model.unwrap_python_model()
    scorer = getattr(python_model, "scorer", None)
    if not isinstance(scorer, PatronScorer):
        raise ModelError(f"{model_uri} is not a Patron model")
    if name is not None:
        scorer.metadata["model_name"] = name
        scorer.metadata["model_version"] = str(version)
        scorer.metadata["alias"] = alias
    scorer.metadata["model_uri"] = model_uri
    return scorer


# MLflow executes this file under a generated module name when it loads (or logs) the model: register
# the model object then. A normal `import models.pyfunc` leaves MLflow's global state alone.
if __name__ != "models.pyfunc":
    mlflow.models.set_model(PatronPyfunc())
