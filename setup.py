import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

# The version is declared once, in senselink/__init__.py (contrib/release.py bumps it).
with open(os.path.join(HERE, "senselink", "__init__.py"), encoding="utf-8") as f:
    version = next(line.split('"')[1] for line in f if line.startswith("__version__"))

with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="senselink-twisted",
    version=version,
    description="Virtual TP-Link Kasa HS110 smart plugs for the Sense Home Energy Monitor, on Twisted",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    # twisted.plugins is a namespace shared with Twisted: ship only our plugin
    # module in it, never an __init__.py.
    packages=find_packages(include=["senselink", "senselink.*"]) + ["twisted.plugins"],
    # A plain package_dir makes editable installs put the project root on
    # sys.path (a static .pth), where Twisted finds twisted/plugins/.
    package_dir={"": "."},
    include_package_data=False,
    # The status page's script, style and icon (served from the package, no outside resource).
    package_data={"senselink.web": ["static/*.js", "static/*.css", "static/*.svg"]},
    # Lean by default: pyOpenSSL, once installed, is loaded by every Twisted
    # reactor (~12 MB resident). TLS and treq (http sources; it requires TLS)
    # come with extras; a config that needs one names it (senselink/extras.py).
    install_requires=[
        "Twisted>=23.8",
        "autobahn>=23.1",
        "PyYAML>=6.0",
        "prometheus_client>=0.17",
    ],
    extras_require={
        "tls": ["Twisted[tls]>=23.8"],
        "http": ["treq>=23.11"],
        "all": ["Twisted[tls]>=23.8", "treq>=23.11"],
        "test": [
            "Twisted[tls]>=23.8",
            "treq>=23.11",
            "hypothesis>=6",
            "python-kasa>=0.12",
            "selenium>=4.11",      # browser tests: drives Debian's chromium via chromium-driver
            "setuptools>=61",      # tests/test_appwheel.py reads setup.py's declarations
            "build>=1",            # tests/test_build.py: python -m build, as a release is built
        ],
    },
    entry_points={"console_scripts": ["senselink=senselink.__main__:main"]},
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Topic :: Home Automation",
    ],
)
