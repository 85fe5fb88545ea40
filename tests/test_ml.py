"""Tests of ltvkit.ml: features, target and the spend regressor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.impute import SimpleImputer
from sklearn.linear_model import PoissonRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ltvkit.errors import ConfigError, DataError, ModelError
from ltvkit.load import read_transactions
from ltvkit.ml import (
    FEATURE_NAMES,
    MIN_TRAINING_CUSTOMERS,
    MODEL_FEATURES,
    TENURE_FEATURES,
    SpendRegressor,
    build_features,
    build_target,
)

START = pd.Timestamp("2020-01-01")
END = pd.Timestamp("2021-12-31")


def _regular_log(n_customers: int = 200, seed: int = 0) -> pd.DataFrame:
    """Customers who each buy the same amount every ``gap`` days, for ever."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_customers):
        gap = int(rng.integers(5, 60))
        amount = float(rng.choice([10.0, 20.0, 50.0]))
        day = START + pd.Timedelta(days=int(rng.integers(0, 120)))
        while day <= END:
            rows.append((f"c{i:03d}", day, amount, gap))
            day += pd.Timedelta(days=gap)
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount", "gap"])


@pytest.fixture(scope="module")
def regular():
    log = _regular_log()
    tx = read_transactions(log[["customer_id", "date", "amount"]])
    rates = log.groupby("customer_id").first()
    return tx, rates


@pytest.fixture(scope="module")
def fitted(regular):
    tx, _ = regular
    return SpendRegressor(horizon_days=182).fit(tx, observation_end=END)


def _tiny() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "c"],
            "date": pd.to_datetime(
                [
                    "2021-01-01",
                    "2021-01-01",
                    "2021-03-02",
                    "2021-06-20",
                    "2021-06-25",
                    "2021-07-15",
                ]
            ),
            "amount": [10.0, 5.0, 30.0, 20.0, 7.0, 100.0],
        }
    )


def test_build_features_hand_checked_values():
    features = build_features(read_transactions(_tiny()), as_of="2021-06-30")

    assert list(features.columns) == list(FEATURE_NAMES)
    assert list(features.index) == ["a", "b"]  # c buys after as_of
    a = features.loc["a"]
    # Occasions of a: 2021-01-01 (15), 2021-03-02 (30), 2021-06-20 (20).
    assert a["frequency"] == 2
    assert a["recency"] == 170
    assert a["T"] == 180
    assert a["monetary_value"] == 25.0
    assert a["total_spend"] == 65.0
    assert a["n_transactions"] == 4
    assert a["days_since_first_purchase"] == 180
    assert a["days_since_last_purchase"] == 10
    assert a["spend_per_day"] == pytest.approx(65.0 / 181)
    assert a["purchase_days_per_day"] == pytest.approx(3 / 181)
    # The 30-day window is 2021-06-01..2021-06-30; 180 days reach 2021-01-02.
    assert a["spend_last_30_days"] == 20.0
    assert a["purchase_days_last_30_days"] == 1
    assert a["spend_last_90_days"] == 20.0
    assert a["spend_last_180_days"] == 50.0
    assert a["purchase_days_last_180_days"] == 2
    assert a["mean_days_between_purchases"] == 85.0
    assert a["max_occasion_spend"] == 30.0
    assert a["first_purchase_spend"] == 15.0
    b = features.loc["b"]
    assert b["frequency"] == 0 and b["days_since_last_purchase"] == 5
    assert np.isnan(b["mean_days_between_purchases"])
    assert features.attrs["as_of"] == "2021-06-30"


def test_build_features_unchanged_by_later_rows():
    before = build_features(read_transactions(_tiny()), as_of="2021-06-30")
    later = pd.DataFrame(
        {
            "customer_id": ["a", "b", "d", "a"],
            "date": pd.to_datetime(
                ["2021-07-01", "2021-12-31", "2021-07-02", "2022-03-01"]
            ),
            "amount": [999.0, 50.0, 12.0, 5.0],
        }
    )
    more = read_transactions(pd.concat([_tiny(), later], ignore_index=True))

    after = build_features(more, as_of="2021-06-30")

    pd.testing.assert_frame_equal(before, after)


