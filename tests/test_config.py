"""Configuration: defaults, overrides, and one clear line for each kind of mistake."""

from __future__ import annotations

import re
from datetime import date
from importlib import resources

import pytest

from customer_analytics import cli
from customer_analytics.config import loader
from customer_analytics.config import schema as config
from customer_analytics.core import columns as C
from customer_analytics.core.errors import ConfigError


def write_yaml(tmp_path, text: str):
    path = tmp_path / "conf.yaml"
    path.write_text(text)
    return path


def test_minimal_file_gets_every_default(tmp_path):
    cfg = loader.load(write_yaml(tmp_path, "source: {path: data.parquet}\n"))

    assert cfg.source.kind == "product_json"
    assert cfg.warehouse.path == "warehouse"
    assert (cfg.segmentation.k_min, cfg.segmentation.k_max, cfg.segmentation.seed) == (2, 10, 42)
    assert cfg.recommend.window_months == 2
    assert cfg.spark.master == "local[*]"


def test_set_overrides_parse_values_as_yaml(tmp_path):
    path = write_yaml(tmp_path, "source: {path: data.parquet}\n")

    cfg = loader.load(
        path,
        [
            "segmentation.k=4",
            "source.columns.customer_id=Customer ID",
            "features.as_of=2011-12-09",
            "clv.period=week",
            "spark.conf.spark.sql.shuffle.partitions=4",
        ],
    )

    assert cfg.segmentation.k == 4
    assert cfg.source.column_mapping()["customer_id"] == "Customer ID"
    assert cfg.features.as_of == date(2011, 12, 9)
    assert cfg.clv.period == "week"


def test_dotted_spark_keys_are_kept_whole_in_the_file(tmp_path):
    path = write_yaml(
        tmp_path, "source: {path: x}\nspark:\n  conf:\n    spark.sql.shuffle.partitions: 4\n"
    )

    assert loader.load(path).spark.conf == {"spark.sql.shuffle.partitions": 4}


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("source: {path: x}\nwarehouse: {colour: red}\n", [], "warehouse.colour: unknown key"),
        ("source: {path: x}\nsegmentation: {k_min: one}\n", [], "segmentation.k_min: Input should"),
        ("warehouse: {path: wh}\n", [], "source: required value is missing"),
        ("source: {path: x, kind: xml}\n", [], "source.kind: Input should be 'product_json'"),
        ("source: {path: x}\nsegmentation: {k_min: 5, k_max: 3}\n", [], "k_min 5 is greater"),
        ("source: {path: x, columns: {cust: a}}\n", [], "unknown canonical column(s) cust"),
        ("source: {path: x}\n", ["segmentation.k_min=1"], "segmentation.k_min"),
        ("source: {path: x}\n", ["nokey"], "expected section.key=value"),
        ("source: {path: x}\n", ["source.path.deeper=1"], "source.path is not a section"),
        ("source: [unclosed\n", [], "is not valid YAML"),
        (
            "source: {path: x}\nsegmentation: {features: [mtbp_days], feature_weights: {T: 2}}\n",
            [],
            "segmentation.feature_weights: T not in segmentation.features (mtbp_days)",
        ),
        (
            "source: {path: x}\nsegmentation: {feature_weights: {mtbp_days: 0}}\n",
            [],
            "segmentation.feature_weights: the weight of mtbp_days must be a finite number > 0",
        ),
        ("source: {path: x}\n", ["segmentation.feature_weights={recency_days: -1}"], "> 0"),
        ("source: {path: x}\n", ["segmentation.n_init=0"], "segmentation.n_init: Input should"),
        ("- a list\n", [], "the top level must be a mapping"),
    ],
)
def test_each_mistake_gives_one_line_naming_it(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError) as error:
        loader.load(write_yaml(tmp_path, text), overrides)

    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert error.value.exit_code == 2


