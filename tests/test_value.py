"""Tests of ltvkit.value: CLV over a horizon of calendar months, scoring, payback."""

from __future__ import annotations

import json
import logging
import warnings

import mpmath
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltvkit.errors import ConfigError, DataError
from ltvkit.models import BGNBDModel, GammaGammaModel
from ltvkit.value import (
    DAYS_PER_MONTH,
    PurchaseCurves,
    clv,
    expected_monthly_margin,
    month_weights,
    payback_months,
    score_customers,
)

# CDNOW-like parameters in weeks (case 07).
BG_WEEKS = {"r": 0.242593, "alpha": 4.413532, "a": 0.792886, "b": 2.425752}
GG = {"p": 6.248802, "q": 3.744588, "v": 15.447748}


class LinearPurchases:
    """A made-up purchase model: ``rate`` purchases per time unit, for ever."""

    def __init__(self, rate: float):
        self.rate = rate

    def conditional_probability_alive(self, frequency, recency, T):
        return np.ones_like(np.asarray(frequency, dtype=float))

    def conditional_expected_purchases(self, t, frequency, recency, T):
        return self.rate * np.asarray(t) + 0 * np.asarray(frequency)


class FixedSpend:
    def __init__(self, spend: float):
        self.spend = spend

    def conditional_expected_spend(self, frequency, monetary_value):
        return self.spend + 0 * np.asarray(frequency, dtype=float)


@pytest.fixture(scope="module")
def bg():
    return BGNBDModel.from_params(BG_WEEKS)


@pytest.fixture(scope="module")
def gg():
    return GammaGammaModel.from_params(GG)


@pytest.fixture
def rfm():
    df = pd.DataFrame(
        {
            "frequency": [2, 0, 7, 3],
            "recency": [30.43, 0.0, 29.43, 20.0],
            "T": [38.86, 38.86, 38.86, 30.0],
            "monetary_value": [22.35, 0.0, 73.74, -4.0],
            "total_spend": [60.0, 12.0, 540.0, 3.0],
            "first_purchase": pd.to_datetime(
                ["1997-01-03", "1997-01-03", "1997-01-03", "1997-03-01"]
            ),
            "segment": ["a", "b", "a", "b"],
        },
        index=pd.Index(["c1", "c2", "c6", "c9"], name="customer_id"),
    )
    df.attrs.update(time_unit="W", period="D", observation_end="1997-09-30")
    return df


# -- the arithmetic ------------------------------------------------------------


def test_clv_hand_arithmetic_linear_model():
    # 2 purchases a day, 5 per purchase, 40% margin, 10% a year: each month
    # brings 2 * 30.4375 purchases, discounted from the month's end.
    value = clv(
        LinearPurchases(2.0),
        FixedSpend(5.0),
        [1],
        [1.0],
        [3.0],
        [5.0],
        time_unit="D",
        horizon_months=3,
        margin=0.4,
        annual_discount_rate=0.10,
    )
    month = 0.4 * 5.0 * 2.0 * 30.4375
    expected = (
        month / 1.1 ** (1 / 12) + month / 1.1 ** (2 / 12) + month / 1.1 ** (3 / 12)
    )
    assert value == pytest.approx([expected], rel=1e-12)


def test_clv_horizon_in_calendar_months_for_weekly_model():
    # One purchase a week: 12 months are 52.18 weeks, not 12 weeks or 360 days.
    value = clv(
        LinearPurchases(1.0),
        FixedSpend(1.0),
        [0],
        [0.0],
        [1.0],
        [0.0],
        time_unit="W",
        annual_discount_rate=0.0,
    )
    assert value == pytest.approx([365.25 / 7], rel=1e-12)


def _bgnbd_expected_purchases_mp(t, x, tx, T, r, alpha, a, b):
    """E[N(t) | x, tx, T] of the BG/NBD model (Fader, Hardie & Lee 2005,
    'Counting your customers the easy way', eq. 10), in mpmath."""
    t, x, tx, T = (mpmath.mpf(v) for v in (t, x, tx, T))
    z = t / (alpha + T + t)
    hyp = mpmath.hyp2f1(r + x, b + x, a + b + x - 1, z)
    num = (
        (a + b + x - 1)
        / (a - 1)
        * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    )
    den = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return num / den


