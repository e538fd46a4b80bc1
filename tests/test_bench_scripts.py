"""The benchmark scripts a message sends a user to run on pgface's own install (setup.sh's,
without the test tools)."""

from __future__ import annotations

import subprocess
import sys

from conftest import LFW, REPO, require_data

# bench/accuracy.py as setup.sh's install runs it: insightface, which only test.sh installs,
# hidden from the import system
WITHOUT_INSIGHTFACE = """
import runpy, sys
sys.modules["insightface"] = None
sys.path.insert(0, "bench")
sys.argv = ["bench/accuracy.py", *sys.argv[1:]]
runpy.run_path("bench/accuracy.py", run_name="__main__")
"""


def test_accuracy_script_reads_its_arguments_and_says_what_the_seed_needs_without_insightface(
        ) -> None:
    """A pack's "no calibrated threshold" notice sends the user to bench/accuracy.py, which
    imported insightface (the seed's pipeline) first: on setup.sh's install it died with
    ModuleNotFoundError before reading its arguments, --help and --skip-seed alike (probe
    docs60)."""
    helped = subprocess.run([sys.executable, "-c", WITHOUT_INSIGHTFACE, "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--skip-seed" in helped.stdout, helped
    require_data(LFW / "images")
    refused = subprocess.run([sys.executable, "-c", WITHOUT_INSIGHTFACE], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1, refused
    assert "the seed's rows need insightface, which setup.sh does not install (test.sh does): " \
           "give --skip-seed" in refused.stderr, refused.stderr
