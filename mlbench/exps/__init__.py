"""One module per named experiment."""
