"""Case 05: bad RFM values are refused before optimisation, naming the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvkit.errors import ConvergenceError, DataError
from ltvkit.models import PURCHASE_MODELS, BGNBDModel
from ltvkit.value import score_customers

VARIANTS = {
    "nan_frequency": (3, "frequency", np.nan, r"frequency.*(NaN|missing)"),
    "nan_recency": (3, "recency", np.nan, r"recency.*NaN"),
    "negative_T": (6, "T", -5.0, r"'T'.*negative"),
    "negative_frequency": (6, "frequency", -1, r"frequency.*negative"),
}


def variant(cases, name: str) -> pd.DataFrame:
    rfm = pd.read_csv(
        cases / "05-rfm-input-validation" / "rfm_base.csv", index_col="customer_id"
    ).astype(float)
    customer, column, value, _ = VARIANTS[name]
    rfm.loc[customer, column] = value
    if name == "negative_frequency":
        rfm.loc[customer, "recency"] = 4.0
    return rfm


@pytest.mark.parametrize("kind", sorted(PURCHASE_MODELS))
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_purchase_model_fit_refuses_bad_rfm_before_optimising(cases, kind, name):
    rfm = variant(cases, name)
    model = PURCHASE_MODELS[kind]()
    with pytest.raises(DataError, match=VARIANTS[name][3]) as info:
        model.fit(rfm)
    assert not isinstance(info.value, ConvergenceError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_scoring_refuses_bad_rfm(cases, name):
    from ltvkit.models import GammaGammaModel

    rfm = variant(cases, name).assign(monetary_value=10.0, total_spend=10.0)
    purchases = BGNBDModel.from_params({"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4})
    spend = GammaGammaModel.from_params({"p": 6.25, "q": 3.74, "v": 15.44})
    with pytest.raises(ValueError, match=VARIANTS[name][3]):
        score_customers(rfm, purchases, spend, time_unit="W")


def test_purchase_model_fit_on_the_base_file_succeeds(cases):
    rfm = pd.read_csv(
        cases / "05-rfm-input-validation" / "rfm_base.csv", index_col="customer_id"
    )
    model = BGNBDModel().fit(rfm)
    assert np.isfinite(model.log_likelihood_)
