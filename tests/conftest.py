"""Shared pytest configuration for mixerd's tests."""
