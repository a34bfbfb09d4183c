"""
Configuration: one YAML file per environment (``conf/local.yaml``, ``conf/cluster.yaml``,
``conf/databricks.yaml``), validated whole before any Spark work starts.

``load(path, overrides)`` reads the file, applies ``--set a.b=value`` overrides (values are
parsed as YAML, so ``--set segmentation.k=4`` gives an int), and validates every section with
pydantic. Any problem raises :class:`ConfigError` with one line naming the key, e.g.
``segmentation.k_min: Input should be greater than or equal to 2 (got 1)``.

Names are checked here too, before Spark starts: ``segmentation.features``, the keys of
``segmentation.feature_weights`` and the columns the naming rules test must be numeric columns
of ``customer_features`` (:data:`columns.NUMERIC_CUSTOMER_FEATURES`); a naming rule may also
test the lifetime values of ``customer_clv`` (:data:`columns.CUSTOMER_VALUE_COLUMNS`).

The defaults of the domain live beside their stages: the source kinds' columns, date formats
and rule switches in :mod:`customer_analytics.config.source_kinds`, the default segment naming rules
in ``defaults/segment_names.yaml`` of this package.

Relative paths (``source.path``, ``warehouse.path``) are relative to the working directory the
job is started from.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from importlib import resources
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from customer_analytics.config.source_kinds import (
    DEFAULT_COLUMNS,
    DEFAULT_DATE_FORMATS,
    DEFAULT_SLASH_ORDER,
    EXACT_DUPLICATE_RULE,
    OPTIONAL_EXTRA_COLUMNS,
    SLASH_DATE_FORMATS,
    SlashOrder,
    SourceKind,
)
from customer_analytics.core.columns import CUSTOMER_VALUE_COLUMNS, NUMERIC_CUSTOMER_FEATURES
from customer_analytics.core.delta import DEFAULT_DELTA_MODE, DELTA_MODES
from customer_analytics.core.sql import check_identifier

#: The default ``segmentation.segment_names``, a file of this package (SPEC section 4).
DEFAULT_SEGMENT_NAMES_FILE = "defaults/segment_names.yaml"


#: Default ``segmentation.features``: one column per behaviour, none derivable from the others.
#:
#: - ``total_visits`` (frequency) and ``avg_basket_spend`` (spend per visit) carry spend:
#:   ``total_spend`` is their product, so after ``log1p`` it is (nearly) their sum, and
#:   clustering on it too counts spend twice. It is still profiled, and the naming rules use it.
#: - ``avg_weekly_spend`` is ``avg_weekly_visits * avg_basket_spend``, and ``avg_weekly_visits``
#:   (visits per week with a visit) is close to 1 for most customers; ``last_basket_spend``,
#:   ``prev1_basket_spend``, ``prev2_basket_spend`` are noisy single-basket copies of
#:   ``avg_basket_spend``. With them the list had six spend-like columns of eleven, spend
#:   dominated the distances and at-risk customers merged with loyal regulars (issue #7).
#: - ``mtbp_days`` (inter-purchase time), ``recency_days``, ``tenure_weeks`` (how long a
#:   customer has been one: tells new customers from lapsed ones of few visits) and
#:   ``return_rate``.
DEFAULT_SEGMENTATION_FEATURES = [
    "total_visits",
    "avg_basket_spend",
    "mtbp_days",
    "recency_days",
    "tenure_weeks",
    "return_rate",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExcludePeriod(_Section):
    """A date range (inclusive) known to be incomplete, left out of modelling."""

    start: date
    end: date
    reason: str = "excluded_period"

    @model_validator(mode="after")
    def _ordered(self) -> ExcludePeriod:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class IngestRules(_Section):
    """
    Cleaning rules, named by the reason code they give; each is on by default (but see
    ``exact_duplicate``) and each is counted in ``ingest_reconciliation``. A rule switched off
    lets its rows through.

    ``exact_duplicate`` left unset (null) takes the source kind's default
    (:data:`source_kinds.EXACT_DUPLICATE_RULE`: off for ``transactions``, whose identical rows
    are repeat purchases, on for the others); :meth:`SourceConfig.exact_duplicate_rule` says
    which applies.
    """

    missing_order_id: bool = True
    missing_amount: bool = True
    missing_product_json: bool = True
    malformed_product_json: bool = True
    empty_product_json: bool = True
    missing_product: bool = True
    bad_quantity: bool = True
    bad_date: bool = True
    negative_price: bool = True
    exact_duplicate: bool | None = None


class SourceConfig(_Section):
    kind: SourceKind = "product_json"
    path: str
    #: Written to the ``source`` column of every table; defaults to the kind.
    name: str | None = None
    format: Literal["parquet", "csv", "json"] | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    date_formats: list[str] | None = None
    #: The decimal mark of numbers written as text: ``.`` (thousands ``,``) or ``,``
    #: (thousands ``.`` or a space).
    decimal: Literal[".", ","] = "."
    exclude_periods: list[ExcludePeriod] = Field(default_factory=list)
    read_options: dict[str, str] = Field(default_factory=dict)
    rules: IngestRules = Field(default_factory=IngestRules)
    #: Ingest fails, writing nothing, when more of the input rows than this are quarantined
    #: (and always when none is accepted).
    max_rejected_share: float = Field(0.05, ge=0, le=1)

    @field_validator("path")
    @classmethod
    def _path_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return _without_credentials(value)

    @field_validator("date_formats")
    @classmethod
    def _formats_not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must list at least one format, or be null for the kind's defaults")
        return value

    @model_validator(mode="after")
    def _known_columns(self) -> SourceConfig:
        allowed = set(DEFAULT_COLUMNS[self.kind]) | set(OPTIONAL_EXTRA_COLUMNS[self.kind])
        unknown = sorted(set(self.columns) - allowed)
        if unknown:
            raise ValueError(
                f"columns: unknown canonical column(s) {', '.join(unknown)} for kind "
                f"{self.kind!r}; allowed: {', '.join(sorted(allowed))}"
            )
        return self

    def column_mapping(self) -> dict[str, str]:
        """Canonical name -> source column, the kind's defaults updated by ``columns``."""
        return {**DEFAULT_COLUMNS[self.kind], **self.columns}

    def source_name(self) -> str:
        return self.name or self.kind

    def exact_duplicate_rule(self) -> bool:
        """
        Whether identical input rows are kept once (rule ``exact_duplicate``):
        ``rules.exact_duplicate`` when set, else the kind's default (off for ``transactions``).
        """
        if self.rules.exact_duplicate is not None:
            return self.rules.exact_duplicate
        return EXACT_DUPLICATE_RULE[self.kind]

    def effective_date_formats(self, slash_order: SlashOrder | None = None) -> list[str]:
        """
        ``date_formats`` if set; else the kind's, with the slash dates of ``slash_order``
        (default: the kind's reference data's, :data:`DEFAULT_SLASH_ORDER`).
        """
        if self.date_formats:
            return list(self.date_formats)
        order = slash_order or DEFAULT_SLASH_ORDER[self.kind]
        return [*DEFAULT_DATE_FORMATS[self.kind], *SLASH_DATE_FORMATS[order]]


