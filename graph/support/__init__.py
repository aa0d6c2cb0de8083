"""Generic helpers any room may use: background tasks that stop when asked."""
