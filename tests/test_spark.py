"""The Spark engine gives the local engine's summaries, warnings and errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from ltvkit import read_transactions, summarise, summarise_calibration_holdout
from ltvkit.errors import ConfigError, DataError, DataQualityWarning
from ltvkit.spark import (
    local_spark_session,
    read_transactions_spark,
    score_spark,
    strptime_to_java,
    summarise_calibration_holdout_spark,
    summarise_spark,
    write_scores_spark,
)

pytestmark = pytest.mark.spark


@pytest.fixture(scope="session")
def spark():
    session = local_spark_session("ltvkit-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def cdnow_log(spark, cdnow_sample):
    log = read_transactions_spark(spark, cdnow_sample)
    # Every test reads it again; caching keeps the suite short.
    return log.cache()


def run_both(local_fn, spark_fn, local_data, spark_data, **options):
    """Both engines' results and warning messages on the same data."""
    with warnings.catch_warnings(record=True) as local_record:
        warnings.simplefilter("always")
        expected = local_fn(local_data, **options)
    with warnings.catch_warnings(record=True) as spark_record:
        warnings.simplefilter("always")
        got = spark_fn(spark_data, **options)
    messages = [
        [str(w.message) for w in record if issubclass(w.category, DataQualityWarning)]
        for record in (local_record, spark_record)
    ]
    return expected, got, messages


def assert_same_summary(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9, atol=1e-9)
    assert got.attrs == expected.attrs


