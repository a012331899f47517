"""The synthetic source generator behind ``medallion generate``.

It writes daily extracts of the nine source tables of DESIGN.md section 5 into the lake's
``landing/`` folder, with defects injected at documented rates and a manifest of exactly what
was injected (see docs/SOURCES.md).
"""

from medallion.generate.landing import generate_landing
from medallion.generate.spec import GENERATOR_VERSION

__all__ = ["GENERATOR_VERSION", "generate_landing"]
