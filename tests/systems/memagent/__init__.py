"""Tests of reasonlab.systems.memagent (a package, so that file names like test_memory.py stay unique)."""
