"""Shared pytest configuration for mixerd's tests."""

import sys
from pathlib import Path

# tests/peers (the real servers integration tests start) imports as the package `peers`.
sys.path.insert(0, str(Path(__file__).resolve().parent))
