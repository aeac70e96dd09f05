"""The validator where data enters: each poisonous value of issue 17 refused with its field, value and reason;
every value landing can hold, and real text (emoji, RTL, ideographic spaces, quotes), accepted as given."""

import datetime as dt
import re
from decimal import Decimal

import pytest

from orchestration import config
from orchestration.sources.canonical import ChartKey, ParsedChart, PayloadError
from orchestration.sources.parsers import parse_payload
from orchestration.sources.validate import (InvalidValue, Limits, STORE_RULES, known_countries,
                                            validate_charts)
from tests import poison

TODAY = dt.date(2026, 12, 1)
LIMITS = Limits.now(TODAY)


def _validate(content: bytes, source="x.json", limits=LIMITS):
    return validate_charts(parse_payload(content, source=source, sha256="ab" * 32), source=source,
                           sha256="ab" * 32, limits=limits)


@pytest.mark.parametrize("case", sorted(poison.POISON))
def test_poisonous_value_is_refused_naming_file_hash_field_and_value(case):
    content, field, shown = poison.POISON[case]
    with pytest.raises(InvalidValue) as err:
        _validate(content, source=f"inbox/{case}.json")
    assert (err.value.field, repr(err.value.value)) == (field, shown)
    text = str(err.value)
    for part in (f"invalid {field} {shown}", f"field={field}", f"source=inbox/{case}.json",
                 f"payload_sha256={'ab' * 32}"):
        assert part in text
    assert "\x1b" not in text  # the message itself is safe to print


def test_superscript_rank_is_a_payload_error_not_a_crash():
    with pytest.raises(PayloadError, match=r"rank '²' is not a positive integer.*source=x.json"):
        _validate(poison.SUPERSCRIPT_RANK)


def test_the_good_payloads_of_the_poison_set_pass():
    for content in (poison.legacy(), poison.archive(), poison.v2()):
        assert len(_validate(content)) == 1


def test_real_text_is_kept_verbatim():
    names = ["小红书 RedNote 🧧👨‍👩‍👧", "واتساب\u200f Messenger", "Ｘ\u3000ideographic space",
             "O'Reilly \"quoted\" `x`; drop table apps; --"]
    [chart] = _validate(poison.legacy(prices=("0", "0", "0", "0"), names=names))
    assert [e["app_name"] for e in chart.entries] == names


@pytest.mark.parametrize("name,char", [("nul\x00byte", "U+0000"), ("tab\tname", "U+0009"), ("del\x7f", "U+007F"),
                                       ("c1\x9b2J", "U+009B")])
def test_control_characters_are_refused(name, char):
    with pytest.raises(InvalidValue, match=re.escape(f"control character {char}")):
        _validate(poison.legacy(prices=("0",), names=[name]))


def test_lone_surrogate_is_not_text():
    content = poison.legacy(prices=("0",), names=["placeholder"]).replace(b"placeholder", b"bad \\ud800 name")
    with pytest.raises(InvalidValue, match="lone surrogate"):
        _validate(content)


def _chart(store="apple", country="us", genre_id=None, day=TODAY, **entry):
    row = {"rank": 1, "app_id": "741292507", "app_name": "REDnote", "developer_name": "x", "developer_id": "1",
           "genre_name": None, "release_date": None, "price": None, "currency": None, "url": None, **entry}
    key = ChartKey("apple", country, "iphone", "top-free", genre_id, day)
    object.__setattr__(key, "store", store)  # a store the parsers do not know yet
    return ParsedChart(key, [row])


@pytest.mark.parametrize("entry", [
    {"rank": 200}, {"price": Decimal("99999999.99"), "currency": "KRW"}, {"price": Decimal("0.99000")},
    {"price": 0, "currency": "JPY"}, {"release_date": dt.date(2008, 7, 10)}, {"url": "https://apps.apple.com/x"},
])
def test_values_at_the_edges_of_their_range_pass(entry):
    validate_charts([_chart(**entry)], source="s", sha256=None, limits=LIMITS)


@pytest.mark.parametrize("entry,field", [
    ({"rank": 201}, "rank"), ({"rank": 0}, "rank"), ({"rank": True}, "rank"), ({"rank": 2**31}, "rank"),
    ({"price": Decimal("100000000.00")}, "price"), ({"price": Decimal("-0.01")}, "price"),
    ({"price": Decimal("0.999")}, "price"), ({"price": float("nan")}, "price"), ({"price": "free"}, "price"),
    ({"currency": "usd"}, "currency"), ({"currency": "XYZ"}, "currency"), ({"currency": 840}, "currency"),
    ({"app_id": "0123"}, "app_id"), ({"app_id": "com.whatsapp"}, "app_id"), ({"app_id": 741292507}, "app_id"),
    ({"developer_id": "abc"}, "developer_id"), ({"app_name": None}, "app_name"), ({"app_name": 7}, "app_name"),
    ({"developer_name": "x" * 1001}, "developer_name"), ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "https://a.b/\x1b[2J"}, "url"), ({"release_date": dt.date(1970, 1, 1)}, "release_date"),
    ({"release_date": dt.date(2999, 1, 1)}, "release_date"), ({"release_date": "2020-01-01"}, "release_date"),
])
def test_values_out_of_range_are_refused_by_field(entry, field):
    with pytest.raises(InvalidValue) as err:
        validate_charts([_chart(**entry)], source="s", sha256=None, limits=LIMITS)
    assert err.value.field == field


@pytest.mark.parametrize("key,field", [
    ({"country": "zz"}, "country"), ({"genre_id": 0}, "genre_id"), ({"genre_id": 2**31}, "genre_id"),
    ({"store": "amazon"}, "store"), ({"day": TODAY + dt.timedelta(days=2)}, "chart_date"),
    ({"day": config.PARTITIONS_START - dt.timedelta(days=1)}, "chart_date"),
])
def test_chart_keys_out_of_range_are_refused(key, field):
    with pytest.raises(InvalidValue) as err:
        validate_charts([_chart(**key)], source="s", sha256=None, limits=LIMITS)
    assert err.value.field == field


def test_chart_dates_admitted_are_exactly_the_daily_partitions():
    from orchestration.defs.raw.partitions import daily_partitions

    keys = daily_partitions.get_partition_keys()
    assert keys[0] == config.PARTITIONS_START.isoformat() == Limits.now().first_date.isoformat()
    assert keys[-1] == Limits.now().last_date.isoformat()
    for day in (Limits.now().first_date, Limits.now().last_date):
        validate_charts([_chart(day=day)], source="s", sha256=None)


def test_partitions_admit_every_real_archive_including_google_play_of_2020(real_charts):
    assert config.PARTITIONS_START <= dt.date(2020, 10, 10)  # price-of-privacy-play/play_store/*/TOP_FREE_20201010*


def test_google_play_ids_are_package_names():
    rule = STORE_RULES["google_play"]
    assert rule.app_id.fullmatch("com.xingin.xhs") and rule.app_id.fullmatch("fr.agircarrco.smartretraite")
    for bad in ("741292507", "com", "com..x", ".com.x", "com.x\x1b", "1com.x"):
        assert not rule.app_id.fullmatch(bad)


def test_countries_are_the_dim_countries_seed():
    countries = known_countries()
    assert {"us", "fr", "gb", "jp", "kr", "cn"} <= countries and "zz" not in countries and len(countries) == 93