@pytest.mark.parametrize(
    "x, tx, T, m", [(0, 0.0, 38.86, 0.0), (2, 30.43, 38.86, 22.35)]
)
def test_clv_one_customer_matches_closed_form(bg, gg, x, tx, T, m):
    # CLV by hand: the closed forms of BG/NBD and Gamma-Gamma evaluated in
    # mpmath, summed month by month with the discount of the month's end.
    r, alpha, a, b = (BG_WEEKS[k] for k in ("r", "alpha", "a", "b"))
    p, q, v = GG["p"], GG["q"], GG["v"]
    spend = (p * (v + x * m)) / (p * x + q - 1)  # Fader, Hardie & Lee (2005b), eq. 5
    d = 0.10
    margin = 0.3
    total, previous = 0.0, 0.0
    for k in range(1, 7):
        cum = float(
            _bgnbd_expected_purchases_mp(
                k * DAYS_PER_MONTH / 7, x, tx, T, r, alpha, a, b
            )
        )
        total += margin * spend * (cum - previous) / (1 + d) ** (k / 12)
        previous = cum
    value = clv(
        bg,
        gg,
        [x],
        [tx],
        [T],
        [m],
        time_unit="W",
        horizon_months=6,
        margin=margin,
        annual_discount_rate=d,
    )
    assert value == pytest.approx([total], rel=1e-9)


def test_clv_chunks_do_not_change_the_result(bg, gg, rfm):
    args = (rfm["frequency"], rfm["recency"], rfm["T"], rfm["monetary_value"].abs())
    whole = clv(bg, gg, *args, time_unit="W")
    chunked = clv(bg, gg, *args, time_unit="W", chunk_size=1)
    np.testing.assert_allclose(chunked, whole, rtol=1e-14)


def test_expected_monthly_margin_sums_to_clv(bg, gg, rfm):
    args = (rfm["frequency"], rfm["recency"], rfm["T"], rfm["monetary_value"].abs())
    options = dict(time_unit="W", horizon_months=18, margin=0.5)
    monthly = expected_monthly_margin(bg, gg, *args, **options)
    assert monthly.shape == (18, 4)
    assert (monthly >= 0).all()
    np.testing.assert_allclose(monthly.sum(axis=0), clv(bg, gg, *args, **options))

    grouped = expected_monthly_margin(
        bg, gg, *args, groups=[0, 1, 0, 1], chunk_size=3, **options
    )
    np.testing.assert_allclose(grouped[:, 0], monthly[:, [0, 2]].sum(axis=1))
    np.testing.assert_allclose(grouped[:, 1], monthly[:, [1, 3]].sum(axis=1))


@settings(max_examples=40, deadline=None)
@given(
    x=st.integers(0, 30),
    share=st.floats(0, 1),
    T=st.floats(1, 100),
    m=st.floats(1, 500),
    horizon=st.integers(1, 36),
)
def test_clv_undiscounted_is_spend_times_purchases(x, share, T, m, horizon):
    bg = BGNBDModel.from_params(BG_WEEKS)
    gg = GammaGammaModel.from_params(GG)
    tx = share * T if x > 0 else 0.0
    value = clv(
        bg,
        gg,
        [x],
        [tx],
        [T],
        [m],
        time_unit="W",
        horizon_months=horizon,
        annual_discount_rate=0.0,
    )
    t = np.array([[horizon * DAYS_PER_MONTH / 7]])
    purchases = bg.conditional_expected_purchases(t, np.array([x]), [tx], [T])
    spend = gg.conditional_expected_spend(np.array([x]), np.array([m]))
    assert value[0] == pytest.approx(float(np.ravel(purchases)[0] * spend[0]), rel=1e-9)
    discounted = clv(bg, gg, [x], [tx], [T], [m], time_unit="W", horizon_months=horizon)
    assert 0 <= discounted[0] <= value[0]