#: ``scheme://user:secret@host``: a URI that carries credentials.
_URI_WITH_USER_INFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*@")


def _without_credentials(path: str | None) -> str | None:
    """``path``, refused (without echoing it) when its URI carries credentials."""
    if path is not None and _URI_WITH_USER_INFO.match(path):
        raise PydanticCustomError(
            "credentials",
            "the URI carries credentials (user:secret@): credentials never go in the "
            "configuration, which the runs table records; use the environment "
            "(AWS_ACCESS_KEY_ID, ...), an instance profile or a Hadoop credential provider",
        )
    return path


class WarehouseConfig(_Section):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    """
    Where the tables and files go. By default every table ``T`` is a folder ``<path>/T``. With
    ``schema`` (and optionally ``catalog``) set, tables are named ``catalog.schema.T`` in the
    session's catalog (Unity Catalog on Databricks), and ``path`` holds only the files: models,
    the report, checkpoints (e.g. a volume, ``/Volumes/main/analytics/files``).
    """

    path: str = "warehouse"
    catalog: str | None = None
    #: ``schema`` in the configuration (the name ``schema`` is taken in pydantic's models)
    schema_: str | None = Field(None, alias="schema")
    #: ``auto``: native Delta when the Delta Spark extension is active, else delta-rs commits.
    delta: Literal[DELTA_MODES] = DEFAULT_DELTA_MODE
    #: The ``vacuum`` job deletes unused files older than this: longer than any one write of a
    #: run takes, so that a running writer's files stay (Delta Lake's default is 7 days).
    vacuum_retention_hours: int = Field(168, ge=1)

    _path_without_credentials = field_validator("path")(_without_credentials)

    @field_validator("catalog", "schema_")
    @classmethod
    def _a_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        what = "warehouse.schema" if info.field_name == "schema_" else "warehouse.catalog"
        return None if value is None else check_identifier(value, what)

    @model_validator(mode="after")
    def _catalog_needs_schema(self) -> WarehouseConfig:
        if self.catalog and not self.schema_:
            raise ValueError("warehouse.catalog is set without warehouse.schema: set both")
        if self.schema_ and self.delta == "deltalake":
            raise ValueError(
                "warehouse.schema (tables by name) needs native Delta; warehouse.delta is "
                "'deltalake'"
            )
        return self