def test_feature_weights_are_optional_and_set_per_feature(tmp_path):
    path = write_yaml(tmp_path, "source: {path: x}\n")

    assert loader.load(path).segmentation.feature_weights == {}
    cfg = loader.load(path, ["segmentation.feature_weights={recency_days: 1.5}"])
    assert cfg.segmentation.feature_weights == {"recency_days": 1.5}


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found: .*nope.yaml"):
        loader.load(tmp_path / "nope.yaml")


def test_bundled_configurations_are_valid_and_exclude_no_period_of_a_users_data():
    for name in ("local", "cluster", "databricks"):
        cfg = loader.load(f"conf/{name}.yaml")
        assert cfg.source.exclude_periods == []


# ---------------------------------------------------------------------------------------------
# Domain defaults beside their stages


def test_default_segment_names_come_from_the_packaged_yaml():
    rules = config.SegmentationConfig().segment_names

    assert [r.name for r in rules] == [
        "Champions",
        "Loyal regulars",
        "Big-basket occasionals",
        "New customers",
        "At risk",
        "Lapsed low-value",
        "Frequent returners",
    ]
    at_risk = rules[4]
    assert [(c.feature, c.above, c.below) for c in at_risk.when] == [
        ("recency_days", 0.3, None),
        ("total_visits", 1.0, None),
        ("total_spend", 0.8, None),
    ]


def test_the_default_segment_names_file_is_package_data():
    packaged = resources.files("customer_analytics.config") / "defaults" / "segment_names.yaml"
    assert packaged.is_file()


# ---------------------------------------------------------------------------------------------
# Names checked against the customer feature columns, before Spark starts


def test_a_segmentation_feature_that_is_no_column_is_named_with_its_key_and_origin(tmp_path):
    path = write_yaml(tmp_path, "source: {path: x}\n")

    with pytest.raises(ConfigError) as error:
        loader.load(path, ["segmentation.features=[total_visits, total_vists]"])

    assert str(error.value).startswith(
        "--set segmentation.features: total_vists is not a numeric column of customer_features"
    )


@pytest.mark.parametrize("column", [C.CUSTOMER_ID, C.FIRST_ORDER_DATE, C.RFM_SEGMENT, C.COUNTRY])
def test_a_segmentation_feature_that_is_not_numeric_is_refused(tmp_path, column):
    path = write_yaml(tmp_path, "source: {path: x}\n")

    with pytest.raises(ConfigError, match=f"segmentation.features: {column} is not a numeric"):
        loader.load(path, [f"segmentation.features=[total_visits, {column}]"])


def test_every_numeric_customer_feature_may_be_clustered(tmp_path):
    path = write_yaml(tmp_path, "source: {path: x}\n")
    every = ", ".join(C.NUMERIC_CUSTOMER_FEATURES)

    cfg = loader.load(path, [f"segmentation.features=[{every}]"])

    assert cfg.segmentation.features == C.NUMERIC_CUSTOMER_FEATURES
    assert len(cfg.segmentation.features) == 35  # 44 columns less 9 ids, dates and labels


def test_a_naming_rule_on_an_unknown_column_is_named_with_its_key(tmp_path):
    path = write_yaml(
        tmp_path,
        "source: {path: x}\n"
        "segmentation:\n"
        "  segment_names:\n"
        "    - {name: Big, action: thank, when: [{feature: total_spend, above: 1.5}]}\n"
        "    - name: Local\n"
        "      action: invite\n"
        "      when: [{feature: recency_days, below: 1}, {feature: store_id, above: 1}]\n",
    )

    with pytest.raises(ConfigError) as error:
        loader.load(path)

    # the second rule's second condition
    assert str(error.value).startswith(
        f"{path}: segmentation.segment_names.1.when.1.feature: rule 'Local': store_id is not a "
        "numeric column of customer_features"
    )


def test_a_wrong_feature_name_exits_2_before_any_job_runs(tmp_path, capsys):
    path = write_yaml(
        tmp_path, f"source: {{path: {tmp_path}}}\nwarehouse: {{path: {tmp_path}/wh}}\n"
    )

    code = cli.main(["segment", "--conf", str(path), "--set", "segmentation.features=[spend]"])

    assert code == 2
    err = capsys.readouterr().err
    assert "segmentation.features: spend is not a numeric column" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "wh").exists()


