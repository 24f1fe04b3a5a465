"""PatronScorer: the CLV model, the churn model, the value ranking and the targeting policy as one scorer.

Plain Python (no MLflow): the MLflow pyfunc in `models/pyfunc.py`, the batch job and the API all wrap it.
Saved as JSON plus LightGBM's own text format -- no pickle, no training data, kilobytes to a few MB.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.errors import DataError, ModelError
from core.scores import SCORE_COLUMNS
from features.pipeline import MAY_BE_MISSING
from features.rfm import RFM_COLUMNS
from features.shop_facts import ShopFacts
from models.churn_kinds import ChurnPredictor, load_churn_model
from models.clv import CLVModel
from models.intervals import prediction_intervals
from models.next_order import marketing_columns
from models.uplift import CustomerUpliftModel
from models.value import SPEND_RATE_INPUTS, ValueModel, spend_rate
from targeting.decide import OPTIONAL_COLUMNS as OPTIONAL_DECISION_INPUTS
from targeting.decide import REQUIRED_COLUMNS as DECISION_INPUTS
from targeting.decide import decision_columns
from targeting.policy import TargetingPolicy
from targeting.tiers import BoundaryKey, cut_point_boundaries, lower_bound_value
from targeting.timing import WITHIN_REPURCHASE_CYCLE, exclude_from_promotion

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SCORER_FILE = "scorer.json"
CLV_FILE = "clv.json"
CHURN_DIR = "churn"
VALUE_DIR = "value"
UPLIFT_DIR = "uplift"

BTYD_COLUMNS = [
    "p_alive",
    "expected_purchases_churn_horizon",
    "expected_purchases_clv_horizon",
    "expected_order_value",
    "clv",
]
REASON_COLUMNS = ["churn_reason_1", "churn_reason_2", "churn_reason_3"]
ValueSource = Literal["clv", "regressor", "spend_rate"]


def btyd_outputs(clv_model: CLVModel, features: pd.DataFrame, churn_horizon_days: int, clv_horizon_days: int) -> pd.DataFrame:
    """The BTYD columns of the scores (and of the churn model's inputs) for a feature frame."""
    return pd.DataFrame(_btyd_arrays(clv_model, features, churn_horizon_days, clv_horizon_days), index=features.index)


def _btyd_arrays(
    clv_model: CLVModel, features: pd.DataFrame, churn_horizon_days: int, clv_horizon_days: int
) -> dict[str, np.ndarray]:
    """`btyd_outputs` as float arrays in BTYD_COLUMNS order."""
    both = clv_model.predict_horizons(features, (churn_horizon_days, clv_horizon_days))
    return _btyd_columns({c: both[c].to_numpy(dtype=float) for c in both.columns}, churn_horizon_days, clv_horizon_days)


def _btyd_from_values(
    clv_model: CLVModel, values: dict[str, np.ndarray], churn_horizon_days: int, clv_horizon_days: int
) -> dict[str, np.ndarray]:
    """`_btyd_arrays` from feature columns already read as float arrays (the scorer's `_validated`)."""
    x, t_x, T, m = (values[c] for c in RFM_COLUMNS)
    both = clv_model.predict_horizon_arrays(
        x, t_x, T, m, (churn_horizon_days, clv_horizon_days), values.get("margin_rate")
    )
    return _btyd_columns(both, churn_horizon_days, clv_horizon_days)


def _btyd_columns(both: dict[str, np.ndarray], churn_horizon_days: int, clv_horizon_days: int) -> dict[str, np.ndarray]:
    """The CLV model's per-horizon outputs under the scores' BTYD column names, in BTYD_COLUMNS order."""
    return {
        "p_alive": both["p_alive"],
        "expected_purchases_churn_horizon": both[f"expected_purchases_{churn_horizon_days}d"],
        "expected_purchases_clv_horizon": both[f"expected_purchases_{clv_horizon_days}d"],
        "expected_order_value": both["expected_order_value"],
        "clv": both["clv"],
    }


def _json_ready(value: Any) -> Any:
    """Numpy scalars, arrays and Timestamps as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_ready(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


class PatronScorer:
    """Scores customers: CLV, churn probability with reasons, value ranking, tiers and targeting.

    Parameters
    ----------
    clv_model : CLVModel
        Fitted BTYD model (purchases, P(alive), order value, CLV).
    churn_model : ChurnPredictor
        Fitted churn model over `churn_features` (LightGBM, logistic or blend: `models.churn_kinds`).
    policy : TargetingPolicy
        Targeting settings applied by `targeting.decide.decide`.
    cut_points : list of float, optional
        Value-score cut points of the tiers on the training snapshot: the API places a customer with
        them when no batch has saved its population's tier boundaries.
    value_model : ValueModel, optional
        Fitted regressor of holdout spend over `value_features`; used when `value_source="regressor"`.
    value_source : {"clv", "regressor", "spend_rate"}
        Which ranking becomes `value_score` (chosen at training by inner-holdout Spearman); with the
        policy's `tier_basis="lower_bound"` it is then taken at the low end of the CLV interval.
    churn_horizon_days, clv_horizon_days, time_unit_days : int
        Horizons of churn and CLV, and the time unit of recency and T the models were fitted in.
    churn_features, value_features : list of str
        Input columns of the churn and value models (feature columns and BTYD outputs).
    shop_reference : dict, optional
        The shop's own distribution behind the behaviour tags and contact timing
        (`targeting.timing.shop_reference`, learned at training); absent: taken from the scored customers.
    metadata : dict, optional
        trained_at, data_end, data fingerprint, headline metrics, model_name, model_version, ...
    uplift_model : CustomerUpliftModel, optional
        Per-customer email uplift learned from past campaigns (chosen at training only when it beat the
        stage x tier table on held-out campaign customers); absent: the policy's table.

    Notes
    -----
    `score` needs the feature columns of ARCHITECTURE.md that the models use (`required_columns`);
    missing ones raise ModelError naming them. Every output is finite.
    """

    def __init__(
        self,
        clv_model: CLVModel,
        churn_model: ChurnPredictor,
        policy: TargetingPolicy,
        cut_points: list[float] | None = None,
        value_model: ValueModel | None = None,
        value_source: ValueSource = "clv",
        churn_horizon_days: int = 90,
        clv_horizon_days: int = 365,
        time_unit_days: int = 1,
        churn_features: list[str] | None = None,
        value_features: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        shop_reference: dict[str, Any] | None = None,
        uplift_model: CustomerUpliftModel | None = None,
    ):
        self.clv_model = clv_model
        self.churn_model = churn_model
        self.policy = policy
        self.cut_points = cut_points
        self.value_model = value_model
        self.value_source = value_source
        self.churn_horizon_days = churn_horizon_days
        self.clv_horizon_days = clv_horizon_days
        self.time_unit_days = time_unit_days
        self.churn_features = list(churn_features) if churn_features is not None else list(churn_model.feature_names_)
        self.value_features = list(value_features or [])
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.shop_reference = dict(shop_reference) if shop_reference else None
        self.uplift_model = uplift_model
        self.shop_facts = ShopFacts.from_reference(self.shop_reference)
        """The reference parsed once, for every call (`features.shop_facts`)."""
        if value_source == "regressor" and value_model is None:
            raise ModelError("value_source='regressor' needs a fitted value model")

    # --- inputs --------------------------------------------------------------------------------

    @property
    def required_columns(self) -> list[str]:
        """Feature columns `score` needs (RFM, days_since_last and every model input not computed here)."""
        needed = [*RFM_COLUMNS, "days_since_last", *self.churn_features]
        if self.value_source == "regressor":
            needed += self.value_features
        elif self.value_source == "spend_rate":
            needed += list(SPEND_RATE_INPUTS)
        if self.uplift_model is not None:
            needed += list(self.uplift_model.required_columns)
        seen: dict[str, None] = {}
        for column in needed:
            if column not in BTYD_COLUMNS:
                seen.setdefault(column, None)
        return list(seen)

    def validate(self, features: pd.DataFrame) -> pd.DataFrame:
        """Check a feature frame and return it indexed by customer_id (string); ModelError if unusable."""
        return self._validated(features)[0]

    def _validated(self, features: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """`validate`'s frame and every one of its columns as float arrays (NaN where not a number)."""
        if not isinstance(features, pd.DataFrame):
            raise ModelError(f"features must be a pandas DataFrame, got {type(features).__name__}")
        frame = features
        if "customer_id" in frame.columns:
            frame = frame.set_index("customer_id")
        frame = frame.copy(deep=False)
        frame.index = frame.index.astype(str)
        frame.index.name = "customer_id"
        required = self.required_columns
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise ModelError(
                f"the features lack columns {missing}; build them with features.build_features "
                f"(time_unit_days={self.time_unit_days})"
            )
        if frame.index.has_duplicates:
            dupes = frame.index[frame.index.duplicated()].unique()[:5].tolist()
            raise ModelError(f"the features hold customers more than once, e.g. {dupes}: one row per customer")
        numeric = None
        if (frame.dtypes == np.float64).all():
            # build_features' frames: every column read in one float block (views of it, no coercion);
            # this path serves single API requests, where a Series per column costs milliseconds
            values = dict(zip(frame.columns, frame.to_numpy(dtype=float).T, strict=True))
        else:
            numeric = frame.apply(pd.to_numeric, errors="coerce")
            values = {c: numeric[c].to_numpy(dtype=float, na_value=np.nan) for c in frame.columns}
        # Columns build_features leaves missing by design (margin_rate without costed rows) may be
        # NaN: LightGBM, the CLV model and targeting each treat a missing value as missing. They are
        # checked whenever present: the CLV model reads margin_rate even when no other model does.
        checked = [*required, *(c for c in MAY_BE_MISSING if c in values and c not in required)]
        bad = [
            c for c in checked
            if not (np.isfinite(values[c]) | (np.isnan(values[c]) if c in MAY_BE_MISSING else False)).all()
        ]
        if bad:
            raise ModelError(f"the features have missing, non-numeric or infinite values in {bad}")
        if numeric is not None:
            frame[required] = numeric[required].astype(float)
        return frame, values

    def prepare(self) -> None:
        """Build what the first `score` would otherwise build (the churn reasons' lookup tables)."""
        self.churn_model.prepare_reasons()

    # --- scoring -------------------------------------------------------------------------------

    def model_outputs(self, features: pd.DataFrame) -> pd.DataFrame:
        """Model outputs per customer (BTYD columns, churn_probability, regressor_value, value_score)."""
        frame, values = self._validated(features)
        outputs, _ = self._outputs(frame, values)
        return pd.DataFrame(outputs, index=frame.index)

    def _outputs(
        self, frame: pd.DataFrame, values: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """The model outputs as arrays (BTYD columns, churn_probability, [regressor_value], value_score)
        and the churn model's input matrix (None when there are no rows)."""
        out = _btyd_from_values(self.clv_model, values, self.churn_horizon_days, self.clv_horizon_days)
        if frame.empty:
            out["churn_probability"] = np.zeros(0)
            out["value_score"] = np.zeros(0)
            return out, None
        # in the churn model's own column order: the logistic and the blend read a subset of churn_features
        churn_inputs = list(self.churn_model.feature_names_)
        unlisted = [c for c in churn_inputs if c not in self.churn_features]
        if unlisted:
            raise ModelError(f"features missing from the input: {unlisted} (the churn model needs them)")
        churn_x = self._input_matrix(len(frame), values, out, churn_inputs)
        out["churn_probability"] = np.clip(np.nan_to_num(self.churn_model.predict_proba(churn_x), nan=0.5), 0, 1)
        if self.value_model is not None:
            value_x = self._input_matrix(len(frame), values, out, self.value_features)
            out["regressor_value"] = np.nan_to_num(np.asarray(self.value_model.predict(value_x), dtype=float))
        if self.value_source == "spend_rate":
            out["value_score"] = spend_rate(values["net_spend"], values["tenure_days"], self.churn_horizon_days)
        else:
            out["value_score"] = out["regressor_value"] if self.value_source == "regressor" else out["clv"]
        if self.policy.tier_basis == "lower_bound":
            out.update(self._intervals(out, values))
            out["value_score"] = lower_bound_value(out["value_score"], out["clv"], out["clv_low"])
        return out, churn_x

    def _intervals(self, outputs: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The prediction-interval columns at the levels calibrated at training."""
        return prediction_intervals(outputs, values["frequency"], self.clv_model.params_, self.metadata.get("interval_levels"))

    @staticmethod
    def _input_matrix(
        n: int, values: dict[str, np.ndarray], outputs: dict[str, np.ndarray], columns: list[str]
    ) -> np.ndarray:
        """A model's input as one float matrix: feature columns and model outputs in `columns` order."""
        matrix = np.empty((n, len(columns)))
        for j, column in enumerate(columns):  # a few dozen columns
            matrix[:, j] = outputs[column] if column in outputs else values[column]
        return matrix

    def score(
        self,
        features: pd.DataFrame,
        as_of: Any,
        tier_boundaries: Sequence[BoundaryKey | None] | None = None,
    ) -> pd.DataFrame:
        """The scores table (`core.scores.SCORE_COLUMNS`, in order), one row per input customer.

        Tiers: ranked within these customers by the policy's shares when `tier_boundaries` is None,
        else placed against them (`targeting.tiers.tier_boundaries` of the whole population).
        """
        return self.score_with_inputs(features, as_of, tier_boundaries)[0]

    def score_with_inputs(
        self,
        features: pd.DataFrame,
        as_of: Any,
        tier_boundaries: Sequence[BoundaryKey | None] | None = None,
        tier_ids: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """`score`'s table and the decision inputs it was decided from (for `redecide`).

        `tier_ids` maps the features' customer ids to the ids that break value-score ties against
        `tier_boundaries` (the API's pass keys `<request>|<id>` to `<id>`); None: the ids themselves.
        """
        frame, values = self._validated(features)
        as_of_day = pd.Timestamp(as_of)
        if as_of_day.tzinfo is not None:
            as_of_day = as_of_day.tz_convert(None)
        as_of_day = as_of_day.normalize()
        if frame.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in SCORE_COLUMNS}), {}
        outputs, churn_x = self._outputs(frame, values)
        assert churn_x is not None
        reasons = self.churn_model.reasons(churn_x, top=3)
        # Columns of the features come first, so a model output of the same name replaces them.
        column = {**values, **outputs}
        if "clv_low" not in column:  # computed with the outputs when tiers rank by the lower bound
            column.update(self._intervals(outputs, values))
        # copies: the batch job keeps these until it knows the population's tiers, and views would keep
        # every chunk's whole feature block alive with them
        inputs = {name: column[name].copy() for name in (*DECISION_INPUTS, *OPTIONAL_DECISION_INPUTS) if name in column}
        if self.uplift_model is not None:
            inputs["uplift"] = self.uplift_model.predict(frame)
        missing = [c for c in DECISION_INPUTS if c not in inputs]
        if missing:
            raise DataError(f"the scores lack columns {missing} that targeting needs; score them with the model first")
        ids = frame.index.to_numpy()
        if tier_ids is not None:
            ids = tier_ids(ids)
        decisions = decision_columns(inputs, self.policy, ids=pd.Series(ids), tier_boundaries=tier_boundaries)
        cut_points = self.shop_facts.cut_points if self.shop_facts.learned else None
        marketing = marketing_columns(column, decisions, self.clv_model, self.policy, as_of_day, cut_points)
        # the id and reason columns as pandas holds them (Arrow strings under pandas 3): the frame
        # then keeps them as they are instead of converting Python strings back, column by column
        table: dict[str, Any] = {"customer_id": frame.index.array, "as_of": as_of_day}
        for name in SCORE_COLUMNS[2:]:
            if name in decisions:
                table[name] = decisions[name]
            elif name in marketing:
                table[name] = marketing[name]
            elif name in REASON_COLUMNS:
                table[name] = reasons[name].array
            elif name in ("model_name", "model_version"):
                table[name] = str(self.metadata.get(name) or "")
            else:
                table[name] = column[name]
        return pd.DataFrame(table, index=pd.RangeIndex(len(frame))), inputs

    def redecide(
        self,
        scores: pd.DataFrame,
        inputs: dict[str, np.ndarray],
        tier_boundaries: Sequence[BoundaryKey | None],
    ) -> pd.DataFrame:
        """`scores` with its decision columns recomputed against `tier_boundaries` (no model pass)."""
        if scores.empty:
            return scores
        decisions = decision_columns(inputs, self.policy, ids=scores["customer_id"], tier_boundaries=tier_boundaries)
        out = scores.copy(deep=False)
        for name, values in decisions.items():
            out[name] = values
        # the exclusion `score_transactions` added from the rows themselves survives the new tiers
        within = (scores["exclude_reason"] == WITHIN_REPURCHASE_CYCLE).to_numpy()
        return exclude_from_promotion(out, within, WITHIN_REPURCHASE_CYCLE)

    def training_tier_boundaries(self) -> list[BoundaryKey | None] | None:
        """The tier boundaries of the training snapshot (its cut-points), or None when it has none."""
        return None if self.cut_points is None else cut_point_boundaries(self.cut_points)

    # --- persistence -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything but the boosters, as JSON-ready values."""
        return _json_ready(
            {
                "format_version": FORMAT_VERSION,
                "value_source": self.value_source,
                "churn_horizon_days": self.churn_horizon_days,
                "clv_horizon_days": self.clv_horizon_days,
                "time_unit_days": self.time_unit_days,
                "churn_features": self.churn_features,
                "value_features": self.value_features,
                "cut_points": None if self.cut_points is None else [float(c) for c in self.cut_points],
                "policy": self.policy.to_dict(),
                "metadata": self.metadata,
                "has_value_model": self.value_model is not None,
                "has_uplift_model": self.uplift_model is not None,
                "shop_reference": self.shop_reference,
            }
        )

    def save(self, directory: str | Path) -> Path:
        """Write the scorer to `directory` (JSON + LightGBM text); returns the directory."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / SCORER_FILE).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        (path / CLV_FILE).write_text(json.dumps(_json_ready(self.clv_model.to_dict()), indent=2, sort_keys=True))
        self.churn_model.save(path / CHURN_DIR)
        if self.value_model is not None:
            self.value_model.save(path / VALUE_DIR)
        if self.uplift_model is not None:
            self.uplift_model.save(path / UPLIFT_DIR)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> PatronScorer:
        """Read a scorer written by `save`; ModelError when the folder is not one."""
        path = Path(directory)
        config_file = path / SCORER_FILE
        if not config_file.is_file():
            raise ModelError(f"{path} holds no Patron scorer ({SCORER_FILE} missing)")
        config = json.loads(config_file.read_text())
        if int(config.get("format_version", 0)) > FORMAT_VERSION:
            raise ModelError(
                f"{path} was written by a newer Patron (format {config['format_version']}); upgrade Patron"
            )
        clv_model = CLVModel.from_dict(json.loads((path / CLV_FILE).read_text()))
        churn_model = load_churn_model(path / CHURN_DIR)
        value_model = ValueModel.load(path / VALUE_DIR) if config.get("has_value_model") else None
        return cls(
            clv_model=clv_model,
            churn_model=churn_model,
            policy=TargetingPolicy.from_dict(config["policy"]),
            cut_points=config.get("cut_points"),
            value_model=value_model,
            value_source=config["value_source"],
            churn_horizon_days=int(config["churn_horizon_days"]),
            clv_horizon_days=int(config["clv_horizon_days"]),
            time_unit_days=int(config["time_unit_days"]),
            churn_features=list(config["churn_features"]),
            value_features=list(config.get("value_features") or []),
            metadata=dict(config.get("metadata") or {}),
            shop_reference=config.get("shop_reference"),
            uplift_model=CustomerUpliftModel.load(path / UPLIFT_DIR) if config.get("has_uplift_model") else None,
        )