#: The CSV exports the ``report`` job can write (``report.exports``), each from one table.
REPORT_EXPORTS = ("segments", "profiles", "top_products", "recommendations", "migration")


class ReportConfig(_Section):
    """
    The ``report`` job: charts, ``report.html`` and CSV exports under ``path`` (a local path or
    an object-store URI). ``path`` null: ``<warehouse.path>/_report``. ``exports`` names the
    CSV files to write; the per-customer ones (``segments``, ``recommendations``) are the
    large ones.
    """

    path: str | None = None
    exports: list[Literal[REPORT_EXPORTS]] = Field(default_factory=lambda: list(REPORT_EXPORTS))
    #: products listed on each segment's card
    card_products: int = Field(5, ge=1, le=50)

    _path_without_credentials = field_validator("path")(_without_credentials)

    @field_validator("exports")
    @classmethod
    def _unique(cls, exports: list[str]) -> list[str]:
        repeated = sorted({e for e in exports if exports.count(e) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return exports


class FeaturesConfig(_Section):
    as_of: date | None = None
    lookback_days: int | None = Field(None, ge=1)
    expected_lifetime_years: float = Field(3.0, gt=0)


class ClvConfig(_Section):
    """
    The ``clv`` job (SPEC section 5) and the unit of the BTYD summary of ``features``.

    ``period`` is the unit of ``recency`` and ``T`` in ``customer_features`` (a week is 7 days),
    and so the time unit of the fitted BG/NBD. ``penalizer`` is the L2 penalty of the BG/NBD
    fit (``lifetimes``' ``penalizer_coef``); ``spend_penalizer`` that of the Gamma-Gamma fit,
    separate because it acts on ``gamma`` in currency units (0.1 makes the CDNOW fit useless).
    The horizons are in days whatever the period.
    """

    period: Literal["day", "week"] = "day"
    penalizer: float = Field(0.0, ge=0)
    spend_penalizer: float = Field(0.0, ge=0)
    #: ``expected_visits_<H>d`` is written for each H.
    horizons_days: list[int] = Field(default_factory=lambda: [90, 365], min_length=1)
    #: ``ltv_predicted``: expected spend over this many days, discounted by 30-day steps.
    ltv_horizon_days: int = Field(365, ge=1)
    #: Discount rate per 30 days (0.01: 1% a month, ``lifetimes``' default).
    discount_rate: float = Field(0.01, ge=0, le=1)
    #: Customers the models are fitted on (a seeded sample); null: all. Everyone is scored.
    sample_size: int | None = Field(None, ge=100)
    seed: int = 42

    @field_validator("horizons_days")
    @classmethod
    def _positive_distinct(cls, horizons: list[int]) -> list[int]:
        if any(h < 1 for h in horizons):
            raise ValueError("each horizon must be >= 1 day")
        if len(set(horizons)) != len(horizons):
            raise ValueError("horizons must be distinct")
        return horizons


class IndexCondition(_Section):
    """
    One test on a cluster's profile: the cluster mean of ``feature`` divided by the overall
    mean (its *index*) must be above ``above`` and/or below ``below`` (strictly).
    """

    feature: str
    above: float | None = Field(None, gt=0)
    below: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_bound(self) -> IndexCondition:
        if self.above is None and self.below is None:
            raise ValueError(f"condition on {self.feature!r} needs above or below")
        return self


class SegmentRule(_Section):
    """A segment name, its suggested marketing action, and when a cluster earns it."""

    name: str
    action: str
    when: list[IndexCondition] = Field(min_length=1)


@functools.cache
def _default_segment_rules() -> tuple[SegmentRule, ...]:
    text = (
        resources.files("customer_analytics.config")
        .joinpath(DEFAULT_SEGMENT_NAMES_FILE)
        .read_text("utf-8")
    )
    return tuple(SegmentRule.model_validate(rule) for rule in yaml.safe_load(text))


def default_segment_rules() -> list[SegmentRule]:
    """The default naming rules, from ``defaults/segment_names.yaml`` of this package."""
    return list(_default_segment_rules())


def _not_numeric_features(names: list[str]) -> str | None:
    """
    What is wrong with ``names`` as columns for segmentation, or None: each must be a numeric
    column of ``customer_features``.
    """
    bad = [n for n in names if n not in NUMERIC_CUSTOMER_FEATURES]
    if not bad:
        return None
    what = "is not a numeric column" if len(bad) == 1 else "are not numeric columns"
    return (
        f"{', '.join(bad)} {what} of customer_features (numeric columns: "
        f"{', '.join(NUMERIC_CUSTOMER_FEATURES)})"
    )


def weight_problems(
    features: Sequence[str] | None, weights: Mapping[str, float]
) -> tuple[list[str], list[str]]:
    """
    What is wrong with ``segmentation.feature_weights``: (the weighted columns that are not in
    ``features``, in the order given; none checked when ``features`` is None), (the features
    whose weight is not a finite number > 0, sorted).
    """
    unknown = [] if features is None else [f for f in weights if f not in features]
    bad = sorted(f for f, w in weights.items() if not (w > 0 and math.isfinite(w)))
    return unknown, bad


class SegmentationConfig(_Section):
    """
    The ``segment`` job. Every column it names (``features``, the keys of ``feature_weights``,
    the ``feature`` of each naming rule's conditions) must be a numeric column of
    ``customer_features`` (:data:`columns.NUMERIC_CUSTOMER_FEATURES`); a rule may also test
    ``p_alive``, ``expected_spend`` or ``ltv_predicted`` of ``customer_clv``, which ``segment``
    joins on when the table is as of the same date.
    """

    features: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SEGMENTATION_FEATURES), validate_default=True
    )
    #: Feature -> weight (> 0) applied after standardization; features not listed weigh 1.0.
    feature_weights: dict[str, float] = Field(default_factory=dict)
    k: int | None = Field(None, ge=2)
    k_min: int = Field(2, ge=2)
    k_max: int = Field(10, ge=2)
    #: Ks whose silhouette is within this of the best count as tied; the largest is chosen.
    k_tolerance: float = Field(0.01, ge=0)
    #: At most about this many customers (a seeded sample) in the K sweep; null: all of them.
    sweep_sample_size: int | None = Field(50_000, ge=100)
    seed: int = 42
    #: KMeans starts per K (seeds seed, seed + 1, ...); the lowest training cost is kept.
    n_init: int = Field(3, ge=1)
    imputer_strategy: Literal["mean", "median", "mode"] = "median"
    #: Naming rules, tried by best score (``segmentation.name_segments``); names must be unique.
    segment_names: list[SegmentRule] = Field(
        default_factory=default_segment_rules, validate_default=True
    )

    @field_validator("features")
    @classmethod
    def _numeric_features(cls, features: list[str]) -> list[str]:
        problem = _not_numeric_features(features)
        if problem:
            raise PydanticCustomError("feature_name", problem)
        return features

    @field_validator("feature_weights")
    @classmethod
    def _weights_of_features(
        cls, weights: dict[str, float], info: ValidationInfo
    ) -> dict[str, float]:
        # features is validated first; when it failed, its own error is reported
        features = info.data.get("features")
        unknown, bad = weight_problems(features, weights)
        if unknown:
            raise PydanticCustomError(
                "feature_name",
                f"{', '.join(unknown)} not in segmentation.features ({', '.join(features)})",
            )
        if bad:
            raise ValueError(f"the weight of {', '.join(bad)} must be a finite number > 0")
        return weights

    @field_validator("segment_names")
    @classmethod
    def _rules_test_numeric_features(cls, rules: list[SegmentRule]) -> list[SegmentRule]:
        for number, rule in enumerate(rules):
            for position, condition in enumerate(rule.when):
                if condition.feature in CUSTOMER_VALUE_COLUMNS:
                    continue
                problem = _not_numeric_features([condition.feature])
                if problem:
                    raise PydanticCustomError(
                        "feature_name",
                        f"rule {rule.name!r}: {problem}",
                        {"subkey": f"{number}.when.{position}.feature"},
                    )
        return rules

    @model_validator(mode="after")
    def _k_range(self) -> SegmentationConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min {self.k_min} is greater than k_max {self.k_max}")
        if not self.features:
            raise ValueError("features must list at least one column")
        names = [rule.name for rule in self.segment_names]
        if len(set(names)) != len(names):
            raise ValueError("segment_names: each name must be unique")
        return self