# ---------------------------------------------------------------------------------------------
# The report section


def test_report_defaults_to_every_export_beside_the_warehouse(tmp_path):
    cfg = loader.load(write_yaml(tmp_path, "source: {path: x}\n"))

    assert cfg.report.path is None  # the job writes to <warehouse.path>/_report
    assert cfg.report.exports == [
        "segments",
        "profiles",
        "top_products",
        "recommendations",
        "migration",
    ]


def test_an_unknown_export_is_named_with_its_position(tmp_path):
    path = write_yaml(tmp_path, "source: {path: x}\nreport: {exports: [segments, charts]}\n")

    with pytest.raises(ConfigError) as error:
        loader.load(path)

    assert str(error.value).startswith(f"{path}: report.exports.1: Input should be 'segments'")
    assert str(error.value).endswith("(got 'charts')")


def test_an_export_listed_twice_is_refused(tmp_path):
    path = write_yaml(tmp_path, "source: {path: x}\n")

    with pytest.raises(ConfigError, match="report.exports: listed more than once: profiles"):
        loader.load(path, ["report.exports=[profiles, segments, profiles]"])


def test_report_settings_survive_a_reload_with_overrides(tmp_path):
    cfg = loader.load(
        write_yaml(tmp_path, "source: {path: x}\nreport: {path: s3a://b/r, exports: []}\n")
    )

    reloaded = loader.with_overrides(
        cfg, ["features.as_of=2024-01-31"]
    )  # dumps and validates again

    assert (reloaded.report.path, reloaded.report.exports) == ("s3a://b/r", [])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("clv.penalizer=-1", "clv.penalizer: Input should be greater than or equal to 0"),
        ("clv.horizons_days=[90, 90]", "clv.horizons_days: horizons must be distinct"),
        ("clv.horizons_days=[0]", "clv.horizons_days: each horizon must be >= 1 day"),
        ("clv.discount_rate=2", "clv.discount_rate: Input should be less than or equal to 1"),
        ("clv.sample_size=5", "clv.sample_size: Input should be greater than or equal to 100"),
    ],
)
def test_bad_clv_settings_are_refused_with_the_key(tmp_path, override, message):
    path = write_yaml(tmp_path, "source: {path: x}\n")

    with pytest.raises(ConfigError, match=re.escape(message)):
        loader.load(path, [override])


def test_a_naming_rule_may_test_p_alive_but_not_an_unknown_column(tmp_path):
    rules = "[{name: Fading, action: call, when: [{feature: p_alive, below: 0.5}]}]"
    path = write_yaml(tmp_path, "source: {path: x}\n")

    cfg = loader.load(path, [f"segmentation.segment_names={rules}"])
    with pytest.raises(ConfigError, match="p_alive_x is not a numeric column"):
        loader.load(path, [f"segmentation.segment_names={rules.replace('p_alive', 'p_alive_x')}"])

    assert cfg.segmentation.segment_names[0].when[0].feature == "p_alive"


# ---------------------------------------------------------------------------------------------
# The exact_duplicate rule per source kind


