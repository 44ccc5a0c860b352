"""Data sets: embedded synthetic photos, splits and the input pipeline."""