class EvaluationConfig(_Section):
    """The ``evaluate`` job's time split: train before ``cutoff``, test on ``test_weeks`` after."""

    #: First day of the test period; null: ``test_weeks`` before the day after ``as_of``.
    cutoff: date | None = None
    test_weeks: int = Field(4, ge=1)
    #: List lengths to score (precision@K, recall@K, MAP@K, coverage).
    k: list[int] = Field(default_factory=lambda: [5, 10])
    #: Score at most about this many customers: a fixed sample, by a hash of the customer id,
    #: of those who bought in the test weeks; null: all of them.
    max_customers: int | None = Field(50_000, ge=100)

    @field_validator("k")
    @classmethod
    def _positive_ks(cls, ks: list[int]) -> list[int]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError("must list at least one K, each >= 1")
        return sorted(set(ks))


#: How basket rules are found (:func:`customer_analytics.stages.recommend.basket_rules`): pairs
#: of products counted with joins, or MLlib FPGrowth's rules of any length.
RulesEngine = Literal["pairs", "fpgrowth"]


class RecommendConfig(_Section):
    #: The top lists count purchases in the months up to ``as_of``.
    window_months: int = Field(2, ge=1)
    top_n: int = Field(10, ge=1)
    #: How far down its segment's list to look for products a customer has not bought.
    candidates: int = Field(50, ge=1)
    min_support: float = Field(0.01, gt=0, le=1)
    min_confidence: float = Field(0.2, gt=0, le=1)
    rules_engine: RulesEngine = "pairs"
    #: ``fpgrowth`` only: refuse when one order holds more frequent products than this (FPGrowth
    #: enumerates their subsets).
    max_basket_items: int = Field(20, ge=1)
    #: Product ids that are not products (postage, fees): never listed, ruled or recommended.
    exclude_products: list[str] = Field(default_factory=list)
    #: Find basket rules and let them re-rank (and add to) each customer's list; when off, no
    #: rule is computed and ``basket_rules`` is written empty.
    use_basket_rules: bool = True
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @model_validator(mode="after")
    def _enough_candidates(self) -> RecommendConfig:
        if self.candidates < self.top_n:
            raise ValueError(f"candidates {self.candidates} is less than top_n {self.top_n}")
        return self