# -- case 07: the horizon does not depend on the time unit --------------------


@pytest.fixture(scope="module")
def case07(cases):
    folder = cases / "07-clv-time-unit-consistency"
    params = json.loads((folder / "params.json").read_text())
    return pd.read_csv(folder / "input.csv"), params


def _case07_clv(case07, unit, annual_discount_rate):
    df, params = case07
    scale = {"W": 1.0, "D": 7.0, "H": 168.0}[unit]
    bgp = dict(params["bgnbd_weeks"], alpha=params["bgnbd_weeks"]["alpha"] * scale)
    return clv(
        BGNBDModel.from_params(bgp),
        GammaGammaModel.from_params(params["gamma_gamma"]),
        df["frequency"],
        df["recency_weeks"] * scale,
        df["T_weeks"] * scale,
        df["monetary_value"],
        time_unit=unit,
        horizon_months=12,
        annual_discount_rate=annual_discount_rate,
    )


@pytest.mark.parametrize("monthly_rate", [0.0, 0.01])
def test_clv_case07_same_value_in_weeks_days_hours(case07, monthly_rate):
    # The case gives a monthly rate; ours is annual, applied as (1 + d)^(k/12).
    annual = (1 + monthly_rate) ** 12 - 1
    weeks = _case07_clv(case07, "W", annual)
    for unit in ("D", "H"):
        ratio = weeks / _case07_clv(case07, unit, annual)
        np.testing.assert_allclose(ratio, 1.0, atol=1e-3)


def test_clv_case07_undiscounted_is_one_year_of_365_25_days(case07):
    reference = [38.5405, 4.9294, 300.8849]
    for unit in ("W", "D", "H"):
        np.testing.assert_allclose(_case07_clv(case07, unit, 0.0), reference, rtol=2e-3)


@pytest.mark.parametrize("unit", ["ME", "Q?", "month", None])
def test_clv_unsupported_unit_lists_supported_units(bg, gg, unit):
    with pytest.raises(ValueError, match=r"time_unit must be one of H, D, W, M, Q"):
        clv(bg, gg, [1], [1.0], [2.0], [10.0], time_unit=unit)
    with pytest.raises(ConfigError, match=r"got .* instead"):
        clv(bg, gg, [1], [1.0], [2.0], [10.0], time_unit=unit)


# -- lifetimes as an independent reference -------------------------------------


def test_clv_close_to_lifetimes_weekly(case07):
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    df, params = case07
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(params["bgnbd_weeks"])
    # fit() would set this alias; the parameters are set by hand here.
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series(params["gamma_gamma"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ggf.customer_lifetime_value(
            bgf,
            df["frequency"],
            df["recency_weeks"],
            df["T_weeks"],
            df["monetary_value"],
            time=12,
            discount_rate=0.01,
            freq="W",
        ).to_numpy()
    ours = _case07_clv(case07, "W", 1.01**12 - 1)
    # lifetimes counts a month as 4.345 weeks (30.415 days) where ours is
    # 30.4375 / 7 = 4.348 weeks: ours runs about 0.07% longer over 12 months.
    # Discounting matches: lifetimes divides month i by 1.01^i, as we do with
    # an annual rate of 1.01^12 - 1.
    np.testing.assert_allclose(ours, reference, rtol=2e-3)
    assert (ours >= reference).all()


# -- option and data validation ------------------------------------------------


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("horizon_months", 0, r"'horizon_months' parameter must be a whole number"),
        ("horizon_months", 1.5, r"of months greater than 0 .* Got 1.5 instead"),
        ("horizon_months", True, r"'horizon_months' .* Got True instead"),
        ("horizon_months", "12", r"'horizon_months' .* Got '12' instead"),
        ("margin", 0.0, r"'margin' parameter must be a fraction .* Got 0.0 instead"),
        ("margin", 1.5, r"'margin' parameter must be .* \(0, 1\].* Got 1.5"),
        ("annual_discount_rate", -0.1, r"'annual_discount_rate' .* 0 or more"),
        ("annual_discount_rate", float("nan"), r"'annual_discount_rate' .* Got nan"),
        ("chunk_size", 0, r"'chunk_size' parameter must be .* Got 0 instead"),
    ],
)
def test_clv_rejects_bad_options(bg, gg, option, value, message):
    with pytest.raises(ConfigError, match=message):
        clv(bg, gg, [1], [1.0], [2.0], [10.0], time_unit="W", **{option: value})