def test_local_spark_session_binds_to_loopback(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.driver.host") == "127.0.0.1"
    assert conf.get("spark.ui.enabled") == "false"
    assert spark.sparkContext.master == "local[2]"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "8"


def test_strptime_to_java_translates_and_refuses_two_digit_years():
    assert strptime_to_java("%m/%d/%Y") == "M/d/yyyy"
    assert strptime_to_java("%d.%m.%Y %H:%M") == "d.M.yyyy H:m"
    assert strptime_to_java("%Y-%m-%dT%H:%M:%S") == "yyyy-M-d'T'H:m:s"
    with pytest.raises(ConfigError, match="uses %y"):
        strptime_to_java("%d/%m/%y")


@pytest.mark.parametrize(
    "options",
    [
        {"time_unit": "W"},
        {},
        {"period": "M"},
        {"period": "W", "observation_end": "1997-09-30"},
    ],
    ids=["weeks", "days", "months", "week-periods-to-sept"],
)
def test_summarise_spark_matches_local_on_cdnow_sample(
    cdnow_sample, cdnow_log, options
):
    expected, got, messages = run_both(
        summarise, summarise_spark, cdnow_sample, cdnow_log, **options
    )
    assert_same_summary(expected, got)
    assert messages[1] == messages[0]
    assert any("zero-amount rows were kept" in m for m in messages[1])


def test_summarise_calibration_holdout_spark_matches_local_on_cdnow(
    cdnow_sample, cdnow_log
):
    options = dict(
        calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="W"
    )
    expected, got, messages = run_both(
        summarise_calibration_holdout,
        summarise_calibration_holdout_spark,
        cdnow_sample,
        cdnow_log,
        **options,
    )
    assert_same_summary(expected, got)
    assert messages[1] == messages[0]
    # The published counts (Fader, Hardie and Lee 2005) hold on Spark too.
    assert (got["frequency_cal"] > 0).sum() == 946
    assert got["frequency_cal"].sum() == 2457
    assert got["frequency_holdout"].sum() == 1882


@pytest.fixture(scope="module")
def refund_case(spark, cases):
    """Case 03 read from its CSV file by both engines."""
    path = cases / "03-refund-negative-amounts" / "input.csv"
    return read_transactions(path), read_transactions_spark(spark, str(path))


def test_summarise_spark_nets_refunds_like_local(refund_case):
    expected, got, messages = run_both(
        summarise,
        summarise_spark,
        *refund_case,
        observation_end="2021-01-31",
        refunds="net",
    )
    assert_same_summary(expected, got)
    assert (
        messages[1]
        == messages[0]
        == [
            "1 zero-amount rows were kept as purchases; pass zero_amounts='drop' "
            "(--drop-zero-amounts) to drop them."
        ]
    )
    assert got.loc["1", "monetary_value"] == pytest.approx(0.0)


def test_summarise_spark_refunds_are_an_error_with_the_local_message(refund_case):
    local_log, spark_log = refund_case
    with pytest.raises(DataError) as local_error:
        summarise(local_log)
    with pytest.raises(
        DataError, match=r"2 rows with a negative amount.*refunds='net'"
    ) as spark_error:
        summarise_spark(spark_log)
    assert str(spark_error.value) == str(local_error.value)


@pytest.mark.parametrize("drop", [False, True], ids=["keep", "drop"])
def test_summarise_spark_duplicates_and_zeros_like_local(spark, cases, drop):
    path = cases / "01-same-day-duplicate-orders" / "input.csv"
    zero = pd.DataFrame(
        {"customer_id": ["B"], "timestamp": ["2021-01-12 10:00:00"], "amount": [0.0]}
    )
    frame = pd.concat(
        [pd.read_csv(path, dtype={"timestamp": str}), zero], ignore_index=True
    )
    options = dict(
        observation_end="2021-01-31",
        duplicates="drop" if drop else "keep",
        zero_amounts="drop" if drop else "keep",
    )
    expected, got, messages = run_both(
        summarise,
        summarise_spark,
        read_transactions(frame, date_col="timestamp"),
        read_transactions_spark(spark, frame, date_col="timestamp"),
        **options,
    )
    assert_same_summary(expected, got)
    assert messages[1] == messages[0]
    assert len(messages[1]) == 2


def test_summarise_spark_reads_formatted_dates_and_segments(spark):
    log = pd.DataFrame(
        {
            "id": ["a", "a", "a", "b", "b", "c"],
            "when": ["1/5/2021", "01/05/2021", "02/20/2021", "3/1/2021", "3/2/2021"]
            + ["12/31/2020"],
            "amount": ["10", "5.5", " 7 ", "1", "2", "-0.0"],
            "channel": ["seo", "ads", None, None, "mail", "ads"],
        }
    )
    columns = dict(customer_id_col="id", date_col="when", segment_col="channel")
    expected, got, messages = run_both(
        summarise,
        summarise_spark,
        read_transactions(log, date_format="%m/%d/%Y", **columns),
        read_transactions_spark(spark, log, date_format="%m/%d/%Y", **columns),
        time_unit="W",
    )
    assert_same_summary(expected, got)
    assert messages[1] == messages[0]
    # Ties on the first day go to the smallest segment; missing ones are skipped.
    assert got["segment"].tolist() == ["ads", "mail", "ads"]


def test_read_transactions_spark_reports_bad_rows_like_local(spark, cases):
    path = str(cases / "05-rfm-input-validation" / "transactions_missing_ids.csv")
    with pytest.raises(DataError) as local_error:
        read_transactions(path)
    with pytest.raises(
        DataError, match=r"2 rows with a missing customer id.*row 3.*row 5"
    ) as spark_error:
        read_transactions_spark(spark, path)
    assert str(spark_error.value) == str(local_error.value)
    with pytest.warns(DataQualityWarning, match=r"Dropped 2 of 5 rows \(37\.00"):
        log = read_transactions_spark(spark, path, invalid_rows="drop")
    assert log.count() == 3


def test_read_transactions_spark_bad_dates_and_amounts_are_counted(spark):
    log = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "date": ["2021-01-01", "2021-13-01", "2021-01-03", "2021-01-04"],
            "amount": ["1", "2", "abc", "NaN"],
        }
    )
    with pytest.raises(DataError) as local_error:
        read_transactions(log, date_format="%Y-%m-%d")
    with pytest.raises(DataError, match="3 of 4 rows") as spark_error:
        read_transactions_spark(spark, log, date_format="%Y-%m-%d")
    assert str(spark_error.value) == str(local_error.value)
    with pytest.raises(DataError, match="no amount column 'price'"):
        read_transactions_spark(spark, log, amount_col="price")


