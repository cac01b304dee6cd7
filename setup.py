from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path("greenscreen/_version.py").read_text(), version)

setup(
    name="greenscreen",
    version=version["__version__"],
    description="Energy-aware training for Keras: measure, cut and report what training costs.",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["greenscreen", "greenscreen.*"]),
    # No deep-learning backend: a user keeps the one installed (KERAS_BACKEND),
    # or names it as an extra.
    install_requires=[
        "keras>=3",
        "pyyaml",
        "pandas",
        "numpy",
    ],
    extras_require={
        "tensorflow": ["tensorflow>=2.16"],
        "jax": ["jax>=0.4.20"],
        "torch": ["torch>=2.1"],
        "nvml": ["nvidia-ml-py"],
        # The sweep application (pipeline/, run from the checkout) and its report.
        "pipeline": ["scikit-learn", "scipy", "statsmodels", "matplotlib", "seaborn",
                     "reportlab", "pillow"],
        # The Ray executor (./greenscreen.sh sweep --executor ray).
        "ray": ["ray>=2.9"],
        # pypdfium2 renders the report's pages to images in the tests.
        # pytest-xdist runs ./greenscreen.sh test's workers.
        "test": ["pytest>=7", "pytest-xdist", "ruff", "nvidia-ml-py", "tensorboard", "pypdf",
                 "pypdfium2", "ray>=2.9"],
    },
)
