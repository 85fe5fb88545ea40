"""RFM summaries: occasion rules, refunds, periods, calibration/holdout."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from ltvkit import read_transactions, summarise, summarise_calibration_holdout
from ltvkit.errors import ConfigError, DataError, DataQualityWarning


def frame(rows, columns=("customer_id", "date", "amount")):
    return pd.DataFrame(rows, columns=list(columns))


def test_summarise_same_day_orders_are_one_occasion(cases):
    # Case 01: several orders on one day, and exact duplicate rows.
    tx = read_transactions(
        cases / "01-same-day-duplicate-orders" / "input.csv", date_col="timestamp"
    )
    with pytest.warns(DataQualityWarning, match="2 rows are exact duplicates"):
        rfm = summarise(tx, observation_end="2021-01-31")
    expected = pd.DataFrame(
        {
            "frequency": [1, 0, 2],
            "recency": [14.0, 0.0, 12.0],
            "T": [25.0, 21.0, 28.0],
            "monetary_value": [20.0, 0.0, 5.0],
        },
        index=pd.Index(["A", "B", "C"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(rfm[expected.columns], expected, atol=1e-9)
    repeat = rfm[rfm["frequency"] > 0]
    assert (repeat["frequency"] <= repeat["recency"]).all()


def test_summarise_drops_duplicates_on_request(cases):
    tx = read_transactions(
        cases / "01-same-day-duplicate-orders" / "input.csv", date_col="timestamp"
    )
    with pytest.warns(DataQualityWarning, match="2 rows .* dropped"):
        rfm = summarise(tx, observation_end="2021-01-31", duplicates="drop")
    # A's day-one total drops from 40 to 25; the repeat occasion is unchanged.
    assert rfm.loc["A", "total_spend"] == pytest.approx(45.0)
    assert rfm.loc["B", "n_transactions"] == 1


def test_summarise_string_dates_give_the_same_result_as_typed_dates(cases):
    # Case 02: the observation end is the latest date, not the largest string.
    path = cases / "02-string-dates-lexicographic-max" / "input.csv"
    from_strings = summarise(read_transactions(path, date_format="%m/%d/%Y"))
    typed = pd.read_csv(path, dtype={"customer_id": str})
    typed["date"] = pd.to_datetime(typed["date"], format="%m/%d/%Y")
    from_dates = summarise(typed)
    pd.testing.assert_frame_equal(from_strings, from_dates)
    assert from_strings.attrs["observation_end"] == "2026-01-20"
    expected = pd.DataFrame(
        {
            "frequency": [2, 1],
            "recency": [75.0, 66.0],
            "T": [80.0, 66.0],
            "monetary_value": [65.0, 30.0],
        },
        index=pd.Index(["1", "2"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(from_strings[expected.columns], expected)


def test_summarise_calibration_holdout_with_string_dates(cases):
    path = cases / "02-string-dates-lexicographic-max" / "input.csv"
    tx = read_transactions(path, date_format="%m/%d/%Y")
    split = summarise_calibration_holdout(tx, calibration_end="12/31/2025")
    assert split["frequency_holdout"].tolist() == [1, 1]
    assert split["duration_holdout"].tolist() == [20.0, 20.0]


def test_summarise_refunds_are_an_error_by_default(cases):
    # Case 03: refunds must not become repeat purchases silently.
    tx = read_transactions(cases / "03-refund-negative-amounts" / "input.csv")
    with pytest.raises(
        DataError, match=r"2 rows with a negative amount.*refunds='net'"
    ):
        summarise(tx, observation_end="2021-01-31")


def test_summarise_netted_refunds_are_never_occasions(cases):
    tx = read_transactions(cases / "03-refund-negative-amounts" / "input.csv")
    with pytest.warns(DataQualityWarning, match="1 zero-amount rows"):
        rfm = summarise(tx, observation_end="2021-01-31", refunds="net")
    assert rfm["frequency"].tolist() == [1, 1, 1]
    assert rfm["recency"].tolist() == [9.0, 15.0, 13.0]
    # Customer 2's same-day purchase and refund cancel; realised spend is 30.
    assert rfm.loc["2", "total_spend"] == pytest.approx(30.0)
    assert rfm.loc["2", "first_purchase"] == pd.Timestamp("2021-01-05")
    # Customer 1's refund cancels the repeat purchase it follows.
    assert rfm.loc["1", "monetary_value"] == pytest.approx(0.0)
    assert rfm.loc["1", "total_spend"] == pytest.approx(100.0)


def test_summarise_zero_amount_rows_can_be_dropped(cases):
    tx = read_transactions(cases / "03-refund-negative-amounts" / "input.csv")
    with pytest.warns(DataQualityWarning, match="1 zero-amount rows were dropped"):
        rfm = summarise(
            tx, observation_end="2021-01-31", refunds="net", zero_amounts="drop"
        )
    assert rfm.loc["3", ["frequency", "recency"]].tolist() == [0, 0.0]


def test_summarise_refund_only_customers_are_reported():
    log = frame([("a", "2021-01-01", 5.0), ("b", "2021-01-02", -3.0)])
    with pytest.warns(
        DataQualityWarning, match="1 customers have refunds but no purchase"
    ):
        rfm = summarise(log, refunds="net")
    assert rfm.index.tolist() == ["a"]


def test_summarise_calibration_holdout_monetary_uses_period_totals(cases):
    # Case 04: holdout spend per occasion is comparable with frequency_holdout.
    tx = read_transactions(cases / "04-holdout-monetary-semantics" / "input.csv")
    split = summarise_calibration_holdout(
        tx, calibration_end="2019-04-30", observation_end="2019-06-10"
    )
    assert split["frequency_cal"].tolist() == [1, 0]
    assert split["monetary_value_cal"].tolist() == [50.0, 0.0]
    assert split["frequency_holdout"].tolist() == [2, 1]
    assert split["monetary_value_holdout"].tolist() == [30.0, 12.0]
    total = split["monetary_value_holdout"] * split["frequency_holdout"]
    np.testing.assert_allclose(total, split["spend_holdout"])
    np.testing.assert_allclose(split["spend_holdout"], [60.0, 12.0])


def test_summarise_cdnow_sample_matches_the_published_counts(cdnow_sample):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        split = summarise_calibration_holdout(
            cdnow_sample,
            calibration_end="1997-09-30",
            observation_end="1998-06-30",
            time_unit="W",
        )
    assert len(split) == 2357
    assert (split["frequency_cal"] > 0).sum() == 946
    assert split["frequency_cal"].sum() == 2457
    assert split["frequency_holdout"].sum() == 1882
    assert split["duration_holdout"].iloc[0] == pytest.approx(39.0)
    assert split["spend_holdout"].sum() == pytest.approx(70976.39, abs=0.01)


def test_summarise_cdnow_warns_with_zero_and_duplicate_counts(cdnow_master):
    with pytest.warns(DataQualityWarning) as record:
        summarise(cdnow_master)
    text = " ".join(str(w.message) for w in record)
    assert "80 zero-amount rows" in text
    assert "255 rows are exact duplicates" in text


def test_summarise_matches_lifetimes_on_cdnow(cdnow_master):
    from lifetimes.utils import summary_data_from_transaction_data

    ref = summary_data_from_transaction_data(
        cdnow_master, "customer_id", "date", "amount", freq="D"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        ours = summarise(cdnow_master)
    cols = ["frequency", "recency", "T", "monetary_value"]
    pd.testing.assert_frame_equal(
        ours[cols], ref[cols].astype({"frequency": "int64"}), check_names=False
    )


def test_summarise_weeks_rescale_days_without_merging():
    log = frame(
        [("a", "2021-01-04", 1.0), ("a", "2021-01-05", 1.0), ("a", "2021-01-18", 1.0)]
    )
    rfm = summarise(log, time_unit="W", observation_end="2021-01-25")
    assert rfm.loc["a", "frequency"] == 2
    assert rfm.loc["a", "recency"] == pytest.approx(14 / 7)
    assert rfm.loc["a", "T"] == pytest.approx(21 / 7)


def test_summarise_calendar_periods_merge_purchases():
    log = frame(
        [
            ("a", "2021-01-04", 1.0),  # Monday
            ("a", "2021-01-10", 2.0),  # Sunday, same week
            ("a", "2021-01-11", 4.0),  # next Monday
            ("a", "2021-03-31", 8.0),
        ]
    )
    weekly = summarise(log, period="W", observation_end="2021-04-01")
    assert weekly.loc["a", ["frequency", "recency", "T"]].tolist() == [2, 12.0, 12.0]
    assert weekly.loc["a", "monetary_value"] == pytest.approx(6.0)
    monthly = summarise(log, period="M", observation_end="2021-04-01")
    assert monthly.loc["a", ["frequency", "recency", "T"]].tolist() == [1, 2.0, 3.0]
    assert monthly.loc["a", "monetary_value"] == pytest.approx(8.0)
    quarterly = summarise(log, period="Q")
    assert quarterly.loc["a", ["frequency", "recency", "T"]].tolist() == [0, 0.0, 0.0]
    assert monthly.attrs["time_unit"] == "M"


def test_summarise_rows_after_the_observation_end_are_left_out(caplog):
    log = frame([("a", "2021-01-01", 1.0), ("a", "2021-02-01", 2.0)])
    with caplog.at_level("INFO", logger="ltvkit.summary"):
        rfm = summarise(log, observation_end="2021-01-15")
    assert rfm.loc["a", "frequency"] == 0
    assert "left out 1 rows dated after 2021-01-15" in caplog.text


def test_summarise_segment_is_taken_from_the_first_purchase():
    log = frame(
        [("a", "2021-01-02", 1.0, "ads"), ("a", "2021-01-01", 1.0, "seo")],
        columns=("customer_id", "date", "amount", "channel"),
    )
    rfm = summarise(read_transactions(log, segment_col="channel"))
    assert rfm.loc["a", "segment"] == "seo"


def test_summarise_option_errors_name_the_allowed_values():
    log = frame([("a", "2021-01-01", 1.0)])
    with pytest.raises(ConfigError, match="time_unit must be one of H, D, W, M, Q"):
        summarise(log, time_unit="ME")
    with pytest.raises(ConfigError, match="period must be one of"):
        summarise(log, period="Y")
    with pytest.raises(ConfigError, match="time_unit must be 'W' too"):
        summarise(log, period="W", time_unit="D")
    with pytest.raises(ConfigError, match="refunds must be one of"):
        summarise(log, refunds="drop")
    with pytest.raises(ConfigError, match="observation_end must be a date"):
        summarise(log, observation_end="soon")


def test_summarise_observation_end_before_first_purchase_is_an_error():
    log = frame([("a", "2021-01-10", 1.0)])
    with pytest.raises(DataError, match="before the first transaction"):
        summarise(log, observation_end="2021-01-01")


def test_summarise_calibration_end_after_observation_end_is_an_error():
    log = frame([("a", "2021-01-01", 1.0), ("a", "2021-01-10", 1.0)])
    with pytest.raises(DataError, match="must be before the observation end"):
        summarise_calibration_holdout(log, calibration_end="2021-02-01")
    with pytest.raises(DataError, match="calibration period is empty"):
        summarise_calibration_holdout(log, calibration_end="2020-12-01")


def test_summarise_case_params_files_are_valid_json(cases):
    for path in cases.glob("*/params.json"):
        assert isinstance(json.loads(path.read_text()), dict)


def test_summarise_weeks_before_1970_are_whole_weeks():
    # 1969-12-22 and 1969-12-28 are Monday and Sunday of one week.
    log = frame(
        [
            ("a", "1969-12-22", 1.0),
            ("a", "1969-12-28", 2.0),
            ("a", "1970-01-01", 4.0),
            ("a", "1970-01-05", 8.0),
        ]
    )
    weekly = summarise(log, period="W")
    assert weekly.loc["a", ["frequency", "recency", "T"]].tolist() == [2, 2.0, 2.0]
    assert weekly["n_transactions"].dtype == "int64"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"refunds": "net", "zero_amounts": "drop", "duplicates": "drop"},
        {"period": "W", "refunds": "net"},
    ],
)
@pytest.mark.parametrize("ids", ["int", "str"])
def test_summarise_in_several_passes_gives_the_one_pass_result(
    monkeypatch, options, ids
):
    # Large logs are summarised one range of customer ids at a time; the
    # ranges must add up to the same frame and the same warnings, whatever
    # the row rules and the type of the ids.
    import ltvkit.summary as summary

    rng = np.random.default_rng(3)
    n = 3000
    customer = rng.integers(-50, 400, n)
    log = frame(
        {
            "customer_id": customer
            if ids == "int"
            else np.array([f"c'{c}é" for c in customer], dtype=object),
            "date": pd.Timestamp("2020-01-01")
            + pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
            "amount": np.round(rng.gamma(2.0, 20.0, n), 2),
        }
    )
    log.loc[rng.choice(n, 40, replace=False), "amount"] = 0.0
    log.loc[rng.choice(n, 60, replace=False), "amount"] *= -0.5
    log["segment"] = np.where(customer % 3 == 0, "paid", "organic")
    log = pd.concat([log, log.iloc[rng.choice(n, 30, replace=False)]])
    tx = read_transactions(log, segment_col="segment")
    if options.get("refunds") != "net":
        tx = read_transactions(log[log["amount"] >= 0], segment_col="segment")

    def run():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rfm = summarise(tx, observation_end="2020-12-31", **options)
        return rfm, sorted(str(w.message) for w in caught)

    one, one_warnings = run()
    monkeypatch.setattr(summary, "ROWS_PER_PASS", 300)
    end = pd.Timestamp("2020-12-31")
    assert len(summary._range_bounds(tx, end, tx.n_rows)) > 5
    several, several_warnings = run()
    pd.testing.assert_frame_equal(several, one, check_exact=True)
    assert several_warnings == one_warnings
    assert any("exact duplicates" in w for w in one_warnings)


@pytest.mark.parametrize("zero_amounts", ["keep", "drop"])
def test_summarise_counts_exact_duplicates_in_crowded_days(zero_amounts):
    # Many rows per customer and day, with copies in twos, threes and more,
    # and rows that differ in the amount only: the count is that of pandas.
    rng = np.random.default_rng(11)
    n = 600
    log = frame(
        {
            "customer_id": rng.integers(0, 40, n),
            "date": pd.Timestamp("2022-03-01")
            + pd.to_timedelta(rng.integers(0, 6, n), unit="D"),
            "amount": rng.choice([0.0, 5.0, 7.5, 10.0], n),
        }
    )
    copies = log.iloc[rng.choice(n, 150)]
    log = pd.concat([log, copies, copies.iloc[:40], copies.iloc[:10]])
    expected = int(log.duplicated().sum())
    assert expected > 150
    with pytest.warns(DataQualityWarning, match=f"^{expected} rows are exact dup"):
        summarise(read_transactions(log), zero_amounts=zero_amounts)


@pytest.mark.parametrize("scale", [1.0, 1e12])
def test_summarise_sums_money_exactly_at_any_size(scale):
    # Amounts are summed in millionths as integers; logs whose sums could
    # outgrow 64 bits are summed in 128 bits, exactly all the same.
    from decimal import Decimal

    cents = [1999, 1, 250_000, 7]
    log = frame(
        {
            "customer_id": [1, 1, 1, 2],
            "date": ["2021-01-01", "2021-01-01", "2021-02-01", "2021-02-03"],
            "amount": [c / 100 * scale for c in cents],
        }
    )
    rfm = summarise(log)
    exact = [Decimal(repr(c / 100 * scale)) for c in cents]
    assert rfm.loc[1, "total_spend"] == float(exact[0] + exact[1] + exact[2])
    assert rfm.loc[1, "monetary_value"] == float(exact[2])
    assert rfm.loc[2, "total_spend"] == float(exact[3])


@pytest.mark.parametrize("period", ["D", "W", "M"])
def test_summaries_by_sorting_and_by_grouping_agree(monkeypatch, period):
    # Logs without refunds are summarised by sorting their rows; the SQL
    # grouping (used when money sums need 128 bits) must give the same
    # frame and warnings: ties in time, copies, missing segments and all.
    import ltvkit.summary as summary

    rng = np.random.default_rng(21)
    n = 4000
    log = frame(
        {
            "customer_id": rng.integers(0, 500, n),
            "date": pd.Timestamp("2021-01-01")
            + pd.to_timedelta(rng.integers(0, 200, n), unit="D")
            + pd.to_timedelta(rng.choice([0, 0, 3600], n), unit="s"),
            "amount": rng.choice([0.0, 1.5, 12.25, 40.0], n),
        }
    )
    log["segment"] = rng.choice(np.array(["a", "b", None], dtype=object), n)
    log = pd.concat([log, log.iloc[rng.choice(n, 300)], log.iloc[:20]])
    tx = read_transactions(log, segment_col="segment")

    def run():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rfm = summarise(tx, period=period, time_unit=period)
        return rfm, sorted(str(w.message) for w in caught)

    by_sorting, sorting_warnings = run()
    monkeypatch.setattr(summary._RowCounts, "money_type", "HUGEINT")
    by_grouping, grouping_warnings = run()
    pd.testing.assert_frame_equal(by_sorting, by_grouping, check_exact=True)
    assert sorting_warnings == grouping_warnings
    assert any("exact duplicates" in w for w in sorting_warnings)


def test_summary_by_sorting_of_no_rows_is_empty_with_the_columns():
    # A range of customer ids can hold no rows at all.
    import ltvkit.summary as summary

    tx = read_transactions(
        frame({"customer_id": [1, 2], "date": ["2020-01-01"] * 2, "amount": [1.0, 2.0]})
    )
    none = summary._customers_by_sorting(
        tx.connection, f"SELECT * FROM {tx.view} WHERE FALSE", "D", 10
    )
    both = summary._customers_by_sorting(
        tx.connection, f"SELECT * FROM {tx.view}", "D", 10
    )
    assert none.num_rows == 0 and both.num_rows == 2
    assert none.schema == both.schema