def test_clv_accepts_whole_float_horizon(bg, gg):
    a = clv(bg, gg, [1], [1.0], [2.0], [10.0], time_unit="W", horizon_months=6.0)
    b = clv(bg, gg, [1], [1.0], [2.0], [10.0], time_unit="W", horizon_months=6)
    assert a == pytest.approx(b)


def test_clv_rejects_bad_data(bg, gg):
    with pytest.raises(
        DataError, match=r"one value per customer .* lengths 2, 1, 1, 1"
    ):
        clv(bg, gg, [1, 2], [1.0], [2.0], [10.0], time_unit="W")
    with pytest.raises(
        DataError, match=r"'recency' has NaN or infinite values for 1 customers \(1\)"
    ):
        clv(bg, gg, [1, 1], [1.0, np.nan], [2.0, 2.0], [10.0, 1.0], time_unit="W")
    with pytest.raises(
        DataError,
        match=r"'frequency' has negative values for 1 customers \(1\); "
        r"'recency' is larger than 'T' for 1 customers \(0\)",
    ):
        clv(bg, gg, [1, -1], [3.0, 0.0], [2.0, 2.0], [10.0, 1.0], time_unit="W")


# -- score_customers -----------------------------------------------------------


def test_score_customers_columns_and_identities(bg, gg, rfm):
    scored = score_customers(rfm, bg, gg, time_unit="W", margin=0.5)
    assert list(scored.columns) == [
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "segment",
        "first_purchase",
        "p_alive",
        "expected_purchases",
        "expected_spend_per_purchase",
        "expected_spend",
        "clv",
        "realised_margin",
        "ltv",
        "horizon_months",
    ]
    assert scored.index.equals(rfm.index)
    np.testing.assert_allclose(
        scored["expected_spend"],
        scored["expected_purchases"] * scored["expected_spend_per_purchase"],
    )
    np.testing.assert_allclose(scored["realised_margin"], 0.5 * rfm["total_spend"])
    np.testing.assert_allclose(scored["ltv"], scored["realised_margin"] + scored["clv"])
    np.testing.assert_allclose(
        scored["p_alive"],
        bg.conditional_probability_alive(
            rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["T"].to_numpy()
        ),
    )
    # Discounted margin is below half the undiscounted revenue.
    assert (scored["clv"] < 0.5 * scored["expected_spend"]).all()
    assert (scored["horizon_months"] == 12).all()
    assert scored.attrs["observation_end"] == "1997-09-30"
    assert scored.attrs["margin"] == 0.5
    assert scored.attrs["annual_discount_rate"] == 0.10


def test_score_customers_nonpositive_spend_uses_population_mean(bg, gg, rfm, caplog):
    with caplog.at_level(logging.INFO, logger="ltvkit.value"):
        scored = score_customers(rfm, bg, gg, time_unit="W")
    population = GG["p"] * GG["v"] / (GG["q"] - 1)
    assert scored.loc["c9", "expected_spend_per_purchase"] == pytest.approx(population)
    assert scored.loc["c2", "expected_spend_per_purchase"] == pytest.approx(population)
    assert scored.loc["c9", "clv"] > 0
    assert "1 repeat customers have a mean spend of 0 or less" in caplog.text


def test_score_customers_checks_unit_against_summary(bg, gg, rfm):
    with pytest.raises(
        ConfigError, match=r"counts recency and T in 'W'.*time_unit='D'"
    ):
        score_customers(rfm, bg, gg, time_unit="D")
    with pytest.raises(ConfigError, match=r"time_unit must be one of"):
        score_customers(rfm, bg, gg, time_unit="ME")


def test_score_customers_missing_columns(bg, gg, rfm):
    with pytest.raises(DataError, match=r"lacks the columns recency, T; .*summarise"):
        score_customers(rfm.drop(columns=["recency", "T"]), bg, gg, time_unit="W")