#: Parts of a Spark or Hadoop setting's name that mark a credential.
CREDENTIAL_KEY_PARTS = (
    "secret",
    "password",
    "access.key",
    "session.token",
    "account.key",
    "private.key",
    "sas.token",
)


#: ``spark.materialize``: how a frame read more than once is kept (:mod:`.runtime.materialize`).
MATERIALIZE_MODES = ("checkpoint", "cache", "table")


class SparkConfig(_Section):
    """
    The session. ``remote`` (``sc://host:port``, or ``local[N]`` for a Connect server in the
    job's process) runs the job over Spark Connect, where ``master`` does not apply and only
    runtime settings can go in ``conf``.
    """

    master: str | None = "local[*]"
    remote: str | None = None
    app_name: str = "customer-analytics"
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "WARN"
    materialize: Literal[MATERIALIZE_MODES] = "checkpoint"
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("remote")
    @classmethod
    def _a_connect_url(cls, remote: str | None) -> str | None:
        if remote is not None and not remote.startswith(("sc://", "local")):
            raise PydanticCustomError(
                "remote",
                "a Spark Connect URL, sc://host:port, or local[N] for a server in this process",
            )
        return remote

    @model_validator(mode="after")
    def _master_or_remote(self) -> SparkConfig:
        if self.remote and "master" in self.model_fields_set and self.master:
            raise ValueError(
                "spark.master and spark.remote are both set: a job over Spark Connect runs "
                "where the server does; set one of them"
            )
        return self

    @field_validator("conf")
    @classmethod
    def _no_credentials(cls, conf: dict) -> dict:
        found = sorted(k for k in conf if any(p in k.lower() for p in CREDENTIAL_KEY_PARTS))
        if found:
            raise ValueError(
                f"{', '.join(found)}: credentials never go in the configuration (it is logged "
                "in the runs table); use the environment (AWS_ACCESS_KEY_ID, ...), an instance "
                "profile or a Hadoop credential provider (hadoop.security.credential.provider.path)"
            )
        return conf


class Config(_Section):
    """The whole configuration; every section has defaults except ``source.path``."""

    source: SourceConfig
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    clv: ClvConfig = Field(default_factory=ClvConfig)
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
