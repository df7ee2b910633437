"""Data: sources that produce the raw PixelRec layout, validation, and the temporal split."""