@pytest.mark.filterwarnings("ignore::ltvkit.errors.DataQualityWarning")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5), st.integers(0, 60), st.floats(0.5, 100.0, width=32)
        ),
        min_size=1,
        max_size=25,
    ),
    st.lists(
        st.tuples(
            st.integers(0, 8), st.integers(31, 90), st.floats(0.0, 100.0, width=32)
        ),
        max_size=10,
    ),
)
def test_build_features_no_leakage_property(early, late):
    as_of = START + pd.Timedelta(days=30)
    early = [r for r in early if r[1] <= 30] or [(0, 0, 1.0)]

    def frame(rows):
        return pd.DataFrame(
            {
                "customer_id": [f"c{c}" for c, _, _ in rows],
                "date": [START + pd.Timedelta(days=d) for _, d, _ in rows],
                "amount": [float(a) for _, _, a in rows],
            }
        )

    alone = build_features(read_transactions(frame(early)), as_of=as_of)
    both = build_features(read_transactions(frame(early + late)), as_of=as_of)

    pd.testing.assert_frame_equal(alone, both)


def test_build_features_nets_refunds_like_summarise():
    log = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "date": pd.to_datetime(
                ["2021-01-01", "2021-02-01", "2021-02-10", "2021-01-05", "2021-01-06"]
            ),
            "amount": [10.0, 30.0, -5.0, 8.0, -8.0],
        }
    )

    features = build_features(read_transactions(log), as_of="2021-03-01", refunds="net")

    # The refund of 2021-02-10 lowers the occasion of 2021-02-01 to 25.
    a = features.loc["a"]
    assert (a["total_spend"], a["max_occasion_spend"]) == (35.0, 25.0)
    assert (a["spend_last_30_days"], a["purchase_days_last_30_days"]) == (25.0, 1)
    assert features.loc["b", "total_spend"] == 0.0
    with pytest.raises(DataError, match="negative amount"):
        build_features(read_transactions(log), as_of="2021-03-01")


def test_build_features_rejects_day_before_log():
    with pytest.raises(DataError, match="as_of 2020-12-31 is before the first"):
        build_features(read_transactions(_tiny()), as_of="2020-12-31")


def test_build_target_window_excludes_start_includes_end():
    tx = read_transactions(_tiny())

    target = build_target(tx, start_exclusive="2021-03-02", end_inclusive="2021-06-25")

    assert target.name == "spend"
    assert target.to_dict() == {"a": 20.0, "b": 7.0}


def test_build_target_rejects_empty_window():
    with pytest.raises(ConfigError, match="must be after start_exclusive"):
        build_target(
            read_transactions(_tiny()),
            start_exclusive="2021-06-01",
            end_inclusive="2021-06-01",
        )


def test_spend_regressor_regular_buyers_predicted_near_their_rate(regular, fitted):
    tx, rates = regular

    predicted = fitted.predict(tx, as_of=END)

    expected = 182 / rates["gap"] * rates["amount"]
    ratio = (predicted / expected.reindex(predicted.index)).to_numpy()
    # Each customer's 182-day spend is floor or ceil of 182 / gap purchases,
    # so even a perfect model is off by up to one purchase for each customer.
    assert np.median(np.abs(ratio - 1)) < 0.10
    assert predicted.sum() == pytest.approx(expected.sum(), rel=0.05)


def test_spend_regressor_records_windows_and_features(fitted):
    assert fitted.training_windows_ == {
        "features_end": "2021-07-02",
        "target_start": "2021-07-03",
        "target_end": "2021-12-31",
        "target_days": 182,
    }
    assert fitted.feature_names_ == list(MODEL_FEATURES)
    assert not set(MODEL_FEATURES) & set(TENURE_FEATURES)
    assert fitted.n_training_customers_ == 200
    assert fitted.estimator_.loss == "poisson"


def test_spend_regressor_predict_is_named_non_negative_series(regular, fitted):
    tx, _ = regular

    predicted = fitted.predict(tx, as_of="2020-02-15")

    assert predicted.name == "predicted_spend_ml"
    assert predicted.index.name == "customer_id"
    assert (predicted >= 0).all()
    first = tx.connection.execute(
        "SELECT count(DISTINCT customer_id) FROM transactions "
        "WHERE day <= DATE '2020-02-15'"
    ).fetchall()[0][0]
    assert len(predicted) == first


def test_spend_regressor_predict_features_matches_predict(regular, fitted):
    tx, _ = regular
    features = build_features(tx, as_of=END)

    by_frame = fitted.predict_features(features.iloc[::-1])

    pd.testing.assert_series_equal(by_frame.sort_index(), fitted.predict(tx, as_of=END))


def test_spend_regressor_is_deterministic(regular, fitted):
    tx, _ = regular

    again = SpendRegressor(horizon_days=182).fit(tx, observation_end=END)

    pd.testing.assert_series_equal(
        again.predict(tx, as_of=END), fitted.predict(tx, as_of=END), check_exact=True
    )


