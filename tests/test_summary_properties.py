"""Property tests: messy logs give a valid summary or an ltvkit error."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltvkit import read_transactions, summarise
from ltvkit.errors import LtvkitError

DAYS = list(pd.date_range("2020-12-25", "2021-03-10", freq="D"))

iso_date = st.sampled_from(DAYS).map(lambda d: d.strftime("%Y-%m-%d"))
iso_time = st.tuples(st.sampled_from(DAYS), st.integers(0, 86399)).map(
    lambda p: (p[0] + pd.Timedelta(seconds=p[1])).strftime("%Y-%m-%d %H:%M:%S")
)
odd_date = st.one_of(
    st.sampled_from(DAYS).map(lambda d: d.strftime("%d/%m/%Y")),
    st.sampled_from(["", "not a date", "2021-02-30", "31/31/2021"]),
)
amount = st.one_of(
    st.floats(0.01, 500, allow_nan=False).map(lambda x: f"{x:.2f}"),
    st.just("0"),
    st.floats(-200, -0.01).map(lambda x: f"{x:.2f}"),
    st.floats(1e6, 1e9).map(lambda x: f"{x:.2f}"),
)
odd_amount = st.sampled_from(["", "abc", "NaN", "1e400"])
customer = st.sampled_from(["a", "b", "c", "d", "e", "f"])


@st.composite
def messy_logs(draw):
    clean = draw(st.booleans())
    date = st.one_of(iso_date, iso_time) if clean else st.one_of(iso_date, odd_date)
    value = amount if clean else st.one_of(amount, odd_amount)
    ident = customer if clean else st.one_of(customer, st.just(""))
    rows = draw(st.lists(st.tuples(ident, date, value), min_size=1, max_size=30))
    rows += draw(st.lists(st.sampled_from(rows), max_size=5))  # exact duplicates
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


def check_summary(rfm: pd.DataFrame, used: pd.DataFrame, end) -> None:
    numbers = rfm[["frequency", "recency", "T", "monetary_value", "total_spend"]]
    assert np.isfinite(numbers.to_numpy(dtype=float)).all()
    assert (rfm["recency"] >= 0).all()
    assert (rfm["recency"] <= rfm["T"]).all()
    assert (rfm["frequency"] >= 0).all()
    days = used[used["amount"] >= 0].groupby("customer_id")["date"].nunique()
    assert (rfm["frequency"] <= days.reindex(rfm.index) - 1).all()
    # All revenue up to the end belongs to a summarised customer, or to one
    # with refunds only (who is reported and left out).
    total = used.groupby("customer_id")["amount"].sum()
    summarised = total.reindex(rfm.index)
    np.testing.assert_allclose(rfm["total_spend"], summarised, rtol=1e-9, atol=1e-6)
    left_out = total.drop(rfm.index)
    assert (used[used["customer_id"].isin(left_out.index)]["amount"] < 0).all()
    assert pd.Timestamp(rfm.attrs["observation_end"]) == end


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(log=messy_logs(), drop=st.booleans())
def test_summarise_messy_logs_give_a_valid_summary_or_an_ltvkit_error(log, drop):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tx = read_transactions(log, invalid_rows="drop" if drop else "error")
            rfm = summarise(tx, refunds="net")
        except LtvkitError:
            return
    used = tx.to_pandas()
    used["date"] = used["date"].dt.normalize()
    check_summary(rfm, used, used["date"].max())


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    rows=st.lists(
        st.tuples(
            customer,
            st.one_of(iso_date, iso_time),
            amount.filter(lambda a: not a.startswith("-")),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_summarise_valid_logs_always_give_a_summary(rows):
    log = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rfm = summarise(read_transactions(log))
    used = log.assign(
        date=pd.to_datetime(log["date"], format="ISO8601").dt.normalize(),
        amount=log["amount"].astype(float),
    )
    check_summary(rfm, used, used["date"].max())
    assert set(rfm.index) == set(log["customer_id"])