def test_score_customers_reports_bad_rows_by_customer_id(bg, gg, rfm):
    rfm.loc["c6", "recency"] = 50.0
    with pytest.raises(
        DataError, match=r"'recency' is larger than 'T' for 1 customers \(c6\)"
    ):
        score_customers(rfm, bg, gg, time_unit="W")


# -- payback -------------------------------------------------------------------


def test_payback_months_hand_cases():
    monthly = np.full((3, 5), 10.0)
    got = payback_months(
        [25.0, 5.0, 100.0, 0.0, np.nan],
        [10.0] * 5,
        [3.0] * 5,
        monthly,
    )
    # 25: 10 realised at age 3, 20 a month later, 30 two months later -> 4.5.
    # 5: already reached at age 3. 100: never within 3 months. 0: at once.
    np.testing.assert_allclose(got, [4.5, 3.0, np.nan, 0.0, np.nan])


def test_payback_within_horizon_exactly_when_ltv_reaches_cac(bg, gg, rfm):
    scored = score_customers(rfm.iloc[:3], bg, gg, time_unit="W")
    monthly = expected_monthly_margin(
        bg,
        gg,
        scored["frequency"],
        scored["recency"],
        scored["T"],
        scored["monetary_value"],
        time_unit="W",
    )
    age = scored["T"].to_numpy() * 7 / DAYS_PER_MONTH
    ltv = scored["ltv"].to_numpy()
    for cac in (ltv * 0.999, ltv * 1.001):
        got = payback_months(cac, scored["realised_margin"], age, monthly)
        assert (np.isfinite(got) == (ltv >= cac)).all()
    got = payback_months(ltv * 0.999, scored["realised_margin"], age, monthly)
    assert ((got >= age) & (got <= age + 12)).all()


@pytest.mark.slow
def test_clv_million_customers_speed(bg, gg):
    import time

    # As from a summary: T and recency in whole days, expressed in weeks.
    rng = np.random.default_rng(7)
    n = 1_000_000
    T_days = rng.integers(1, 546, n)
    x = rng.poisson(2, n).astype(float)
    tx = np.where(x > 0, rng.integers(0, T_days + 1), 0) / 7
    T = T_days / 7
    m = rng.gamma(2, 20, n)
    start = time.perf_counter()
    value = clv(bg, gg, x, tx, T, m, time_unit="W")
    elapsed = time.perf_counter() - start
    assert np.isfinite(value).all()
    assert elapsed < 10, f"1M customers x 12 months took {elapsed:.1f} s"


@pytest.mark.parametrize("grid_cells", [2**22, 10])
def test_purchase_curves_serve_chunks_and_new_histories(
    bg, gg, monkeypatch, grid_cells
):
    # Curves built for part of a summary give the per-chunk results, and
    # compute the (frequency, T) pairs they were not built with.
    rng = np.random.default_rng(5)
    n = 400
    T = rng.integers(1, 60, n) / 7.0
    frequency = rng.integers(0, 12, n).astype(float)
    recency = np.where(frequency > 0, T * rng.uniform(0, 1, n), 0.0)
    rfm = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": recency,
            "T": T,
            "monetary_value": np.where(frequency > 0, rng.gamma(3, 10, n), 0.0),
        }
    )
    import ltvkit.value as value

    monkeypatch.setattr(value, "_GRID_CELLS", grid_cells)
    options = dict(time_unit="W", horizon_months=9, margin=0.4)
    direct = score_customers(rfm, bg, gg, **options)
    weights = month_weights(9, margin=0.4)
    curves = PurchaseCurves(
        bg, frequency[:150], T[:150], weights, time_unit="W", horizon_months=9
    )
    served = score_customers(rfm, bg, gg, curves=curves, **options)
    pd.testing.assert_frame_equal(served, direct, rtol=1e-13)
    assert curves.serves(bg, weights, time_unit="W", horizon_months=9)
    assert not curves.serves(bg, weights, time_unit="W", horizon_months=8)
