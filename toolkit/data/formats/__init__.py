"""Dataset format readers and writers (one module per format)."""
