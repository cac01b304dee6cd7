"""Energy to CO2: an offline grid carbon-intensity table and the conversion.

Source of the table: Our World in Data's electricity-mix data (built on Ember
and the Energy Institute Statistical Review), year 2021, as compiled in
codecarbon's `global_energy_mix.json` (MIT licence). Values are grams of CO2
per kWh of electricity generated in the country; TWh is that year's generation.

The default, when neither a country nor an intensity is given, is the
generation-weighted mean of every country in this table, labelled as a world
average. Its countries generated about 26,000 TWh in 2021, most of the world's
electricity, so the figure is close to, but not exactly, the global mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .validation import check_number, invalid

TABLE_SOURCE = ("Our World in Data / Ember electricity mix, 2021 "
                "(via codecarbon global_energy_mix.json)")
TABLE_YEAR = 2021

# alpha-2: (alpha-3, name, g CO2/kWh, generation TWh)
INTENSITY = {
    "AE": ("ARE", "United Arab Emirates", 461.845, 135.63),
    "AR": ("ARG", "Argentina", 357.786, 146.68),
    "AT": ("AUT", "Austria", 147.573, 66.95),
    "AU": ("AUS", "Australia", 531.247, 247.06),
    "BE": ("BEL", "Belgium", 156.922, 99.03),
    "BG": ("BGR", "Bulgaria", 354.334, 47.3),
    "BR": ("BRA", "Brazil", 158.592, 662.58),
    "CA": ("CAN", "Canada", 128.461, 625.95),
    "CH": ("CHE", "Switzerland", 47.101, 60.72),
    "CL": ("CHL", "Chile", 416.881, 81.51),
    "CN": ("CHN", "China", 544.355, 8484.02),
    "CZ": ("CZE", "Czechia", 405.589, 83.73),
    "DE": ("DEU", "Germany", 365.477, 581.35),
    "DK": ("DNK", "Denmark", 221.416, 33.06),
    "EG": ("EGY", "Egypt", 464.425, 202.25),
    "ES": ("ESP", "Spain", 193.863, 270.81),
    "FI": ("FIN", "Finland", 145.541, 71.87),
    "FR": ("FRA", "France", 67.39, 550.38),
    "GB": ("GBR", "United Kingdom", 268.329, 307.16),
    "GR": ("GRC", "Greece", 353.339, 54.65),
    "HK": ("HKG", "Hong Kong", 683.972, 35.25),
    "HU": ("HUN", "Hungary", 233.037, 35.96),
    "ID": ("IDN", "Indonesia", 623.157, 309.36),
    "IE": ("IRL", "Ireland", 363.608, 31.6),
    "IL": ("ISR", "Israel", 548.03, 73.08),
    "IN": ("IND", "India", 637.182, 1713.75),
    "IR": ("IRN", "Iran", 492.678, 357.84),
    "IS": ("ISL", "Iceland", 28.557, 19.26),
    "IT": ("ITA", "Italy", 340.794, 286.39),
    "JP": ("JPN", "Japan", 478.545, 958.53),
    "KR": ("KOR", "South Korea", 458.081, 588.52),
    "KZ": ("KAZ", "Kazakhstan", 641.102, 114.35),
    "MX": ("MEX", "Mexico", 399.852, 336.95),
    "MY": ("MYS", "Malaysia", 548.611, 175.68),
    "NL": ("NLD", "Netherlands", 388.702, 121.61),
    "NO": ("NOR", "Norway", 27.55, 157.17),
    "NZ": ("NZL", "New Zealand", 132.427, 43.42),
    "PH": ("PHL", "Philippines", 580.908, 108.21),
    "PK": ("PAK", "Pakistan", 366.052, 150.17),
    "PL": ("POL", "Poland", 660.122, 178.77),
    "PT": ("PRT", "Portugal", 219.053, 49.44),
    "RO": ("ROU", "Romania", 255.877, 59.13),
    "RU": ("RUS", "Russia", 359.937, 1110.36),
    "SA": ("SAU", "Saudi Arabia", 571.336, 356.62),
    "SE": ("SWE", "Sweden", 45.817, 171.77),
    "SG": ("SGP", "Singapore", 487.937, 53.47),
    "TH": ("THA", "Thailand", 506.635, 186.88),
    "TR": ("TUR", "Turkey", 430.401, 333.41),
    "TW": ("TWN", "Taiwan", 573.275, 287.75),
    "UA": ("UKR", "Ukraine", 240.175, 155.72),
    "US": ("USA", "United States", 379.26, 4153.62),
    "VN": ("VNM", "Vietnam", 448.217, 244.77),
    "ZA": ("ZAF", "South Africa", 715.681, 223.2),
}
_ALPHA3 = {row[0]: code for code, row in INTENSITY.items()}
WORLD_AVERAGE = sum(r[2] * r[3] for r in INTENSITY.values()) / sum(r[3] for r in INTENSITY.values())


@dataclass(frozen=True)
class CarbonIntensity:
    """Grams of CO2 per kWh, where the number came from, and the PUE applied."""

    g_per_kwh: float
    source: str
    pue: float = 1.0

    def grams(self, energy_j: float) -> float:
        """CO2 grams for `energy_j` joules at the device, times PUE."""
        return energy_j / 3.6e6 * self.pue * self.g_per_kwh

    def as_dict(self) -> dict:
        return {"intensity_g_per_kwh": self.g_per_kwh, "intensity_source": self.source,
                "pue": self.pue}


def carbon_intensity(
    carbon_intensity: float | None = None, country: str | None = None, pue: float = 1.0
) -> CarbonIntensity:
    """Resolves the intensity to use: a user value, a country, or the world average.

    Args:
        carbon_intensity: g CO2/kWh given by the user (wins over `country`).
        country: ISO 3166 alpha-2 or alpha-3 code, e.g. "DE" or "DEU".
        pue: Power usage effectiveness of the data centre (>= 1; default 1.0).

    Example:

    >>> round(carbon_intensity(country="FR").g_per_kwh, 1)
    67.4
    """
    # Finite: an infinite pue or intensity made every CO2 figure inf, found only in a fit.
    check_number("pue", pue, low=1.0, high=math.inf, high_open=True)
    if carbon_intensity is not None:
        check_number("carbon_intensity", carbon_intensity, low=0, high=math.inf,
                     high_open=True)
        return CarbonIntensity(float(carbon_intensity), "user-given", pue)
    if country is not None:
        code = str(country).strip().upper()
        code = _ALPHA3.get(code, code)
        if code not in INTENSITY:
            raise invalid("country", country, "an ISO 3166 code in greenscreen.carbon.INTENSITY ("
                          + ", ".join(sorted(INTENSITY)) + "), or pass carbon_intensity=")
        _, name, value, _ = INTENSITY[code]
        return CarbonIntensity(value, f"{name} ({code}), {TABLE_SOURCE}", pue)
    return CarbonIntensity(
        round(WORLD_AVERAGE, 1),
        f"world average: generation-weighted mean of {len(INTENSITY)} countries, {TABLE_SOURCE}",
        pue,
    )