@pytest.mark.parametrize(
    ("kind", "setting", "expected"),
    [
        ("transactions", None, False),  # identical rows are repeat purchases
        ("transactions", True, True),
        ("product_json", None, True),
        ("invoice_lines", None, True),
        ("basket_lines", None, True),
        ("invoice_lines", False, False),
    ],
)
def test_exact_duplicate_rule_defaults_per_kind_unless_set(kind, setting, expected):
    rules = config.IngestRules(exact_duplicate=setting)
    source = config.SourceConfig(kind=kind, path="x", rules=rules)

    assert source.exact_duplicate_rule() is expected


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("spark.conf.spark.hadoop.fs.s3a.secret.key=pa55word", "spark.conf"),
        ("spark.conf.spark.hadoop.fs.s3a.access.key=pa55word", "spark.conf"),
        (
            "spark.conf.spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net=pa55word",
            "spark.conf",
        ),
        ("warehouse.path=s3a://AKIA1:pa55word@bucket/wh", "warehouse.path"),
        ("source.path=s3a://AKIA1:pa55word@bucket/orders.parquet", "source.path"),
        ("report.path=abfss://user:pa55word@host/report", "report.path"),
    ],
)
def test_credentials_in_the_configuration_are_refused_without_repeating_them(
    tmp_path, override, key
):
    with pytest.raises(ConfigError) as error:
        loader.load(write_yaml(tmp_path, "source: {path: x}\n"), [override])

    assert f"{key}" in str(error.value)
    assert "credentials never go in the configuration" in str(error.value)
    assert "pa55word" not in str(error.value)


def test_an_at_sign_in_a_path_is_not_taken_for_credentials(tmp_path):
    cfg = loader.load(
        write_yaml(tmp_path, "source: {path: x}\n"), ["warehouse.path=s3a://bucket/team@2/wh"]
    )

    assert cfg.warehouse.path == "s3a://bucket/team@2/wh"


# ---------------------------------------------------------------------------------------------
# Spark Connect and tables by name


def test_a_remote_and_tables_by_name_load_with_their_keys(tmp_path):
    cfg = loader.load(
        write_yaml(tmp_path, "source: {path: x}\nspark: {master: null}\n"),
        [
            "spark.remote=sc://spark-host:15002",
            "warehouse.catalog=main",
            "warehouse.schema=customer-analytics_2",
            "spark.materialize=table",
        ],
    )

    assert cfg.spark.remote == "sc://spark-host:15002"
    assert (cfg.warehouse.catalog, cfg.warehouse.schema_) == ("main", "customer-analytics_2")
    assert cfg.spark.materialize == "table"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["warehouse.schema=a.b"], "warehouse.schema 'a.b' is not a name"),
        (["warehouse.schema=x`; DROP"], "is not a name"),
        (["warehouse.catalog=main"], "warehouse.catalog is set without warehouse.schema"),
        (["warehouse.schema=s", "warehouse.delta=deltalake"], "needs native Delta"),
        (["spark.master=local[2]", "spark.remote=sc://h:1"], "spark.master and spark.remote"),
        (["spark.materialize=disk"], "spark.materialize: Input should be"),
    ],
)
def test_bad_connect_and_catalog_settings_are_refused_before_spark_starts(
    tmp_path, overrides, message
):
    with pytest.raises(ConfigError, match=re.escape(message)):
        loader.load(write_yaml(tmp_path, "source: {path: x}\n"), overrides)


def test_a_remote_that_is_not_a_connect_url_is_refused_without_its_token(tmp_path):
    with pytest.raises(ConfigError) as error:
        loader.load(
            write_yaml(tmp_path, "source: {path: x}\n"),
            ["spark.remote=https://host:443/;token=dapi-secret"],
        )

    assert "--set spark.remote: a Spark Connect URL, sc://host:port" in str(error.value)
    assert "dapi-secret" not in str(error.value)


def test_remote_on_the_command_line_replaces_the_files_master(tmp_path):
    path = write_yaml(tmp_path, "source: {path: x}\nspark: {master: 'local[4]'}\n")
    args = cli.build_parser().parse_args(["ingest", "--conf", str(path), "--remote", "local[2]"])

    cfg = cli._load_config(args, [])

    assert (cfg.spark.remote, cfg.spark.master) == ("local[2]", None)


def test_hide_token_hides_every_token_of_a_connect_url():
    from customer_analytics.core.connect import hide_token

    assert hide_token("--remote sc://h:443/;token=abc;x-user=me") == (
        "--remote sc://h:443/;token=***;x-user=me"
    )
    assert hide_token("sc://h:443/;use_ssl=true;Token=abc") == "sc://h:443/;use_ssl=true;Token=***"
    assert hide_token("sc://h:15002") == "sc://h:15002"