def test_spend_regressor_rejects_log_shorter_than_horizon(regular):
    tx, _ = regular

    with pytest.raises(DataError, match="too short to train a 800-day spend model"):
        SpendRegressor(horizon_days=800).fit(tx, observation_end=END)


def test_spend_regressor_rejects_too_few_customers():
    tx = read_transactions(_regular_log(n_customers=MIN_TRAINING_CUSTOMERS - 1))

    with pytest.raises(DataError, match=r"Only \d+ customers bought by the training"):
        SpendRegressor(horizon_days=30).fit(tx)


def test_spend_regressor_rejects_window_without_spend():
    log = _regular_log(n_customers=60)
    log = log[log["date"] <= "2021-06-30"]
    # One later purchase makes the log reach the observation end.
    log.loc[len(log)] = ["z", END, 5.0, 0]
    tx = read_transactions(log[["customer_id", "date", "amount"]])

    with pytest.raises(DataError, match="nothing to learn from"):
        SpendRegressor(horizon_days=30).fit(tx, observation_end="2021-11-30")


def test_spend_regressor_fits_when_no_one_has_repeated_yet():
    rows = [(f"c{i}", START + pd.Timedelta(days=i % 10), 10.0 + i) for i in range(80)]
    rows += [(f"c{i}", START + pd.Timedelta(days=40), 5.0) for i in range(0, 80, 3)]
    tx = read_transactions(
        pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    )

    model = SpendRegressor(horizon_days=30).fit(tx)

    assert model.training_windows_["features_end"] == "2020-01-11"
    assert (model.predict(tx, as_of="2020-02-10") >= 0).all()


def test_spend_regressor_not_fitted():
    with pytest.raises(ModelError, match="not fitted yet"):
        SpendRegressor(horizon_days=30).predict_features(pd.DataFrame())


def test_spend_regressor_predict_features_missing_columns(fitted):
    with pytest.raises(ModelError, match="lacks 1 columns.*spend_per_day"):
        fitted.predict_features(
            pd.DataFrame({c: [1.0] for c in MODEL_FEATURES if c != "spend_per_day"})
        )


@pytest.mark.parametrize("horizon", [0, -5, "a year", None])
def test_spend_regressor_rejects_bad_horizon(regular, horizon):
    tx, _ = regular
    with pytest.raises(ConfigError, match="'horizon_days' parameter"):
        SpendRegressor(horizon_days=horizon).fit(tx)


def test_spend_regressor_rejects_unknown_feature(regular):
    tx, _ = regular
    with pytest.raises(ConfigError, match="unknown names 'age'"):
        SpendRegressor(horizon_days=30, features=["T", "age"]).fit(tx)


def test_spend_regressor_accepts_another_estimator(regular):
    tx, rates = regular
    estimator = make_pipeline(
        SimpleImputer(), StandardScaler(), PoissonRegressor(max_iter=1000)
    )

    model = SpendRegressor(horizon_days=182, estimator=estimator).fit(
        tx, observation_end=END
    )

    assert model.estimator_ is not estimator
    assert model.predict(tx, as_of=END).sum() == pytest.approx(
        (182 / rates["gap"] * rates["amount"]).sum(), rel=0.15
    )


def test_spend_regressor_samples_huge_training_sets(regular, monkeypatch, caplog):
    import ltvkit.ml

    tx, _ = regular
    monkeypatch.setattr(ltvkit.ml, "MAX_TRAINING_CUSTOMERS", 120)
    with caplog.at_level("INFO", logger="ltvkit.ml"):
        model = SpendRegressor(horizon_days=182).fit(tx, observation_end=END)
    assert "on a sample of 120 of 200 customers" in caplog.text
    again = SpendRegressor(horizon_days=182).fit(tx, observation_end=END)
    pd.testing.assert_series_equal(
        model.predict(tx, as_of=END), again.predict(tx, as_of=END), check_exact=True
    )


def test_build_features_reuses_a_matching_summary(regular):
    from ltvkit import summarise

    tx, _ = regular
    rfm = summarise(tx, observation_end=END)
    again = build_features(tx, as_of=END, rfm=rfm)
    pd.testing.assert_frame_equal(again, build_features(tx, as_of=END))
    stale = summarise(tx, observation_end="2021-03-31")
    pd.testing.assert_frame_equal(
        build_features(tx, as_of=END, rfm=stale), build_features(tx, as_of=END)
    )
