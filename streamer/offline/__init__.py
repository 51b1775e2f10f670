"""Offline: a recording tagged after the set, its exports and its picture."""
