"""Tests of ltvkit.cac: spend and customers tables, attribution, segment table."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvkit.cac import (
    acquisitions,
    read_customers,
    read_spend,
    segment_by_acquisition_month,
    segment_table,
)
from ltvkit.errors import ConfigError, DataError, DataQualityWarning
from ltvkit.models import BGNBDModel, GammaGammaModel
from ltvkit.value import score_customers

EXAMPLES = Path(__file__).parents[1] / "examples"
BG_WEEKS = {"r": 0.242593, "alpha": 4.413532, "a": 0.792886, "b": 2.425752}
GG = {"p": 6.248802, "q": 3.744588, "v": 15.447748}


def _write(tmp_path, text: str, name: str = "spend.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def scored():
    """A hand-made scored table: LTVs chosen so each flag has a segment."""
    df = pd.DataFrame(
        {
            "segment": ["a", "a", "b", "b", "c", "d"],
            "first_purchase": pd.to_datetime(
                [
                    "1997-01-05",
                    "1997-02-10",
                    "1997-01-20",
                    "1997-01-21",
                    "1997-02-01",
                    "1997-03-03",
                ]
            ),
            "realised_margin": [10.0, 30.0, 40.0, 60.0, 5.0, 1.0],
            "clv": [10.0, 30.0, 20.0, 0.0, 5.0, 1.0],
        },
        index=pd.Index(["1", "2", "3", "4", "5", "6"], name="customer_id"),
    )
    df["ltv"] = df["realised_margin"] + df["clv"]
    df.attrs.update(observation_end="1997-06-30", time_unit="D", margin=1.0)
    return df


@pytest.fixture
def spend():
    # a: 2 customers, LTV 40 each -> CAC 50: unprofitable.
    # b: 2 customers, LTV 60 each -> CAC 30, ratio 2: below target.
    # c: 1 customer, LTV 10 -> CAC 2, ratio 5: profitable.
    # d: customers but no spend row; e: spend but no customers.
    return read_spend(
        pd.DataFrame(
            {"segment": ["a", "b", "c", "e"], "spend": [100.0, 60.0, 2.0, 500.0]}
        )
    )


# -- read_spend ----------------------------------------------------------------


def test_read_spend_file_with_periods(tmp_path):
    path = _write(
        tmp_path, "segment,spend,period,note\nads,1200.5,1997-01,x\nads,0,1997-02,\n"
    )
    got = read_spend(path)
    assert list(got.columns) == ["segment", "spend", "period"]
    assert got["spend"].tolist() == [1200.5, 0.0]
    assert got["period"].tolist() == ["1997-01", "1997-02"]


def test_read_spend_missing_columns(tmp_path):
    path = _write(tmp_path, "channel,cost\nads,10\n")
    with pytest.raises(
        DataError,
        match=r"lacks the column\(s\) segment, spend; it has channel, cost\. "
        r"Expected a header like 'segment,spend\[,period\]'",
    ):
        read_spend(path)


def test_read_spend_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"spend file .*nope.csv' does not exist"):
        read_spend(tmp_path / "nope.csv")


def test_read_spend_reports_every_problem_with_rows(tmp_path):
    path = _write(
        tmp_path,
        "segment,spend,period\n"
        "a,$100,1997-01\n"
        "b,-5,1997-01\n"
        "c,10,1997-13\n"
        ",10,1997-02\n"
        "a,20,1997-02\n"
        "a,30,1997-02\n",
    )
    with pytest.raises(DataError) as info:
        read_spend(path)
    message = str(info.value)
    assert "empty segment at rows 4" in message
    assert "spend is not a number at rows 1 ('$100')" in message
    assert "without currency signs" in message
    assert "spend is negative at rows 2" in message
    assert "period is not a month written YYYY-MM at rows 3 ('1997-13')" in message
    assert "repeated (segment, period) at rows 5, 6" in message
    assert "add the amounts up" in message


def test_read_spend_duplicate_segment_without_period():
    frame = pd.DataFrame({"segment": ["a", "a"], "spend": [1, 2]})
    with pytest.raises(DataError, match=r"repeated \(segment\) at rows 1, 2"):
        read_spend(frame)


def test_read_spend_empty_spend_is_not_a_number():
    frame = pd.DataFrame({"segment": ["a", "b"], "spend": [1.0, None]})
    with pytest.raises(DataError, match=r"spend is not a number at rows 2 \(''\)"):
        read_spend(frame)


def test_read_spend_rejects_other_objects():
    with pytest.raises(ConfigError, match=r"CSV path or a DataFrame; got int"):
        read_spend(3)


# -- read_customers ------------------------------------------------------------


def test_read_customers_reads_segments_and_dates(tmp_path):
    path = _write(
        tmp_path,
        "customer_id,segment,acquired_at\n7,ads,1997-01-02\n8,,\n",
        "customers.csv",
    )
    got = read_customers(path)
    assert got.index.tolist() == ["7", "8"]
    assert got.loc["7", "segment"] == "ads"
    assert pd.isna(got.loc["8", "segment"])
    assert got.loc["7", "acquired_at"] == pd.Timestamp("1997-01-02")
    assert pd.isna(got.loc["8", "acquired_at"])


def test_read_customers_errors(tmp_path):
    with pytest.raises(DataError, match=r"lacks the column\(s\) customer_id"):
        read_customers(pd.DataFrame({"id": [1], "segment": ["a"]}))
    with pytest.raises(DataError, match=r"neither a 'segment' nor an 'acquired_at'"):
        read_customers(pd.DataFrame({"customer_id": [1]}))
    frame = pd.DataFrame(
        {"customer_id": ["1", "1", ""], "acquired_at": ["1997-01-01", "soon", ""]}
    )
    with pytest.raises(DataError) as info:
        read_customers(frame)
    message = str(info.value)
    assert "empty customer_id at rows 3" in message
    assert "customer_id repeated at rows 1, 2 (1)" in message
    assert "acquired_at is not a date at rows 2 ('soon')" in message


# -- attribution ---------------------------------------------------------------


def test_segment_by_acquisition_month(scored):
    got = segment_by_acquisition_month(scored)
    assert got["segment"].tolist() == [
        "1997-01",
        "1997-02",
        "1997-01",
        "1997-01",
        "1997-02",
        "1997-03",
    ]
    assert scored["segment"].iloc[0] == "a"  # the input is left alone
    assert got.attrs["observation_end"] == "1997-06-30"
    with pytest.raises(DataError, match=r"no 'first_purchase' column"):
        segment_by_acquisition_month(scored.drop(columns="first_purchase"))


def test_acquisitions_from_log(scored):
    got = acquisitions(scored)
    assert got["segment"].tolist() == ["a", "a", "b", "b", "c", "d"]
    assert got["period"].tolist()[:2] == ["1997-01", "1997-02"]
    # 1997-01-05 to 1997-06-30 is 176 days.
    assert got.loc["1", "age_months"] == pytest.approx(176 / (365.25 / 12))


def test_acquisitions_customers_table_takes_precedence(scored, caplog):
    table = read_customers(
        pd.DataFrame(
            {
                "customer_id": ["1", "2", "99"],
                "segment": ["z", "", "q"],
                "acquired_at": ["1996-12-31", "", ""],
            }
        )
    )
    with caplog.at_level(logging.INFO, logger="ltvkit.cac"):
        got = acquisitions(scored, customers=table)
    assert got.loc["1", "segment"] == "z"
    assert got.loc["1", "period"] == "1996-12"
    assert got.loc["2", "segment"] == "a"  # empty cell: the log's segment
    assert got.loc["2", "period"] == "1997-02"
    assert "1 customers of the customers table have no purchase" in caplog.text


def test_acquisitions_without_segments_is_one_segment(scored):
    got = acquisitions(scored.drop(columns="segment"))
    assert set(got["segment"]) == {"all"}


def test_acquisitions_integer_ids_match_text_ids(scored):
    scored.index = pd.Index(range(1, 7), name="customer_id")
    table = read_customers(pd.DataFrame({"customer_id": ["3"], "segment": ["z"]}))
    assert acquisitions(scored, customers=table).loc[3, "segment"] == "z"


def test_acquisitions_errors_and_warnings(scored):
    with pytest.raises(DataError, match=r"No acquisition date for 6 customers"):
        acquisitions(scored.drop(columns="first_purchase"))
    table = read_customers(
        pd.DataFrame({"customer_id": ["1"], "acquired_at": ["1998-01-01"]})
    )
    with pytest.warns(DataQualityWarning, match=r"1 customers were acquired after"):
        acquisitions(scored, customers=table)


# -- segment_table -------------------------------------------------------------


def test_segment_table_arithmetic_and_flags(scored, spend):
    table = segment_table(scored, spend, target_ratio=3.0)
    assert table.index.tolist() == ["a", "b", "c", "d", "e"]
    assert table["customers_acquired"].tolist() == [2, 2, 1, 1, 0]
    np.testing.assert_allclose(table["cac"], [50.0, 30.0, 2.0, np.nan, np.nan])
    np.testing.assert_allclose(
        table["ltv_per_customer"], [40.0, 60.0, 10.0, 2.0, np.nan]
    )
    np.testing.assert_allclose(table["ltv_cac_ratio"], [0.8, 2.0, 5.0, np.nan, np.nan])
    assert table["flag"].tolist() == [
        "unprofitable",
        "below_target",
        "profitable",
        "no_spend_data",
        "no_new_customers",
    ]
    assert np.isnan(table.loc["d", "spend"])
    assert table.loc["e", "spend"] == 500.0
    # Without the models, payback is not computed.
    assert table["payback_months"].isna().all()
    assert table.attrs["target_ratio"] == 3.0


def test_segment_table_target_ratio_moves_the_flag(scored, spend):
    assert segment_table(scored, spend, target_ratio=1.5).loc["b", "flag"] == (
        "profitable"
    )
    assert segment_table(scored, spend, target_ratio=6).loc["c", "flag"] == (
        "below_target"
    )


def test_segment_table_zero_spend_is_profitable(scored):
    spend = read_spend(pd.DataFrame({"segment": ["c"], "spend": [0]}))
    row = segment_table(scored, spend).loc["c"]
    assert row["cac"] == 0.0
    assert row["ltv_cac_ratio"] == np.inf
    assert row["flag"] == "profitable"


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "x", True])
def test_segment_table_rejects_bad_target(scored, spend, bad):
    with pytest.raises(
        ConfigError, match=r"'target_ratio' parameter must be a number greater than 0"
    ):
        segment_table(scored, spend, target_ratio=bad)


def test_segment_table_by_period(scored):
    spend = read_spend(
        pd.DataFrame(
            {
                "segment": ["a", "a", "b"],
                "period": ["1997-01", "1997-02", "1997-02"],
                "spend": [10.0, 90.0, 7.0],
            }
        )
    )
    table = segment_table(scored, spend)
    assert table.index.names == ["segment", "period"]
    assert table.loc[("a", "1997-01"), "cac"] == 10.0
    assert table.loc[("a", "1997-02"), "cac"] == 90.0
    assert table.loc[("a", "1997-02"), "flag"] == "unprofitable"  # LTV 60 < 90
    assert table.loc[("b", "1997-01"), "flag"] == "no_spend_data"
    assert table.loc[("b", "1997-02"), "flag"] == "no_new_customers"
    # Summed over months on request.
    flat = segment_table(scored, spend, by_period=False)
    assert flat.loc["a", "cac"] == 50.0


def test_segment_table_option_errors(scored, spend):
    with pytest.raises(ConfigError, match=r"by_period=True needs a 'period' column"):
        segment_table(scored, spend, by_period=True)
    with pytest.raises(ConfigError, match=r"computed with margin=1.0, but margin=0.5"):
        segment_table(scored, spend, margin=0.5)
    with pytest.raises(DataError, match=r"lacks ltv; build it with"):
        segment_table(scored.drop(columns="ltv"), spend)


# -- with the models -------------------------------------------------------------


@pytest.fixture(scope="module")
def models():
    return BGNBDModel.from_params(BG_WEEKS), GammaGammaModel.from_params(GG)


@pytest.fixture
def weekly_scored(models):
    rng = np.random.default_rng(3)
    n = 300
    first = pd.Timestamp("1997-01-01") + pd.to_timedelta(rng.integers(0, 90, n), "D")
    end = pd.Timestamp("1997-09-30")
    T = ((end - first).days / 7).to_numpy(dtype=float)
    x = rng.poisson(1.5, n)
    rfm = pd.DataFrame(
        {
            "frequency": x,
            "recency": np.where(x > 0, T * rng.uniform(0.2, 1, n), 0.0),
            "T": T,
            "monetary_value": np.where(x > 0, rng.gamma(3, 12, n), 0.0),
            "first_purchase": first,
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )
    rfm["total_spend"] = (x + 1) * 30.0
    rfm.attrs.update(time_unit="W", observation_end=str(end.date()))
    rfm = segment_by_acquisition_month(rfm)
    return score_customers(rfm, *models, time_unit="W", margin=0.5)


def test_segment_table_payback_consistent_with_ratio(weekly_scored, models):
    ltv = weekly_scored.groupby("segment")["ltv"].mean()
    n = weekly_scored.groupby("segment").size()
    # CACs just below and just above each segment's LTV, and one far below.
    spend = read_spend(
        pd.DataFrame(
            {
                "segment": ltv.index,
                "spend": (n * ltv * np.array([0.99, 1.01, 0.3])).to_numpy(),
            }
        )
    )
    table = segment_table(
        weekly_scored,
        spend,
        purchase_model=models[0],
        spend_model=models[1],
        time_unit="W",
    )
    paid = table["payback_months"]
    assert np.isfinite(paid.iloc[0]) and np.isnan(paid.iloc[1])
    assert table["flag"].iloc[1] == "unprofitable"
    age = acquisitions(weekly_scored).groupby("segment")["age_months"].mean()
    # Near the LTV, payback comes late in the horizon; far below it, the
    # realised margin (mean 0.5 * 30 * (1 + 1.5)) may have paid already.
    assert age.iloc[0] < paid.iloc[0] <= age.iloc[0] + 12
    assert age.iloc[2] <= paid.iloc[2] < paid.iloc[0]


def test_cdnow_spend_example_reads():
    spend = read_spend(EXAMPLES / "cdnow_spend.csv")
    assert spend["segment"].tolist() == ["1997-01", "1997-02", "1997-03"]
    assert "period" not in spend


@pytest.mark.slow
def test_cdnow_spend_example_gives_three_different_flags(cdnow_master):
    import warnings

    from ltvkit import summarise

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        rfm = summarise(cdnow_master[["customer_id", "date", "amount"]], time_unit="W")
    rfm = segment_by_acquisition_month(rfm)
    bg = BGNBDModel().fit(rfm)
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    gg = GammaGammaModel().fit(repeat)
    scored = score_customers(rfm, bg, gg, time_unit="W")
    table = segment_table(
        scored,
        read_spend(EXAMPLES / "cdnow_spend.csv"),
        purchase_model=bg,
        spend_model=gg,
    )
    assert table["flag"].tolist() == ["unprofitable", "below_target", "profitable"]
