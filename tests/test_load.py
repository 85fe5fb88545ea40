"""Reading transaction logs: columns, dates, invalid rows."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from ltvkit import load_cdnow, read_transactions
from ltvkit.errors import ConfigError, DataError, DataQualityWarning


def write(tmp_path, text: str, name: str = "log.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_cdnow_sizes_match_the_published_data():
    master = load_cdnow("master")
    sample = load_cdnow("sample")
    assert master["customer_id"].nunique() == 23570
    assert sample["customer_id"].nunique() == 2357
    assert len(master) == 69659
    assert len(sample) == 6919
    assert (master["amount"] == 0).sum() == 80
    assert (sample["amount"] == 0).sum() == 8
    assert master.duplicated().sum() == 255
    assert sample.duplicated().sum() == 21
    assert master["date"].min() == pd.Timestamp("1997-01-01")
    assert master["date"].max() == pd.Timestamp("1998-06-30")


def test_load_cdnow_unknown_kind_is_refused():
    with pytest.raises(ConfigError, match="'master' or 'sample'"):
        load_cdnow("full")


def test_read_transactions_reports_missing_columns(tmp_path):
    path = write(tmp_path, "cust,date,amount\na,2021-01-01,1\n")
    with pytest.raises(DataError, match=r"no customer id column 'customer_id'.*cust"):
        read_transactions(path)


def test_read_transactions_maps_column_names(tmp_path):
    path = write(tmp_path, "cust,when,value,channel\na,2021-01-01,1.5,web\n")
    tx = read_transactions(
        path,
        customer_id_col="cust",
        date_col="when",
        amount_col="value",
        segment_col="channel",
    )
    frame = tx.to_pandas()
    assert frame.to_dict("records") == [
        {
            "customer_id": "a",
            "date": pd.Timestamp("2021-01-01"),
            "amount": 1.5,
            "segment": "web",
        }
    ]


def test_read_transactions_reports_unparseable_dates_with_row_numbers(tmp_path):
    path = write(tmp_path, "customer_id,date,amount\na,2021-01-01,1\nb,2021-13-45,2\n")
    with pytest.raises(
        DataError, match=r"1 rows with a date that cannot be read.*row 2"
    ):
        read_transactions(path)


def test_read_transactions_reports_non_numeric_amounts(tmp_path):
    path = write(
        tmp_path, "customer_id,date,amount\na,2021-01-01,1\nb,2021-01-02,ten\n"
    )
    with pytest.raises(DataError, match=r"non-numeric amount.*row 2.*'ten'"):
        read_transactions(path)


def test_read_transactions_missing_ids_are_an_error_by_default(cases):
    path = cases / "05-rfm-input-validation" / "transactions_missing_ids.csv"
    with pytest.raises(
        DataError, match=r"2 rows with a missing customer id.*row 3.*row 5"
    ):
        read_transactions(path)


def test_read_transactions_drops_missing_ids_only_on_request(cases):
    path = cases / "05-rfm-input-validation" / "transactions_missing_ids.csv"
    with pytest.warns(
        DataQualityWarning, match=r"Dropped 2 of 5 rows \(37\.00 of revenue"
    ):
        tx = read_transactions(path, invalid_rows="drop")
    assert len(tx) == 3
    assert tx.n_dropped == 2


def test_read_transactions_ambiguous_slash_dates_need_a_format(tmp_path):
    path = write(tmp_path, "customer_id,date,amount\na,01/02/2021,1\na,03/04/2021,2\n")
    with pytest.raises(DataError, match="day-first or month-first"):
        read_transactions(path)
    tx = read_transactions(path, date_format="%d/%m/%Y")
    assert tx.date_range() == (pd.Timestamp("2021-02-01"), pd.Timestamp("2021-04-03"))


def test_read_transactions_infers_day_first_when_the_data_prove_it(tmp_path):
    path = write(tmp_path, "customer_id,date,amount\na,25/12/2021,1\na,03/01/2022,2\n")
    tx = read_transactions(path)
    assert tx.date_range() == (pd.Timestamp("2021-12-25"), pd.Timestamp("2022-01-03"))


def test_read_transactions_mixed_formats_need_a_format(tmp_path):
    path = write(tmp_path, "customer_id,date,amount\na,2021-01-05,1\na,25/12/2021,2\n")
    with pytest.raises(DataError, match="several formats"):
        read_transactions(path)


def test_read_transactions_converts_offsets_to_the_given_zone(tmp_path):
    path = write(
        tmp_path,
        "customer_id,date,amount\na,2021-01-01T23:30:00+00:00,1\n"
        "a,2021-01-02T01:00:00+05:00,2\n",
    )
    utc = read_transactions(path).to_pandas()["date"].dt.date.astype(str).tolist()
    tokyo = read_transactions(path, timezone="Asia/Tokyo").to_pandas()
    assert utc == ["2021-01-01", "2021-01-01"]
    assert tokyo["date"].dt.date.astype(str).tolist() == ["2021-01-02", "2021-01-02"]


def test_read_transactions_refuses_mixed_naive_and_offset_times(tmp_path):
    path = write(
        tmp_path,
        "customer_id,date,amount\na,2021-01-01 10:00:00,1\na,2021-01-02T01:00:00Z,2\n",
    )
    with pytest.raises(DataError, match="mixes timestamps with a UTC offset"):
        read_transactions(path)


def test_read_transactions_reads_parquet_and_csv_alike(tmp_path, cdnow_sample):
    frame = cdnow_sample.assign(date=cdnow_sample["date"].dt.strftime("%Y-%m-%d"))
    frame[["customer_id", "date", "amount"]].to_csv(tmp_path / "s.csv", index=False)
    cdnow_sample.to_parquet(tmp_path / "s.parquet")
    a = read_transactions(tmp_path / "s.csv").to_pandas()
    b = read_transactions(tmp_path / "s.parquet").to_pandas()
    pd.testing.assert_frame_equal(a, b)


def test_read_transactions_reads_a_glob_of_partitions(tmp_path, cdnow_sample):
    (tmp_path / "parts").mkdir()
    for i, part in enumerate((cdnow_sample.iloc[:3000], cdnow_sample.iloc[3000:])):
        part.to_parquet(tmp_path / "parts" / f"p{i}.parquet")
    assert len(read_transactions(tmp_path / "parts" / "*.parquet")) == len(cdnow_sample)
    assert len(read_transactions(tmp_path / "parts")) == len(cdnow_sample)


def test_read_transactions_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_transactions(tmp_path / "nope.csv")


def test_read_transactions_empty_log_is_a_data_error(tmp_path):
    path = write(tmp_path, "customer_id,date,amount\n")
    with pytest.raises(DataError, match="no rows"):
        read_transactions(path)


def test_read_transactions_option_values_are_checked(tmp_path):
    path = write(tmp_path, "customer_id,date,amount\na,2021-01-01,1\n")
    with pytest.raises(ConfigError, match="invalid_rows must be"):
        read_transactions(path, invalid_rows="ignore")


def test_read_transactions_valid_log_gives_no_warning(tmp_path):
    path = write(tmp_path, "customer_id,date,amount\na,2021-01-01,1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_transactions(path)


def test_read_transactions_ragged_csv_row_is_named(tmp_path):
    rows = "".join(f"a,2021-01-{d:02d},5\n" for d in range(1, 29))
    path = write(tmp_path, "customer_id,date,amount\n" + rows + "b,2021-01-02,5,x\n")
    with pytest.raises(DataError, match=r"line 30 of the file does not fit the header"):
        read_transactions(path)


def test_read_transactions_empty_file_is_named(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        read_transactions(write(tmp_path, ""))


def test_read_transactions_semicolon_csv(tmp_path):
    path = write(tmp_path, "customer_id;date;amount\na;2021-01-01;1.5\n")
    assert read_transactions(path).to_pandas()["amount"].tolist() == [1.5]
