"""Lets mixerd's own test run import this package from source; in your project, `pip install -e .`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