def test_summarise_spark_reports_refund_only_customers(spark):
    log = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "date": ["2021-01-01", "2021-01-02"],
            "amount": [5.0, -3.0],
        }
    )
    with pytest.warns(
        DataQualityWarning, match="1 customers have refunds but no purchase"
    ):
        rfm = summarise_spark(read_transactions_spark(spark, log), refunds="net")
    assert rfm.index.tolist() == ["a"]


def test_summarise_spark_collects_one_row_per_customer_only(
    monkeypatch, spark, cdnow_sample
):
    from pyspark.sql.classic.dataframe import DataFrame

    collected: list[int] = []
    to_pandas, collect = DataFrame.toPandas, DataFrame.collect

    def counting_to_pandas(self):
        out = to_pandas(self)
        collected.append(len(out))
        return out

    def counting_collect(self):
        out = collect(self)
        collected.append(len(out))
        return out

    monkeypatch.setattr(DataFrame, "toPandas", counting_to_pandas)
    monkeypatch.setattr(DataFrame, "collect", counting_collect)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        log = read_transactions_spark(spark, cdnow_sample)
        rfm = summarise_spark(log, time_unit="W")
    n_customers = cdnow_sample["customer_id"].nunique()
    assert len(rfm) == n_customers < len(cdnow_sample)
    # Counts come back as single rows; only the summary has one per customer.
    assert max(collected) == n_customers
    assert sorted(collected)[:-1] == [1] * (len(collected) - 1)


def test_read_transactions_spark_reads_parquet_tables_and_raw_frames(
    spark, cdnow_sample, tmp_path
):
    head = cdnow_sample.head(500)
    path = tmp_path / "log.parquet"
    head.to_parquet(path)
    expected = summarise(head, time_unit="W")
    from_file = summarise_spark(
        read_transactions_spark(spark, str(path)), time_unit="W"
    )
    assert_same_summary(expected, from_file)

    spark.read.parquet(str(path)).createOrReplaceTempView("ltvkit_test_log")
    from_table = read_transactions_spark(spark, "ltvkit_test_log")
    assert from_table.count() == len(head)
    # A raw frame with the default column names is read on the way in.
    raw = spark.table("ltvkit_test_log")
    assert_same_summary(expected, summarise_spark(raw, time_unit="W"))
    with pytest.raises(DataError, match="neither a file"):
        read_transactions_spark(spark, "no_such_table_or_file")


def test_read_transactions_spark_infers_day_first_dates_like_local(spark):
    log = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "date": ["13/01/2021", "02/03/2021", "05/01/2021"],
            "amount": [1.0, 2.0, 3.0],
        }
    )
    expected, got, _ = run_both(
        summarise,
        summarise_spark,
        read_transactions(log),
        read_transactions_spark(spark, log),
    )
    assert_same_summary(expected, got)
    assert got.loc["a", "recency"] == 48.0  # 13 January to 2 March
    ambiguous = log.assign(date=["01/02/2021", "03/04/2021", "05/06/2021"])
    with pytest.raises(DataError) as local_error:
        read_transactions(ambiguous)
    with pytest.raises(DataError, match="day-first or month-first") as spark_error:
        read_transactions_spark(spark, ambiguous)
    assert str(spark_error.value) == str(local_error.value)


