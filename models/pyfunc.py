"""The MLflow pyfunc around PatronScorer, logged as "models from code" (nothing pickled).

MLflow copies this file into the model and executes it on load; the scorer itself travels as the
`scorer` artifact (JSON + LightGBM text, see `models.scorer`). `log_scorer` logs it, `load_scorer`
loads one back as a PatronScorer with its registry name, version and alias.

`predict(context, model_input, params)` takes transaction rows -- the data contract of the API and the
batch job -- and returns the scores table through `models.prediction.score_transactions` (rejected rows
are logged and left out). The as-of date comes from `params["as_of"]`, else an `as_of` column (one
day), else the last day of the model's training data. Tiers rank the input's customers into the
policy's shares, as the batch job ranks its population.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from core.errors import ModelError
from features.schema import REQUIRED_FIELDS
from models.prediction import (
    as_of_timestamp,
    check_scorer,
    example_transactions,
    score_transactions,
)
from models.scorer import PatronScorer

logger = logging.getLogger(__name__)

SCORER_ARTIFACT = "scorer"
AS_OF = "as_of"


def as_of_of(model_input: pd.DataFrame, params: dict[str, Any] | None, default: Any) -> pd.Timestamp:
    """The as-of day of a call: `params["as_of"]`, else the input's one `as_of` value, else `default`."""
    given = (params or {}).get(AS_OF)
    if given not in (None, ""):
        return as_of_timestamp(given)
    if AS_OF in model_input.columns and model_input[AS_OF].notna().any():
        days = pd.to_datetime(model_input[AS_OF], errors="coerce", utc=True)
        if days.isna().any():
            raise ModelError("the as_of column has empty or unparseable dates")
        unique = days.dt.tz_convert(None).dt.normalize().unique()
        if len(unique) != 1:
            raise ModelError("the as_of column holds more than one day: score one as-of day per call")
        return as_of_timestamp(unique[0])
    if default in (None, ""):
        raise ModelError("no as_of given (param or column) and the model has no training end date")
    return as_of_timestamp(default)


def score_model_input(scorer: PatronScorer, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Score a pyfunc input of transaction rows (the API's and the batch's contract) into the scores table."""
    if not isinstance(model_input, pd.DataFrame):
        raise ModelError(f"the model takes a pandas DataFrame of transactions, got {type(model_input).__name__}")
    as_of = as_of_of(model_input, params, scorer.metadata.get("data_end"))
    scored = score_transactions(model_input.drop(columns=[AS_OF], errors="ignore"), scorer, as_of)
    if len(scored.rejects):
        logger.warning("%d transaction rows rejected by the data contract: %s", len(scored.rejects),
                       scored.rejects["reason"].value_counts().to_dict())
    return scored.scores


class PatronPyfunc(PythonModel):
    """MLflow python model: loads the `scorer` artifact and scores feature frames."""

    def __init__(self) -> None:
        self.scorer: PatronScorer | None = None

    def load_context(self, context: Any) -> None:
        """Load the scorer from the model's `scorer` artifact."""
        self.scorer = PatronScorer.load(context.artifacts[SCORER_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Transaction rows in, scores table out."""
        if self.scorer is None:
            raise ModelError("the Patron model was not loaded (load_context not called)")
        return score_model_input(self.scorer, model_input, params)


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


def model_signature(example: pd.DataFrame, output: pd.DataFrame) -> Any:
    """Input and output schema: transaction rows (only customer_id and timestamp required) and an `as_of` param.

    `timestamp` and the optional `as_of` column are typed Any: MLflow cannot convert pandas' `str`
    dtype to datetime, and callers pass dates as strings (JSON) or Timestamps (Python); the data
    contract parses either. The param's default is empty (not the training end date): MLflow fills
    in defaults, and a dated default would silently override an `as_of` column.
    """
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    inferred = infer_signature(example, output, params={AS_OF: ""})
    columns = []
    for spec in inferred.inputs.inputs:
        required = spec.name in REQUIRED_FIELDS
        kind = AnyType() if spec.name == "timestamp" else spec.type
        columns.append(ColSpec(kind, spec.name, required=required))
    inputs = Schema([*columns, ColSpec(AnyType(), AS_OF, required=False)])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs, params=inferred.params)


def log_scorer(
    scorer: PatronScorer,
    scorer_dir: str | Path,
    name: str = "model",
    registered_model_name: str | None = None,
) -> Any:
    """Log the saved scorer at `scorer_dir` as a models-from-code pyfunc in the active run.

    The scorer must first prove it can score (`check_scorer`: ModelError otherwise), so a model that
    cannot score is never registered nor promoted. Returns MLflow's ModelInfo (with
    `registered_model_version` when registered).
    """
    output = check_scorer(scorer)
    example, _ = example_transactions(scorer)
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
