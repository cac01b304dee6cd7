"""The offline carbon-intensity table and the kWh -> g CO2 conversion."""

import pytest

from greenscreen.carbon import INTENSITY, TABLE_YEAR, WORLD_AVERAGE, carbon_intensity


def test_default_is_the_labelled_world_average():
    ci = carbon_intensity()
    assert ci.g_per_kwh == pytest.approx(WORLD_AVERAGE, abs=0.05)
    assert ci.source.startswith("world average") and str(TABLE_YEAR) in ci.source


def test_country_codes_alpha2_and_alpha3():
    assert carbon_intensity(country="de").g_per_kwh == carbon_intensity(country="DEU").g_per_kwh
    assert "Germany" in carbon_intensity(country="DE").source


def test_user_value_wins_and_pue_scales():
    ci = carbon_intensity(carbon_intensity=100.0, country="PL", pue=1.5)
    assert ci.source == "user-given"
    assert ci.grams(3.6e6) == pytest.approx(150.0)  # 1 kWh at 100 g/kWh, PUE 1.5


def test_world_average_is_between_table_extremes():
    values = [row[2] for row in INTENSITY.values()]
    assert min(values) < WORLD_AVERAGE < max(values)


@pytest.mark.parametrize("kwargs, match", [
    ({"country": "XX"}, "country='XX' is not valid"),
    ({"pue": 0.5}, "pue=0.5 is not valid"),
    ({"carbon_intensity": -1}, "carbon_intensity=-1 is not valid"),
])
def test_bad_input_is_one_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        carbon_intensity(**kwargs)