@pytest.fixture(scope="module")
def cdnow_weekly(cdnow_sample, cdnow_log):
    """The local and the Spark weekly summaries of the CDNOW sample."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return summarise(cdnow_sample, time_unit="W"), summarise_spark(
            cdnow_log, time_unit="W"
        )


def test_score_spark_matches_local_scores_on_cdnow(spark, cdnow_weekly, tmp_path):
    from ltvkit.models import BGNBDModel, GammaGammaModel
    from ltvkit.value import score_customers

    local_rfm, spark_rfm = cdnow_weekly
    purchase = BGNBDModel().fit(local_rfm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the frequency-spend correlation check
        spend = GammaGammaModel().fit(local_rfm)
    options = dict(
        time_unit="W", horizon_months=12, margin=0.3, annual_discount_rate=0.1
    )
    expected = score_customers(local_rfm, purchase, spend, **options)

    scores = score_spark(spark_rfm, purchase, spend, spark=spark, **options)
    path = write_scores_spark(scores, tmp_path / "scores")
    written = spark.read.parquet(path).toPandas().set_index("customer_id")
    # Spark keeps first_purchase as a date; the local frame has datetimes.
    written["first_purchase"] = pd.to_datetime(written["first_purchase"])
    assert written.index.is_monotonic_increasing
    assert len(written) == len(expected)
    pd.testing.assert_frame_equal(
        written,
        expected,
        rtol=1e-9,
        atol=1e-9,
        check_index_type=False,
        check_dtype=False,
    )


def test_score_spark_takes_a_spark_summary_and_checks_options_first(
    spark, cdnow_weekly
):
    from ltvkit.models import BGNBDModel, GammaGammaModel

    _, spark_rfm = cdnow_weekly
    purchase = BGNBDModel.from_params({"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43})
    spend = GammaGammaModel.from_params({"p": 6.25, "q": 3.74, "v": 15.44})
    sdf = spark.createDataFrame(spark_rfm.reset_index()).repartition(3)
    scores = score_spark(sdf, purchase, spend, time_unit="W", horizon_months=6)
    frame = scores.toPandas().set_index("customer_id").sort_index()
    assert frame.index.tolist() == spark_rfm.index.tolist()
    assert frame["p_alive"].between(0, 1).all()
    assert (frame["horizon_months"] == 6).all()
    with pytest.raises(ConfigError, match="time_unit"):
        score_spark(spark_rfm, purchase, spend, time_unit="D", spark=spark)


@pytest.mark.spark
def test_cli_spark_engine_gives_the_local_scored_list(spark, tmp_path):
    from click.testing import CliRunner

    from ltvkit.cli import main

    def run(*args):
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    log = tmp_path / "sim.parquet"
    run("simulate", "--customers", "2000", "--seed", "5", "--out", str(log))
    common = ["-t", str(log), "--segment-col", "segment"]
    for engine in ("local", "spark"):
        run(
            "train",
            *common,
            "--engine",
            engine,
            "--time-unit",
            "W",
            "--no-backtest",
            "--no-regressor",
            "--out",
            str(tmp_path / f"m_{engine}"),
        )
        run(
            "score",
            "-m",
            str(tmp_path / f"m_{engine}"),
            *common,
            "--engine",
            engine,
            "--out",
            str(tmp_path / f"s_{engine}.parquet"),
        )
    params = [
        json.loads((tmp_path / f"m_{e}" / "purchase_model.json").read_text())["params"]
        for e in ("local", "spark")
    ]
    for name in params[0]:
        assert params[1][name] == pytest.approx(params[0][name], rel=1e-9)
    local = pd.read_parquet(tmp_path / "s_local.parquet")
    distributed = pd.read_parquet(tmp_path / "s_spark.parquet")  # a folder of parts
    distributed = distributed.set_index("customer_id")
    distributed.index = distributed.index.astype(local.index.dtype)
    distributed = distributed.sort_index()
    assert len(distributed) == len(local) == 2000
    for column in ("p_alive", "expected_purchases", "expected_spend", "clv", "ltv"):
        np.testing.assert_allclose(
            distributed[column].to_numpy(), local[column].to_numpy(), rtol=1e-9
        )


@pytest.mark.spark
def test_read_transactions_spark_names_missing_columns(spark):
    frame = pd.DataFrame({"cust": ["a"], "date": ["2021-01-01"], "amount": ["1"]})
    with pytest.raises(DataError, match=r"no customer id column 'customer_id'.*cust"):
        read_transactions_spark(spark, frame)
