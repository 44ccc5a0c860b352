"""Puts the repository root on sys.path so tests can import `configs/` as the CLI does."""
